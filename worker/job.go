package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// jobRun is one delivery of a job: what its phases (admit, plan, take slots, run, verify,
// finish) share.
type jobRun struct {
	w     *Worker
	j     events.Job
	g     *approvals.Grant // set once the job's grant verified
	read  *admissionRead   // what admission read of the request, once it was admitted
	early *earlyRecheck    // the recheck of g's placement, once admitted under g (nil: none)
	d     events.Delivery
	rec   events.JobRecord            // the job's record as this delivery will store it
	renew func(context.Context) error // keeps the VM's lease
	log   *slog.Logger
	start time.Time // of the attempt, for its duration (zero: nothing was attempted)
}

// to moves the record along the state machine (state.go) on outcome o.
func (jr *jobRun) to(o outcome) {
	s, err := next(jr.rec.State, o)
	if err != nil {
		jr.log.Error("job state not changed", "err", err)
	}
	jr.rec.State, jr.rec.UpdatedAt = s, jr.w.now()
}

// elapsed is how long the attempt has taken.
func (jr *jobRun) elapsed() time.Duration {
	if jr.start.IsZero() {
		return 0
	}
	return jr.w.now().Sub(jr.start)
}

// handle is a delivery from its arrival until it is claimed: the grant, the record, the
// VM's lease and the change window decide whether, and how, it goes on.
func (jr *jobRun) handle(ctx context.Context) error {
	w, j, log := jr.w, jr.j, jr.log
	// Nothing is read or locked for a job whose approval does not verify: a forged job must
	// not even hold up the real one.
	g, err := checkJob(w.cfg.Trust, j)
	if err != nil {
		return jr.refuse(ctx, err)
	}
	rec, seen, err := w.records.Load(ctx, j.ID)
	if err != nil {
		return fmt.Errorf("load job record %s: %w", j.ID, events.ErrRetry)
	}
	if !seen || rec.State == "" {
		rec.State = events.JobQueued
	}
	switch {
	case rec.State == events.JobCancelled:
		log.Info("job was cancelled; nothing to run", "by", rec.CancelledBy)
		return w.announceFinal(ctx, j, rec)
	case rec.State == events.JobWaiting && rec.CancelRequested:
		// Cancelled while it waited for a slot: nothing ever ran.
		w.plans.done(j.ID)
		jr.rec = rec
		return jr.cancelled(ctx)
	case rec.State.Terminal():
		// Finished before: the final event may not have reached the bus if the previous
		// worker died right after recording it, so send it again (same id: stored once).
		log.Info("job already finished, re-announcing", "state", rec.State)
		return w.announceFinal(ctx, j, rec)
	}

	// What admitting a new attempt needs is read from the request while the lease is taken.
	// So is the recheck of the grant's approved placement, when one will be needed: its
	// vCenter reads are the longest part of starting a move on another process than the
	// bot's.
	var (
		adm   *admissionRead
		early *earlyRecheck
	)
	if !resumes(rec.State) {
		adm = w.readAdmission(ctx, g)
		defer adm.wait() // every way out waits for the read
		early = w.recheckEarly(ctx, j, g)
		defer early.stop()
	}

	// The lease is the job's, not the worker's: one worker runs several jobs at once, and
	// two jobs for the same VM from the same vCenter (two requests for it) must not both
	// run.
	// A redelivery of the same job to a worker of the same name takes it back at once.
	renew, release, err := w.locks.Lock(ctx, leaseKey(j), w.cfg.Name+"/"+j.ID)
	if errors.Is(err, ErrBusy) {
		log.Info("vm lease held by another job, retrying later")
		return fmt.Errorf("%w: %w", err, events.ErrRetry)
	}
	if err != nil {
		return fmt.Errorf("lease for %s: %w: %w", j.VM, err, events.ErrRetry)
	}
	defer func() {
		// The lease must go even when ctx is cancelled (shutdown), or the next worker
		// would wait a whole lease TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			log.Warn("release lease", "err", err)
		}
	}()
	jr.renew = renew

	// A previous delivery that got this far (its worker died, or vCenter stopped
	// answering) must never lead to a second relocation started blindly: follow the
	// recorded task, or see whether the VM already arrived.
	resuming := resumes(rec.State)
	if !resuming {
		if wait, err := w.outsideWindow(ctx, j, log); wait {
			return err
		}
	}
	jr.g = g
	if resuming {
		jr.rec = rec
	} else {
		jr.rec = events.JobRecord{JobID: j.ID, State: rec.State, SourceVC: j.SourceVC, Attempts: rec.Attempts}
		// Checked before the job's record claims it: a refused job leaves nothing behind.
		if err := jr.admittedBy(ctx, adm); err != nil {
			return ackRefused(err) // and the early recheck, if any, is dropped
		}
		jr.early = early // admitted under g, the grant it rechecks
		jr.to(claimed)
	}
	jr.rec.Attempts++
	jr.rec.Worker, jr.rec.Delivery, jr.rec.UpdatedAt = w.cfg.Name, jr.d.Token(), w.now()
	if err := jr.claim(ctx, seen); errors.Is(err, ErrCancelled) {
		return w.announceFinal(ctx, j, events.JobRecord{JobID: j.ID, State: events.JobCancelled, Error: "cancelled before it started"})
	} else if err != nil {
		return fmt.Errorf("save job record: %w: %w", err, events.ErrRetry)
	}
	if resuming {
		return jr.resume(ctx)
	}
	return jr.run(ctx)
}

// recordCreator stores a job's first record in one write (NATSRecords.Create).
type recordCreator interface {
	Create(ctx context.Context, rec events.JobRecord) error
}

// claim stores the record of this attempt. A job that had no record when it was loaded
// gets its first one with a single create, where a save reads the record first; if one
// appeared meanwhile (the bot cancelled the job), it is saved over as usual.
func (jr *jobRun) claim(ctx context.Context, seen bool) error {
	if c, ok := jr.w.records.(recordCreator); ok && !seen {
		if err := c.Create(ctx, jr.rec); !errors.Is(err, ErrBusy) {
			return err
		}
	}
	return jr.w.records.Save(ctx, jr.rec)
}

func leaseKey(j events.Job) string { return j.SourceVC + "." + j.VM }
