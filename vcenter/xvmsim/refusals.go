package xvmsim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// What vCenter refuses of a VM's encryption and devices in a cross-vCenter move, which
// vcsim knows nothing of: an encrypted VM (or one with a vTPM) before vSphere 8.0 on
// both sides, or without its key provider on the target; a running VM's vGPU whose
// profile the target host does not offer, or while the source vCenter's
// vgpu.hotmigrate.enabled is not true. (The messages are the lab's; vCenter words them
// its own way.)

// refusesMove returns the fault vCenter refuses the move of vm onto host of tgt with, or
// nil.
func (v *VC) refusesMove(tgt *VC, vm *mo.VirtualMachine, host types.ManagedObjectReference) *types.LocalizedMethodFault {
	refused := func(format string, args ...any) *types.LocalizedMethodFault {
		return &types.LocalizedMethodFault{Fault: &types.MigrationFault{}, LocalizedMessage: fmt.Sprintf(format, args...)}
	}
	devices := vm.Config.Hardware.Device
	hasTPM := slices.ContainsFunc(devices, func(d types.BaseVirtualDevice) bool { _, ok := d.(*types.VirtualTPM); return ok })
	if vm.Config.KeyId != nil || hasTPM {
		src, dst := v.model.ServiceContent.About.Version, tgt.model.ServiceContent.About.Version
		if major(src) < 8 || major(dst) < 8 {
			return refused("%s is encrypted or has a vTPM: migrating it across vCenter Server instances needs vSphere 8.0 or later on both (%s is %s, %s is %s)",
				vm.Name, v.Name, src, tgt.Name, dst)
		}
		if k := vm.Config.KeyId; k != nil && k.ProviderId != nil && !tgt.hasKeyProvider(k.ProviderId.Id) {
			return refused("key provider %s of %s is not available in %s", k.ProviderId.Id, vm.Name, tgt.Name)
		}
	}
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		return nil
	}
	for _, d := range devices {
		p, ok := d.(*types.VirtualPCIPassthrough)
		if !ok {
			continue
		}
		b, ok := p.Backing.(*types.VirtualPCIPassthroughVmiopBackingInfo)
		if !ok {
			continue
		}
		if !v.vGPUHotMigrate() {
			return refused("vGPU hot migration is not enabled on %s (%s)", v.Name, VGPUHotMigrate)
		}
		if !tgt.offersVGPU(host, b.Vgpu) {
			return refused("the target host does not offer vGPU profile %s of %s", b.Vgpu, vm.Name)
		}
	}
	return nil
}

// major is the major release of a version such as "8.0.2".
func major(version string) int {
	var m int
	_, _ = fmt.Sscanf(version, "%d", &m)
	return m
}

// hasKeyProvider reports whether v has a key provider named id.
func (v *VC) hasKeyProvider(id string) bool {
	ctx := simulator.NewContext()
	ctx.Map = v.model.Map()
	km := ctx.Map.CryptoManager()
	var found bool
	ctx.WithLock(km, func() {
		found = slices.ContainsFunc(km.KmipServers, func(k types.KmipClusterInfo) bool { return k.ClusterId.Id == id })
	})
	return found
}

// offersVGPU reports whether host (of v) offers the vGPU profile, able to migrate.
func (v *VC) offersVGPU(host types.ManagedObjectReference, profile string) bool {
	ctx := simulator.NewContext()
	ctx.Map = v.model.Map()
	h, ok := ctx.Map.Get(host).(*simulator.HostSystem)
	if !ok {
		return false
	}
	var offered bool
	ctx.WithLock(h, func() {
		if h.Config == nil {
			return
		}
		offered = slices.ContainsFunc(h.Config.SharedGpuCapabilities, func(c types.HostSharedGpuCapabilities) bool {
			return c.Vgpu == profile && c.MigrateSupported
		})
	})
	return offered
}

// vGPUHotMigrate reports whether v's advanced setting vgpu.hotmigrate.enabled is true.
func (v *VC) vGPUHotMigrate() bool {
	ctx := simulator.NewContext()
	ctx.Map = v.model.Map()
	om := ctx.Map.OptionManager()
	var on bool
	ctx.WithLock(om, func() {
		for _, o := range om.Setting {
			if ov := o.GetOptionValue(); ov.Key == VGPUHotMigrate {
				on = strings.EqualFold(fmt.Sprint(ov.Value), "true")
			}
		}
	})
	return on
}
