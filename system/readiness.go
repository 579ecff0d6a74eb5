package system

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// How readiness is refreshed: a round probes every dependency at once, each within
// probeTimeout, and the next round starts readyEvery after the last one ended, so a
// dependency that hangs delays its own answer and never piles rounds up.
const (
	readyEvery   = 10 * time.Second
	probeTimeout = 5 * time.Second
)

// probe is one named dependency /readyz reports on.
type probe struct {
	name  string
	check func(ctx context.Context) error
	// critical dependencies make /readyz fail; the others only show as degraded.
	critical bool
}

// probeResult is what the last run of a probe found, and when.
type probeResult struct {
	err error
	at  time.Time
}

// readiness keeps the last result of every probe, refreshed in the background by Run.
// /readyz reads it and never probes itself: an unauthenticated GET, repeated by every
// load balancer and kubelet, must neither wait on a slow vCenter nor make xvmbot log in
// to one (a wrong password would lock the service account after a few probes).
type readiness struct {
	probes  []probe
	every   time.Duration
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	results map[string]probeResult
}

func newReadiness(probes []probe) *readiness {
	return &readiness{probes: probes, every: readyEvery, timeout: probeTimeout, now: time.Now,
		results: map[string]probeResult{}}
}

// Run probes every dependency now and then every r.every, until ctx ends.
func (r *readiness) Run(ctx context.Context) error {
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-next.C:
		}
		r.round(ctx)
		next.Reset(r.every)
	}
}

// round runs every probe in parallel, each bounded by r.timeout, and records each
// result as soon as it is known: a fast NATS check does not wait for a slow vCenter.
func (r *readiness) round(ctx context.Context) {
	var g errgroup.Group
	for _, p := range r.probes {
		g.Go(func() error {
			pctx, cancel := context.WithTimeout(ctx, r.timeout)
			defer cancel()
			err := p.check(pctx)
			if ctx.Err() != nil {
				return nil // shutting down: the last real answer stands
			}
			if err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("no answer within %s", r.timeout)
			}
			r.mu.Lock()
			r.results[p.name] = probeResult{err: err, at: r.now()}
			r.mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
}

// ReadyReport is the body of /readyz.
type ReadyReport struct {
	Ready bool `json:"ready"`
	// Checks says "ok", "degraded: why" (not critical), "down: why" (critical) or
	// "pending: not checked yet" for each dependency.
	Checks map[string]string `json:"checks"`
	// AgeSeconds is how old each check's state is: the time since its probe answered.
	// A pending check has none.
	AgeSeconds map[string]float64 `json:"age_seconds"`
}

// report is readiness as last seen: ready when every critical probe has answered ok.
func (r *readiness) report() ReadyReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	rep := ReadyReport{Ready: true, Checks: map[string]string{}, AgeSeconds: map[string]float64{}}
	for _, p := range r.probes {
		res, ok := r.results[p.name]
		switch {
		case !ok:
			rep.Checks[p.name] = "pending: not checked yet"
			rep.Ready = rep.Ready && !p.critical
			continue
		case res.err == nil:
			rep.Checks[p.name] = "ok"
		case p.critical:
			rep.Checks[p.name] = "down: " + res.err.Error()
			rep.Ready = false
		default:
			rep.Checks[p.name] = "degraded: " + res.err.Error()
		}
		rep.AgeSeconds[p.name] = math.Round(now.Sub(res.at).Seconds()*1000) / 1000
	}
	return rep
}
