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

// run starts a new relocation of the job's VM and follows it to its end. Every way to it
// has admitted the job first (admitted).
func (jr *jobRun) run(ctx context.Context) error {
	w, j, log := jr.w, jr.j, jr.log
	jr.start = w.now()
	w.m.inFlight.Inc()
	defer w.m.inFlight.Dec()

	wp, result := jr.candidatePlans(ctx)
	if wp == nil {
		return result
	}
	plan, claim, err := jr.claimSlots(ctx, wp)
	if errors.Is(err, ErrBusy) {
		return jr.waitForSlots(ctx, wp, err)
	}
	w.plans.done(j.ID)
	if err != nil {
		return jr.finish(ctx, err)
	}
	if plan != wp.plans[0] {
		log.Debug("moved to another host of the cluster: the planned one was full", "planned", wp.plans[0].Host, "host", plan.Host)
	}
	releaseSlots := sync.OnceFunc(func() { w.release(ctx, claim, log) })
	defer releaseSlots()
	jr.rec.Slots = claim.Keys()
	if cur, ok, err := w.records.Load(ctx, j.ID); err == nil && ok && cur.CancelRequested {
		jr.rec = cur
		return jr.cancelled(ctx)
	}
	// Said once the move has its slots: a job that waits for a free host is not started.
	// The event is written while vCenter is asked to start the task, and before anything
	// else is said of the job (its task, its progress, its end).
	say := w.event(j, events.EventStarted, fmt.Sprintf("%s: started (attempt %d)", j.VM, jr.rec.Attempts), 0)
	var saying sync.WaitGroup
	saying.Go(func() { w.publish(ctx, log, say) })
	said := sync.OnceFunc(saying.Wait)
	defer said()
	stop := w.keepAlive(ctx, log, jr.d, jr.renew, claim.Renew, w.cancelWatch(j, log))
	defer stop()
	taskRef, err := w.move.Start(ctx, plan, j.VM)
	if ref := jr.alreadyRelocating(ctx, err); ref != "" {
		taskRef, err = ref, nil
	}
	said()
	unanswered := errors.Is(err, vcenter.ErrStartUnanswered)
	if err != nil && !unanswered {
		return jr.finish(ctx, err) // nothing runs: nothing more to read
	}
	move := plannedMove(plan, j.VM)
	src := w.readSource(ctx, j, log)
	defer src.stop()
	if unanswered {
		// vCenter may run the move although it did not say so: whoever tries next looks
		// for it first, and finishes it as this worker would.
		jr.rec.StartUnanswered, jr.rec.Move = true, move
		src.wait()
		move.Unread = !src.into(move)
		return jr.finish(ctx, err)
	}
	jr.rec.StartUnanswered = false
	// From here on a relocation runs in vCenter whatever happens to this process: record
	// the task at once, so that whoever gets the job next follows it instead of starting
	// another, with where the plan puts the VM and the move marked unread while its
	// source is read; then record what was read.
	jr.rec.TaskRef, jr.rec.Move = taskRef, move
	move.Unread = true
	jr.to(started)
	jr.saveInsisting(ctx)
	log.Info("relocation started", "task", taskRef)
	src.wait()
	jr.recordSource(ctx, src)
	notRunning := w.m.running.add(j.ID, j, w.now())
	res, err := w.move.Watch(ctx, j.SourceVC, taskRef, j.VM, jr.onProgress(ctx))
	notRunning()
	if err == nil {
		// The task is over: its host and datastore can take the next move while this one
		// is verified and its metadata copied. (A lost watch keeps them: the task may run.)
		stop()
		releaseSlots()
	}
	var done success
	if err == nil {
		done, err = jr.afterMove(ctx, move)
	}
	return jr.settle(ctx, ending{res: res, done: done, err: err})
}

// alreadyRelocating returns the relocation vCenter runs for the job's VM when err, from
// starting one, is vCenter's TaskInProgress; "" otherwise. A worker that stopped (killed,
// or its lease lost) between vCenter starting its relocation and the task being recorded
// leaves a job that looks never started: the next worker's start is refused while the
// first move runs, and the job would end failed with the VM moved. The running task is
// followed instead, as after an unanswered start (findUnanswered); the move is verified
// against the approved placement when it ends, as every move is.
func (jr *jobRun) alreadyRelocating(ctx context.Context, err error) string {
	var f *vcenter.Fault
	if !errors.As(err, &f) || f.Kind != vcenter.KindTaskInProgress {
		return ""
	}
	ref, ferr := jr.w.move.RunningRelocation(ctx, jr.j.SourceVC, jr.j.VM)
	if ferr != nil || ref == "" {
		return ""
	}
	jr.log.Warn("the VM's relocation already runs in vCenter (started by an earlier attempt whose record was lost): following it", "task", ref)
	return ref
}

// saveInsisting stores the record of a started relocation. Without it a redelivery would
// not know the task, so a failed write is tried again for a while before it is given up
// (the next delivery then finds the move by where the VM is).
func (jr *jobRun) saveInsisting(ctx context.Context) {
	const attempts = 10
	err := retry(ctx, attempts, 200*time.Millisecond, func(ctx context.Context, attempt int) error {
		err := jr.w.records.Save(ctx, jr.rec)
		if err != nil && attempt < attempts && ctx.Err() == nil {
			jr.log.Warn("record the running task; trying again", "task", jr.rec.TaskRef, "err", err)
		}
		return err
	})
	if err != nil && ctx.Err() == nil {
		jr.log.Error("could not record the running task", "task", jr.rec.TaskRef, "err", err)
	}
}

// recordSource records what src read in the move of the job's running task.
func (jr *jobRun) recordSource(ctx context.Context, src *sourceRead) {
	if !src.into(jr.rec.Move) || ctx.Err() != nil {
		return
	}
	if err := jr.w.records.Save(ctx, jr.rec); err != nil {
		jr.log.Warn("record where the VM was and its tags", "err", err)
	}
}

// keepAlive renews the VM lease and the slots on a timer while a relocation runs: a task
// can sit at one percentage for minutes, and progress alone would let them lapse. The
// returned stop waits for the renewer to end.
func (w *Worker) keepAlive(ctx context.Context, log *slog.Logger, d events.Delivery, renews ...func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.RenewEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = d.InProgress()
				for _, r := range renews {
					if err := r(ctx); err != nil && ctx.Err() == nil {
						log.Warn("renew lease or slots", "err", err)
					}
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// onProgress passes a task's progress on as events, and keeps the delivery and the
// VM's lease alive on each step.
func (jr *jobRun) onProgress(ctx context.Context) vcenter.ProgressFunc {
	last := -1
	task := jr.rec.TaskRef // set before the watch; the callback runs in the watch's goroutine
	return func(pct int) {
		if pct == last {
			return
		}
		last = pct
		_ = jr.d.InProgress()
		if err := jr.renew(ctx); err != nil {
			jr.log.Warn("renew vm lease", "err", err)
		}
		e := jr.w.event(jr.j, events.EventProgress, "", pct)
		e.TaskRef = task // the bot names the task, for the vSphere Client
		jr.w.publish(ctx, jr.log, e)
	}
}
