package events

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"
)

func TestLeases(t *testing.T) {
	t.Parallel()
	// Two seconds, not one: on a loaded CI box (race detector, two cores) a renewal
	// round trip can take most of a second.
	const ttl = 2 * time.Second
	tb := newTestBus(t, BusConfig{LeaseTTL: ttl})
	ctx := testCtx(t, 30*time.Second)
	leases := tb.Leases()

	// VM names are free text; the key must still work.
	const key = "vc-east/web 01 (prod)"
	a, err := leases.Acquire(ctx, key, "worker-a")
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}

	t.Run("another owner is refused", func(t *testing.T) {
		_, err := leases.Acquire(ctx, key, "worker-b")
		if !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("err = %v, want ErrLeaseHeld", err)
		}
		if holder, _ := leases.Holder(ctx, key); holder != "worker-a" {
			t.Fatalf("Holder = %q, want worker-a", holder)
		}
	})

	t.Run("same owner re-acquires", func(t *testing.T) {
		again, err := leases.Acquire(ctx, key, "worker-a")
		if err != nil {
			t.Fatalf("re-acquire by the holder: %v", err)
		}
		a = again // the old handle's revision is stale now, as after a worker restart
	})

	t.Run("renewals keep it past the ttl", func(t *testing.T) {
		until := time.Now().Add(2 * ttl)
		for time.Now().Before(until) {
			if err := a.Renew(ctx); err != nil {
				t.Fatalf("Renew: %v", err)
			}
			if _, err := leases.Acquire(ctx, key, "worker-b"); !errors.Is(err, ErrLeaseHeld) {
				t.Fatalf("while renewed, other owner got err = %v, want ErrLeaseHeld", err)
			}
			time.Sleep(ttl / 4) // the renewal cadence under test, not a wait for a condition
		}
	})

	var b *Lease
	t.Run("expires without renewals", func(t *testing.T) {
		eventually(ctx, t, "lease to expire", func() bool {
			var err error
			b, err = leases.Acquire(ctx, key, "worker-b")
			return err == nil
		})
		if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("old holder Renew: err = %v, want ErrLeaseLost", err)
		}
	})

	t.Run("stale holder cannot release the new holder's lease", func(t *testing.T) {
		if err := a.Release(ctx); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale Release: err = %v, want ErrLeaseLost", err)
		}
		if holder, _ := leases.Holder(ctx, key); holder != "worker-b" {
			t.Fatalf("Holder = %q, want worker-b", holder)
		}
		if err := b.Release(ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if holder, _ := leases.Holder(ctx, key); holder != "" {
			t.Fatalf("Holder after release = %q, want none", holder)
		}
		if _, err := leases.Acquire(ctx, key, "worker-c"); err != nil {
			t.Fatalf("Acquire after release: %v", err)
		}
	})
}

func TestLeaseKeepAlive(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	tb := newTestBus(t, BusConfig{LeaseTTL: ttl})
	ctx := testCtx(t, 15*time.Second)
	l, err := tb.Leases().Acquire(ctx, "vc-west/db-01", "worker-a")
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.KeepAlive(kctx) }()

	deadline := time.Now().Add(2 * ttl)
	eventually(ctx, t, "two ttls to pass", func() bool {
		if _, err := tb.Leases().Acquire(ctx, "vc-west/db-01", "worker-b"); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("KeepAlive running, other owner got err = %v", err)
		}
		return time.Now().After(deadline)
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("KeepAlive after cancel = %v, want nil", err)
	}
}

func TestLeaseKVKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"vc-east/vm-42", "vc-east/vm-42"},
		{"web 01", "b64.d2ViIDAx"},
		{"b64.d2ViIDAx", "b64.YjY0LmQyVmlJREF4"}, // a plain key never looks encoded
		{"a..b", "b64.YS4uYg"},
	}
	for _, tt := range tests {
		if got := leaseKVKey(tt.in); got != tt.want {
			t.Errorf("leaseKVKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Held finds what a worker of one name holds, by the key its caller used (a VM name with
// spaces included), and nothing of another worker whose name starts alike.
func TestLeasesHeldByOneWorker(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 30*time.Second)
	leases := tb.Leases()
	if got, err := leases.Held(ctx, "w1/"); err != nil || len(got) != 0 {
		t.Fatalf("Held on an empty bucket = %v, %v", got, err)
	}
	for key, owner := range map[string]string{"vc-east.web 01": "w1/xvm-a-01", "vc-east.db-01": "w1/xvm-b-01", "vc-east.app-01": "w10/xvm-c-01"} {
		if _, err := leases.Acquire(ctx, key, owner); err != nil {
			t.Fatal(err)
		}
	}
	got, err := leases.Held(ctx, "w1/")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"vc-east.web 01": "w1/xvm-a-01", "vc-east.db-01": "w1/xvm-b-01"}
	if !maps.Equal(got, want) {
		t.Errorf("Held(w1/) = %v, want %v", got, want)
	}
}
