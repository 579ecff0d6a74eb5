package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
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

// A claim that finds one resource full gives back every slot it took: the other
// resources stay free for other moves.
func TestFailedClaimGivesBackEverySlot(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	bus := newTestBus(t, BusConfig{LeaseTTL: 5 * time.Second})
	s := bus.Slots()
	if _, err := s.Acquire(ctx, "first", []Want{{"host/h1", 1}}); err != nil {
		t.Fatal(err)
	}
	wants := []Want{{"datastore/d1", 8}, {"host/h0", 2}, {"host/h1", 1}, {"vcenter/a", 128}, {"vcenter/b", 128}}
	if _, err := s.Acquire(ctx, "second", wants); !errors.Is(err, ErrSlotsBusy) {
		t.Fatalf("claim with host/h1 full: %v, want ErrSlotsBusy", err)
	}
	for _, w := range wants {
		want := 0
		if w.Key == "host/h1" {
			want = 1
		}
		if n, err := s.Count(ctx, w.Key); err != nil || n != want {
			t.Errorf("%s: %d holders (%v) after the failed claim, want %d", w.Key, n, err, want)
		}
	}
	c, err := s.Acquire(ctx, "third", []Want{{"datastore/d1", 8}, {"host/h0", 2}, {"vcenter/a", 128}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Keys(); len(got) != 3 {
		t.Fatalf("claim holds %v, want 3 resources", got)
	}
}

// BenchmarkSlotsAcquire is one claim of a move's slots as the worker makes it (two hosts,
// two datastores, two vCenters) and its release, on an embedded server that syncs every
// write to file storage.
func BenchmarkSlotsAcquire(b *testing.B) {
	ctx := testCtx(b, 5*time.Minute)
	bus := newTestBus(b, BusConfig{LeaseTTL: 30 * time.Second})
	s := bus.Slots()
	wants := []Want{{"host/src", 2}, {"host/dst", 2}, {"datastore/src", 8}, {"datastore/dst", 8}, {"vcenter/src", 128}, {"vcenter/dst", 128}}
	for i := 0; b.Loop(); i++ {
		c, err := s.Acquire(ctx, fmt.Sprintf("job-%d", i), wants)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// slotsStorage is where the slots bucket keeps its values.
func slotsStorage(ctx context.Context, t *testing.T, js jetstream.JetStream) jetstream.StorageType {
	t.Helper()
	st, err := js.Stream(ctx, "KV_"+BucketSlots)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config.Storage
}

// A claim's writes do not wait for the disk: the slots bucket is made in memory. One that
// an earlier version made on file is kept as it is, and the bus still starts on it.
func TestSlotsBucketStorage(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	t.Run("new bucket in memory", func(t *testing.T) {
		bus := newTestBus(t, BusConfig{})
		js, _ := jetstream.New(bus.nc)
		if got := slotsStorage(ctx, t, js); got != jetstream.MemoryStorage {
			t.Fatalf("slots bucket on %v, want memory", got)
		}
	})
	t.Run("file bucket of an earlier version kept", func(t *testing.T) {
		nc := connect(t, startEmbedded(t, t.TempDir()))
		js, _ := jetstream.New(nc)
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketSlots, History: 1, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		b, err := NewBus(ctx, nc, BusConfig{}, testLogger(t), prometheus.NewRegistry())
		if err != nil {
			t.Fatalf("NewBus over a file-stored slots bucket: %v", err)
		}
		if _, err := b.Slots().Acquire(ctx, "job-1", []Want{{"host/h1", 2}}); err != nil {
			t.Fatal(err)
		}
		if got := slotsStorage(ctx, t, js); got != jetstream.FileStorage {
			t.Fatalf("slots bucket on %v, want it kept on file", got)
		}
	})
}

// A restart of every NATS server loses the slots bucket, kept in memory; workers may not
// create buckets, so without the bot making it again no job could claim a slot (as
// TestFaultNATSServerRestart in cmd/xvmbot found). Deleting the bucket is what such a
// restart does to it; the bot's event loop makes it again, and claims work again.
func TestLostSlotsBucketIsCreatedAgain(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	bus := newTestBus(t, BusConfig{})
	js, _ := jetstream.New(bus.nc)
	if err := js.DeleteKeyValue(ctx, BucketSlots); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Slots().Acquire(ctx, "job-1", []Want{{"host/h1", 2}}); err == nil {
		t.Fatal("a claim succeeded with the slots bucket gone; the test cannot tell anything")
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bus.RunEvents(run, func(context.Context, Event) error { return nil }) }()
	eventually(ctx, t, "a claim once the bot made the slots bucket again", func() bool {
		c, err := bus.Slots().Acquire(ctx, "job-1", []Want{{"host/h1", 2}})
		if err == nil {
			_ = c.Release(ctx)
		}
		return err == nil
	})
	if got := slotsStorage(ctx, t, js); got != jetstream.MemoryStorage {
		t.Errorf("slots bucket made again on %v, want memory", got)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("RunEvents: %v", err)
	}
}
