package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// The two follow-ups of a wave, end to end: an approver's "Retry failed VMs" asks a new
// request for just the VM that failed, which moves it once approved; then "/xvm undo" of
// the first request asks one request that takes back what it moved (and nothing it did
// not), which moves the VM back once approved. Each needed its own approval.
func TestRetryFailedVMsThenUndoTheRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.lab.VC(xvmsim.EastVC).FailNextRelocation("web-02", &types.NoPermission{PrivilegeId: "Resource.HotMigrate",
		Object: &types.ManagedObjectReference{Type: "ResourcePool", Value: "resgroup-42"}})
	first := h.request(uReq, "migrate web-01,web-02 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	firstID := h.requestID(first)
	h.click(uBoss, first, "xvm_approve")
	h.awaitEnd(first.TS, approvals.StateFailed)
	h.await("the failed request to offer Retry failed VMs", func() bool {
		return slices.Equal(h.parent(first.TS).ActionIDs(), []string{"xvm_retry"})
	})

	// Retry: a new request for web-02 only, which needs its own approval.
	retry := h.newRequestAfter(func() { h.click(uBoss, h.parent(first.TS), "xvm_retry") })
	r, err := h.stored(h.requestID(retry))
	if err != nil || r.RetryOf != firstID || !slices.Equal(r.VMs, []string{"web-02"}) || r.State != approvals.StatePending {
		t.Fatalf("the retry request is %+v (%v); want web-02 alone, pending, a retry of %s", r, err, firstID)
	}
	if _, err := h.lab.VC(xvmsim.WestVC).FindVM(h.ctx, "web-02"); err == nil {
		t.Fatalf("web-02 moved before the retry was approved")
	}
	h.click(uReq, retry, "xvm_approve") // bob asked for the retry: another approver decides
	h.awaitEnd(retry.TS, approvals.StateSucceeded)
	if n := h.lab.VC(xvmsim.EastVC).XVMRelocationsOf("web-02"); n != 1 {
		t.Errorf("web-02 relocated %d times, want once", n)
	}

	// Undo of the first request: only web-01 moved through it; web-02 moved through the retry.
	undo := h.newRequestAfter(func() {
		if rep, err := h.ws.Command(h.ctx, uReq, chan1, "undo "+firstID); err != nil || rep.Status != 200 {
			t.Fatalf("/xvm undo %s: %v %+v", firstID, err, rep)
		}
	})
	u, err := h.stored(h.requestID(undo))
	if err != nil || u.UndoOf != firstID || !slices.Equal(u.VMs, []string{"web-01"}) || u.SourceVC != "vc-west" || u.TargetVC != "vc-east" {
		t.Fatalf("the undo request is %+v (%v); want web-01 from vc-west back to vc-east", u, err)
	}
	if p := h.ws.Plain(undo); !strings.Contains(p, "the way back of request "+firstID) {
		t.Errorf("the undo request does not say what it takes back:\n%s", p)
	}
	h.click(uBoss, undo, "xvm_approve")
	h.awaitEnd(undo.TS, approvals.StateSucceeded)
	if _, err := h.lab.VC(xvmsim.EastVC).FindVM(h.ctx, "web-01"); err != nil {
		t.Errorf("web-01 is not back in vc-east: %v", err)
	}
	if _, err := h.lab.VC(xvmsim.WestVC).FindVM(h.ctx, "web-02"); err != nil {
		t.Errorf("the undo of the first request took web-02 back too, which moved through the retry: %v", err)
	}
}

// newRequestAfter runs do and returns the request message it made appear in the channel.
func (h *harness) newRequestAfter(do func()) slacksim.Message {
	h.t.Helper()
	before := len(h.ws.Channel(chan1))
	do()
	var msg slacksim.Message
	h.await("a new request message", func() bool {
		for _, m := range h.ws.Channel(chan1)[before:] {
			if strings.Contains(string(m.Blocks), `"xvm_approve"`) {
				msg = m
				return true
			}
		}
		return false
	})
	return msg
}
