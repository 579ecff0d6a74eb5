package bot

import (
	"context"
	"encoding/json"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// withPool sizes the bot's pool for work after the ack.
func withPool(workers, queue int) envOption {
	return func(c *Config, _ *approvals.Policy) { c.Workers, c.WorkQueue = workers, queue }
}

// slowVCenter makes every pre-flight wait until the returned release is called (at the
// latest when the test ends, so a failed test does not hang on the work it left behind),
// and reports each one that starts on entered.
func (e *env) slowVCenter() (entered <-chan struct{}, release func()) {
	gate, in := make(chan struct{}), make(chan struct{}, 64)
	e.planner.gate, e.planner.entered = gate, in
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	e.t.Cleanup(release)
	return in, release
}

// waitUntil waits for cond, polling; it fails the test if cond is still false after a
// minute (a hang, not a slow machine).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// gaugeValue reads a gauge the bot registered, as a scrape would.
func gaugeValue(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// fillPool occupies the pool of one worker and a queue of one: a migrate whose pre-flight
// hangs on the slow vCenter, and one more waiting behind it. Both are acknowledged as
// accepted.
func fillPool(t *testing.T, e *env, entered <-chan struct{}, vms ...string) {
	t.Helper()
	for i, vm := range vms {
		if got := ackText(t, e.command(requester, "migrate "+vm+" to vc-west")); !strings.Contains(got, "Checking "+vm) {
			t.Fatalf("migrate %s before the pool is full answered %q", vm, got)
		}
		if i == 0 {
			<-entered // the only worker is busy with it
		}
	}
	if q := gaugeValue(t, e, "xvm_slack_work_queued"); q != float64(len(vms)-1) {
		t.Fatalf("xvm_slack_work_queued = %v, want %d", q, len(vms)-1)
	}
	if r := gaugeValue(t, e, "xvm_slack_work_running"); r != 1 {
		t.Fatalf("xvm_slack_work_running = %v, want 1", r)
	}
}

func TestOverloadedCommandsAreRefusedInTheAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPool(1, 1))
	entered, release := e.slowVCenter()
	fillPool(t, e, entered, "web-01", "web-02")

	tests := []struct {
		text, work, verb string
		want             []string
	}{
		{text: "migrate web-03 to vc-west", work: workPlan, verb: VerbMigrate,
			want: []string{"Nothing was stored", "nobody was asked to approve", "web-03"}},
		{text: "import db-09 from vc-west", work: workPlan, verb: VerbImport, want: []string{"Nothing was stored", "db-09"}},
		{text: "check migrate web-04 to vc-west", work: workPlan, verb: VerbCheck, want: []string{"Nothing was checked"}},
		{text: "cancel xvm-abcdef12", work: VerbCancel, verb: VerbCancel, want: []string{"Nothing was cancelled", "xvm-abcdef12"}},
		{text: "undo xvm-abcdef12-1", work: VerbUndo, verb: VerbUndo, want: []string{"Nothing was stored"}},
		{text: "status xvm-abcdef12", work: VerbStatus, verb: VerbStatus},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			refused := e.bot.m.refused.WithLabelValues(tt.work, reasonBusy)
			before := counterValue(refused)
			got := ackText(t, e.command(requester, tt.text))
			if after := counterValue(refused); after != before+1 {
				t.Errorf("xvm_slack_work_refused_total{%s,busy} went from %v to %v, want one more", tt.work, before, after)
			}
			for _, w := range append([]string{"xvmbot is busy right now", "1 command is waiting", "Try again in a minute"}, tt.want...) {
				if !strings.Contains(got, w) {
					t.Errorf("ack %q does not say %q", got, w)
				}
			}
			if strings.Contains(got, "Checking") {
				t.Errorf("a refused command was told it is being checked: %q", got)
			}
			if v := counterValue(e.bot.m.commands.WithLabelValues(verbLabel(tt.verb), outcomeBusy)); v != 1 {
				t.Errorf("xvm_commands_total{%s,busy} = %v, want 1", tt.verb, v)
			}
		})
	}
	if v := counterValue(e.bot.m.refused.WithLabelValues(workPlan, reasonBusy)); v != 3 {
		t.Errorf("xvm_slack_work_refused_total{plan,busy} = %v, want 3", v)
	}

	// The block lifts: what was queued completes, what was refused never happened.
	release()
	e.settle()
	var stored []string
	for _, r := range e.requests() {
		if r.MessageTS == "" || r.State != approvals.StatePending {
			t.Errorf("request %s for %v: %s, message %q", r.ID, r.VMs, r.State, r.MessageTS)
		}
		stored = append(stored, r.VMs...)
	}
	slices.Sort(stored)
	if !slices.Equal(stored, []string{"web-01", "web-02"}) {
		t.Fatalf("requests stored for %v, want web-01 and web-02 only", stored)
	}
	for _, s := range e.planner.specs {
		if slices.Contains(s.VMs, "web-03") || slices.Contains(s.VMs, "web-04") || slices.Contains(s.VMs, "db-09") {
			t.Fatalf("a refused command was pre-flighted: %+v", s)
		}
	}
	if n := len(e.slack.Public()); n != 2 {
		t.Fatalf("%d messages posted, want the 2 approval messages", n)
	}
}

func TestOverloadedClickLeavesTheRequestAsItWas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action string
		want   []string
		after  approvals.State // once the pool is free, the same click again
	}{
		{action: ActionApprove, want: []string{"approval of", "was *not* counted", "still pending"}, after: approvals.StateQueued},
		{action: ActionReject, want: []string{"rejection of", "was *not* recorded", "still pending"}, after: approvals.StateRejected},
		{action: ActionCancel, want: []string{"was *not* cancelled"}, after: approvals.StateCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			e := newEnv(t, withPool(1, 1))
			r, msg := e.submit("migrate db-01 to vc-west")
			entered, release := e.slowVCenter()
			fillPool(t, e, entered, "web-01", "web-02")

			if d := e.click(approver, msg.TS, tt.action, r.ID); d.status != http.StatusOK {
				t.Fatalf("click ack %d %q", d.status, d.body)
			}
			// Slack shows nothing of a click's ack: the answer comes as an ephemeral message,
			// while the pool is still full.
			var told string
			waitUntil(t, "the overload notice", func() bool {
				eph := e.ephemeralsTo(approver)
				if len(eph) == 0 {
					return false
				}
				told = eph[0].Words()
				return true
			})
			for _, w := range append([]string{"xvmbot is busy right now", "1 command is waiting", r.ID, "Try again in a minute"}, tt.want...) {
				if !strings.Contains(told, w) {
					t.Errorf("approver told %q, which does not say %q", told, w)
				}
			}
			got := e.get(r.ID)
			if got.State != approvals.StatePending || len(got.Approvals) != 0 || got.Rejection != nil || got.Cancellation != nil {
				t.Fatalf("refused %s changed the request: %s, approvals %v, rejection %+v, cancellation %+v",
					tt.action, got.State, got.Approvals, got.Rejection, got.Cancellation)
			}
			if parent := e.message(msg.TS); parent.Edits != 0 || !slices.Contains(parent.ActionIDs(), ActionApprove) {
				t.Fatalf("refused %s touched the message: %d edits, buttons %v", tt.action, parent.Edits, parent.ActionIDs())
			}
			if v := counterValue(e.bot.m.refused.WithLabelValues(tt.action, reasonBusy)); v != 1 {
				t.Fatalf("xvm_slack_work_refused_total{%s,busy} = %v, want 1", tt.action, v)
			}

			release()
			e.settle()
			if n := len(e.requests()); n != 3 {
				t.Fatalf("%d requests after the block lifted, want 3 (the queued migrates completed)", n)
			}
			if n := len(e.jobs.published()); n != 0 {
				t.Fatalf("%d jobs published before anyone approved", n)
			}
			// The same click, now that there is room, is taken.
			e.click(approver, msg.TS, tt.action, r.ID)
			e.settle()
			if got := e.get(r.ID).State; got != tt.after {
				t.Fatalf("the %s click once the pool was free left the request %s, want %s", tt.action, got, tt.after)
			}
		})
	}
}

// submitRejection submits the reject dialog of request id with a reason, as Slack does.
func (e *env) submitRejection(user, id, ts, reason string) delivery {
	e.t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"type": "view_submission", "api_app_id": "A0XVM", "trigger_id": e.nextTrigger(),
		"user": map[string]any{"id": user, "team_id": "T0XVM"},
		"view": map[string]any{"id": "V0REJECT", "type": "modal", "callback_id": callbackReject,
			"private_metadata": modalContext{Request: id, Channel: testChannel, MessageTS: ts}.encode(),
			"state": map[string]any{"values": map[string]any{blockReason: map[string]any{actionReason: map[string]any{
				"type": "plain_text_input", "value": reason}}}}},
	})
	body := url.Values{"payload": {string(payload)}}.Encode()
	return e.deliver(PathInteractions, body, slacksim.Sign(testSecret, time.Now(), body))
}

func TestOverloadedRejectionDialogRecordsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPool(1, 1))
	r, msg := e.submit("migrate db-01 to vc-west")
	entered, release := e.slowVCenter()
	fillPool(t, e, entered, "web-01", "web-02")

	d := e.submitRejection(approver, r.ID, msg.TS, "change freeze")
	if d.status != http.StatusOK || !strings.Contains(d.body, "busy right now") || !strings.Contains(d.body, "not recorded") {
		t.Fatalf("rejection dialog answered %d %s, want an error saying it was not recorded", d.status, d.body)
	}
	if got := e.get(r.ID); got.State != approvals.StatePending || got.Rejection != nil {
		t.Fatalf("refused rejection changed the request: %s %+v", got.State, got.Rejection)
	}
	release()
	e.settle()
	if got := e.get(r.ID).State; got != approvals.StatePending {
		t.Fatalf("request is %s after the block lifted, want pending", got)
	}
}

func TestShutdownDrainsQueuedWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPool(1, 2))
	entered, release := e.slowVCenter()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.Run(ctx) }()
	fillPool(t, e, entered, "web-01", "web-02", "web-03")

	cancel()
	waitUntil(t, "shutdown to begin", func() bool { return e.bot.Ready() != nil })
	if got := ackText(t, e.command(requester, "migrate web-04 to vc-west")); !strings.Contains(got, "restarting") ||
		!strings.Contains(got, "Nothing was stored") {
		t.Fatalf("a command during shutdown was told %q", got)
	}
	if v := counterValue(e.bot.m.refused.WithLabelValues(workPlan, reasonShuttingDown)); v != 1 {
		t.Fatalf("xvm_slack_work_refused_total{plan,shutting_down} = %v, want 1", v)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	var stored []string
	for _, r := range e.requests() {
		if r.MessageTS == "" {
			t.Errorf("request %s was stored but not posted", r.ID)
		}
		stored = append(stored, r.VMs...)
	}
	slices.Sort(stored)
	if !slices.Equal(stored, []string{"web-01", "web-02", "web-03"}) {
		t.Fatalf("after shutdown, requests for %v; want the running and both queued migrates", stored)
	}
}
