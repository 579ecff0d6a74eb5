package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// cancelWatch returns a check, run on the keep-alive timer, that cancels the job's vCenter
// task once someone has asked for it (the bot sets CancelRequested on the job record).
func (w *Worker) cancelWatch(j events.Job, log *slog.Logger) func(context.Context) error {
	asked := false
	return func(ctx context.Context) error {
		if asked {
			return nil
		}
		cur, ok, err := w.records.Load(ctx, j.ID)
		if err != nil || !ok || !cur.CancelRequested || cur.TaskRef == "" {
			return err
		}
		log.Info("cancelling the vCenter task on request", "task", cur.TaskRef, "by", cur.CancelledBy)
		err = w.move.Cancel(ctx, cur.SourceVC, cur.TaskRef)
		switch {
		case err == nil:
			asked = true
		case unreachable(err):
			log.Warn("could not reach vCenter to cancel the task; asking again", "task", cur.TaskRef, "err", err)
		default:
			// vCenter cancels a relocation only while it can roll it back: past that, the
			// move finishes. Whoever cancelled must hear that it will.
			asked = true
			log.Warn("vCenter refused to cancel the task; it will finish", "task", cur.TaskRef, "err", err)
			var f *vcenter.Fault
			errors.As(err, &f)
			var said string
			switch {
			case f != nil && f.Kind == vcenter.KindTaskCancelled:
				log.Info("the vCenter task was already cancelled", "task", cur.TaskRef)
				return nil // its end is reported as a cancel
			case f != nil && f.Kind == vcenter.KindTaskEnded:
				said = fmt.Sprintf("%s: task %s had already ended when the cancel came; its outcome follows", j.VM, cur.TaskRef)
			case f != nil && (f.Kind == vcenter.KindNotCancelable || f.Kind == vcenter.KindInvalidState):
				said = fmt.Sprintf("%s: vCenter could not cancel task %s (the VM is already switching over to %s); the move will finish",
					j.VM, cur.TaskRef, j.TargetVC)
			case f != nil:
				said = fmt.Sprintf("%s: vCenter could not cancel task %s (vCenter answered %s); the move will finish", j.VM, cur.TaskRef, f.Kind)
			default:
				said = fmt.Sprintf("%s: vCenter could not cancel task %s (vCenter refused); the move will finish", j.VM, cur.TaskRef)
			}
			w.publish(ctx, log, w.event(j, events.EventProgress, said, 0))
		}
		return nil
	}
}

// unreachable reports whether err says vCenter did not answer at all (as opposed to an
// answer that refused).
func unreachable(err error) bool {
	var f *vcenter.Fault
	return errors.As(err, &f) && (f.Kind == vcenter.KindUnreachable || f.Kind == vcenter.KindCanceled)
}

// cancelledByVCenter reports whether err is a task that vCenter ended because of a cancel.
func cancelledByVCenter(err error) bool {
	var f *vcenter.Fault
	return errors.As(err, &f) && f.Kind == vcenter.KindRequestCanceled
}

// cancelled records and announces a job that stopped because someone cancelled it.
func (jr *jobRun) cancelled(ctx context.Context) error {
	w, j, log := jr.w, jr.j, jr.log
	jr.to(cancelled)
	if jr.rec.CancelledBy != "" {
		jr.rec.Error = "cancelled by " + jr.rec.CancelledBy
	}
	e := w.event(j, events.EventCancelled, jr.rec.Error, 0)
	jr.rec.Final = &e
	if err := w.records.Save(ctx, jr.rec); err != nil && !errors.Is(err, ErrCancelled) {
		log.Error("save cancelled job record", "err", err)
	}
	w.m.jobs.WithLabelValues(j.Direction, string(events.JobCancelled)).Inc()
	log.Info("job cancelled", "by", jr.rec.CancelledBy, "task", jr.rec.TaskRef)
	return w.publishFinal(ctx, log, e)
}
