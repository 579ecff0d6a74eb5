package main

import (
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// A VM with a vGPU, moved to a cluster whose hosts offer its profile, is offered for
// approval: the review names the profile and has no blocker; approved, it moves.
func TestVGPUVMIsOfferedForApproval(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if err := h.lab.VC(xvmsim.EastVC).AddVGPU(h.ctx, "web-01", xvmsim.VGPUProfile); err != nil {
		t.Fatal(err)
	}
	if err := h.lab.VC(xvmsim.EastVC).SetVGPUHotMigrate(h.ctx, "true"); err != nil {
		t.Fatal(err)
	}
	west := h.lab.VC(xvmsim.WestVC)
	for _, host := range []string{xvmsim.WestHost1, xvmsim.WestHost2, xvmsim.WestHost3} {
		if _, err := west.SetHostVGPUProfiles(host, xvmsim.VGPUProfile); err != nil {
			t.Fatal(err)
		}
	}
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	review := h.ws.Plain(msg)
	if !strings.Contains(review, "vGPU of profile "+xvmsim.VGPUProfile) {
		t.Errorf("the review does not name the vGPU profile:\n%s", review)
	}
	for _, refused := range []string{"cannot be approved", "PCI passthrough device"} {
		if strings.Contains(review, refused) {
			t.Errorf("the review says %q:\n%s", refused, review)
		}
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	if _, err := west.FindVM(h.ctx, "web-01"); err != nil {
		t.Errorf("web-01 is not in vc-west: %v", err)
	}
}
