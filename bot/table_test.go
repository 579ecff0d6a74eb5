package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
)

// fxWave is a 40-VM request in flight: 18 moved, 14 running, 5 queued (2 waiting for a
// change window), 3 failed for two causes.
func fxWave() *approvals.Request {
	r := fxApproved()
	r.ID, r.VMs, r.Review.VMs, r.Jobs = "xvm-wave40", nil, nil, nil
	for i := range 40 {
		name := fmt.Sprintf("app-%02d", i+1)
		r.VMs = append(r.VMs, name)
		r.Review.VMs = append(r.Review.VMs, approvals.ReviewVM{VM: move.VM{Name: name}, PowerState: "poweredOn", DiskGB: 40})
		j := approvals.Job{ID: approvals.JobID(r.ID, i), VM: name}
		switch {
		case i < 18:
			j.State, j.Progress = approvals.StateSucceeded, 100
			j.StartedAt, j.EndedAt = fxAt(4*time.Minute), fxAt(time.Duration(5+i/3)*time.Minute)
		case i < 32:
			j.State, j.Progress, j.StartedAt = approvals.StateRunning, 10+i*2, fxAt(8*time.Minute)
		case i < 35:
			j.State = approvals.StateQueued
		case i < 37:
			j.State, j.Note = approvals.StateQueued, "waits for the change window of vc-west (opens at 22:00 UTC)"
		case i < 39:
			j.State, j.StartedAt, j.EndedAt = approvals.StateFailed, fxAt(4*time.Minute), fxAt(7*time.Minute)
			j.Error = "the vMotion network between the hosts went down"
			j.Fault = fmt.Sprintf("relocation task task-%d · NetworkCopyFault", 100+i)
			j.Hint = "check the vMotion vmknics and the links between the two sites"
		default:
			j.State, j.StartedAt, j.EndedAt = approvals.StateFailed, fxAt(4*time.Minute), fxAt(6*time.Minute)
			j.Error = "the target datastore ssd-01 ran out of space"
			j.Fault = "relocation task task-7 · InsufficientDisk"
			j.Hint = "free space on ssd-01 or choose another datastore"
		}
		r.Jobs = append(r.Jobs, j)
	}
	return r
}

// fxWaveEnded is fxWave after every job ended.
func fxWaveEnded() *approvals.Request {
	r := fxWave()
	for i := range r.Jobs {
		if j := &r.Jobs[i]; !j.State.Final() {
			j.State, j.Progress, j.Note = approvals.StateSucceeded, 100, ""
			j.StartedAt, j.EndedAt = fxAt(8*time.Minute), fxAt(12*time.Minute)
		}
	}
	r.State, r.EndedAt = approvals.StateFailed, fxAt(12*time.Minute)
	return r
}

func TestRenderTableReads(t *testing.T) {
	t.Parallel()
	_, blocks := RenderTable(fxWave(), fxAt(10*time.Minute))
	got := plainOf(t, blocks)
	for _, want := range []string{
		"5 queued · 🔄 14 running · ✅ 18 succeeded · ❌ 3 failed",
		"Rate: 3.5 moves/min",       // 21 ended in the 6 minutes since the first start
		"ETA: 2025-03-14 14:15 UTC", // 19 left at 3.5 a minute: about 5m 26s after 14:10
		"and 4 more",                // 14 running, 10 named
		"2 VMs: waits for the change window",
		"*2 VMs* · `NetworkCopyFault`: the vMotion network",
		"check the vMotion vmknics",
		"`app-38`, `app-39`",
		"*1 VM* · `InsufficientDisk`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table does not say %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "NetworkCopyFault") > strings.Index(got, "InsufficientDisk") {
		t.Errorf("the larger cause is not listed first:\n%s", got)
	}
	_, blocks = RenderTable(fxWaveEnded(), fxAt(30*time.Minute))
	if got := plainOf(t, blocks); !strings.Contains(got, "took 8m 0s") || strings.Contains(got, "ETA") && !strings.Contains(got, "ETA: —") || strings.Contains(got, "Moving now") {
		t.Errorf("an ended table shows an ETA or running VMs, or not how long it took:\n%s", got)
	}
}

func TestRenderTableStaysWithinSlackLimits(t *testing.T) {
	t.Parallel()
	r := fxLargeRunning() // 300 failed VMs
	for i := range r.Jobs {
		r.Jobs[i].Fault = fmt.Sprintf("relocation task task-%d · Fault%d", i, i%40)
		r.Jobs[i].Hint = strings.Repeat("check the host ", 20)
	}
	text, blocks := RenderTable(r, fxAt(50*time.Minute))
	checkSlackLimits(t, blocks)
	if got := plainOf(t, blocks); !strings.Contains(got, "more causes") || text == "" {
		t.Errorf("40 causes are not capped:\n%s", got)
	}
}

// plainOf is what people read of blocks.
func plainOf(t *testing.T, blocks []slack.Block) string {
	t.Helper()
	return slacksim.PlainText(mustMarshal(t, blocks), "", nil)
}

func withTableAbove(n int) envOption {
	return func(c *Config, _ *approvals.Policy) { c.TableAbove = n }
}

func failedEvent(r *approvals.Request, job int, fault, msg, hint string) events.Event {
	ev := event(r, job, events.EventFailed, 0)
	ev.Step, ev.Fault, ev.Message, ev.Hint = "relocation task task-"+fmt.Sprint(job), fault, msg, hint
	return ev
}

// A request above the threshold has one table in its thread, edited in place, and one
// message per failure; the request at the threshold keeps one message per VM.
func TestThreadAboveTheThresholdHoldsOneTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTableAbove(3))
	r, parentTS := e.approved("migrate app-1,app-2,app-3,app-4 to vc-west")
	for i := range r.Jobs {
		e.handle(event(r, i, events.EventStarted, 0))
	}
	thread := e.slack.Thread(parentTS)
	if len(thread) != 1 || !strings.Contains(thread[0].Words(), "Progress of "+r.ID) {
		t.Fatalf("after 4 starts the thread holds %d messages, want the table only:\n%s", len(thread), threadWords(thread))
	}
	tableTS := thread[0].TS
	if got := e.get(r.ID).TableTS; got != tableTS {
		t.Fatalf("the record keeps table %q, want %q", got, tableTS)
	}
	e.handle(event(r, 0, events.EventProgress, 50))
	e.handle(event(r, 0, events.EventSucceeded, 100))
	e.handle(event(r, 1, events.EventSucceeded, 100))
	e.handle(failedEvent(r, 2, "NetworkCopyFault", "the vMotion network went down", "check the vMotion vmknics"))
	e.handle(failedEvent(r, 3, "NetworkCopyFault", "the vMotion network went down", "check the vMotion vmknics"))

	thread = e.slack.Thread(parentTS)
	if len(thread) != 4 {
		t.Fatalf("thread holds %d messages, want the table, 2 failures and the final reply:\n%s", len(thread), threadWords(thread))
	}
	table := e.message(tableTS)
	for _, want := range []string{"2 succeeded", "2 failed", "*2 VMs* · `NetworkCopyFault`", "check the vMotion vmknics"} {
		if !strings.Contains(table.Words(), want) {
			t.Errorf("the ended table does not say %q:\n%s", want, table.Words())
		}
	}
	if table.Edits == 0 {
		t.Error("the table was never edited")
	}
	for _, m := range thread[1:3] {
		if !strings.Contains(m.Words(), "failed to move") {
			t.Errorf("a failure is not posted on its own:\n%s", m.Words())
		}
	}
	if !strings.Contains(thread[3].Words(), "<@"+requester+">") {
		t.Errorf("last message is not the final reply:\n%s", thread[3].Words())
	}

	// At the threshold: today's thread, one progress message per VM.
	e2 := newEnv(t, withTableAbove(3))
	r2, parent2 := e2.approved("migrate app-1,app-2,app-3 to vc-west")
	for i := range r2.Jobs {
		e2.handle(event(r2, i, events.EventStarted, 0))
	}
	if thread := e2.slack.Thread(parent2); len(thread) != 3 || strings.Contains(threadWords(thread), "Progress of") {
		t.Fatalf("a request at the threshold holds %d messages, want one per VM:\n%s", len(thread), threadWords(thread))
	}
}

// The table is edited within the edit budget: with no room, its edit is put off, and the
// put-off edit shows the table as it is by then.
func TestTableEditsWaitForTheBudget(t *testing.T) {
	t.Parallel()
	clock := newStepClock()
	e := newEnv(t, withTableAbove(3), func(c *Config, _ *approvals.Policy) { c.EditsPerMinute = 6 })
	e.bot.now = clock.now
	r, parentTS := e.approved("migrate app-1,app-2,app-3,app-4,app-5 to vc-west")
	for i := range r.Jobs {
		e.handle(event(r, i, events.EventStarted, 0))
	}
	tableTS := e.get(r.ID).TableTS
	for i := range 4 {
		e.handle(event(r, i, events.EventSucceeded, 100))
	}
	edits := e.message(tableTS).Edits
	if e.bot.putOff.count() == 0 {
		t.Fatalf("with the budget spent, no edit of the table was put off (%d edits sent)", edits)
	}
	clock.advance(time.Minute)
	e.bot.flushDeferred(context.Background())
	if got := e.message(tableTS).Words(); !strings.Contains(got, "4 succeeded") {
		t.Fatalf("the put-off edit does not show the table as it is:\n%s", got)
	}
	if n := len(e.slack.Thread(parentTS)); n != 1 {
		t.Fatalf("thread holds %d messages, want the table only", n)
	}
}

func threadWords(ms []slacksim.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("--- " + m.TS + "\n" + m.Words() + "\n")
	}
	return b.String()
}
