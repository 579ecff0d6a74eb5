package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// ErrSlotsBusy says a resource (host, datastore, vCenter) already runs as many moves as
// its limit allows; the job should wait and try again.
var ErrSlotsBusy = errors.New("no free slot")

// Want asks for one slot of a resource that allows at most Limit holders at once.
type Want struct {
	Key   string // e.g. "host/vc-west/host-17"; any string, stored encoded
	Limit int
}

// Slots counts concurrent holders per resource across every worker, with compare-and-swap
// on one KV key per resource, so limits hold however many worker processes share the
// work. A holder that dies stops renewing and its slots expire after the TTL.
type Slots struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// slotValue maps holder → expiry (unix nanoseconds).
type slotValue struct {
	Holders map[string]int64 `json:"holders"`
}

// Claim is a set of slots held together by one holder (a job).
type Claim struct {
	s      *Slots
	holder string
	keys   []string
	limits map[string]int // 0: held over the limit on purpose (Hold)

	mu       sync.Mutex
	released bool
}

// Acquire takes one slot of every resource in wants for holder, all or nothing: if any is
// full, the slots taken so far are given back and the error wraps ErrSlotsBusy and names
// the full resource. Acquiring again for the same holder refreshes its slots.
func (s *Slots) Acquire(ctx context.Context, holder string, wants []Want) (*Claim, error) {
	if holder == "" {
		return nil, errors.New("acquire slots: empty holder")
	}
	// A stable order keeps two jobs with overlapping resources from each holding half.
	sorted := slices.DeleteFunc(slices.Clone(wants), func(w Want) bool { return w.Limit <= 0 })
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	// Every resource is read at once first: a full one fails the claim before anything is
	// written (most tries of a job waiting in a wave find one full, and each write of a
	// shared key makes other workers' writes conflict), and what was read is the first
	// compare-and-swap of each take.
	reads := make([]slotRead, len(sorted))
	g, gctx := errgroup.WithContext(ctx)
	for i, w := range sorted {
		g.Go(func() error {
			var err error
			reads[i], err = s.read(gctx, w.Key)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	tight := make([]bool, len(sorted)) // down to its last free slot
	for i, w := range sorted {
		live := reads[i].value.live(now)
		if err := full(w, live, holder); err != nil {
			return nil, err
		}
		tight[i] = roomFor(w, live, holder) < 2
	}
	// A resource with room for two more holders or more is taken side by side with the
	// others: no claim can be left holding half of a contested set over it. Only those
	// down to their last free slot are taken one after another, in the stable order. Each
	// take is a compare-and-swap against the limit either way, so the limits hold
	// whatever the order; the order only keeps two claims from failing each other.
	errs := make([]error, len(sorted))
	taken := make([]bool, len(sorted))
	tryTake := func(i int) {
		errs[i] = s.take(ctx, sorted[i], holder, &reads[i])
		taken[i] = errs[i] == nil
	}
	var spare sync.WaitGroup
	for i := range sorted {
		if !tight[i] {
			spare.Go(func() { tryTake(i) })
		}
	}
	for i := range sorted {
		if tight[i] {
			if tryTake(i); errs[i] != nil {
				break
			}
		}
	}
	spare.Wait()
	c := &Claim{s: s, holder: holder, limits: map[string]int{}}
	for i, w := range sorted {
		if taken[i] {
			c.keys = append(c.keys, w.Key)
			c.limits[w.Key] = w.Limit
		}
	}
	if i := slices.IndexFunc(errs, func(err error) bool { return err != nil }); i >= 0 {
		_ = c.Release(context.WithoutCancel(ctx)) // what was taken, and only that
		return nil, errs[i]
	}
	return c, nil
}

// roomFor is how many more holders w's resource takes beside holders, not counting a
// slot holder has already.
func roomFor(w Want, holders map[string]int64, holder string) int {
	n := len(holders)
	if _, mine := holders[holder]; mine {
		n--
	}
	return w.Limit - n
}

// full says why holder cannot have one more slot of w's resource, or nil if it can.
func full(w Want, holders map[string]int64, holder string) error {
	if _, mine := holders[holder]; !mine && len(holders) >= w.Limit {
		return fmt.Errorf("%s runs %d of %d moves: %w", w.Key, len(holders), w.Limit, ErrSlotsBusy)
	}
	return nil
}

// Hold re-takes slots a holder had before (a worker re-attaching to a relocation that a
// crashed worker started): the move runs in vCenter whatever the limits say, so the slots
// are taken even over the limit, to keep others from starting on top of it.
func (s *Slots) Hold(ctx context.Context, holder string, keys []string) (*Claim, error) {
	c := &Claim{s: s, holder: holder, limits: map[string]int{}}
	for _, k := range keys {
		err := s.modify(ctx, k, nil, func(v *slotValue, now int64) error {
			v.Holders[holder] = now + s.ttl.Nanoseconds()
			return nil
		})
		if err != nil {
			_ = c.Release(context.WithoutCancel(ctx))
			return nil, err
		}
		c.keys = append(c.keys, k)
	}
	return c, nil
}

// Keys returns the resources the claim holds.
func (c *Claim) Keys() []string { return slices.Clone(c.keys) }

// Count returns how many live holders a resource has.
func (s *Slots) Count(ctx context.Context, key string) (int, error) {
	r, err := s.read(ctx, key)
	if err != nil {
		return 0, err
	}
	return len(r.value.live(time.Now().UnixNano())), nil
}

func (s *Slots) take(ctx context.Context, w Want, holder string, first *slotRead) error {
	return s.modify(ctx, w.Key, first, func(v *slotValue, now int64) error {
		if err := full(w, v.Holders, holder); err != nil {
			return err
		}
		v.Holders[holder] = now + s.ttl.Nanoseconds()
		return nil
	})
}

// slotRead is one read of a resource's key.
type slotRead struct {
	value   slotValue
	rev     uint64
	missing bool
}

func (s *Slots) read(ctx context.Context, key string) (slotRead, error) {
	var r slotRead
	var err error
	r.rev, err = kvGet(ctx, s.kv, leaseKVKey(key), &r.value)
	r.missing = errors.Is(err, errKVNotFound)
	if err != nil && !r.missing {
		return r, fmt.Errorf("slots %s: %w", key, err)
	}
	return r, nil
}

// live returns the holders whose slot has not expired at now.
func (v slotValue) live(now int64) map[string]int64 {
	live := map[string]int64{}
	for h, exp := range v.Holders {
		if exp > now {
			live[h] = exp
		}
	}
	return live
}

// modify applies fn to the live holders of key with compare-and-swap, retrying conflicts.
// first, if not nil, is a read of the key to try the first swap with.
func (s *Slots) modify(ctx context.Context, key string, first *slotRead, fn func(v *slotValue, now int64) error) error {
	kk := leaseKVKey(key)
	for attempt := 0; attempt < 100; attempt++ {
		var r slotRead
		if attempt == 0 && first != nil {
			r = *first
		} else {
			var err error
			if r, err = s.read(ctx, key); err != nil {
				return err
			}
		}
		v, rev, missing := r.value, r.rev, r.missing
		now := time.Now().UnixNano()
		v.Holders = v.live(now)
		if err := fn(&v, now); err != nil {
			return err
		}
		var err error
		if missing {
			_, err = kvCreate(ctx, s.kv, kk, v)
			if errors.Is(err, errKVExists) {
				continue
			}
		} else {
			_, err = kvUpdate(ctx, s.kv, kk, v, rev)
			if errors.Is(err, errKVConflict) || errors.Is(err, errKVNotFound) {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("slots %s: %w", key, err)
		}
		return nil
	}
	return fmt.Errorf("slots %s: too much contention: %w", key, ErrSlotsBusy)
}

// ErrSlotLost says a claim's slot lapsed (its holder stalled past the TTL) and was taken by
// another holder meanwhile: the limit is kept, so this claim no longer counts there.
var ErrSlotLost = errors.New("slot lapsed and was taken by another holder")

// Renew pushes the expiry of every slot of the claim one TTL ahead. A slot that lapsed is
// taken again only if the resource is still below its limit: a stalled holder that wakes
// up must not push a resource over its limit (ErrSlotLost then names it).
func (c *Claim) Renew(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return nil
	}
	var errs []error
	for _, k := range c.keys {
		limit := c.limits[k]
		err := c.s.modify(ctx, k, nil, func(v *slotValue, now int64) error {
			if _, held := v.Holders[c.holder]; !held && limit > 0 && len(v.Holders) >= limit {
				return fmt.Errorf("%s: %w", k, ErrSlotLost)
			}
			v.Holders[c.holder] = now + c.s.ttl.Nanoseconds()
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Release gives every slot of the claim back; calling it twice is harmless.
func (c *Claim) Release(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return nil
	}
	// All at once: jobs waiting for these slots try as soon as this returns.
	errs := make([]error, len(c.keys))
	var wg sync.WaitGroup
	for i, k := range c.keys {
		wg.Go(func() {
			errs[i] = c.s.modify(ctx, k, nil, func(v *slotValue, _ int64) error {
				delete(v.Holders, c.holder)
				return nil
			})
		})
	}
	wg.Wait()
	c.released = true
	return errors.Join(errs...)
}
