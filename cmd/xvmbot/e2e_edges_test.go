package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
)

// End-to-end tests of what a person with a valid signed payload, or a Slack that stops
// answering, could do to the approval flow: replays across a restart, clicks from another
// channel, and approver groups that cannot be resolved.

// A signed slash command stays valid for five minutes. Captured and sent again after the
// bot restarted, it used to make a second request: delivery keys lived in memory only.
func TestReplayedCommandAfterRestartMakesNoSecondRequest(t *testing.T) {
	h, cfg, first := newStoppableHarness(t, nil)
	body := url.Values{"token": {"unused"}, "team_id": {"T0XVM"}, "channel_id": {chan1}, "user_id": {uReq}, "user_name": {"alice"},
		"command": {"/xvm"}, "text": {"migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg"},
		"response_url": {h.ws.APIURL() + "response/" + chan1 + "/" + uReq + "/1"}, "trigger_id": {"12345.67890.replayed"},
		"api_app_id": {"A0XVM"}}.Encode()
	headers := slacksim.Sign(h.signing, time.Now(), body)

	rep, err := h.ws.Deliver(h.ctx, "/slack/commands", body, headers)
	if err != nil || rep.Status != http.StatusOK || !strings.Contains(rep.Body, "Checking web-01") {
		t.Fatalf("first delivery: %v %+v", err, rep)
	}
	h.await("the approval message", func() bool { return len(h.ws.Channel(chan1)) == 1 })

	first.stop()
	second := h.startStoppable(cfg) // same NATS data dir
	h.sys = second.sys
	// The ack is decided before the shared log is asked (it stays fast): it may say
	// "Checking…". What counts is that nothing is stored or posted.
	rep, err = h.ws.Deliver(h.ctx, "/slack/commands", body, headers)
	if err != nil || rep.Status != http.StatusOK {
		t.Fatalf("replay after the restart was answered: %v %+v", err, rep)
	}
	// A new command goes through, and is the only other request.
	h.request(uReq, "migrate web-02 to vc-west cluster=west-prod datastore=ds-silver network=app-pg")
	all, err := h.sys.Approvals().Store().List(h.ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("%d requests stored (%v), want 2: the replay made one", len(all), err)
	}
	if n := len(h.ws.Channel(chan1)); n != 2 {
		t.Fatalf("%d approval messages, want 2:\n%s", n, h.transcript())
	}
}

// A request is decided on its own message: a signed click naming it from another channel
// changes nothing.
func TestClickFromAnotherChannelChangesNothing(t *testing.T) {
	h, _, _ := newStoppableHarness(t, nil)
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	id := h.requestID(msg)
	n := len(h.ws.Ephemerals(uBoss))
	if rep, err := h.ws.Click(h.ctx, uBoss, "C0ELSEWHERE", msg.TS, "xvm_approve", id); err != nil || rep.Status != http.StatusOK {
		t.Fatalf("click: %v %+v", err, rep)
	}
	h.awaitEphemeral(uBoss, n, "is decided in")
	if r, err := h.sys.Approvals().Get(h.ctx, id); err != nil || r.State != approvals.StatePending || len(r.Approvals) != 0 {
		t.Fatalf("request after a click from another channel: %+v %v", r, err)
	}
	if h.jobsPublished() != 0 {
		t.Fatal("jobs were queued")
	}
}

// While Slack does not answer usergroups.users.list, an approver listed by user ID still
// approves; a member of an approver group is told why they cannot, and nothing changes.
func TestApproverGroupUnreachable(t *testing.T) {
	h, _, _ := newStoppableHarness(t, nil)
	h.ws.Fail("usergroups.users.list")
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	id := h.requestID(msg)

	n := len(h.ws.Ephemerals(uOps))
	h.click(uOps, msg, "xvm_approve")
	answer := h.awaitEphemeral(uOps, n, "cannot check the members of the approver groups")
	if !strings.Contains(answer, "nothing was changed") || !strings.Contains(answer, "Try again") {
		t.Errorf("the group member's answer:\n%s", answer)
	}
	if r, _ := h.sys.Approvals().Get(h.ctx, id); r.State != approvals.StatePending || len(r.Approvals) != 0 {
		t.Fatalf("request after the group member's click: %s with %d approvals", r.State, len(r.Approvals))
	}

	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
}
