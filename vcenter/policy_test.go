package vcenter

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/pbm"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// policyMove is db-01 (two disks) from vc-east to vc-west's west-prod, placed as p adds.
func policyMove(p move.Placement) MoveSpec {
	p.Cluster, p.Folder = xvmsim.WestCluster, xvmsim.WestDBFolder
	if p.Datastore == "" {
		p.Datastore = xvmsim.WestGold
	}
	p.Networks = []move.Network{{Source: xvmsim.EastAppPortgroup, Target: xvmsim.WestAppPortgroup},
		{Source: xvmsim.StandardPortgroup, Target: xvmsim.StandardPortgroup}}
	return MoveSpec{VMs: []string{"db-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: p}
}

// policyID is the id of the storage policy named name in the lab's vCenter vc.
func policyID(t *testing.T, vc *xvmsim.VC, name string) string {
	t.Helper()
	ctx := context.Background()
	c, err := vc.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(context.Background()) }()
	pc, err := pbm.NewClient(ctx, c.Client)
	if err != nil {
		t.Fatal(err)
	}
	id, err := pc.ProfileIDByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// profileOf is the profile id a RelocateSpec's profile list gives, "" for none.
func profileOf(ps []types.BaseVirtualMachineProfileSpec) string {
	if len(ps) != 1 {
		return ""
	}
	if d, ok := ps[0].(*types.VirtualMachineDefinedProfileSpec); ok {
		return d.ProfileId
	}
	return ""
}

// policy= and a disk's own policy are resolved by name in the TARGET's storage policy
// service, checked against the datastores, and sent by id: in spec.profile for the VM's
// own files and in each disk locator's profile.
func TestPolicyIsResolvedInTheTargetAndSent(t *testing.T) {
	t.Parallel()
	lab, m, _ := sharedLab(t)
	west := lab.VC(xvmsim.WestVC)
	p, err := m.Plan(context.Background(), policyMove(move.Placement{Policy: xvmsim.GoldPolicy,
		Disks: []move.Disk{{Disk: 2, Datastore: xvmsim.WestSilver, Policy: xvmsim.SilverPolicy}}}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Fatalf("blocked: %v", findingsOf(p, Blocker))
	}
	if p.VMs[0].Policy != xvmsim.GoldPolicy {
		t.Errorf("the review shows db-01's policy as %q, want gold-policy", p.VMs[0].Policy)
	}
	vp := p.vms["db-01"]
	spec := buildRelocateSpec(*p.placement, vp, p.DiskFormat, nil)
	gold, silver := policyID(t, west, xvmsim.GoldPolicy), policyID(t, west, xvmsim.SilverPolicy)
	if got := profileOf(spec.Profile); got != gold {
		t.Errorf("spec.profile is %q, want vc-west's gold-policy %q", got, gold)
	}
	if len(spec.Disk) != 2 {
		t.Fatalf("%d disk locators", len(spec.Disk))
	}
	if got := profileOf(spec.Disk[0].Profile); got != gold {
		t.Errorf("Hard disk 1's profile is %q, want gold-policy %q", got, gold)
	}
	if got := profileOf(spec.Disk[1].Profile); got != silver {
		t.Errorf("Hard disk 2's profile is %q, want silver-policy %q", got, silver)
	}
}

// A policy the target does not have is refused before approval, naming the policies it has.
func TestUnknownPolicyNamesTheTargetsPolicies(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	for _, pl := range []move.Placement{
		{Policy: "platinum-policy"},
		{Disks: []move.Disk{{Disk: 1, Policy: "platinum-policy"}}},
	} {
		p, err := m.Plan(context.Background(), policyMove(pl))
		if err != nil {
			t.Fatal(err)
		}
		if findingWith(p, Blocker, "storage policy platinum-policy not found in vc-west", xvmsim.GoldPolicy, xvmsim.SilverPolicy) == nil {
			t.Errorf("%+v: no blocker naming the unknown policy and vc-west's: %+v", pl, p.Findings)
		}
	}
}

// A datastore the chosen policy does not fit is a blocker that names both, in the storage
// policy service's words; the same datastore with a policy it fits is not.
func TestPolicyThatDoesNotFitTheDatastoreBlocks(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	p, err := m.Plan(context.Background(), policyMove(move.Placement{Datastore: xvmsim.WestSilver, Policy: xvmsim.GoldPolicy}))
	if err != nil {
		t.Fatal(err)
	}
	if findingWith(p, Blocker, "storage policy gold-policy does not fit datastore ds-silver", "db-01's files, Hard disk 1, Hard disk 2", "tag") == nil {
		t.Fatalf("no blocker for gold-policy on ds-silver: %+v", p.Findings)
	}
	if n := countWith(p, Blocker, "does not fit"); n != 1 {
		t.Errorf("%d blockers for one policy on one datastore, want one naming all of db-01's files and disks", n)
	}
	p, err = m.Plan(context.Background(), policyMove(move.Placement{Policy: xvmsim.GoldPolicy,
		Disks: []move.Disk{{Disk: 2, Datastore: xvmsim.WestSilver}}}))
	if err != nil {
		t.Fatal(err)
	}
	if findingWith(p, Blocker, "gold-policy does not fit datastore ds-silver", "db-01's Hard disk 2") == nil {
		t.Fatalf("no blocker for Hard disk 2 under gold-policy on ds-silver: %+v", p.Findings)
	}
	p, err = m.Plan(context.Background(), policyMove(move.Placement{Datastore: xvmsim.WestSilver, Policy: xvmsim.SilverPolicy}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Fatalf("silver-policy on ds-silver is blocked: %v", findingsOf(p, Blocker))
	}
}

// Without policy= a VM keeps its policy by name where the target has one of that name and
// it fits (the wizard's "Keep existing VM storage policies"); where it does not fit, a
// warning says the VM takes the datastore's default. Where reads the policy, so that
// undo asks for it back.
func TestPolicyIsKeptByName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	east, west := lab.VC(xvmsim.EastVC), lab.VC(xvmsim.WestVC)
	if err := east.SetPolicy(ctx, "db-01", xvmsim.GoldPolicy); err != nil {
		t.Fatal(err)
	}
	w, err := m.Where(ctx, xvmsim.EastVC, "db-01")
	if err != nil {
		t.Fatal(err)
	}
	if o := w.Origin(); o.Policy != xvmsim.GoldPolicy || len(o.Disks) != 1 || o.Disks[0].Policy != "" {
		t.Errorf("db-01's origin has policy %q and disks %+v, want gold-policy for all", o.Policy, o.Disks)
	}

	p, err := m.Plan(ctx, policyMove(move.Placement{}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Fatalf("blocked: %v", findingsOf(p, Blocker))
	}
	spec := buildRelocateSpec(*p.placement, p.vms["db-01"], p.DiskFormat, nil)
	gold := policyID(t, west, xvmsim.GoldPolicy)
	if profileOf(spec.Profile) != gold || profileOf(spec.Disk[0].Profile) != gold || profileOf(spec.Disk[1].Profile) != gold {
		t.Errorf("db-01 does not keep gold-policy by name: spec profile %v, disks %+v", spec.Profile, spec.Disk)
	}

	p, err = m.Plan(ctx, policyMove(move.Placement{Datastore: xvmsim.WestSilver}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() || findingWith(p, Warning, "db-01's files, Hard disk 1, Hard disk 2 keep storage policy gold-policy by name", "does not fit datastore ds-silver", "default policy") == nil {
		t.Fatalf("gold-policy kept by name on ds-silver: want a warning, not a blocker: %+v", p.Findings)
	}
	if spec := buildRelocateSpec(*p.placement, p.vms["db-01"], p.DiskFormat, nil); spec.Profile != nil {
		t.Errorf("a policy that does not fit is sent: %v", spec.Profile)
	}

	// "Datastore Default" asks for no policy: none is kept, none sent, nothing to warn of.
	p, err = m.Plan(ctx, policyMove(move.Placement{Policy: move.DatastoreDefault}))
	if err != nil {
		t.Fatal(err)
	}
	spec = buildRelocateSpec(*p.placement, p.vms["db-01"], p.DiskFormat, nil)
	if p.Blocked() || len(findingsOf(p, Warning)) > 0 || spec.Profile != nil || spec.Disk[0].Profile != nil || spec.Disk[1].Profile != nil {
		t.Errorf("Datastore Default: findings %+v, spec profile %v, disks %+v", p.Findings, spec.Profile, spec.Disk)
	}
	// A VM without a policy has its origin say so, for the way back.
	w, err = m.Where(ctx, xvmsim.EastVC, "web-01")
	if err != nil {
		t.Fatal(err)
	}
	if o := w.Origin(); o.Policy != move.DatastoreDefault || len(o.Disks) != 0 {
		t.Errorf("web-01's origin has policy %q and disks %+v, want Datastore Default", o.Policy, o.Disks)
	}
}

// The wizard's policy select lists the target's VM storage policies.
func TestListPolicies(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	opts, err := m.List(context.Background(), xvmsim.WestVC, KindPolicies, "", Scope{Cluster: xvmsim.WestCluster})
	if err != nil {
		t.Fatal(err)
	}
	if got := labels(opts); got != "Datastore Default,gold-policy,silver-policy" {
		t.Errorf("vc-west's policies listed as %q", got)
	}
	if opts[1].Value != xvmsim.GoldPolicy || opts[1].Description == "" {
		t.Errorf("option %+v, want gold-policy with its description", opts[1])
	}
}
