package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// resume continues a job a previous delivery started: it follows the recorded task, or
// finds the VM already moved, and starts a new relocation only when nothing runs and the
// approval still holds.
func (jr *jobRun) resume(ctx context.Context) error {
	w, j, log := jr.w, jr.j, jr.log
	jr.start = w.now()
	if jr.rec.TaskRef == "" && jr.rec.StartUnanswered {
		if err := jr.findUnanswered(ctx); err != nil {
			return jr.finish(ctx, err)
		}
	}
	if jr.rec.TaskRef != "" {
		log.Info("re-attaching to the vCenter task of an interrupted delivery", "task", jr.rec.TaskRef, "attempt", jr.rec.Attempts)
		w.publish(ctx, log, w.event(j, events.EventStarted, fmt.Sprintf("%s: following task %s after a restart", j.VM, jr.rec.TaskRef), 0))
		if jr.rec.Move != nil && jr.rec.Move.Unread {
			// Its worker stopped before it read where the VM was and its tags: the task
			// runs, so the source still has both.
			src := w.readSource(ctx, j, log)
			src.wait()
			jr.recordSource(ctx, src)
		}
		var claim Claim = noClaim{}
		if w.sched != nil && len(jr.rec.Slots) > 0 {
			if c, err := w.sched.Hold(ctx, j.ID, jr.rec.Slots); err != nil {
				log.Warn("could not hold the running move's slots again", "err", err)
			} else {
				claim = c
			}
		}
		defer w.release(ctx, claim, log)
		w.m.inFlight.Inc()
		stop := w.keepAlive(ctx, log, jr.d, jr.renew, claim.Renew, w.cancelWatch(j, log))
		// Its age counts from now: when the task started is vCenter's to say, and the
		// record's StartedAt may include time the job waited for slots.
		notRunning := w.m.running.add(j.ID, j, w.now())
		res, err := w.move.Watch(ctx, jr.rec.SourceVC, jr.rec.TaskRef, j.VM, jr.onProgress(ctx))
		notRunning()
		stop()
		w.m.inFlight.Dec()
		var f *vcenter.Fault
		if err != nil && errors.As(err, &f) && f.Kind == vcenter.KindManagedObjectNotFound {
			// vCenter forgot the task (restart, task history purged): fall through to
			// checking where the VM is.
			log.Warn("recorded task is gone from vCenter", "task", jr.rec.TaskRef)
		} else {
			var done success
			if err == nil {
				done, err = jr.afterMove(ctx, jr.rec.Move)
			}
			return jr.settle(ctx, ending{res: res, done: done, err: err})
		}
	}
	arrived, err := w.arrived(ctx, j)
	if err != nil {
		return jr.finish(ctx, fmt.Errorf("check where %s is: %w", j.VM, err))
	}
	if arrived {
		log.Info("vm already arrived in target after an interrupted delivery")
		done, err := jr.afterMove(ctx, jr.rec.Move)
		return jr.settle(ctx, ending{res: &vcenter.Result{VM: j.VM, TaskRef: jr.rec.TaskRef}, done: done, err: err})
	}
	// Nothing runs: a new relocation is started only if the approval still holds.
	if err := jr.admitted(ctx); err != nil {
		return ackRefused(err)
	}
	jr.rec.TaskRef, jr.rec.Move, jr.rec.Worker = "", nil, w.cfg.Name
	jr.to(nothingRuns)
	if err := w.records.Save(ctx, jr.rec); err != nil {
		return fmt.Errorf("save job record: %w: %w", err, events.ErrRetry)
	}
	return jr.run(ctx)
}

// arrived reports whether the VM is in the target vCenter and no longer in the source.
func (w *Worker) arrived(ctx context.Context, j events.Job) (bool, error) {
	inTarget, err := w.look.Locate(ctx, j.TargetVC, j.VM)
	if err != nil || !inTarget {
		return false, err
	}
	inSource, err := w.look.Locate(ctx, j.SourceVC, j.VM)
	return !inSource, err
}

// findUnanswered looks for the relocation a previous start may have begun without
// vCenter's answer reaching the worker (docs/vsphere-behaviours.md): found running, it
// is recorded as the job's task, to be followed rather than refused by vCenter with
// TaskInProgress at every new start.
func (jr *jobRun) findUnanswered(ctx context.Context) error {
	w, j, log := jr.w, jr.j, jr.log
	ref, err := w.move.RunningRelocation(ctx, j.SourceVC, j.VM)
	if err != nil {
		return fmt.Errorf("look for the relocation of %s whose start went unanswered: %w", j.VM, err)
	}
	jr.rec.StartUnanswered = false
	if ref == "" {
		log.Info("no relocation runs after the unanswered start")
		return nil
	}
	log.Warn("following the relocation whose start went unanswered", "task", ref)
	jr.rec.TaskRef = ref
	jr.to(started)
	jr.saveInsisting(ctx)
	return nil
}
