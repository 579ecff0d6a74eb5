package vcenter

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// planFlights coalesces identical pre-flights: when a plan of a spec is asked for while
// another of the same spec is being resolved, as when several people type the same
// command or a wave's workers plan one request at once, the later callers wait for
// the first one's resolution instead of reading both vCenters again.
type planFlights struct {
	mu    sync.Mutex
	byKey map[string]*planFlight
}

// planFlight is one resolution in progress and, once done is closed, its result.
type planFlight struct {
	done    chan struct{}
	plan    *Plan
	err     error
	waiters int
}

// do returns resolve's plan for key, resolving it unless a resolution of key is in
// flight, in which case it waits for that one (counting the wait in coalesced). When a
// plan was shared, each caller gets a copy of its own. A caller whose context ends
// stops waiting; one whose resolution failed only because the first caller's context
// ended resolves again.
func (pf *planFlights) do(ctx context.Context, key string, coalesced prometheus.Counter, resolve func(context.Context) (*Plan, error)) (*Plan, error) {
	for {
		pf.mu.Lock()
		if f, ok := pf.byKey[key]; ok {
			f.waiters++
			pf.mu.Unlock()
			coalesced.Inc()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-f.done:
			}
			if f.err != nil && isContextError(f.err) && ctx.Err() == nil {
				continue // the first caller gave up, not the vCenters
			}
			if f.err != nil {
				return nil, f.err
			}
			return f.plan.clone(), nil
		}
		f := &planFlight{done: make(chan struct{})}
		if pf.byKey == nil {
			pf.byKey = map[string]*planFlight{}
		}
		pf.byKey[key] = f
		pf.mu.Unlock()

		shared := false
		func() {
			// Waiters are let go whatever happens, a panic included (they see errPlanAbandoned).
			defer func() {
				pf.mu.Lock()
				delete(pf.byKey, key)
				shared = f.waiters > 0
				pf.mu.Unlock()
				close(f.done)
			}()
			f.err = errPlanAbandoned
			f.plan, f.err = resolve(ctx)
		}()
		if shared && f.err == nil {
			return f.plan.clone(), nil
		}
		return f.plan, f.err
	}
}

// errPlanAbandoned is what waiters get when the resolution they waited for ended
// without a result.
var errPlanAbandoned = errors.New("the pre-flight this one waited for ended without a result")

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
