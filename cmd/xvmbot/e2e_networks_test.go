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

// A portgroup named after its subnet, a VM and a folder with a slash in their names,
// typed as the vSphere Client shows them: the review shows the VM and the portgroup so,
// and the VM lands in that folder with its NIC on that portgroup.
func TestCIDRPortgroupTypedAsShown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	msg := h.request(uReq, "migrate app/01 to vc-west cluster="+xvmsim.WestNSXCluster+" datastore=ds-gold network=10.10.12.0/24 folder=dev/test")
	review := h.ws.Plain(msg)
	for _, want := range []string{"app/01", "10.10.12.0/24"} {
		if !strings.Contains(review, want) {
			t.Errorf("the review does not show %q:\n%s", want, review)
		}
	}
	for _, escaped := range []string{xvmsim.SlashVM, xvmsim.WestCIDRPortgroup} {
		if strings.Contains(review, escaped) {
			t.Errorf("the review shows %s as vCenter escapes it:\n%s", escaped, review)
		}
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	p, err := h.lab.VC(xvmsim.WestVC).FindVM(h.ctx, xvmsim.SlashVM)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.NICs) != 1 || p.NICs[0].Network != xvmsim.WestCIDRPortgroup || p.Folder != xvmsim.WestSlashFolder {
		t.Errorf("%s in vc-west: folder %q, NICs %+v; want folder %s and one NIC on %s", xvmsim.SlashVM, p.Folder, p.NICs, xvmsim.WestSlashFolder, xvmsim.WestCIDRPortgroup)
	}
}
