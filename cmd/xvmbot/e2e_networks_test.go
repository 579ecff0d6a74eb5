package main

import (
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// A VM on an NSX segment of an N-VDS (an opaque network) moves onto a segment of the
// target, mapped by the segment's name as the vSphere Client shows it, and the move
// is reported as done: after it the VM's NIC is found on the segment it was sent to.
func TestMoveOntoNSXSegment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	msg := h.request(uReq, "migrate "+xvmsim.SegmentVM+" to vc-west cluster="+xvmsim.WestNSXCluster+
		" datastore=ds-gold network="+xvmsim.EastSegment+":"+xvmsim.WestSegment)
	if review := h.ws.Plain(msg); !strings.Contains(review, xvmsim.WestSegment) {
		t.Errorf("the review does not show the segment:\n%s", review)
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	p, err := h.lab.VC(xvmsim.WestVC).FindVM(h.ctx, xvmsim.SegmentVM)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.NICs) != 1 || !p.NICs[0].Segment || p.NICs[0].Network != xvmsim.WestSegment {
		t.Errorf("%s's NICs in vc-west: %+v, want one on segment %s", xvmsim.SegmentVM, p.NICs, xvmsim.WestSegment)
	}
}

// A portgroup named after its subnet and a VM with a slash in its name, typed as the
// vSphere Client shows them: the review shows them so, and the VM lands with its NIC
// on that portgroup.
func TestCIDRPortgroupTypedAsShown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	msg := h.request(uReq, "migrate app/01 to vc-west cluster="+xvmsim.WestNSXCluster+" datastore=ds-gold network=10.10.12.0/24")
	review := h.ws.Plain(msg)
	for _, want := range []string{"app/01", "10.10.12.0/24"} {
		if !strings.Contains(review, want) {
			t.Errorf("the review does not show %q:\n%s", want, review)
		}
	}
	if strings.Contains(review, "%2f") {
		t.Errorf("the review shows a name as vCenter escapes it:\n%s", review)
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	p, err := h.lab.VC(xvmsim.WestVC).FindVM(h.ctx, xvmsim.SlashVM)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.NICs) != 1 || p.NICs[0].Network != xvmsim.WestCIDRPortgroup {
		t.Errorf("%s's NICs in vc-west: %+v, want one on %s", xvmsim.SlashVM, p.NICs, xvmsim.WestCIDRPortgroup)
	}
}
