package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
)

// With approvals.notify: dm every approver, members of approver groups included, gets the
// request with its buttons in a DM; approving there or on the channel message moves the
// VM, and the channel message and every DM show the approval, without buttons left to click.
func TestApproverDMDecidesAndStaysInStep(t *testing.T) {
	for _, mode := range transports {
		for _, where := range []string{"dm", "channel"} {
			t.Run(mode.name+", approved in the "+where, func(t *testing.T) {
				approveDMInStep(t, mode.opts, where)
			})
		}
	}
}

// approveDMInStep asks for a move with approvers told by DM, approves it in bob's DM or on
// the channel message (where), and checks that every copy shows the approval.
func approveDMInStep(t *testing.T, opts []harnessOpt, where string) {
	notifyDM := func(c *config.Config) { c.Approvals.Notify = approvals.NotifyDM }
	h := newHarness(t, append(opts, notifyDM)...)
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	if p := h.ws.Plain(msg); !strings.Contains(p, "Approvers: each asked by direct message · 1 needed") || strings.Contains(p, "@bob") {
		t.Errorf("the request does not say its approvers were asked by DM, or mentions them too:\n%s", p)
	}
	dm := func(user string) (m slacksim.Message) {
		h.await("a DM to "+user, func() bool {
			ch := h.ws.Channel(slacksim.DMChannel(user))
			if len(ch) == 1 {
				m = ch[0]
				return true
			}
			return false
		})
		return m
	}
	bob, carol := dm(uBoss), dm(uOps) // carol approves through the group
	for _, m := range []slacksim.Message{bob, carol} {
		if got := m.ActionIDs(); !slices.Contains(got, "xvm_approve") || !slices.Contains(got, "xvm_reject") {
			t.Errorf("DM in %s offers %v, want Approve and Reject", m.Channel, got)
		}
	}
	if n := len(h.ws.Channel(slacksim.DMChannel(uReq))); n != 0 {
		t.Errorf("the requester got %d DMs asking to approve her own request", n)
	}

	if where == "dm" {
		rep, err := h.ws.Click(h.ctx, uBoss, bob.Channel, bob.TS, "xvm_approve", h.requestID(msg))
		if err != nil || rep.Status != http.StatusOK {
			t.Fatalf("click in the DM: %v %+v", err, rep)
		}
	} else {
		h.click(uBoss, msg, "xvm_approve")
	}
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	if _, err := h.lab.VC("vc-west").FindVM(h.ctx, "web-01"); err != nil {
		t.Fatalf("approved in a DM, web-01 did not move: %v", err)
	}
	for name, ts := range map[string]string{"channel message": msg.TS, "bob's DM": bob.TS, "carol's DM": carol.TS} {
		h.await("the "+name+" showing the approval", func() bool {
			m := h.parent(ts)
			return !slices.Contains(m.ActionIDs(), "xvm_approve") && strings.Contains(h.ws.Plain(m), "*Approved* by @bob")
		})
	}
}

// A rejected request's reply and summary do not list its VMs as queued: they never were.
func TestRejectedRequestListsNoQueuedVMs(t *testing.T) {
	for _, mode := range transports {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.opts...)
			msg := h.request(uReq, "migrate web-01,web-02 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
			h.click(uBoss, msg, "xvm_reject")
			var reply string
			h.await("the reply to the requester that her request was rejected", func() bool {
				for _, m := range h.ws.Thread(msg.TS) {
					if p := h.ws.Plain(m); strings.Contains(p, "@alice") && strings.Contains(p, "rejected") {
						reply = p
						return true
					}
				}
				return false
			})
			summary := h.ws.Plain(h.parent(msg.TS))
			for what, text := range map[string]string{"reply": reply, "summary": summary} {
				for _, never := range []string{"Queued", "0%", "queued"} {
					if strings.Contains(text, never) {
						t.Errorf("the %s of a rejected request says %q:\n%s", what, never, text)
					}
				}
			}
			if r, err := h.stored(h.requestID(msg)); err != nil || r.State != approvals.StateRejected {
				t.Fatalf("request stored as %v (%v), want rejected", r, err)
			}
		})
	}
}
