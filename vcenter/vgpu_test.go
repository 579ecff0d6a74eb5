package vcenter

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// A vGPU moves with its VM when the chosen target host offers its profile, and blocks
// the move when it does not; static DirectPath I/O stays a blocker.
func TestVGPUNeedsItsProfileOnTheTargetHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	east, west := lab.VC(xvmsim.EastVC), lab.VC(xvmsim.WestVC)
	if err := east.AddVGPU(ctx, "web-01", xvmsim.VGPUProfile); err != nil {
		t.Fatal(err)
	}
	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{
		Host: xvmsim.WestHost1, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}

	p, err := m.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if findingWith(p, Blocker, "is a vGPU of profile "+xvmsim.VGPUProfile, "which target host "+xvmsim.WestHost1+" does not offer") == nil || !p.Blocked() {
		t.Errorf("no blocker for a host without the profile: %+v", p.Findings)
	}

	if _, err := west.SetHostVGPUProfiles(xvmsim.WestHost1, "grid_a100-4c", xvmsim.VGPUProfile); err != nil {
		t.Fatal(err)
	}
	p, err = m.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Errorf("a vGPU whose profile the target host offers is blocked: %+v", findingsOf(p, Blocker))
	}
	if findingWith(p, OK, "is a vGPU of profile "+xvmsim.VGPUProfile, "target host "+xvmsim.WestHost1+" offers it") == nil {
		t.Errorf("the plan does not name the vGPU profile: %+v", p.Findings)
	}
	// vCenter moves a running vGPU VM only with vgpu.hotmigrate.enabled: unknown is a
	// warning, false a blocker, true nothing to say.
	if findingWith(p, Warning, "vc-east does not say whether it moves running VMs with a vGPU", "web-01") == nil {
		t.Errorf("no warning while vc-east does not list %s: %+v", xvmsim.VGPUHotMigrate, p.Findings)
	}
	for _, tc := range []struct {
		value   string
		blocked bool
	}{{"false", true}, {"true", false}} {
		if err := east.SetVGPUHotMigrate(ctx, tc.value); err != nil {
			t.Fatal(err)
		}
		if p, err = m.Plan(ctx, spec); err != nil {
			t.Fatal(err)
		}
		f := findingWith(p, Blocker, "web-01 has a vGPU and runs, and vc-east does not move running VMs with a vGPU (vgpu.hotmigrate.enabled is false)")
		if (f != nil) != tc.blocked || p.Blocked() != tc.blocked {
			t.Errorf("%s=%s: blocked %v, want %v: %+v", xvmsim.VGPUHotMigrate, tc.value, p.Blocked(), tc.blocked, p.Findings)
		}
		if w := findingWith(p, Warning, "does not say whether it moves running VMs with a vGPU"); w != nil {
			t.Errorf("%s=%s: %s", xvmsim.VGPUHotMigrate, tc.value, w.Message)
		}
	}

	// Static DirectPath I/O names one host's PCI device: still a blocker, vGPU beside it or not.
	spec.VMs = []string{xvmsim.TripPassthrough}
	if p, err = m.Plan(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if findingWith(p, Blocker, "is a PCI passthrough device (NVIDIA A100)") == nil {
		t.Errorf("static DirectPath I/O is not blocked: %+v", p.Findings)
	}
}

// Which PCI devices vMotion moves: a vGPU (for the target host to check), never a
// static DirectPath device; a dynamic one only powered off.
func TestPCIPassthroughKinds(t *testing.T) {
	t.Parallel()
	pci := func(b types.BaseVirtualDeviceBackingInfo) object.VirtualDeviceList {
		return object.VirtualDeviceList{&types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{Key: 13000, Backing: b}}}
	}
	for _, tc := range []struct {
		name    string
		devices object.VirtualDeviceList
		power   types.VirtualMachinePowerState
		blocked bool
	}{
		{"vGPU, running", pci(&types.VirtualPCIPassthroughVmiopBackingInfo{Vgpu: "grid_t4-4q"}), types.VirtualMachinePowerStatePoweredOn, false},
		{"static DirectPath, running", pci(&types.VirtualPCIPassthroughDeviceBackingInfo{Id: "0000:3b:00.0"}), types.VirtualMachinePowerStatePoweredOn, true},
		{"static DirectPath, off", pci(&types.VirtualPCIPassthroughDeviceBackingInfo{Id: "0000:3b:00.0"}), types.VirtualMachinePowerStatePoweredOff, true},
		{"dynamic DirectPath, running", pci(&types.VirtualPCIPassthroughDynamicBackingInfo{CustomLabel: "A100"}), types.VirtualMachinePowerStatePoweredOn, true},
		{"dynamic DirectPath, off", pci(&types.VirtualPCIPassthroughDynamicBackingInfo{CustomLabel: "A100"}), types.VirtualMachinePowerStatePoweredOff, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &resolver{plan: &Plan{}}
			if got := r.checkDevices("vm", tc.power, tc.devices); got != tc.blocked {
				t.Errorf("blocked = %v, want %v (%+v)", got, tc.blocked, r.plan.Findings)
			}
			if n := len(vGPUs(tc.devices)); (n == 1) != (tc.name == "vGPU, running") {
				t.Errorf("%d vGPUs found", n)
			}
		})
	}
}
