package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSlotsHoldLimitsAcrossHolders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus := newTestBus(t, BusConfig{LeaseTTL: 5 * time.Second})
	s := bus.Slots()

	// 30 holders race for a host that allows 2 and a datastore that allows 3: at no point
	// may more than 2 hold the host, and every holder gets its turn.
	var inHost, maxHost, done atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			holder := fmt.Sprintf("job-%02d", i)
			for ctx.Err() == nil {
				c, err := s.Acquire(ctx, holder, []Want{{"host/h1", 2}, {"ds/d1", 3}})
				if errors.Is(err, ErrSlotsBusy) {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				n := inHost.Add(1)
				for m := maxHost.Load(); n > m && !maxHost.CompareAndSwap(m, n); m = maxHost.Load() {
				}
				time.Sleep(10 * time.Millisecond)
				inHost.Add(-1)
				if err := c.Release(ctx); err != nil {
					t.Error(err)
				}
				done.Add(1)
				return
			}
		})
	}
	wg.Wait()
	if done.Load() != 30 {
		t.Fatalf("%d of 30 holders got their slots", done.Load())
	}
	if m := maxHost.Load(); m > 2 {
		t.Fatalf("%d held the host at once, limit 2", m)
	}
	if n, _ := s.Count(ctx, "host/h1"); n != 0 {
		t.Fatalf("%d holders left after every release", n)
	}
}

func TestSlotsAllOrNothingAndExpiry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus := newTestBus(t, BusConfig{LeaseTTL: time.Second})
	s := bus.Slots()
	if _, err := s.Acquire(ctx, "a", []Want{{"ds/full", 1}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Acquire(ctx, "b", []Want{{"host/free", 1}, {"ds/full", 1}})
	if !errors.Is(err, ErrSlotsBusy) {
		t.Fatalf("err = %v, want busy", err)
	}
	if n, _ := s.Count(ctx, "host/free"); n != 0 {
		t.Fatalf("a failed claim kept %d slot(s) of the free host", n)
	}
	// "a" dies without releasing: its slot expires after the TTL.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := s.Acquire(ctx, "b", []Want{{"host/free", 1}, {"ds/full", 1}})
		if err == nil {
			if err := c.Renew(ctx); err != nil {
				t.Fatal(err)
			}
			break
		}
		if !errors.Is(err, ErrSlotsBusy) || time.Now().After(deadline) {
			t.Fatalf("slot of a dead holder never freed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A claim that finds a resource full writes nothing at all, not even to the resources
// before it: waiting jobs try often during a wave, and every write of a shared key (the
// vCenters' above all) makes other workers' compare-and-swap conflict.
func TestSlotsBusyClaimWritesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus := newTestBus(t, BusConfig{LeaseTTL: 5 * time.Second})
	s := bus.Slots()
	if _, err := s.Acquire(ctx, "job-1", []Want{{"a/free", 5}, {"z/full", 1}}); err != nil {
		t.Fatal(err)
	}
	rev := func(key string) uint64 {
		t.Helper()
		e, err := s.kv.Get(ctx, leaseKVKey(key))
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision()
	}
	before := rev("a/free")
	_, err := s.Acquire(ctx, "job-2", []Want{{"a/free", 5}, {"z/full", 1}})
	if !errors.Is(err, ErrSlotsBusy) {
		t.Fatalf("second claim: %v, want ErrSlotsBusy", err)
	}
	if after := rev("a/free"); after != before {
		t.Fatalf("a busy claim wrote the free resource: revision %d → %d", before, after)
	}
	if n, _ := s.Count(ctx, "a/free"); n != 1 {
		t.Fatalf("a/free has %d holders, want 1", n)
	}
}
