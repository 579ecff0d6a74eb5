package bot

import (
	"context"
	"fmt"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
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
	t.Parallel()
	e := newEnv(t)
	r, parentTS := e.approved("migrate web-01 to vc-west")

	e.handle(event(r, 0, events.EventStarted, 0))
	thread := e.slack.Thread(parentTS)
	if len(thread) != 1 {
		t.Fatalf("%d thread messages after started, want 1", len(thread))
	}
	progressTS := thread[0].TS
	if got := e.get(r.ID).Jobs[0].ThreadTS; got != progressTS {
		t.Fatalf("job thread ts %q, want %q", got, progressTS)
	}
	e.handle(event(r, 0, events.EventProgress, 40))
	e.handle(event(r, 0, events.EventProgress, 80))
	if thread := e.slack.Thread(parentTS); len(thread) != 1 || thread[0].Edits != 2 || !strings.Contains(thread[0].Words(), "80%") {
		t.Fatalf("progress not edited in place: %+v", thread)
	}
	e.handle(event(r, 0, events.EventSucceeded, 100))

	thread = e.slack.Thread(parentTS)
	if len(thread) != 2 || thread[0].TS != progressTS {
		t.Fatalf("thread after success: %+v", thread)
	}
	final := thread[1]
	if !strings.Contains(final.Words(), "<@"+requester+">") {
		t.Fatalf("final reply does not mention the requester:\n%s", final.Words())
	}
	if got := e.get(r.ID).State; got != approvals.StateSucceeded {
		t.Fatalf("request is %s", got)
	}
	parent := e.message(parentTS)
	if !strings.Contains(strings.ToLower(parent.Words()), "succeeded") && !strings.Contains(strings.ToLower(parent.Words()), "done") {
		t.Fatalf("parent does not show success:\n%s", parent.Words())
	}
	if len(parent.ActionIDs()) != 0 {
		t.Fatalf("finished request still offers %v", parent.ActionIDs())
	}

	// Redelivered events change nothing and post nothing.
	edits := e.message(progressTS).Edits
	e.handle(event(r, 0, events.EventSucceeded, 100))
	e.handle(event(r, 0, events.EventProgress, 50))
	if thread := e.slack.Thread(parentTS); len(thread) != 2 || e.message(progressTS).Edits != edits {
		t.Fatalf("duplicate events touched the thread: %+v", thread)
	}
}

func TestJobFailureIsExplainedInTheThread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, parentTS := e.approved("migrate web-01,web-02 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	e.handle(event(r, 1, events.EventStarted, 0))
	e.handle(event(r, 0, events.EventSucceeded, 100))
	fail := event(r, 1, events.EventFailed, 0)
	fail.Message = "the target portgroup pg-west is not on host esx-02"
	fail.Fault = "InvalidArgument"
	fail.Step = "relocation task task-77"
	fail.Hint = "add esx-02 to the distributed switch, or pick another host"
	e.handle(fail)

	thread := e.slack.Thread(parentTS)
	var failure, final *slacksim.Message
	for i := range thread {
		w := thread[i].Words()
		switch {
		case strings.Contains(w, "<@"+requester+">"):
			final = &thread[i]
			if !strings.Contains(w, "1 VM failed") || !strings.Contains(w, "`web-02`") || !strings.Contains(w, "reply above") {
				t.Errorf("the final reply does not name the failed VM and where to read why: %s", w)
			}
		case strings.Contains(w, fail.Hint):
			failure = &thread[i]
		}
	}
	if failure == nil || !strings.Contains(failure.Words(), "pg-west is not on host esx-02") ||
		!strings.Contains(failure.Words(), "relocation task task-77 · InvalidArgument") {
		t.Fatalf("no failure reply with message, step, fault and hint in %+v", thread)
	}
	if final == nil {
		t.Fatalf("no final reply to the requester in %+v", thread)
	}
	// One failure is said once: the progress message and the final reply point to it.
	for _, said := range []string{fail.Message, fail.Hint} {
		n := 0
		for _, m := range thread {
			if strings.Contains(m.Words(), said) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d messages of the thread say %q, want 1", n, said)
		}
	}
	if got := e.get(r.ID); got.State != approvals.StateFailed || got.Jobs[1].Error != fail.Message {
		t.Fatalf("request %s job error %q", got.State, got.Jobs[1].Error)
	}
	// The same failure redelivered posts no second failure reply.
	n := len(thread)
	e.handle(fail)
	if got := len(e.slack.Thread(parentTS)); got != n {
		t.Fatalf("redelivered failure posted %d more messages", got-n)
	}
}

// A move that succeeded but left something to look at (tags not copied) says so on its
// progress message and in the final reply, and the request still counts it as moved.
func TestSucceededWithAWarningSaysSo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, parentTS := e.approved("migrate web-01,web-02 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	e.handle(event(r, 1, events.EventStarted, 0))
	e.handle(event(r, 0, events.EventSucceeded, 100))
	warned := event(r, 1, events.EventSucceeded, 100)
	warned.Warning = "tags and custom attributes not copied: vAPI unavailable"
	e.handle(warned)
	got := e.get(r.ID)
	if got.State != approvals.StateSucceeded || got.Jobs[1].Warning != warned.Warning || got.Jobs[0].Warning != "" {
		t.Fatalf("request %s, jobs %+v", got.State, got.Jobs)
	}
	if w := e.message(got.Jobs[1].ThreadTS).Words(); !strings.Contains(w, "⚠️ tags and custom attributes not copied") {
		t.Errorf("web-02's progress message does not show the warning:\n%s", w)
	}
	thread := e.slack.Thread(parentTS)
	final := thread[len(thread)-1].Words()
	if !strings.Contains(final, "1 with a warning to look at") || !strings.Contains(final, "vAPI unavailable") {
		t.Errorf("final reply does not carry the warning:\n%s", final)
	}
}

func TestProgressEditsAreThrottledButFinalLands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.ProgressInterval = time.Hour })
	r, parentTS := e.approved("migrate web-01 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	for p := 10; p <= 90; p += 10 {
		e.handle(event(r, 0, events.EventProgress, p))
	}
	progress := e.slack.Thread(parentTS)[0]
	if progress.Edits != 0 {
		t.Fatalf("progress edited %d times within the interval", progress.Edits)
	}
	// Nothing was shown, so nothing was stored either: no record write per event.
	if got := e.get(r.ID).Jobs[0]; got.Progress != 0 || got.State != approvals.StateRunning {
		t.Fatalf("progress between edits stored: job %s at %d%%", got.State, got.Progress)
	}
	e.handle(event(r, 0, events.EventSucceeded, 100))
	if got := e.message(progress.TS); got.Edits != 1 {
		t.Fatalf("final state not shown: %d edits", got.Edits)
	}
	if got := e.get(r.ID).Jobs[0].Progress; got != 100 {
		t.Fatalf("stored progress %d", got)
	}
}

func TestEventsForUnknownRequestsAreDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	err := e.bot.HandleEvent(context.Background(), events.Event{ID: "x", Type: events.EventStarted, RequestID: "xvm-nosuch", JobID: "xvm-nosuch-01"})
	if err != nil {
		t.Fatalf("unknown request: %v (would be redelivered forever)", err)
	}
	if n := len(e.slack.Public()); n != 0 {
		t.Fatalf("%d messages posted", n)
	}
}

// A wave asks for more message edits than Slack allows an app (about 50 chat.update a
// minute, Tier 3). The bot spends a budget: edits that only show progress are put off
// when it is spent and sent later with the newest state, so no event waits on a 429 and
// no job's final state is lost; the request's own end is shown at once.
func TestEditBudgetPutsOffProgressAndLosesNothing(t *testing.T) {
	t.Parallel()
	const perMinute, vms = 600, 12 // 10 edits a second after a burst of editBurst
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.EditsPerMinute = perMinute })
	clock := newStepClock() // the budget refills as the test says, not as the machine is busy
	e.bot.now = clock.now
	var names []string
	for i := 1; i <= vms; i++ {
		names = append(names, fmt.Sprintf("web-%02d", i))
	}
	r, parentTS := e.approved("migrate " + strings.Join(names, ",") + " to vc-west")
	if len(r.Jobs) != vms {
		t.Fatalf("%d jobs, want %d", len(r.Jobs), vms)
	}

	before, start := e.slack.Calls("chat.update"), clock.now()
	for i := range vms {
		e.handle(event(r, i, events.EventStarted, 0))
		e.handle(event(r, i, events.EventProgress, 50))
	}
	// Percentages never spend the whole budget: the first end is shown at once.
	e.handle(event(r, 0, events.EventSucceeded, 100))
	done := stateWord(approvals.StateSucceeded)
	if w := e.message(e.get(r.ID).Jobs[0].ThreadTS).Words(); !strings.Contains(w, done) {
		t.Fatalf("the first job's end was put off behind percentages:\n%s", w)
	}
	for i := 1; i < vms-1; i++ {
		e.handle(event(r, i, events.EventSucceeded, 100))
	}
	sent, elapsed := e.slack.Calls("chat.update")-before, clock.now().Sub(start)
	if budget := editBurst + 1 + int(elapsed.Seconds()*perMinute/60); sent > budget {
		t.Fatalf("%d edits sent in %v; the budget allows %d", sent, elapsed, budget)
	}
	if e.bot.putOff.count() == 0 {
		t.Fatalf("no edit was put off after %d sent in %v: the budget was not reached", sent, elapsed)
	}

	// Percentages left room for the request's end too: it is shown at once.
	e.handle(event(r, vms-1, events.EventSucceeded, 100))
	parent := e.message(parentTS)
	if w := strings.ToLower(parent.Words()); !strings.Contains(w, "succeeded") && !strings.Contains(w, "done") {
		t.Fatalf("request message does not show the end:\n%s", parent.Words())
	}

	// What was put off reaches Slack at the budget's pace, each message with its job's end.
	for waited := time.Duration(0); e.bot.putOff.count() > 0; waited += 20 * time.Millisecond {
		if waited > 30*time.Second {
			t.Fatalf("%d edits still put off after 30s", e.bot.putOff.count())
		}
		clock.advance(20 * time.Millisecond)
		e.bot.flushDeferred(context.Background())
	}
	for _, j := range e.get(r.ID).Jobs {
		if w := e.message(j.ThreadTS).Words(); !strings.Contains(w, done) {
			t.Errorf("%s's progress message does not show its end:\n%s", j.VM, w)
		}
	}
	if e.slack.Calls("chat.update")-before > editBurst+1+int(clock.now().Sub(start).Seconds()*perMinute/60) {
		t.Errorf("flushing went over the budget")
	}
	if got := counterValue(e.bot.m.editsDeferred); got <= 0 {
		t.Errorf("xvm_slack_edits_deferred_total not counted")
	}
}

// A spent edit budget holds up no work: an approval that comes while it is spent queues
// the jobs at once, and its message edit goes out first once the budget has room again.
func TestSpentEditBudgetHoldsUpNoApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.EditsPerMinute = 1 })
	r, msg := e.submit("migrate web-01,web-02 to vc-west")
	other, _ := e.approved("migrate web-03 to vc-west")
	e.handle(event(other, 0, events.EventStarted, 0))
	e.handle(event(other, 0, events.EventProgress, 40))

	for e.bot.slack.edits.Allow() {
	}
	e.click(approver, msg.TS, ActionApprove, r.ID)
	settled := make(chan struct{})
	go func() { e.settle(); close(settled) }()
	select {
	case <-settled:
	case <-time.After(30 * time.Second): // the budget would have room again in a minute
		t.Fatal("the approval's work waits for the edit budget")
	}
	if got := e.get(r.ID).State; got != approvals.StateQueued {
		t.Fatalf("request %s after approval, want queued", got)
	}
	if n := len(e.jobs.published()); n < 3 {
		t.Fatalf("%d jobs published in all, want the 2 of this request too", n)
	}
	if len(e.message(msg.TS).ActionIDs()) == 0 {
		t.Fatalf("the approval message was edited with the budget spent")
	}
	e.handle(event(other, 0, events.EventProgress, 80)) // put off behind the approval

	// Room for one edit: the approval goes first, the percentage waits.
	e.bot.slack.edits = rate.NewLimiter(rate.Every(time.Hour), 1)
	e.bot.flushDeferred(context.Background())
	if acts := e.message(msg.TS).ActionIDs(); len(acts) != 1 || acts[0] != ActionCancel {
		t.Fatalf("the approved request still offers %v", acts)
	}
	progressTS := e.get(other.ID).Jobs[0].ThreadTS
	if e.bot.putOff.count() == 0 || strings.Contains(e.message(progressTS).Words(), "80%") {
		t.Fatalf("the percentage went out before the approval with room for one edit")
	}
	e.bot.slack.edits = nil
	e.bot.flushDeferred(context.Background())
	if e.bot.putOff.count() != 0 || !strings.Contains(e.message(progressTS).Words(), "80%") {
		t.Fatalf("%d edits still put off with no budget", e.bot.putOff.count())
	}
}

// Put-off edits live in the bot's memory. A bot that starts again shows the messages of
// recent requests again, so a job's end put off before a restart is not lost.
func TestPutOffEditsSurviveARestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.EditsPerMinute = 1 })
	r, _ := e.approved("migrate web-01,web-02 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	e.handle(event(r, 1, events.EventStarted, 0))
	for e.bot.slack.edits.Allow() {
	}
	e.handle(event(r, 0, events.EventSucceeded, 100))
	progressTS := e.get(r.ID).Jobs[0].ThreadTS
	done := stateWord(approvals.StateSucceeded)
	if e.bot.putOff.count() == 0 || strings.Contains(e.message(progressTS).Words(), done) {
		t.Fatalf("the end was not put off with the budget spent")
	}

	// The bot stops with the edit put off; another starts on the same store.
	again, err := New(e.bot.cfg, e.svc, e.planner, e.jobs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	again.slack.edits = nil
	again.resyncMessages(context.Background())
	again.flushDeferred(context.Background())
	if w := e.message(progressTS).Words(); !strings.Contains(w, done) {
		t.Fatalf("after the restart web-01's message still shows:\n%s", w)
	}
	if again.putOff.count() != 0 {
		t.Fatalf("%d edits left with no budget", again.putOff.count())
	}
}

// The reply that tells the requester how their request ended is not lost when posting it
// fails or the bot stops first: the request records that it is due, and the next delivery
// of the event, or the bot's next start, posts it, once.
func TestFinalReplyIsNotLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	finals := func(parentTS string) (n int) {
		for _, m := range e.slack.Thread(parentTS) {
			if strings.Contains(m.Words(), "<@"+requester+">") {
				n++
			}
		}
		return n
	}
	end := func() (*approvals.Request, string, events.Event) {
		r, parentTS := e.approved("migrate web-01 to vc-west")
		e.handle(event(r, 0, events.EventStarted, 0))
		e.slack.Throttle("chat.postMessage", slackMaxAttempts, 0) // every attempt refused
		last := event(r, 0, events.EventSucceeded, 100)
		e.handle(last)
		if finals(parentTS) != 0 || !e.get(r.ID).FinalReplyDue {
			t.Fatalf("failed final reply: %d posted, due %v", finals(parentTS), e.get(r.ID).FinalReplyDue)
		}
		return r, parentTS, last
	}

	// The event delivered again (the bot stopped before acknowledging it).
	r, parentTS, last := end()
	e.handle(last)
	if finals(parentTS) != 1 || e.get(r.ID).FinalReplyDue {
		t.Fatalf("after redelivery: %d final replies, still due %v", finals(parentTS), e.get(r.ID).FinalReplyDue)
	}
	e.handle(last)
	if finals(parentTS) != 1 {
		t.Fatalf("a second redelivery posted another final reply")
	}

	// The bot stops after acknowledging the event; another starts on the same store.
	r, parentTS, _ = end()
	again, err := New(e.bot.cfg, e.svc, e.planner, e.jobs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	again.resyncMessages(context.Background())
	if finals(parentTS) != 1 || e.get(r.ID).FinalReplyDue {
		t.Fatalf("after a restart: %d final replies, still due %v", finals(parentTS), e.get(r.ID).FinalReplyDue)
	}
}

// A job's first event is one write of the request record, the ts of the job's progress
// message included: a big request's record is rewritten whole on every write.
func TestStartedEventIsOneWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	r, parentTS := e.approved("migrate web-01 to vc-west")
	_, rev0, err := e.svc.Store().Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	started := event(r, 0, events.EventStarted, 0)
	e.handle(started)
	got, rev1, _ := e.svc.Store().Get(ctx, r.ID)
	if rev1 != rev0+1 {
		t.Fatalf("started event: %d writes of the record, want 1", rev1-rev0)
	}
	thread := e.slack.Thread(parentTS)
	if len(thread) != 1 || got.Jobs[0].ThreadTS != thread[0].TS || got.Jobs[0].State != approvals.StateRunning {
		t.Fatalf("job %+v, thread %+v", got.Jobs[0], thread)
	}
	e.handle(started) // delivered again
	if _, rev2, _ := e.svc.Store().Get(ctx, r.ID); rev2 != rev1 || len(e.slack.Thread(parentTS)) != 1 {
		t.Fatalf("a redelivered started event wrote %d times and left %d thread messages", rev2-rev1, len(e.slack.Thread(parentTS)))
	}
}

// A review written while the target's change window was open says the moves start at
// once; approved after the window closed, the request message says they wait for it.
func TestChangeWindowWordingIsCurrentAtApproval(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	win, err := approvals.ParseWindow(fmt.Sprintf("daily %s-%s", now.Add(-time.Hour).Format("15:04"), now.Add(time.Hour).Format("15:04")), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.Windows = map[string][]approvals.Window{"vc-west": {win}} })
	clock := now
	e.bot.now = func() time.Time { return clock }
	r, msg := e.submit("migrate web-01 to vc-west")
	if w := msg.Words(); !strings.Contains(w, "change window is open now") {
		t.Fatalf("review while the window is open:\n%s", w)
	}
	clock = now.Add(3 * time.Hour)
	e.click(approver, r.MessageTS, ActionApprove, r.ID)
	e.settle()
	w := e.message(r.MessageTS).Words()
	if !strings.Contains(w, "wait until") || strings.Contains(w, "open now") {
		t.Fatalf("request message after approval outside the window:\n%s", w)
	}
}

// What the worker says while a move runs (here: vCenter refused a cancel, the move will
// finish) shows on the job's message, stays there through later percentages, and goes
// when the move ends.
func TestWhatTheWorkerSaysWhileAMoveRunsIsShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.ProgressInterval = time.Hour })
	r, _ := e.approved("migrate web-01 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	e.handle(event(r, 0, events.EventProgress, 40))
	said := event(r, 0, events.EventProgress, 0)
	said.Message = "web-01: vCenter could not cancel task task-9 (the VM is already switching over to vc-west); the move will finish"
	e.handle(said)
	e.handle(event(r, 0, events.EventProgress, 90))
	job := e.get(r.ID).Jobs[0]
	if job.Note != said.Message {
		t.Fatalf("job note %q, want what the worker said", job.Note)
	}
	e.handle(event(r, 0, events.EventSucceeded, 100))
	job = e.get(r.ID).Jobs[0]
	if w := e.message(job.ThreadTS).Words(); job.Note != "" || strings.Contains(w, "could not cancel") {
		t.Fatalf("after the end the note is still there: %q\n%s", job.Note, w)
	}
}

// The same note, shown: the job's message reads what the worker said.
func TestWorkerNoteIsRendered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.approved("migrate web-01 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	said := event(r, 0, events.EventProgress, 0)
	said.Message = "web-01: the copy broke off — retrying (attempt 1 of 3)"
	e.handle(said)
	if w := e.message(e.get(r.ID).Jobs[0].ThreadTS).Words(); !strings.Contains(w, "retrying (attempt 1 of 3)") {
		t.Fatalf("the job's message does not say it is retried:\n%s", w)
	}
}

// A job the request's cancel marked cancelled, whose move then ended in a failure that
// still moved the VM (it landed elsewhere than approved), keeps the VM's origin: undo can
// take it back.
func TestOriginSurvivesARequestCancelMark(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.approved("migrate web-01 to vc-west")
	e.command(requester, "cancel "+r.ID)
	e.settle()
	if got := e.get(r.ID).Jobs[0].State; got != approvals.StateCancelled {
		t.Fatalf("job is %s after the request's cancel", got)
	}
	failed := event(r, 0, events.EventFailed, 0)
	failed.Message, failed.Fault = "web-01 moved to vc-west, but not as approved: folder is \"lost+found\"", "PlacementMismatch"
	failed.Origin = &move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "east-prod", Datastore: "east-ds-01", Folder: "apps/web"}}
	e.handle(failed)
	if o := e.get(r.ID).Jobs[0].Origin; o == nil || o.VCenter != "vc-east" || o.Folder != "apps/web" {
		t.Fatalf("origin %+v, want where web-01 was", o)
	}
}
