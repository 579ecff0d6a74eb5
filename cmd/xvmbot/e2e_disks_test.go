package main

import (
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// Disks that are not copied, from the request to the VM in the target: a VM with a 4 TiB
// physical-mode RDM moves onto a datastore with 3 TiB free, because only the RDM's
// mapping file moves (the review says so) and the RDM arrives mapping the same LUN; a VM
// whose 4 TiB disk is on storage both vCenters mount moves onto it, the review saying
// that disks are not copied, and keeps its very disk.
func TestDisksThatAreNotCopied(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if err := h.lab.AddDiskScenarios(h.ctx); err != nil {
		t.Fatal(err)
	}
	west := h.lab.VC(xvmsim.WestVC)

	msg := h.request(uReq, "migrate rdm-phys to vc-west cluster=west-prod datastore=ds-silver network=app-pg")
	review := h.ws.Plain(msg)
	for _, want := range []string{"Hard disk 2 of rdm-phys is a raw device mapping (RDM) in physical compatibility mode",
		xvmsim.RDMPhysicalLUN, "only its mapping file moves to ds-silver"} {
		if !strings.Contains(review, want) {
			t.Errorf("the review does not say %q:\n%s", want, review)
		}
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	p, err := west.FindVM(h.ctx, xvmsim.RDMPhysicalVM)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Disks) != 2 || p.Disks[1].RDM != string(types.VirtualDiskCompatibilityModePhysicalMode) || p.Disks[1].LUN != xvmsim.RDMPhysicalLUN {
		t.Errorf("rdm-phys's disks in vc-west: %+v, want Hard disk 2 a physical RDM of %s", p.Disks, xvmsim.RDMPhysicalLUN)
	}

	msg = h.request(uReq, "migrate shared-01 to vc-west cluster=west-prod datastore=ds-shared network=app-pg")
	if review := h.ws.Plain(msg); !strings.Contains(review, "ds-shared is the same storage in both vCenters: disks are not copied") {
		t.Errorf("the review does not say that ds-shared is the same storage:\n%s", review)
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	p, err = west.FindVM(h.ctx, xvmsim.SharedVM)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Disks) != 1 || p.Disks[0].Datastore != xvmsim.SharedDatastore || p.Disks[0].Thin || p.Disks[0].CapacityKB != xvmsim.SharedDiskKB {
		t.Errorf("shared-01's disks in vc-west: %+v, want its thick disk on %s", p.Disks, xvmsim.SharedDatastore)
	}
}
