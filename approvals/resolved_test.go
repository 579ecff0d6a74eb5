package approvals

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// The placement pre-flight resolved for each VM, by object identity, is what the
// approvers approved with it: the approval signs it, each job's grant carries its VM's,
// and a grant that says another placement (even one signed by the same bot) is not
// admitted. A review without it (a record from before it was kept) is approved as ever.
func TestApprovalBindsEachVMsResolvedPlacement(t *testing.T) {
	ctx := context.Background()
	signer := testSigner(t, 1)
	keys := keyringOf(signer)
	s, c := newService(t, Policy{Approvers: []string{"U0BOSS"}, ExpireAfter: time.Hour, RunWithin: 24 * time.Hour})
	s.WithSigner(signer)
	at := func(host string) *move.Resolved {
		return &move.Resolved{PowerState: "poweredOn", Host: move.Object{Type: "HostSystem", Value: host, Name: "esx-w1.lab"},
			Pool: move.Object{Type: "ResourcePool", Value: "resgroup-9"}, Datastore: move.Object{Type: "Datastore", Value: "datastore-12"},
			Folder: move.Object{Type: "Folder", Value: "group-v5"}, Disks: []move.ResolvedDisk{{Key: 2000, Datastore: "datastore-12", Format: move.Thin}},
			NICs: []move.ResolvedNIC{{Key: 4000, Network: move.Object{Type: "DistributedVirtualPortgroup", Value: "dvportgroup-20"},
				SwitchUUID: "50 2a", PortgroupKey: "dvportgroup-20"}}, Needs: []move.Need{{Datastore: "datastore-12", Bytes: 1 << 30}}}
	}
	r := identified(&Request{Direction: Migrate, VMs: []string{"web-01", "web-02"}, SourceVC: "vc-east", TargetVC: "vc-west", Requester: "U0REQ", Channel: "C1"})
	r.Review.VMs[0].Resolved = at("host-21") // web-02 was not placed: it has none
	if err := s.Submit(ctx, r); err != nil {
		t.Fatal(err)
	}
	r, won, err := s.Approve(ctx, r.ID, "U0BOSS")
	if err != nil || !won {
		t.Fatalf("approve: won=%v err=%v", won, err)
	}
	g0, g1 := grantOf(t, signer, keys, r, 0), grantOf(t, signer, keys, r, 1)
	if g0.VM.Resolved == nil || !sameJSON(g0.VM.Resolved, at("host-21")) {
		t.Fatalf("web-01's grant carries %+v, not the review's placement", g0.VM.Resolved)
	}
	if g1.VM.Resolved != nil {
		t.Fatalf("web-02's grant carries a placement nobody reviewed: %+v", g1.VM.Resolved)
	}
	for _, g := range []*Grant{g0, g1} {
		if err := keys.Admit(g, r, c.t); err != nil {
			t.Errorf("the approved grant of %s is not admitted: %v", g.VM.Name, err)
		}
	}

	// The same bot's signature over another host for web-01: not what was approved.
	a, err := keys.OpenApproval(r)
	if err != nil {
		t.Fatal(err)
	}
	a.VMs[0].Resolved = at("host-66")
	seals, err := signer.Grants(a)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.OpenGrant(seals[0])
	if err != nil {
		t.Fatal(err)
	}
	var rf *Refusal
	if err := keys.Admit(other, r, c.t); !errors.As(err, &rf) || rf.Reason != ReasonNotListed {
		t.Errorf("a grant placing web-01 on another host is admitted: %v", err)
	}
}
