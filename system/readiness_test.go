package system

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// manualClock is a clock the test moves.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func serveReadyz(t *testing.T, r *readiness) (int, ReadyReport) {
	t.Helper()
	rec := httptest.NewRecorder()
	opsHandler(prometheus.NewRegistry(), r).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var rep ReadyReport
	if err := json.NewDecoder(rec.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rec.Code, rep
}

// /readyz answers from the last round: asking it runs no probe; it is unready until the
// critical probe has answered ok, says how old each state is, and tells a critical
// failure (down, 503) from a degraded dependency (200).
func TestReadinessAnswersFromLastRound(t *testing.T) {
	var natsCalls, vcCalls atomic.Int64
	var natsErr, vcErr atomic.Pointer[error]
	check := func(calls *atomic.Int64, e *atomic.Pointer[error]) func(context.Context) error {
		return func(context.Context) error {
			calls.Add(1)
			if p := e.Load(); p != nil {
				return *p
			}
			return nil
		}
	}
	r := newReadiness([]probe{
		{name: "nats", critical: true, check: check(&natsCalls, &natsErr)},
		{name: "vcenter:vc-a", check: check(&vcCalls, &vcErr)},
	})
	clock := &manualClock{t: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}
	r.now = clock.now

	code, rep := serveReadyz(t, r)
	if code != http.StatusServiceUnavailable || rep.Ready || rep.Checks["nats"] != "pending: not checked yet" {
		t.Errorf("before any round: %d %+v, want 503 with nats pending", code, rep)
	}

	r.round(context.Background())
	clock.advance(7 * time.Second)
	for range 50 {
		if code, rep = serveReadyz(t, r); code != http.StatusOK || !rep.Ready {
			t.Fatalf("after a good round: %d %+v", code, rep)
		}
	}
	if natsCalls.Load() != 1 || vcCalls.Load() != 1 {
		t.Errorf("50 /readyz calls ran the probes %d and %d times; only the round may run them", natsCalls.Load(), vcCalls.Load())
	}
	if rep.AgeSeconds["nats"] != 7 || rep.AgeSeconds["vcenter:vc-a"] != 7 {
		t.Errorf("ages %v, want 7s for each check", rep.AgeSeconds)
	}

	refused := error(errors.New("login on vc-a: refused"))
	vcErr.Store(&refused)
	r.round(context.Background())
	if code, rep = serveReadyz(t, r); code != http.StatusOK || !rep.Ready || rep.Checks["vcenter:vc-a"] != "degraded: login on vc-a: refused" {
		t.Errorf("vCenter failing: %d %+v, want 200 with vc-a degraded", code, rep)
	}
	gone := error(errors.New("not connected"))
	natsErr.Store(&gone)
	r.round(context.Background())
	if code, rep = serveReadyz(t, r); code != http.StatusServiceUnavailable || rep.Ready || rep.Checks["nats"] != "down: not connected" {
		t.Errorf("NATS failing: %d %+v, want 503 with nats down", code, rep)
	}
	if rep.AgeSeconds["nats"] != 0 {
		t.Errorf("age of a state just refreshed = %v, want 0", rep.AgeSeconds["nats"])
	}
}

// A round runs the probes in parallel and records each answer as it comes: while one
// vCenter hangs, the others and /readyz answer; the hanging one is cut at the timeout.
func TestReadinessProbesInParallelWithinTimeout(t *testing.T) {
	release := make(chan struct{})
	r := newReadiness([]probe{
		{name: "nats", critical: true, check: func(context.Context) error { return nil }},
		{name: "vcenter:stuck", check: func(ctx context.Context) error {
			select {
			case <-release:
				return errors.New("released")
			case <-ctx.Done():
				return ctx.Err()
			}
		}},
	})
	r.timeout = time.Hour
	done := make(chan struct{})
	go func() { r.round(context.Background()); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		code, rep := serveReadyz(t, r)
		if code == http.StatusOK && rep.Checks["nats"] == "ok" {
			if rep.Checks["vcenter:stuck"] != "pending: not checked yet" {
				t.Errorf("stuck probe = %q while it hangs, want pending", rep.Checks["vcenter:stuck"])
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nats never answered while another probe hung: %d %+v", code, rep)
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(release)
	<-done

	// The same probe, never released: the round ends at the timeout and says so.
	r2 := newReadiness([]probe{{name: "vcenter:stuck", check: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}}})
	r2.timeout = 20 * time.Millisecond
	r2.round(context.Background())
	if _, rep := serveReadyz(t, r2); !strings.HasPrefix(rep.Checks["vcenter:stuck"], "degraded: no answer within 20ms") {
		t.Errorf("hung probe = %q, want degraded: no answer within 20ms", rep.Checks["vcenter:stuck"])
	}
}
