package xvmsim

import (
	"strings"
	"testing"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/types"
)

// The lab refuses what vCenter refuses of encryption and vGPUs across vCenters, and
// moves a vGPU VM once its source allows vGPU hot migration and the target host offers
// the profile.
func TestRelocationRefusesWhatVCenterRefuses(t *testing.T) {
	t.Parallel()
	l := startLab(t) // both vCenters report 6.5
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	spec := func(name string) types.VirtualMachineRelocateSpec {
		vm := east.vm(t, ctx, name)
		return xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, thin, WestAppPortgroup)
	}
	refused := func(name, want string) {
		t.Helper()
		_, err := relocate(ctx, east.vm(t, ctx, name), spec(name), nil)
		if !fault.Is(err, &types.MigrationFault{}) || !strings.Contains(err.Error(), want) {
			t.Errorf("relocation of %s: %v, want a MigrationFault saying %q", name, err, want)
		}
	}

	if err := east.vc.EncryptVM("web-01", "kp-corp", false); err != nil {
		t.Fatal(err)
	}
	refused("web-01", "needs vSphere 8.0 or later on both")

	if err := east.vc.AddVGPU(ctx, "web-02", VGPUProfile); err != nil {
		t.Fatal(err)
	}
	refused("web-02", "vGPU hot migration is not enabled")
	if err := east.vc.SetVGPUHotMigrate(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	refused("web-02", "does not offer vGPU profile "+VGPUProfile)
	if _, err := west.vc.SetHostVGPUProfiles(WestHost1, VGPUProfile); err != nil {
		t.Fatal(err)
	}
	if _, err := relocate(ctx, east.vm(t, ctx, "web-02"), spec("web-02"), nil); err != nil {
		t.Fatalf("relocation of web-02 onto a host with its profile: %v", err)
	}
	if n := east.vc.XVMRelocationsOf("web-01"); n != 0 {
		t.Errorf("web-01 relocated %d times", n)
	}
}

// From vSphere 8.0 an encrypted VM moves when the target has its key provider.
func TestEncryptedRelocationNeedsTheKeyProvider(t *testing.T) {
	t.Parallel()
	l := startLab(t, WithVersion(EastVC, "8.0.3"), WithVersion(WestVC, "8.0.2"))
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	if err := east.vc.EncryptVM("web-01", "kp-corp", true); err != nil {
		t.Fatal(err)
	}
	vm := east.vm(t, ctx, "web-01")
	spec := xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, thin, WestAppPortgroup)
	_, err := relocate(ctx, vm, spec, nil)
	if !fault.Is(err, &types.MigrationFault{}) || !strings.Contains(err.Error(), "key provider kp-corp of web-01 is not available in vc-west") {
		t.Errorf("relocation without the key provider: %v", err)
	}
	if err := west.vc.AddKeyProvider(ctx, "kp-corp", false); err != nil {
		t.Fatal(err)
	}
	if _, err := relocate(ctx, vm, spec, nil); err != nil {
		t.Errorf("relocation with the key provider: %v", err)
	}
}
