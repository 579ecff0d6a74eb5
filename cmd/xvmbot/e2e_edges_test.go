package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
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
	all, err := h.sys.svc.Store().List(h.ctx)
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
	if r, err := h.sys.svc.Get(h.ctx, id); err != nil || r.State != approvals.StatePending || len(r.Approvals) != 0 {
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
	if r, _ := h.sys.svc.Get(h.ctx, id); r.State != approvals.StatePending || len(r.Approvals) != 0 {
		t.Fatalf("request after the group member's click: %s with %d approvals", r.State, len(r.Approvals))
	}

	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
}

// The members of an approver group are used for at most approvals.group_max_stale once
// Slack stops answering: someone removed from the group meanwhile stops approving then.
// This drives the real Slack client against the local Slack, on an injected clock.
func TestApproverGroupStalenessIsBounded(t *testing.T) {
	ws := slacksim.New()
	t.Cleanup(ws.Close)
	ws.SetGroup(gOps, uOps, uNope)
	cfg := defaultConfig()
	cfg.Slack = SlackConfig{BotToken: "xoxb-test", APIURL: ws.APIURL()}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	signer, _ := approvaltest.Key(1)
	groups := newGroupMembers(cfg, logger).WithClock(func() time.Time { return now })
	svc := approvals.NewService(approvals.NewMemoryStore(), approvals.Policy{Approvers: []string{uBoss, gOps}, Quorum: 1},
		groups, logger).WithClock(func() time.Time { return now }).WithSigner(signer)
	ctx := context.Background()
	approve := func(user string) error {
		r := &approvals.Request{Direction: approvals.Migrate, VMs: []string{"web-01"}, SourceVC: "vc-east", TargetVC: "vc-west",
			Requester: uReq, Channel: chan1, Review: approvals.Review{
				Source: approvals.VCenterRef{Name: "vc-east", InstanceUUID: "uuid-east"},
				Target: approvals.VCenterRef{Name: "vc-west", InstanceUUID: "uuid-west"},
				VMs:    []approvals.ReviewVM{{Name: "web-01", Ref: "vm-40"}}}}
		if err := svc.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
		_, _, err := svc.Approve(ctx, r.ID, user)
		return err
	}

	if err := approve(uNope); err != nil {
		t.Fatalf("a group member while Slack answers: %v", err)
	}
	ws.SetGroup(gOps, uOps) // dave leaves the group…
	ws.Fail("usergroups.users.list")
	now = now.Add(5 * time.Minute) // …while Slack does not answer: the last list is used
	if err := approve(uNope); err != nil {
		t.Fatalf("within group_max_stale: %v", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), gOps) {
		t.Errorf("serving a stale group logged no warning:\n%s", logs.String())
	}
	now = now.Add(6 * time.Minute) // past the default 10m
	for _, user := range []string{uNope, uOps} {
		if err := approve(user); !errors.Is(err, approvals.ErrGroupUnavailable) {
			t.Fatalf("%s past group_max_stale: %v", user, err)
		}
	}
	if err := approve(uBoss); err != nil {
		t.Fatalf("an approver by user ID past group_max_stale: %v", err)
	}
	ws.Recover("usergroups.users.list")
	if err := approve(uNope); !errors.Is(err, approvals.ErrNotApprover) {
		t.Fatalf("dave, no longer in the group, once Slack answers: %v", err)
	}
	if err := approve(uOps); err != nil {
		t.Fatalf("carol, still in the group, once Slack answers: %v", err)
	}
}
