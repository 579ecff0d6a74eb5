package events

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lease errors; callers decide with errors.Is.
var (
	// ErrLeaseHeld: another owner holds the lease. The VM is being moved by someone else.
	ErrLeaseHeld = errors.New("lease held by another owner")
	// ErrLeaseLost: the lease expired or was taken over since it was acquired or last
	// renewed. The holder must stop touching the VM.
	ErrLeaseLost = errors.New("lease lost")
)

// Leases hands out per-VM leases from the KV bucket BucketLeases, so a VM is never
// relocated by two workers at once. The bucket's TTL frees the lease of a worker that
// died; a live holder renews well within it.
type Leases struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// leaseValue is what the bucket stores: enough for an operator running `nats kv get`
// to see who holds which VM since when.
type leaseValue struct {
	Key        string    `json:"key"`
	Owner      string    `json:"owner"`
	AcquiredAt time.Time `json:"acquired_at"`
	RenewedAt  time.Time `json:"renewed_at"`
}

// Lease is one held lease. Its methods are safe for concurrent use (a renewal loop and
// a Release may race at the end of a job).
type Lease struct {
	kv       jetstream.KeyValue
	ttl      time.Duration
	key      string // as the caller named it
	kvKey    string
	owner    string
	acquired time.Time

	mu  sync.Mutex
	rev uint64
}

// Acquire takes the lease on key for owner. It fails with ErrLeaseHeld if another owner
// holds it; if owner already holds it (a worker re-attaching after a redelivery) the
// lease is renewed and returned. key may be any string, e.g. "vc-east/vm-42".
func (l *Leases) Acquire(ctx context.Context, key, owner string) (*Lease, error) {
	if key == "" || owner == "" {
		return nil, errors.New("acquire lease: empty key or owner")
	}
	kk := leaseKVKey(key)
	now := time.Now().UTC()
	// Two rounds: the holder's lease can expire or be released between our Create and
	// our Get; the second Create then wins or meets a new holder.
	for range 2 {
		rev, err := kvCreate(ctx, l.kv, kk, leaseValue{Key: key, Owner: owner, AcquiredAt: now, RenewedAt: now})
		if err == nil {
			return &Lease{kv: l.kv, ttl: l.ttl, key: key, kvKey: kk, owner: owner, acquired: now, rev: rev}, nil
		}
		if !errors.Is(err, errKVExists) {
			return nil, fmt.Errorf("acquire lease %s: %w", key, err)
		}
		var cur leaseValue
		rev, err = kvGet(ctx, l.kv, kk, &cur)
		if errors.Is(err, errKVNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("acquire lease %s: %w", key, err)
		}
		if cur.Owner != owner {
			return nil, fmt.Errorf("acquire lease %s: %w: held by %s since %s", key, ErrLeaseHeld, cur.Owner, cur.AcquiredAt.Format(time.RFC3339))
		}
		lease := &Lease{kv: l.kv, ttl: l.ttl, key: key, kvKey: kk, owner: owner, acquired: cur.AcquiredAt, rev: rev}
		if err := lease.Renew(ctx); err != nil {
			if errors.Is(err, ErrLeaseLost) {
				continue
			}
			return nil, fmt.Errorf("acquire lease %s: %w", key, err)
		}
		return lease, nil
	}
	return nil, fmt.Errorf("acquire lease %s: %w: changing hands, try again", key, ErrLeaseHeld)
}

// Holder returns the current owner of key's lease, or "" if it is free.
func (l *Leases) Holder(ctx context.Context, key string) (string, error) {
	var cur leaseValue
	_, err := kvGet(ctx, l.kv, leaseKVKey(key), &cur)
	switch {
	case errors.Is(err, errKVNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("lease holder %s: %w", key, err)
	}
	return cur.Owner, nil
}

// Held lists the leases whose owner starts with ownerPrefix, by key (as the caller named
// it) to owner: what a worker of that name held when it stopped. The bucket holds only
// live leases (and those dying with its TTL), so this reads a few keys, not history.
func (l *Leases) Held(ctx context.Context, ownerPrefix string) (map[string]string, error) {
	keys, err := kvKeys(ctx, l.kv)
	if err != nil {
		return nil, fmt.Errorf("held leases: %w", err)
	}
	out := map[string]string{}
	for _, k := range keys {
		var cur leaseValue
		_, err := kvGet(ctx, l.kv, k, &cur)
		switch {
		case errors.Is(err, errKVNotFound):
			continue // released meanwhile
		case err != nil:
			return nil, fmt.Errorf("held leases: %w", err)
		}
		if strings.HasPrefix(cur.Owner, ownerPrefix) {
			out[cur.Key] = cur.Owner
		}
	}
	return out, nil
}

// Key is the key the lease was acquired for.
func (l *Lease) Key() string { return l.key }

// Owner is who holds the lease.
func (l *Lease) Owner() string { return l.owner }

// TTL is how long the lease survives without a renewal.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Renew extends the lease by the bucket TTL. ErrLeaseLost means it expired or someone
// else holds it now: stop working on the VM.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := leaseValue{Key: l.key, Owner: l.owner, AcquiredAt: l.acquired, RenewedAt: time.Now().UTC()}
	rev, err := kvUpdate(ctx, l.kv, l.kvKey, v, l.rev)
	switch {
	case errors.Is(err, errKVConflict) || errors.Is(err, errKVNotFound):
		return fmt.Errorf("renew lease %s: %w", l.key, ErrLeaseLost)
	case err != nil:
		return fmt.Errorf("renew lease %s: %w", l.key, err)
	}
	l.rev = rev
	return nil
}

// KeepAlive renews the lease every TTL/3 until ctx is done (returns nil) or the lease
// is lost (returns an error wrapping ErrLeaseLost). Run it next to the work the lease
// protects, and stop that work when KeepAlive returns an error. A failed renewal that
// is not a loss (NATS briefly unreachable) is retried at the next tick.
func (l *Lease) KeepAlive(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.Renew(ctx); errors.Is(err, ErrLeaseLost) {
				return err
			}
		}
	}
}

// Release gives the lease up, but only if it is still ours: a holder that lost its
// lease never deletes the new holder's. Returns ErrLeaseLost in that case.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.kv.Delete(ctx, l.kvKey, jetstream.LastRevision(l.rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("release lease %s: %w", l.key, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}

var plainLeaseKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// leaseKVKey turns any string into a valid KV key. Keys that already are valid stay
// readable for operators; others (VM names with spaces, say) are base64url-encoded
// under a "b64." prefix, which plain keys never get, so the two cannot collide.
func leaseKVKey(key string) string {
	if plainLeaseKey.MatchString(key) && !strings.HasPrefix(key, "b64.") &&
		!strings.HasPrefix(key, ".") && !strings.HasSuffix(key, ".") && !strings.Contains(key, "..") {
		return key
	}
	return "b64." + base64.RawURLEncoding.EncodeToString([]byte(key))
}
