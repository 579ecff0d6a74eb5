package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"time"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// Steps of a failure the worker itself detects, next to vcenter's Step constants.
const (
	stepPreflight = "pre-flight"
	stepVerify    = "verify"
)

// ending is how an attempt ended: the watched task's result and what verifying the move
// added, or the error that ended it.
type ending struct {
	res  *vcenter.Result
	done success
	err  error
}

// finish settles a job after an attempt that ended in err.
func (jr *jobRun) finish(ctx context.Context, err error) error {
	return jr.settle(ctx, ending{err: err})
}

// settle ends an attempt: success, a retry later, a cancel, or a reported failure.
func (jr *jobRun) settle(ctx context.Context, e ending) error {
	w, j, log := jr.w, jr.j, jr.log
	if ctx.Err() != nil {
		// Shutting down: leave the job unacknowledged and the record as it is so the next
		// worker follows the task (or re-checks where the VM is) instead of starting over.
		log.Info("worker stopping mid-job; the job will be redelivered", "task", jr.rec.TaskRef)
		return ctx.Err()
	}
	if e.err != nil {
		// Cancelled means vCenter stopped the task because someone asked: a move that
		// failed for another reason while a cancel was pending failed, and says why.
		if cur, ok, lerr := w.records.Load(ctx, j.ID); lerr == nil && ok && cur.CancelRequested &&
			(jr.rec.TaskRef == "" || cancelledByVCenter(e.err)) {
			cur.TaskRef = jr.rec.TaskRef
			jr.rec = cur
			return jr.cancelled(ctx)
		}
		return jr.fail(ctx, e.err, e.done.origin)
	}
	if e.res.TaskRef != "" {
		jr.rec.TaskRef = e.res.TaskRef
	}
	dur := jr.elapsed()
	ev := w.event(j, events.EventSucceeded, fmt.Sprintf("%s now runs in %s", j.VM, j.TargetVC), 100)
	ev.Duration, ev.TaskRef, ev.Origin, ev.Warning = dur.Seconds(), jr.rec.TaskRef, e.done.origin, e.done.note
	jr.rec.Error, jr.rec.Final = "", &ev
	jr.to(moved)
	if err := w.records.Save(ctx, jr.rec); err != nil {
		log.Error("save succeeded job record", "err", err)
	}
	w.m.jobs.WithLabelValues(j.Direction, string(events.JobSucceeded)).Inc()
	w.m.duration.WithLabelValues(j.Direction).Observe(dur.Seconds())
	log.Info("vm moved", "duration", dur.Round(time.Millisecond).String(), "task", jr.rec.TaskRef)
	return w.publishFinal(ctx, log, ev)
}

// fail reports a failed attempt: a retry later, or a failure. origin is set when the VM
// moved although the job failed (not as approved): undo can take it back.
func (jr *jobRun) fail(ctx context.Context, err error, origin *move.Origin) error {
	w, j, log := jr.w, jr.j, jr.log
	var f *vcenter.Fault
	kind, msg, hint, step := vcenter.KindError, err.Error(), "", ""
	if errors.As(err, &f) {
		kind, msg, hint, step = f.Kind, f.Message, f.Hint, f.Step
	}
	var tpe *vcenter.ThumbprintError
	if errors.As(err, &tpe) {
		kind, msg = vcenter.KindThumbprintMismatch, tpe.Error()
		hint = fmt.Sprintf("if %s's certificate was replaced on purpose, update vcenters[%s].thumbprint in the worker's config", tpe.VCenter, tpe.VCenter)
	}
	if jr.rec.TaskRef != "" && f != nil && f.Step == vcenter.StepWatch && vcenter.IsRetryable(err) {
		// The task was started and only watching it failed (vCenter unreachable): its
		// outcome is unknown, not failed. Keep following it, however long the outage,
		// without spending the job's attempts.
		jr.rec.Attempts = max(jr.rec.Attempts-1, 0)
		jr.to(lostSight)
		if serr := w.records.Save(ctx, jr.rec); serr != nil {
			log.Warn("save job record", "err", serr)
		}
		log.Warn("lost sight of the running task; will follow it again", "task", jr.rec.TaskRef, "err", err)
		w.publish(ctx, log, w.event(j, events.EventProgress, fmt.Sprintf("%s: %s — the move goes on in vCenter; following task %s again",
			j.VM, msg, jr.rec.TaskRef), 0))
		return events.RetryAfter(fmt.Errorf("%s: %w", j.VM, err), watchRetryDelay)
	}
	if vcenter.IsRetryable(err) && jr.rec.Attempts < w.cfg.MaxAttempts {
		if jr.rec.TaskRef != "" && f != nil && f.Step == vcenter.StepRelocate {
			// The task itself ended in a fault worth retrying (a network copy that broke
			// off, a host that stopped answering): vCenter rolled it back. The next try
			// is a new relocation, after checking where the VM is, not another look at
			// the failed task.
			jr.rec.TaskRef, jr.rec.Slots, jr.rec.Move = "", nil, nil
			jr.to(nothingRuns)
			if serr := w.records.Save(ctx, jr.rec); serr != nil {
				return fmt.Errorf("save job record: %w: %w", serr, events.ErrRetry)
			}
		} else {
			jr.to(retried)
			if jr.rec.StartUnanswered {
				// The next delivery must know to look for the move before starting one.
				if serr := w.records.Save(ctx, jr.rec); serr != nil {
					return fmt.Errorf("save job record: %w: %w", serr, events.ErrRetry)
				}
			}
		}
		log.Warn("retryable fault, will retry", "fault", kind, "attempt", jr.rec.Attempts, "err", err)
		w.publish(ctx, log, w.event(j, events.EventProgress, fmt.Sprintf("%s: %s — retrying (attempt %d of %d)", j.VM, msg, jr.rec.Attempts, w.cfg.MaxAttempts), 0))
		return fmt.Errorf("%s: %w: %w", j.VM, err, events.ErrRetry)
	}
	if hint == "" {
		hint = fmt.Sprintf("the worker's log has the details (job_id=%s); once the cause is fixed, ask for the move again", j.ID)
	}
	dur := jr.elapsed()
	e := w.event(j, events.EventFailed, msg, 0)
	e.Step, e.Fault, e.Error, e.Hint, e.Duration, e.Origin = stepWords(step, jr.rec.TaskRef), string(kind), msg, hint, dur.Seconds(), origin
	e.TaskRef = jr.rec.TaskRef
	if f != nil && f.Detail != "" {
		// The message stays in plain words; the raw error is there for /xvm status.
		e.Error = msg + ": " + f.Detail
	}
	jr.rec.Error, jr.rec.Final = msg, &e
	jr.to(failed)
	if serr := w.records.Save(ctx, jr.rec); serr != nil {
		log.Error("save failed job record", "err", serr)
	}
	w.m.jobs.WithLabelValues(j.Direction, string(events.JobFailed)).Inc()
	w.m.duration.WithLabelValues(j.Direction).Observe(dur.Seconds())
	log.Error("vm move failed", "fault", kind, "step", e.Step, "attempts", jr.rec.Attempts, "err", err)
	if perr := w.publishFinal(ctx, log, e); perr != nil {
		return perr
	}
	return fmt.Errorf("move %s: %w", j.VM, err)
}

// stepWords says in words where a move failed, from a fault's step.
func stepWords(step, taskRef string) string {
	switch step {
	case vcenter.StepLogin:
		return "logging in to vCenter"
	case vcenter.StepResolve:
		return "planning the move"
	case stepPreflight:
		return "pre-flight checks at start"
	case vcenter.StepRelocate:
		if taskRef != "" {
			return "relocation task " + taskRef
		}
		return "starting the relocation"
	case vcenter.StepWatch:
		return "following the relocation task"
	case stepVerify:
		return "verifying the placement after the move"
	}
	return "running the job"
}

// announceFinal publishes again the outcome of a job that ended before this delivery.
func (w *Worker) announceFinal(ctx context.Context, j events.Job, rec events.JobRecord) error {
	if rec.Final != nil {
		// As first published, with its origin, warning, step and hint.
		if err := w.bus.PublishEvent(ctx, *rec.Final); err != nil {
			return fmt.Errorf("publish %s event: %w: %w", rec.Final.Type, err, events.ErrRetry)
		}
		return nil
	}
	var e events.Event
	switch rec.State {
	case events.JobSucceeded:
		e = w.event(j, events.EventSucceeded, fmt.Sprintf("%s now runs in %s", j.VM, j.TargetVC), 100)
		e.TaskRef = rec.TaskRef
	case events.JobCancelled:
		msg := rec.Error
		if msg == "" {
			msg = string(events.JobCancelled)
			if rec.CancelledBy != "" {
				msg = "cancelled by " + rec.CancelledBy
			}
		}
		e = w.event(j, events.EventCancelled, msg, 0)
	default:
		e = w.event(j, events.EventFailed, rec.Error, 0)
		e.Error = rec.Error
	}
	if err := w.bus.PublishEvent(ctx, e); err != nil {
		return fmt.Errorf("publish %s event: %w: %w", e.Type, err, events.ErrRetry)
	}
	return nil
}

func (w *Worker) event(j events.Job, t events.EventType, msg string, pct int) events.Event {
	id := j.ID + "." + string(t)
	if t == events.EventProgress || t == events.EventStarted {
		// Progress and start events may repeat across attempts; final ones are unique per job.
		id = fmt.Sprintf("%s.%s.%d.%d", j.ID, t, pct, w.now().UnixNano())
	}
	return events.Event{ID: id, Type: t, RequestID: j.RequestID, JobID: j.ID, VM: j.VM, Direction: j.Direction,
		SourceVC: j.SourceVC, TargetVC: j.TargetVC, Progress: pct, Message: msg, Worker: w.cfg.Name, At: w.now()}
}

func (w *Worker) publish(ctx context.Context, log *slog.Logger, e events.Event) {
	if err := w.bus.PublishEvent(ctx, e); err != nil {
		log.Warn("publish event", "type", e.Type, "err", err)
	}
}

// publishFinal insists: the final event is what tells people the outcome. If it still
// cannot be published, the job is handed back: its record holds the outcome, and the
// next delivery publishes it again (announceFinal) without running anything.
func (w *Worker) publishFinal(ctx context.Context, log *slog.Logger, e events.Event) error {
	err := retry(context.WithoutCancel(ctx), 5, 200*time.Millisecond, func(ctx context.Context, _ int) error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return w.bus.PublishEvent(pctx, e)
	})
	if err != nil {
		log.Error("final event not published; it will be re-announced on redelivery", "type", e.Type, "err", err)
		return fmt.Errorf("publish %s event: %w: %w", e.Type, err, events.ErrRetry)
	}
	return nil
}
