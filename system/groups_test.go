package system

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/move"
)

// People of the approver-group test.
const (
	chan1 = "C0MOVES"
	uReq  = "U0ALICE"
	uBoss = "U0BOB"
	uOps  = "U0CAROL" // approver through the group
	uNope = "U0DAVE"
	gOps  = "S0OPS"
)

// The members of an approver group are used for at most approvals.group_max_stale once
// Slack stops answering: someone removed from the group meanwhile stops approving then.
// This drives the real Slack client against the local Slack, on an injected clock.
func TestApproverGroupStalenessIsBounded(t *testing.T) {
	ws := slacksim.New()
	t.Cleanup(ws.Close)
	ws.SetGroup(gOps, uOps, uNope)
	cfg := config.Default()
	cfg.Slack = config.SlackConfig{BotToken: "xoxb-test", APIURL: ws.APIURL()}
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
				VMs:    []approvals.ReviewVM{{VM: move.VM{Name: "web-01", Ref: "vm-40"}}}}}
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
