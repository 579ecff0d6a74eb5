package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// waveOnNATS is a tabled request of n VMs approved on a bot whose requests are on NATS, as
// `xvmbot bot` keeps them: its Slack messages, and the NATS connection the bot's request
// store reads through.
func waveOnNATS(t *testing.T, n int, opts ...envOption) (natsBus, *env, *approvals.Request, string) {
	t.Helper()
	nb := newNATSBus(t)
	e := nb.replica(t, newSlack(t), opts...)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("app-%04d", i+1)
	}
	e.planner.matches = map[string][]string{"app-*": names}
	r, parentTS := e.approved("migrate app-* to vc-west")
	if len(r.Jobs) != n {
		t.Fatalf("the request holds %d jobs, want %d", len(r.Jobs), n)
	}
	return nb, e, r, parentTS
}

// What the bot reads from NATS to handle one job event of a large request does not grow
// with the request: a 5,000-VM request's events cost about what a 50-VM request's do,
// though every event here edits the table and the request message (no throttle, no
// budget), and the table still shows every job as it is. Reading the whole request for
// each edit, as the bot did, read every started job's key: at 5,000 VMs the bot fell
// minutes behind its wave.
func TestJobEventReadsDoNotGrowWithTheRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("a 5,000-VM request")
	}
	t.Parallel()
	const measured = 60 // measured: 30 jobs' start and end
	type cost struct{ msgs, bytes float64 }
	measure := func(n int) cost {
		nb, e, r, _ := waveOnNATS(t, n)
		e.bot.now = newStepClock().now // no re-read of the request on a timer here
		// Warm up: the table is posted and its ts recorded, and the bot has read the
		// request whole once.
		for i := range 5 {
			e.handle(event(r, i, events.EventStarted, 0))
		}
		before := nb.nc.Stats()
		for i := 5; i < 5+measured/2; i++ {
			e.handle(event(r, i, events.EventStarted, 0))
			e.handle(event(r, i, events.EventSucceeded, 100))
		}
		after := nb.nc.Stats()
		c := cost{msgs: float64(after.InMsgs-before.InMsgs) / measured, bytes: float64(after.InBytes-before.InBytes) / measured}
		t.Logf("%d VMs: per event, %.1f messages and %.0f bytes received from NATS", n, c.msgs, c.bytes)

		table := e.message(e.get(r.ID).TableTS).Words()
		want := fmt.Sprintf("%d queued · 🔄 5 running · ✅ %d succeeded", n-5-measured/2, measured/2)
		if !strings.Contains(table, want) {
			t.Errorf("%d VMs: the table does not say %q:\n%s", n, want, table)
		}
		return c
	}
	small, large := measure(50), measure(5000)
	if large.msgs > 2*small.msgs+2 || large.bytes > 3*small.bytes {
		t.Errorf("a job event of a 5,000-VM request reads %.1f messages and %.0f bytes from NATS, one of a 50-VM request %.1f and %.0f: the cost grows with the request",
			large.msgs, large.bytes, small.msgs, small.bytes)
	}
}

// Two bot replicas share a request's events, as replicas of `xvmbot bot` share the
// events consumer: each shows, when it edits the table, what the other applied too (the
// jobs that started and ended there), and the table ends with the request's final counts
// however the events were split, also after a replica's put-off edits went out.
func TestTwoReplicasShowOneTable(t *testing.T) {
	t.Parallel()
	nb := newNATSBus(t)
	ws := newSlack(t)
	clock := newStepClock()
	a, b := nb.replica(t, ws, withTableAbove(3)), nb.replica(t, ws, withTableAbove(3))
	a.bot.now, b.bot.now = clock.now, clock.now
	names := make([]string, 30)
	for i := range names {
		names[i] = fmt.Sprintf("app-%02d", i+1)
	}
	a.planner.matches = map[string][]string{"app-*": names}
	r, parentTS := a.approved("migrate app-* to vc-west")
	replicas := []*env{a, b}

	// Jobs 0-9 start on a, and end on b; jobs 10-19 the other way round.
	for i := range 20 {
		replicas[i/10].handle(event(r, i, events.EventStarted, 0))
	}
	for i := range 20 {
		ev := event(r, i, events.EventSucceeded, 100)
		if i%10 == 9 {
			ev = failedEvent(r, i, "NetworkCopyFault", "the vMotion network went down", "check the vMotion vmknics")
		}
		replicas[1-i/10].handle(ev)
	}
	tableTS := a.get(r.ID).TableTS
	// Each replica, at its next edit, shows what the other did.
	for k, e := range replicas {
		e.handle(event(r, 20+k, events.EventStarted, 0))
		table := e.message(tableTS).Words()
		counts := fmt.Sprintf("%d queued · 🔄 %d running · ✅ 18 succeeded · ❌ 2 failed", 9-k, 1+k)
		for _, want := range []string{counts, "*2 VMs* · `NetworkCopyFault`"} {
			if !strings.Contains(table, want) {
				t.Errorf("replica %d shows a table that does not say %q:\n%s", k+1, want, table)
			}
		}
	}

	// The rest, split between them, with no room in the edit budget: edits are put off,
	// and go out when it has room again.
	for _, e := range replicas {
		e.bot.slack.edits = rate.NewLimiter(0, 0)
	}
	for i := 20; i < 30; i++ {
		if i >= 22 {
			replicas[i%2].handle(event(r, i, events.EventStarted, 0))
		}
		replicas[(i+1)%2].handle(event(r, i, events.EventSucceeded, 100))
	}
	for _, e := range replicas {
		e.bot.slack.edits = nil
		e.bot.flushDeferred(context.Background())
	}
	if got := a.get(r.ID).State; got != approvals.StateFailed {
		t.Fatalf("the request ended %s, want failed", got)
	}
	table := a.message(tableTS).Words()
	if !strings.Contains(table, "0 queued · 🔄 0 running · ✅ 28 succeeded · ❌ 2 failed") {
		t.Errorf("the table does not end with the request's counts:\n%s", table)
	}
	finals := 0
	for _, m := range a.slack.Thread(parentTS) {
		if strings.Contains(m.Words(), "<@"+requester+">") {
			finals++
		}
	}
	if finals != 1 {
		t.Errorf("%d final replies, want 1", finals)
	}
	for k, e := range replicas {
		if n := e.bot.reqViews.size(); n != 0 {
			t.Errorf("replica %d keeps %d views of requests that ended", k+1, n)
		}
	}
}

// Many teams' waves in flight at once each keep their view, however many there are, as
// long as the views hold at most maxViewVMs VMs between them; beyond that the least used
// views go, never the one just read.
func TestViewsAreBoundedByTheVMsTheyHold(t *testing.T) {
	t.Parallel()
	v := newRequestViews()
	start := time.Now()
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	wave := func(id string, n int) *approvals.Request { return &approvals.Request{ID: id, VMs: make([]string, n)} }
	for i := range 12 {
		v.put(wave(fmt.Sprintf("r%02d", i), 500), at(i))
	}
	if n := v.size(); n != 12 {
		t.Fatalf("%d views of twelve 500-VM waves, want all 12", n)
	}
	if v.get("r00", at(20)) == nil { // the oldest, used again
		t.Fatal("no view of r00")
	}
	// 5,000 VMs in views too many: the ten least used of the twelve go.
	v.put(wave("big", maxViewVMs-1000), at(21))
	if n := v.size(); n != 3 {
		t.Errorf("%d views after a %d-VM wave, want 3", n, maxViewVMs-1000)
	}
	for id, kept := range map[string]bool{"big": true, "r00": true, "r11": true, "r01": false, "r10": false} {
		if got := v.get(id, at(22)) != nil; got != kept {
			t.Errorf("view of %s kept: %v, want %v", id, got, kept)
		}
	}
	// A wave larger than every view may hold keeps its own.
	v.put(wave("huge", maxViewVMs+1), at(23))
	if v.size() != 1 || v.get("huge", at(24)) == nil {
		t.Errorf("%d views, want only the one just read", v.size())
	}
}
