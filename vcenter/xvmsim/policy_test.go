package xvmsim

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vmware/govmomi/pbm"
	pbmtypes "github.com/vmware/govmomi/pbm/types"
	"github.com/vmware/govmomi/vim25/types"
)

// Each vCenter's storage policy service lists the lab's policies, and vc-west's say which
// datastores fit them as a real vCenter's placement solver does: gold-policy fits ds-gold,
// not ds-silver.
func TestStoragePolicyService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab := sharedLab(t)
	west := open(t, ctx, lab.VC(WestVC))
	pc, err := pbm.NewClient(ctx, west.c.Client)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pc.QueryProfile(ctx, pbmtypes.PbmProfileResourceType{ResourceType: string(pbmtypes.PbmProfileResourceTypeEnumSTORAGE)},
		string(pbmtypes.PbmProfileCategoryEnumREQUIREMENT))
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := pc.RetrieveContent(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range profiles {
		names = append(names, p.GetPbmProfile().Name)
	}
	if !slices.Contains(names, GoldPolicy) || !slices.Contains(names, SilverPolicy) {
		t.Fatalf("vc-west's policies are %v", names)
	}
	gold, err := pc.ProfileIDByName(ctx, GoldPolicy)
	if err != nil {
		t.Fatal(err)
	}
	hubs := []pbmtypes.PbmPlacementHub{
		{HubType: "Datastore", HubId: west.ref(t, ctx, "datastore", WestGold).Value},
		{HubType: "Datastore", HubId: west.ref(t, ctx, "datastore", WestSilver).Value},
	}
	res, err := pc.CheckRequirements(ctx, hubs, nil, []pbmtypes.BasePbmPlacementRequirement{
		&pbmtypes.PbmPlacementCapabilityProfileRequirement{ProfileId: pbmtypes.PbmProfileId{UniqueId: gold}}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, no := res.CompatibleDatastores(), res.NonCompatibleDatastores(); len(ok) != 1 || ok[0] != hubs[0] || len(no) != 1 || no[0] != hubs[1] {
		t.Fatalf("gold-policy fits %v and not %v; want ds-gold and not ds-silver", ok, no)
	}
}

// A cross-vCenter relocation gives the VM in the target the policies its spec names, the
// VM's own (spec.profile) and each disk's (the locator's profile), and a reconfigure gives
// one to a VM: what the storage policy service then answers for it.
func TestRelocationKeepsThePolicies(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab := startLab(t)
	east, west := open(t, ctx, lab.VC(EastVC)), open(t, ctx, lab.VC(WestVC))
	if err := lab.VC(EastVC).SetPolicy(ctx, "db-01", SilverPolicy); err != nil {
		t.Fatal(err)
	}
	home, disks, err := lab.VC(EastVC).Policies(ctx, "db-01")
	if err != nil || home != SilverPolicy || !slices.Equal(disks, []string{SilverPolicy, SilverPolicy}) {
		t.Fatalf("db-01 in vc-east has policies %q %q (%v), want silver-policy for all", home, disks, err)
	}

	pc, err := pbm.NewClient(ctx, west.c.Client)
	if err != nil {
		t.Fatal(err)
	}
	gold, err := pc.ProfileIDByName(ctx, GoldPolicy)
	if err != nil {
		t.Fatal(err)
	}
	vm := east.vm(t, ctx, "db-01")
	spec := xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestPool, WestHost1, WestGold, thin, WestAppPortgroup, StandardPortgroup)
	profile := []types.BaseVirtualMachineProfileSpec{&types.VirtualMachineDefinedProfileSpec{ProfileId: gold}}
	spec.Profile = profile
	spec.Disk[1].Profile = profile
	if _, err := relocate(ctx, vm, spec, nil); err != nil {
		t.Fatal(err)
	}
	home, disks, err = lab.VC(WestVC).Policies(ctx, "db-01")
	if err != nil || home != GoldPolicy || !slices.Equal(disks, []string{"", GoldPolicy}) {
		t.Fatalf("db-01 in vc-west has policies %q %q (%v), want gold-policy, and for Hard disk 2 only", home, disks, err)
	}
}
