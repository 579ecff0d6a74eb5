package xvmsim

import (
	"context"
	"fmt"
	"slices"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vGPUs: a VM with an NVIDIA vGPU has a PCI passthrough device whose backing is a VMIOP
// plugin naming a vGPU profile (VirtualPCIPassthroughVmiopBackingInfo.vgpu). vMotion
// moves it since vSphere 6.7 U1, onto a host whose GPU offers the same profile: the host
// lists the profiles it offers in config.sharedPassthruGpuTypes, and since vSphere 6.7
// in config.sharedGpuCapabilities with whether each can migrate. The lab's hosts offer
// none until a test says so.

// VGPUProfile is a vGPU profile the tests use (an NVIDIA A100, 8 GB, compute).
const VGPUProfile = "grid_a100-8c"

// AddVGPU gives the VM named vm a vGPU of profile through the vCenter API, as an
// administrator adds a shared PCI device in the VM's settings.
func (v *VC) AddVGPU(ctx context.Context, vm, profile string) error {
	c, err := v.Client(ctx)
	if err != nil {
		return err
	}
	defer logout(c)
	cv, err := view.NewManager(c.Client).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return err
	}
	defer func() { _ = cv.Destroy(context.Background()) }()
	refs, err := cv.Find(ctx, []string{"VirtualMachine"}, property.Match{"name": vm})
	if err != nil {
		return err
	}
	if len(refs) != 1 {
		return fmt.Errorf("%s: vm %s: %w", v.Name, vm, ErrNotFound)
	}
	gpu := &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
		Key:        -300,
		DeviceInfo: &types.Description{Label: "PCI device 0", Summary: "NVIDIA GRID vGPU " + profile},
		Backing:    &types.VirtualPCIPassthroughVmiopBackingInfo{Vgpu: profile, MigrateSupported: types.NewBool(true)},
	}}
	spec := types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: gpu},
	}}
	task, err := object.NewVirtualMachine(c.Client, refs[0]).Reconfigure(ctx, spec)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// SetHostVGPUProfiles makes the host named host offer the vGPU profiles (none: no GPU)
// in config.sharedPassthruGpuTypes and config.sharedGpuCapabilities, each able to
// migrate, as a host with an NVIDIA GPU and its vGPU manager does. It returns the
// profiles the host offered before.
func (v *VC) SetHostVGPUProfiles(host string, profiles ...string) ([]string, error) {
	var was []string
	err := v.toggle("HostSystem", host, func(obj mo.Entity) []types.PropertyChange {
		h := obj.(*simulator.HostSystem)
		if h.Config != nil {
			was = slices.Clone(h.Config.SharedPassthruGpuTypes)
		}
		caps := make([]types.HostSharedGpuCapabilities, len(profiles))
		for i, p := range profiles {
			caps[i] = types.HostSharedGpuCapabilities{Vgpu: p, MigrateSupported: true, DiskSnapshotSupported: true,
				MemorySnapshotSupported: true, SuspendSupported: true}
		}
		return []types.PropertyChange{
			{Name: "config.sharedPassthruGpuTypes", Val: slices.Clone(profiles)},
			{Name: "config.sharedGpuCapabilities", Val: caps},
		}
	})
	return was, err
}

// VGPUHotMigrate is the vCenter advanced setting that lets vCenter move running VMs with
// a vGPU (vSphere 6.7 U1 and later); the simulator does not list it until it is set.
const VGPUHotMigrate = "vgpu.hotmigrate.enabled"

// SetVGPUHotMigrate sets vCenter's advanced setting vgpu.hotmigrate.enabled ("true" or
// "false") through the vCenter API, as an administrator does in the vSphere Client.
func (v *VC) SetVGPUHotMigrate(ctx context.Context, value string) error {
	c, err := v.Client(ctx)
	if err != nil {
		return err
	}
	defer logout(c)
	om := object.NewOptionManager(c.Client, *c.ServiceContent.Setting)
	return om.Update(ctx, []types.BaseOptionValue{&types.OptionValue{Key: VGPUHotMigrate, Value: value}})
}
