package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// claimSlots takes the slots of one of the candidate plans: at once if one has room,
// else after holding on for HoldFor. It fails with an error wrapping ErrBusy when all
// stay full, or when the scheduler cannot be reached (nothing started: a wait, not a
// failure of the move).
func (jr *jobRun) claimSlots(ctx context.Context, wp *waitingPlans) (*vcenter.Plan, Claim, error) {
	w, j := jr.w, jr.j
	plan, claim, err := w.claimAny(ctx, j, wp)
	if errors.Is(err, ErrBusy) {
		plan, claim, err = jr.holdForSlots(ctx, wp)
	}
	if errors.Is(err, errScheduler) && ctx.Err() == nil {
		// The slots live in NATS, which may be electing a new leader: nothing started,
		// so this is a wait, not a failure of the move.
		jr.log.Warn("could not reach the scheduler's slots; trying again", "err", err)
		err = fmt.Errorf("%w: %w", err, ErrBusy)
	}
	return plan, claim, err
}

// waitForSlots hands a job whose slots are all taken back to the queue. Waiting for a
// free host or datastore is not an attempt, and nothing started: the next delivery starts
// afresh (no need to look for a running task) with the plans made now, while they are
// fresh.
func (jr *jobRun) waitForSlots(ctx context.Context, wp *waitingPlans, err error) error {
	w := jr.w
	w.plans.wait(jr.j.ID, wp, w.now(), w.cfg.PlanReuse)
	jr.rec.Attempts--
	jr.to(slotsFull)
	if serr := w.records.Save(ctx, jr.rec); serr != nil {
		jr.log.Warn("save job record", "err", serr)
	}
	jr.log.Debug("waiting for a free slot", "err", err)
	return events.RetryAfter(fmt.Errorf("%s waits: %w", jr.j.VM, err), w.cfg.WaitDelay)
}

// holdForSlots waits up to HoldFor for a full host or datastore to free up, and takes
// the slots when one does. Moves end all the time in a wave: this worker's own releases
// wake it at once, other workers' are seen by looking again every WaitDelay; going back
// to the queue instead would leave a freed slot idle until some job's retry came round.
func (jr *jobRun) holdForSlots(ctx context.Context, wp *waitingPlans) (*vcenter.Plan, Claim, error) {
	w := jr.w
	deadline := time.After(w.cfg.HoldFor)
	renewed := w.now()
	for {
		if w.now().Sub(renewed) >= w.cfg.RenewEvery {
			// The VM's lease must outlast the wait, as it outlasts a running move.
			if err := jr.renew(ctx); err != nil {
				jr.log.Warn("renew vm lease while waiting for a slot", "err", err)
			}
			renewed = w.now()
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-deadline:
			return nil, nil, fmt.Errorf("still full after %s: %w", w.cfg.HoldFor, ErrBusy)
		case <-w.freed.wait():
		case <-time.After(w.cfg.WaitDelay):
		}
		plan, claim, err := w.claimAny(ctx, jr.j, wp)
		if !errors.Is(err, ErrBusy) {
			return plan, claim, err
		}
	}
}

// claimAny takes the slots of the first candidate plan whose host and datastore have
// room; it fails with an error wrapping ErrBusy when none has. Footprints are read once
// per candidate and kept with the waiting plans.
func (w *Worker) claimAny(ctx context.Context, j events.Job, wp *waitingPlans) (*vcenter.Plan, Claim, error) {
	if w.sched == nil {
		return wp.plans[0], noClaim{}, nil
	}
	err := fmt.Errorf("no plan to try: %w", ErrBusy)
	for i, p := range wp.plans {
		if wp.fps[i] == nil {
			fp, ferr := w.plan.Footprint(ctx, p, j.VM)
			if ferr != nil {
				return nil, nil, ferr
			}
			wp.fps[i] = &fp
		}
		var c Claim
		c, err = w.sched.Acquire(ctx, j.ID, *wp.fps[i])
		if err == nil {
			return p, c, nil
		}
		if !errors.Is(err, ErrBusy) {
			return nil, nil, fmt.Errorf("%w: %w", errScheduler, err)
		}
	}
	return nil, nil, err
}

// release gives a claim's slots back, even during shutdown.
func (w *Worker) release(ctx context.Context, c Claim, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := c.Release(rctx); err != nil {
		log.Warn("release slots", "err", err)
	}
	w.freed.fire()
}

// noClaim is the claim of a worker without limits.
type noClaim struct{}

func (noClaim) Renew(context.Context) error   { return nil }
func (noClaim) Release(context.Context) error { return nil }
func (noClaim) Keys() []string                { return nil }

// signal wakes every goroutine waiting on it at the time it fires.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next fire.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
