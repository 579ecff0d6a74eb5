package xvmsim

import (
	"slices"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// A vGPU added to a VM shows in its devices with its profile; a host set to offer
// profiles lists them where vCenter does, and the toggle puts back what was there.
func TestVGPU(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), l.VC(WestVC)
	if err := east.vc.AddVGPU(ctx, "web-02", VGPUProfile); err != nil {
		t.Fatal(err)
	}
	var vm mo.VirtualMachine
	if err := east.c.RetrieveOne(ctx, east.vm(t, ctx, "web-02").Reference(), []string{"config.hardware.device"}, &vm); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range vm.Config.Hardware.Device {
		if p, ok := d.(*types.VirtualPCIPassthrough); ok {
			b, ok := p.Backing.(*types.VirtualPCIPassthroughVmiopBackingInfo)
			found = ok && b.Vgpu == VGPUProfile
		}
	}
	if !found {
		t.Errorf("web-02 has no vGPU of profile %s", VGPUProfile)
	}

	was, err := west.SetHostVGPUProfiles(WestHost1, VGPUProfile, "grid_a100-4c")
	if err != nil || len(was) != 0 {
		t.Fatalf("SetHostVGPUProfiles: %v, %v; want none before", was, err)
	}
	c, err := west.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logout(c) })
	read := func(name string) mo.HostSystem {
		t.Helper()
		h, err := find.NewFinder(c.Client, true).HostSystem(ctx, "/"+WestDatacenter+"/host/*/"+name)
		if err != nil {
			t.Fatal(err)
		}
		var out mo.HostSystem
		if err := c.RetrieveOne(ctx, h.Reference(), []string{"config.sharedPassthruGpuTypes", "config.sharedGpuCapabilities"}, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	h := read(WestHost1)
	if !slices.Contains(h.Config.SharedPassthruGpuTypes, VGPUProfile) || len(h.Config.SharedGpuCapabilities) != 2 ||
		!h.Config.SharedGpuCapabilities[0].MigrateSupported {
		t.Errorf("%s offers %v %+v, want %s able to migrate", WestHost1, h.Config.SharedPassthruGpuTypes, h.Config.SharedGpuCapabilities, VGPUProfile)
	}
	if other := read(WestHost2); other.Config != nil && len(other.Config.SharedPassthruGpuTypes) > 0 {
		t.Errorf("%s offers %v too", WestHost2, other.Config.SharedPassthruGpuTypes)
	}
	if was, err := west.SetHostVGPUProfiles(WestHost1, was...); err != nil || len(was) != 2 {
		t.Errorf("putting it back: %v, %v", was, err)
	}
	if h := read(WestHost1); h.Config != nil && len(h.Config.SharedPassthruGpuTypes) > 0 {
		t.Errorf("%s still offers %v", WestHost1, h.Config.SharedPassthruGpuTypes)
	}
}
