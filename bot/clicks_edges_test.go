package bot

import (
	"encoding/json"
	"fmt"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// clickIn is a click on the message at ts as Slack would send it from channel: a signed
// block_actions payload, over HTTP.
func (e *env) clickIn(channel, user, ts, actionID, value string) delivery {
	e.t.Helper()
	body := url.Values{"payload": {clickPayload(user, channel, ts, actionID, value, e.nextTrigger())}}.Encode()
	return e.deliver(PathInteractions, body, slacksim.Sign(testSecret, time.Now(), body))
}

// submitView sends a view_submission of a modal with the given private_metadata and input
// values (block id → action id → value), signed, over HTTP, and returns the errors shown in
// the dialog.
func (e *env) submitView(user, callbackID, metadata string, values map[string]map[string]any) map[string]string {
	e.t.Helper()
	p := map[string]any{
		"type": "view_submission", "api_app_id": "A0XVM", "token": "legacy", "trigger_id": e.nextTrigger(),
		"user": map[string]any{"id": user, "name": strings.ToLower(user), "team_id": "T0XVM"},
		"team": map[string]any{"id": "T0XVM", "domain": "xvm-lab"},
		"view": map[string]any{"id": "V0" + e.nextTrigger(), "type": "modal", "callback_id": callbackID, "private_metadata": metadata,
			"state": map[string]any{"values": values}},
	}
	raw, _ := json.Marshal(p)
	body := url.Values{"payload": {string(raw)}}.Encode()
	d := e.deliver(PathInteractions, body, slacksim.Sign(testSecret, time.Now(), body))
	if d.status != http.StatusOK {
		e.t.Fatalf("view submission: %d %s", d.status, d.body)
	}
	var ack struct {
		Errors map[string]string `json:"errors"`
	}
	_ = json.Unmarshal([]byte(d.body), &ack)
	return ack.Errors
}

// A request is decided on its own message. A click naming it from another channel — a
// payload Slack never sends for a button that is not there, or a channel outside the
// allowlist — changes nothing and is answered privately.
func TestDecisionsComeFromTheRequestsChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		channels []string
		from     string
		action   string
		want     string
	}{
		{name: "approve from another channel", from: "C0ELSE", action: ActionApprove, want: "is decided in <#" + testChannel + ">"},
		{name: "reject from another channel", from: "C0ELSE", action: ActionReject, want: "is decided in <#" + testChannel + ">"},
		{name: "cancel from another channel", from: "C0ELSE", action: ActionCancel, want: "is decided in <#" + testChannel + ">"},
		{name: "approve outside the allowlist", channels: []string{testChannel}, from: "C0ELSE", action: ActionApprove, want: "does not take requests or decisions in this channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.Channels = tt.channels })
			r, msg := e.submit("migrate web-01 to vc-west")
			if d := e.clickIn(tt.from, approver, msg.TS, tt.action, r.ID); d.status != http.StatusOK {
				t.Fatalf("click: %d", d.status)
			}
			e.settle()
			eph := e.ephemeralsTo(approver)
			if len(eph) != 1 || !strings.Contains(eph[0].Words(), tt.want) || !strings.Contains(eph[0].Words(), "nothing was changed") {
				t.Fatalf("answer %+v, want it to say %q", eph, tt.want)
			}
			if eph[0].Channel != tt.from {
				t.Fatalf("answered in %s, want where the click came from (%s)", eph[0].Channel, tt.from)
			}
			if got := e.get(r.ID); got.State != approvals.StatePending || len(got.Approvals) != 0 {
				t.Fatalf("request %s with %d approvals after a misplaced click", got.State, len(got.Approvals))
			}
			if e.slack.Calls("views.open") != 0 || len(e.jobs.published()) != 0 {
				t.Fatal("a misplaced click opened a dialog or queued jobs")
			}
			if v := counterValue(e.bot.m.approvals.WithLabelValues(decisionDenied)); v != 1 {
				t.Fatalf("denied decisions counted %v, want 1", v)
			}
		})
	}
}

// The reason dialog carries the channel the Reject click came from; a submission that
// says another one decides nothing.
func TestRejectionFromAnotherChannelChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01 to vc-west")
	meta := modalContext{Request: r.ID, Channel: "C0ELSE", MessageTS: msg.TS}.encode()
	errs := e.submitView(approver, callbackReject, meta, map[string]map[string]any{
		blockReason: {actionReason: map[string]any{"type": "plain_text_input", "value": "not here"}}})
	if !strings.Contains(errs[blockReason], "is decided in") {
		t.Fatalf("dialog errors %v", errs)
	}
	e.settle()
	if got := e.get(r.ID); got.State != approvals.StatePending || got.Rejection != nil {
		t.Fatalf("request %s, rejection %+v", got.State, got.Rejection)
	}
}

// A wizard submission posts its request in the channel named in its metadata: only an
// allowed one.
func TestWizardSubmissionOnlyPostsIntoAnAllowedChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.Channels = []string{testChannel} })
	sel := func(v string) map[string]any {
		return map[string]any{"type": "static_select", "selected_option": map[string]any{"value": v}}
	}
	values := map[string]map[string]any{
		wizSource:    {wizSource: sel("vc-east")},
		wizTarget:    {wizTarget: sel("vc-west")},
		wizVMs:       {wizVMs: map[string]any{"type": "multi_external_select", "selected_options": []any{map[string]any{"value": "web-01"}}}},
		wizCompute:   {wizCompute: sel("cluster:cl-west")},
		wizDatastore: {wizDatastore: sel("ds-west-1")},
	}
	for _, ch := range []string{"C0ELSE", ""} {
		meta := modalContext{Channel: ch, Direction: string(approvals.Migrate)}.encode()
		errs := e.submitView(requester, callbackWizard, meta, values)
		if !strings.Contains(errs[wizSource], "does not take requests in that channel") {
			t.Fatalf("submission into %q: dialog errors %v", ch, errs)
		}
	}
	e.settle()
	if len(e.planner.specs) != 0 || len(e.requests()) != 0 || len(e.slack.Public()) != 0 {
		t.Fatalf("a refused submission was planned, stored or posted")
	}
	// The same answers from the allowed channel go through.
	meta := modalContext{Channel: testChannel, Direction: string(approvals.Migrate)}.encode()
	if errs := e.submitView(requester, callbackWizard, meta, values); len(errs) != 0 {
		t.Fatalf("submission from the allowed channel refused: %v", errs)
	}
	e.settle()
	if n := len(e.requests()); n != 0 {
		t.Fatalf("%d requests stored by the review, want none before Request approval", n)
	}
	// "Request approval" on the review page: its choices travel in the view's metadata,
	// and they too are posted only into an allowed channel.
	ws := wizardState{Direction: approvals.Migrate, Source: "vc-east", Target: "vc-west", VMs: []string{"web-01"},
		Compute: "cluster:cl-west", Datastore: "ds-west-1"}
	ws.Channel = "C0ELSE"
	e.submitView(requester, callbackReview, ws.choices(), nil)
	e.settle()
	if n := len(e.requests()); n != 0 {
		t.Fatalf("a review from another channel stored %d requests", n)
	}
	ws.Channel = testChannel
	e.submitView(requester, callbackReview, ws.choices(), nil)
	e.settle()
	if n := len(e.requests()); n != 1 {
		t.Fatalf("%d requests from the allowed channel, want 1", n)
	}
}

// Slack sends one action per click. A payload carrying thousands used to run an
// approval for each; now the first request button is handled and the rest ignored.
func TestOnePayloadIsOneDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	var ts string
	for _, vm := range []string{"web-01", "web-02", "web-03"} {
		r, msg := e.submit("migrate " + vm + " to vc-west")
		ids = append(ids, r.ID)
		if ts == "" {
			ts = msg.TS
		}
	}
	actions := []any{}
	for i := range 10 {
		actions = append(actions, map[string]any{"action_id": fmt.Sprintf("something_else_%d", i), "type": "button", "value": ids[0]})
	}
	for i := range 2000 {
		actions = append(actions, map[string]any{"action_id": ActionApprove, "type": "button", "value": ids[i%len(ids)], "block_id": "req"})
	}
	var p map[string]any
	_ = json.Unmarshal([]byte(clickPayload(approver, testChannel, ts, ActionApprove, ids[0], e.nextTrigger())), &p)
	p["actions"] = actions
	raw, _ := json.Marshal(p)
	body := url.Values{"payload": {string(raw)}}.Encode()
	if d := e.deliver(PathInteractions, body, slacksim.Sign(testSecret, time.Now(), body)); d.status != http.StatusOK {
		t.Fatalf("payload of %d actions: %d %s", len(actions), d.status, d.body)
	}
	e.settle()
	if got := e.get(ids[0]); got.State != approvals.StateQueued {
		t.Fatalf("the first request button's request is %s, want queued", got.State)
	}
	for _, id := range ids[1:] {
		if got := e.get(id); got.State != approvals.StatePending || len(got.Approvals) != 0 {
			t.Fatalf("request %s is %s with %d approvals: more than one action was handled", id, got.State, len(got.Approvals))
		}
	}
	attempts := 0.0
	for _, d := range []string{decisionApproved, decisionDenied, decisionDuplicate, decisionExpired} {
		attempts += counterValue(e.bot.m.approvals.WithLabelValues(d))
	}
	if attempts != 1 {
		t.Fatalf("%v approval attempts, want exactly 1", attempts)
	}
	if n := len(e.jobs.published()); n != 1 {
		t.Fatalf("%d jobs published, want 1", n)
	}
}

// A group ID sent as the clicking user is nobody, though the group is an approver.
func TestGroupIDAsUserCannotDecide(t *testing.T) {
	t.Parallel()
	const group = "S0123GRP"
	e := newEnv(t, func(_ *Config, p *approvals.Policy) { p.Approvers = append(p.Approvers, group) })
	r, msg := e.submit("migrate web-01 to vc-west")
	for _, action := range []string{ActionApprove, ActionReject, ActionCancel} {
		e.click(group, msg.TS, action, r.ID)
	}
	e.settle()
	eph := e.ephemeralsTo(group)
	if len(eph) != 3 {
		t.Fatalf("%d answers to 3 clicks, want 3: %+v", len(eph), eph)
	}
	for _, m := range eph {
		if !strings.Contains(m.Words(), "Only Slack users") || !strings.Contains(m.Words(), "nothing was changed") {
			t.Fatalf("answer %q", m.Words())
		}
	}
	if got := e.get(r.ID); got.State != approvals.StatePending || len(got.Approvals) != 0 || got.Rejection != nil {
		t.Fatalf("request %s after clicks by a group ID: %+v", got.State, got)
	}
	if e.slack.Calls("views.open") != 0 {
		t.Fatal("a reason dialog was opened for a group ID")
	}
	if v := counterValue(e.bot.m.approvals.WithLabelValues(decisionDenied)); v != 3 {
		t.Fatalf("denied decisions counted %v, want 3", v)
	}
}
