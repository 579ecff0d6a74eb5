package bot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// approved submits and approves a request, returning it and its message ts.
func (e *env) approved(text string) (*approvals.Request, string) {
	e.t.Helper()
	r, msg := e.submit(text)
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	return e.get(r.ID), msg.TS
}

func event(r *approvals.Request, job int, typ events.EventType, progress int) events.Event {
	return events.Event{V: events.SchemaVersion, ID: r.Jobs[job].ID + "-" + string(typ) + "-" + time.Now().Format("150405.000000000"),
		Type: typ, RequestID: r.ID, JobID: r.Jobs[job].ID, VM: r.Jobs[job].VM, Progress: progress, At: time.Now()}
}

func (e *env) handle(ev events.Event) {
	e.t.Helper()
	if err := e.bot.HandleEvent(context.Background(), ev); err != nil {
		e.t.Fatalf("HandleEvent(%s): %v", ev.Type, err)
	}
}

func TestJobProgressIsEditedInPlaceThenFinal(t *testing.T) {
	e := newEnv(t)
	r, parentTS := e.approved("migrate web-01 to vc-west")

	e.handle(event(r, 0, events.EventStarted, 0))
	thread := e.slack.thread(parentTS)
	if len(thread) != 1 {
		t.Fatalf("%d thread messages after started, want 1", len(thread))
	}
	progressTS := thread[0].TS
	if got := e.get(r.ID).Jobs[0].ThreadTS; got != progressTS {
		t.Fatalf("job thread ts %q, want %q", got, progressTS)
	}
	e.handle(event(r, 0, events.EventProgress, 40))
	e.handle(event(r, 0, events.EventProgress, 80))
	if thread := e.slack.thread(parentTS); len(thread) != 1 || thread[0].Edits != 2 || !strings.Contains(thread[0].words(), "80") {
		t.Fatalf("progress not edited in place: %+v", thread)
	}
	e.handle(event(r, 0, events.EventSucceeded, 100))

	thread = e.slack.thread(parentTS)
	if len(thread) != 2 || thread[0].TS != progressTS {
		t.Fatalf("thread after success: %+v", thread)
	}
	final := thread[1]
	if !strings.Contains(final.words(), "<@"+requester+">") {
		t.Fatalf("final reply does not mention the requester:\n%s", final.words())
	}
	if got := e.get(r.ID).State; got != approvals.StateSucceeded {
		t.Fatalf("request is %s", got)
	}
	parent := e.slack.message(parentTS)
	if !strings.Contains(strings.ToLower(parent.words()), "succeeded") && !strings.Contains(strings.ToLower(parent.words()), "done") {
		t.Fatalf("parent does not show success:\n%s", parent.words())
	}
	if len(parent.actions()) != 0 {
		t.Fatalf("finished request still offers %v", parent.actions())
	}

	// Redelivered events change nothing and post nothing.
	edits := e.slack.message(progressTS).Edits
	e.handle(event(r, 0, events.EventSucceeded, 100))
	e.handle(event(r, 0, events.EventProgress, 50))
	if thread := e.slack.thread(parentTS); len(thread) != 2 || e.slack.message(progressTS).Edits != edits {
		t.Fatalf("duplicate events touched the thread: %+v", thread)
	}
}

func TestJobFailureIsExplainedInTheThread(t *testing.T) {
	e := newEnv(t)
	r, parentTS := e.approved("migrate web-01,web-02 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	e.handle(event(r, 1, events.EventStarted, 0))
	e.handle(event(r, 0, events.EventSucceeded, 100))
	fail := event(r, 1, events.EventFailed, 0)
	fail.Message = "the target portgroup pg-west is not on host esx-02"
	fail.Fault = "InvalidArgument"
	fail.Hint = "add esx-02 to the distributed switch, or pick another host"
	e.handle(fail)

	thread := e.slack.thread(parentTS)
	var failure, final *posted
	for i := range thread {
		w := thread[i].words()
		switch {
		case strings.Contains(w, "<@"+requester+">"):
			final = &thread[i]
			if !strings.Contains(w, fail.Hint) {
				t.Errorf("the final reply does not repeat what to check: %s", w)
			}
		case strings.Contains(w, fail.Hint):
			failure = &thread[i]
		}
	}
	if failure == nil || !strings.Contains(failure.words(), "pg-west is not on host esx-02") {
		t.Fatalf("no failure reply with message and hint in %+v", thread)
	}
	if final == nil {
		t.Fatalf("no final reply to the requester in %+v", thread)
	}
	if got := e.get(r.ID); got.State != approvals.StateFailed || got.Jobs[1].Error != fail.Message {
		t.Fatalf("request %s job error %q", got.State, got.Jobs[1].Error)
	}
	// The same failure redelivered posts no second failure reply.
	n := len(thread)
	e.handle(fail)
	if got := len(e.slack.thread(parentTS)); got != n {
		t.Fatalf("redelivered failure posted %d more messages", got-n)
	}
}

func TestProgressEditsAreThrottledButFinalLands(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.ProgressInterval = time.Hour })
	r, parentTS := e.approved("migrate web-01 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	for p := 10; p <= 90; p += 10 {
		e.handle(event(r, 0, events.EventProgress, p))
	}
	progress := e.slack.thread(parentTS)[0]
	if progress.Edits != 0 {
		t.Fatalf("progress edited %d times within the interval", progress.Edits)
	}
	// Nothing was shown, so nothing was stored either: no record write per event.
	if got := e.get(r.ID).Jobs[0]; got.Progress != 0 || got.State != approvals.StateRunning {
		t.Fatalf("progress between edits stored: job %s at %d%%", got.State, got.Progress)
	}
	e.handle(event(r, 0, events.EventSucceeded, 100))
	if got := e.slack.message(progress.TS); got.Edits != 1 {
		t.Fatalf("final state not shown: %d edits", got.Edits)
	}
	if got := e.get(r.ID).Jobs[0].Progress; got != 100 {
		t.Fatalf("stored progress %d", got)
	}
}

func TestEventsForUnknownRequestsAreDropped(t *testing.T) {
	e := newEnv(t)
	err := e.bot.HandleEvent(context.Background(), events.Event{ID: "x", Type: events.EventStarted, RequestID: "xvm-nosuch", JobID: "xvm-nosuch-01"})
	if err != nil {
		t.Fatalf("unknown request: %v (would be redelivered forever)", err)
	}
	if n := len(e.slack.messages()); n != 0 {
		t.Fatalf("%d messages posted", n)
	}
}
