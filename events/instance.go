package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNameInUse: another running process holds the instance name.
var ErrNameInUse = errors.New("the name is in use by another running process")

// A worker's name is its identity: a worker started again under its own name takes back
// at once the jobs its previous run left (their leases are held in that name). Two
// running workers under one name would each take the other's jobs. ClaimName makes that
// a refusal at start: the name is a lease of its own (the key "instance/<name>"), renewed
// by the running process; a process that finds it held waits long enough for a live
// holder to renew it, and is refused if it was renewed, or takes it over if not (the
// holder was this process's own previous run, killed).

// nameRenewalsMissed is how many renewal periods without a renewal mark a name's holder
// dead.
const nameRenewalsMissed = 3

// ClaimName takes name for this run of a process (boot tells its runs apart), which then
// renews it every `every` (NameLease.Renew) and releases it when it stops. It fails with
// an error wrapping ErrNameInUse when a holder renews the name while this waits to see,
// at most nameRenewalsMissed renewal periods.
func (l *Leases) ClaimName(ctx context.Context, name, boot string, every time.Duration) (*Lease, error) {
	key, owner := "instance/"+name, name+"@"+boot
	for range 2 {
		lease, err := l.Acquire(ctx, key, owner)
		if !errors.Is(err, ErrLeaseHeld) {
			return lease, err
		}
		kk := leaseKVKey(key)
		var cur leaseValue
		rev, err := kvGet(ctx, l.kv, kk, &cur)
		if errors.Is(err, errKVNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("claim name %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(nameRenewalsMissed * every):
		}
		var now leaseValue
		nowRev, err := kvGet(ctx, l.kv, kk, &now)
		switch {
		case errors.Is(err, errKVNotFound):
			continue
		case err != nil:
			return nil, fmt.Errorf("claim name %s: %w", name, err)
		case nowRev != rev:
			return nil, fmt.Errorf("claim name %s: %w: held by %s since %s, renewed %s ago",
				name, ErrNameInUse, now.Owner, now.AcquiredAt.Format(time.RFC3339), time.Since(now.RenewedAt).Round(time.Second))
		}
		// Not renewed: its holder is gone. Take it over, unless it changed meanwhile.
		err = l.kv.Delete(ctx, kk, jetstream.LastRevision(rev))
		switch {
		case err == nil, errors.Is(err, jetstream.ErrKeyNotFound),
			errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists):
			// Taken over, or changed meanwhile: the next Acquire says which.
		default:
			return nil, fmt.Errorf("claim name %s: take it over from %s: %w", name, cur.Owner, err)
		}
	}
	return nil, fmt.Errorf("claim name %s: %w: changing hands, try again", name, ErrNameInUse)
}
