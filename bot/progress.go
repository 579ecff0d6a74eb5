package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// HandleEvent applies one job event (from the events stream, delivered at least once) to
// its request and shows it in Slack: one progress message per job in the request's thread,
// edited in place at most every ProgressInterval and within the app's edit budget (an edit
// the budget has no room for is sent later with the newest state); a failure reply with the fault and a
// hint; and, when the request ends, the request message re-rendered and a final reply in
// the thread that mentions the requester. A redelivered event changes nothing and posts
// nothing. A returned error means the event should be delivered again.
func (b *Bot) HandleEvent(ctx context.Context, e events.Event) error {
	log := b.log.With("request_id", e.RequestID, "job_id", e.JobID, "event", e.Type)
	if e.Type == events.EventRefused {
		return b.onRefused(ctx, e, log)
	}
	if e.Type == events.EventQueued && e.Message != "" && e.RequestID != "" {
		return b.noteJob(ctx, e)
	}
	state, ok := jobStateOf(e.Type)
	if !ok || e.RequestID == "" || e.JobID == "" {
		log.Debug("event ignored")
		return nil
	}
	unlock := b.locks.lock(e.RequestID)
	defer unlock()
	if e.Type == events.EventProgress && e.Message == "" && b.edits.idle(e.JobID) {
		// Nothing would be shown: storing the percentage would cost a read and a write of
		// the whole request record per event (a wave sends hundreds a minute). The next
		// event due for an edit stores its own.
		log.Debug("progress between edits; not stored", "progress", e.Progress)
		return nil
	}

	now := b.now()
	// A job's first event posts its progress message; its ts is stored in the same write
	// as the event, not in a second write of the whole record.
	posted := ""
	if e.Type == events.EventStarted {
		posted = b.postProgressFirst(ctx, e, state, now)
	}
	rep := reportOf(e, state)
	rep.Shown = posted
	// The report reads and writes the job and, if the job started or ended, the
	// request's head: whole is read only for what shows the whole request.
	h, j, before, err := b.svc.ApplyReport(ctx, e.RequestID, rep)
	switch {
	case errors.Is(err, approvals.ErrUnchanged):
		log.Debug("event already applied")
		if h != nil && h.FinalReplyDue {
			// Applied before, but the bot stopped before the final reply was posted.
			b.postFinalReply(ctx, b.whole(ctx, h))
		}
		return nil
	case errors.Is(err, approvals.ErrNotFound):
		log.Warn("event for an unknown request dropped")
		return nil
	case err != nil && h != nil:
		// The record refused the event (no such job, a transition it forbids): redelivery
		// would not change that.
		log.Warn("event not applicable", "err", err)
		return nil
	case err != nil:
		return fmt.Errorf("apply %s event %s: %w", e.Type, e.ID, err)
	}
	final := e.Type.Final()
	log.Debug("event applied", "state", j.State, "progress", j.Progress)
	if b.tabled(h) {
		b.reqViews.note(h.ID, j)
		return b.showInTable(ctx, h, before, e, j)
	}
	r := b.whole(ctx, h) // a request shown job by job is small
	if jj := r.Job(e.JobID); jj != nil {
		j = jj
	}

	// The job's progress message: posted once, then edited in place.
	if j.ThreadTS == "" {
		ts, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(RenderJobProgress(r, j)))
		if err != nil {
			return fmt.Errorf("post progress of job %s: %w", j.ID, err)
		}
		b.edits.markEdited(ts)
		j.ThreadTS = b.storeThreadTS(ctx, r.ID, e.JobID, ts)
	} else if j.ThreadTS != posted && (final || b.edits.due(j.ThreadTS)) {
		b.show(ctx, r, j.ThreadTS, false)
	}
	if final {
		b.edits.forget(j.ThreadTS)
		b.edits.ended(j.ID)
	} else if j.State == approvals.StateRunning {
		b.edits.started(j.ID, runningJob{threadTS: j.ThreadTS, parentTS: r.MessageTS})
	}

	if e.Type == events.EventFailed {
		if _, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(RenderJobFailure(r, j, stepAndFault(e), e.Hint))); err != nil {
			log.Error("post failure reply", "err", err)
		}
	}

	// The request message: edited when the request changes state (first in line for the
	// edit budget), or when a job ends or on the throttle.
	switch {
	case r.State != before:
		b.refreshParent(ctx, r)
		b.edits.markEdited(r.MessageTS)
	case final || b.edits.due(r.MessageTS):
		b.show(ctx, r, r.MessageTS, false)
		b.edits.markEdited(r.MessageTS)
	}
	if r.State.Final() && !before.Final() {
		b.edits.forget(r.MessageTS)
		for _, jj := range r.Jobs {
			b.edits.ended(jj.ID)
		}
		log.Info("request finished", "state", r.State)
	}
	if r.FinalReplyDue {
		b.postFinalReply(ctx, r)
	}
	return nil
}

// showInTable shows event e of job j in the thread of a request that shows its progress
// as one table (r as e left it, before its state before): the table is posted with the
// first event and then edited within the throttle and the edit budget (an end the throttle
// holds back is put off, so it is shown soon after, not only with the next event); a
// failure is posted on its own; the request message and the final reply are as for any
// request, except that a job's end edits the request message only when it is due. What
// is shown comes from the request's view (requestview.go), not from a read of the whole
// request per event.
func (b *Bot) showInTable(ctx context.Context, r *approvals.Request, before approvals.State, e events.Event, j *approvals.Job) error {
	whole := b.shownOnce(ctx, r)
	final := e.Type.Final()
	ended := r.State.Final() && !before.Final()
	switch {
	case r.TableTS == "" && r.MessageTS != "":
		ts, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(RenderTable(whole(), b.now())))
		if err != nil {
			return fmt.Errorf("post progress table of request %s: %w", r.ID, err)
		}
		b.edits.markEdited(ts)
		stored, err := b.svc.RecordTable(ctx, r.ID, ts)
		switch {
		case err == nil || errors.Is(err, approvals.ErrUnchanged) && stored != nil:
			// (ErrUnchanged: another replica's table was recorded first: it stays the table.)
			r.TableTS = stored.TableTS
			if w := whole(); w != r {
				w.TableTS = stored.TableTS
			}
		default:
			b.log.Error("store progress table ts", "request_id", r.ID, "err", err)
			r.TableTS = ts
		}
	case ended || b.edits.due(r.TableTS):
		b.show(ctx, whole(), r.TableTS, ended)
	case final:
		b.putOffEdit(r.ID, r.TableTS)
	}
	if final {
		b.edits.ended(j.ID)
	} else if j.State == approvals.StateRunning {
		b.edits.started(j.ID, runningJob{threadTS: r.TableTS, parentTS: r.MessageTS})
	}
	if e.Type == events.EventFailed {
		if _, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(RenderJobFailure(whole(), j, stepAndFault(e), e.Hint))); err != nil {
			b.log.Error("post failure reply", "request_id", r.ID, "job_id", j.ID, "err", err)
		}
	}
	switch {
	case r.State != before:
		b.refreshParent(ctx, whole())
		b.edits.markEdited(r.MessageTS)
	case b.edits.due(r.MessageTS):
		b.show(ctx, whole(), r.MessageTS, false)
	case final:
		b.putOffEdit(r.ID, r.MessageTS)
	}
	if ended {
		b.edits.forget(r.MessageTS)
		b.edits.forget(r.TableTS)
		for _, jj := range whole().Jobs {
			b.edits.ended(jj.ID)
		}
		b.log.Info("request finished", "request_id", r.ID, "state", r.State)
	}
	if r.FinalReplyDue {
		b.postFinalReply(ctx, whole())
	}
	return nil
}

// whole returns the whole request of h: h itself if it holds its jobs, or as read now.
// If it cannot be read, h is shown as it is.
func (b *Bot) whole(ctx context.Context, h *approvals.Request) *approvals.Request {
	r, _ := b.readWhole(ctx, h)
	return r
}

// readWhole is whole, and whether the request could be read.
func (b *Bot) readWhole(ctx context.Context, h *approvals.Request) (*approvals.Request, bool) {
	if h.Jobs != nil || h.Tally == nil {
		return h, true
	}
	r, err := b.svc.Get(ctx, h.ID)
	if err != nil {
		b.log.Error("read the whole request", "request_id", h.ID, "err", err)
		return h, false
	}
	return r, true
}

// putOffEdit puts off an edit of the message at ts of request: the sender of put-off
// edits shows it as the request is then, within the budget.
func (b *Bot) putOffEdit(request, ts string) {
	if ts != "" && b.putOff.add(request, ts, false) {
		b.m.editsDeferred.Inc()
	}
}

// postFinalReply posts the reply that tells the requester how their request ended, in its
// thread, and records that it was posted. If the post fails the reply stays due: the next
// event of the request, or the bot's next start, tries again. The caller holds the
// request's lock.
func (b *Bot) postFinalReply(ctx context.Context, r *approvals.Request) {
	log := b.log.With("request_id", r.ID)
	if r.MessageTS == "" {
		return
	}
	if _, err := b.slack.postFirst(ctx, r.Channel, r.MessageTS, asMessage(RenderFinal(r))); err != nil {
		log.Error("post final reply; will try again", "err", err)
		return
	}
	if err := b.svc.FinalReplyPosted(ctx, r.ID); err != nil && !errors.Is(err, approvals.ErrUnchanged) {
		log.Error("record final reply posted", "err", err)
	}
}

// postProgressFirst posts the progress message of the job of e as e will leave it, if the
// job has none yet, and returns its ts ("" if nothing was posted). The caller stores the
// ts with the event; if that write never happens, the next delivery posts again.
func (b *Bot) postProgressFirst(ctx context.Context, e events.Event, state approvals.State, now time.Time) string {
	h, err := b.svc.Head(ctx, e.RequestID)
	if err != nil || h.MessageTS == "" || b.tabled(h) {
		return ""
	}
	r := b.whole(ctx, h)
	if j := r.Job(e.JobID); j == nil || j.ThreadTS != "" {
		return ""
	}
	if changed, err := r.ApplyReport(reportOf(e, state), now); err != nil || !changed {
		return ""
	}
	ts, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(RenderJobProgress(r, r.Job(e.JobID))))
	if err != nil {
		b.log.Warn("post progress message; will post after storing the event", "job_id", e.JobID, "err", err)
		return ""
	}
	b.edits.markEdited(ts)
	return ts
}

// onRefused tells a request's thread that a worker refused a job naming it: nothing was
// moved, and people should know someone tried (or that their approval ran out). The
// request record is not changed: a refused job may not be the request's own. Each reason
// is said once per request and VM, however many such jobs arrive.
func (b *Bot) onRefused(ctx context.Context, e events.Event, log *slog.Logger) error {
	log.Warn("a worker refused a job", "vm", e.VM, "reason", e.Fault, "worker", e.Worker, "detail", e.Error)
	if e.RequestID == "" {
		return nil
	}
	r, err := b.svc.Get(ctx, e.RequestID)
	if errors.Is(err, approvals.ErrNotFound) {
		log.Warn("refused job named an unknown request", "vm", e.VM, "reason", e.Fault)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read request %s: %w", e.RequestID, err)
	}
	if !b.said.first("refused|"+r.ID+"|"+e.VM+"|"+e.Fault) || r.MessageTS == "" {
		return nil
	}
	text := fmt.Sprintf("⛔ A worker refused a job for %s (job %s): %s. Nothing was moved.", vmCode(e.VM), escapeText(e.JobID), escapeText(e.Error))
	if e.Hint != "" {
		text += "\n" + capitalize(escapeText(e.Hint)) + "."
	}
	if _, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(text, nil)); err != nil {
		log.Error("post refused-job notice", "err", err)
	}
	return nil
}

// noteJob shows what a queued job waits for (a closed change window) in its thread message.
func (b *Bot) noteJob(ctx context.Context, e events.Event) error {
	unlock := b.locks.lock(e.RequestID)
	defer unlock()
	h, j, err := b.svc.NoteJob(ctx, e.RequestID, e.JobID, e.Message)
	switch {
	case errors.Is(err, approvals.ErrUnchanged), errors.Is(err, approvals.ErrNotFound):
		return nil
	case err != nil && h != nil:
		return nil
	case err != nil:
		return fmt.Errorf("note job %s: %w", e.JobID, err)
	}
	if b.tabled(h) {
		// The table says what queued VMs wait for, once per reason: shown when due, or
		// put off until it is (every queued job may say so at once).
		b.reqViews.note(h.ID, j)
		if b.edits.due(h.TableTS) {
			if r, ok := b.shown(ctx, h); ok {
				b.show(ctx, r, h.TableTS, false)
			} else {
				b.putOffEdit(h.ID, h.TableTS)
			}
		} else {
			b.putOffEdit(h.ID, h.TableTS)
		}
		return nil
	}
	r := b.whole(ctx, h)
	if j.ThreadTS != "" {
		b.show(ctx, r, j.ThreadTS, false)
		return nil
	}
	ts, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(RenderJobProgress(r, j)))
	if err != nil {
		return fmt.Errorf("post note of job %s: %w", j.ID, err)
	}
	b.storeThreadTS(ctx, r.ID, e.JobID, ts)
	return nil
}

// storeThreadTS records ts as the progress message of job unless it has one already, and
// returns the job's message as stored (ts, if it could not be stored).
// returns the request as stored (nil if it could not be read).
func (b *Bot) storeThreadTS(ctx context.Context, id, job, ts string) string {
	_, j, err := b.svc.RecordJobMessage(ctx, id, job, ts)
	if err != nil && !errors.Is(err, approvals.ErrUnchanged) {
		b.log.Error("store progress message ts", "request_id", id, "job_id", job, "err", err)
	}
	if j != nil && j.ThreadTS != "" {
		return j.ThreadTS
	}
	return ts
}

// reportOf is what event e, which reports state, says to the request record.
func reportOf(e events.Event, state approvals.State) approvals.Report {
	rep := approvals.Report{Job: e.JobID, State: state, Started: e.Type == events.EventStarted, Progress: e.Progress,
		Error: failureText(e), Hint: e.Hint, Warning: e.Warning, Task: e.TaskRef}
	if e.Type == events.EventProgress {
		rep.Note = e.Message
	}
	if e.Type == events.EventFailed {
		rep.Fault = stepAndFault(e)
		if e.Error != "" && e.Error != rep.Error {
			rep.Detail = e.Error
		}
	}
	if e.Origin != nil {
		o := e.Origin.Clone()
		rep.Origin = &o
	}
	return rep
}

// jobStateOf maps an event to the job state it reports. Queued events carry nothing to
// show (approval already said so) and would only risk moving a running job backwards.
func jobStateOf(t events.EventType) (approvals.State, bool) {
	switch t {
	case events.EventStarted, events.EventProgress:
		return approvals.StateRunning, true
	case events.EventSucceeded:
		return approvals.StateSucceeded, true
	case events.EventFailed:
		return approvals.StateFailed, true
	case events.EventCancelled:
		return approvals.StateCancelled, true
	}
	return "", false
}

// stepAndFault is where a failure happened and the fault's name, as a failure shows them:
// "relocation task task-12 · NetworkCopyFault".
func stepAndFault(e events.Event) string {
	switch {
	case e.Step == "":
		return e.Fault
	case e.Fault == "":
		return e.Step
	}
	return e.Step + " · " + e.Fault
}

// failureText is what the job record keeps of a failure: the plain-words message first.
func failureText(e events.Event) string {
	if e.Message != "" {
		return e.Message
	}
	return e.Error
}
