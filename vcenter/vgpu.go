package vcenter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// A vGPU is a PCI passthrough device whose backing is a VMIOP plugin naming a vGPU
// profile (VirtualPCIPassthroughVmiopBackingInfo.vgpu). Unlike static DirectPath I/O it
// is not bound to one host's PCI address: vMotion moves it (since vSphere 6.7 U1) onto
// a host whose GPU offers the same profile. A host lists the profiles it offers in
// HostConfigInfo.sharedPassthruGpuTypes, and since vSphere 6.7 in sharedGpuCapabilities
// with whether each can migrate (docs/vsphere-behaviours.md).

// vGPUDevice is a VM's vGPU.
type vGPUDevice struct {
	label, profile string
	migrates       *bool // the device says whether it can migrate (vSphere 7.0 U2 and later)
}

// vGPUs are the VM's vGPU devices.
func vGPUs(devices object.VirtualDeviceList) []vGPUDevice {
	var out []vGPUDevice
	for _, d := range devices {
		p, ok := d.(*types.VirtualPCIPassthrough)
		if !ok {
			continue
		}
		if b, ok := p.Backing.(*types.VirtualPCIPassthroughVmiopBackingInfo); ok {
			out = append(out, vGPUDevice{label: deviceLabel(devices, d), profile: b.Vgpu, migrates: b.MigrateSupported})
		}
	}
	return out
}

// vGPUHostProps are what a host says of the vGPU profiles it offers.
var vGPUHostProps = []string{"name", "config.sharedPassthruGpuTypes", "config.sharedGpuCapabilities"}

// checkVGPUs checks each VM's vGPUs against the chosen target host: the host must offer
// the profile (a blocker if not, for a VM that moves running; a warning for one that
// moves powered off and could not start there), and a running VM's vGPU must be able to
// migrate on both ends. What passes is said, with the profile, so that the review
// shows the VM keeps its GPU. The host is read only when some VM has a vGPU.
func (r *resolver) checkVGPUs(ctx context.Context, c *vim25.Client, host *mo.HostSystem, srcVMs map[string]*sourceVM) error {
	gpus := map[string][]vGPUDevice{}
	for _, v := range r.plan.VMs {
		if svm := srcVMs[v.Name]; svm != nil {
			if found := vGPUs(svm.devices); len(found) > 0 {
				gpus[v.Name] = found
			}
		}
	}
	if len(gpus) == 0 || host == nil {
		return nil
	}
	var h mo.HostSystem
	if err := property.DefaultCollector(c).RetrieveOne(ctx, host.Self, vGPUHostProps, &h); err != nil {
		return err
	}
	offered := map[string]bool{}
	migrates := map[string]bool{}
	if h.Config != nil {
		for _, p := range h.Config.SharedPassthruGpuTypes {
			offered[p] = true
			migrates[p] = true // a host of before vSphere 6.7 says no more than this
		}
		for _, cp := range h.Config.SharedGpuCapabilities {
			offered[cp.Vgpu] = true
			migrates[cp.Vgpu] = cp.MigrateSupported
		}
	}
	for _, v := range r.plan.VMs {
		running := types.VirtualMachinePowerState(v.PowerState) != types.VirtualMachinePowerStatePoweredOff
		for _, g := range gpus[v.Name] {
			switch {
			case !offered[g.profile] && running:
				r.block(v.Name, fmt.Sprintf("%s of %s is a vGPU of profile %s, which target host %s does not offer (it offers %s); vCenter refuses the move",
					g.label, v.Name, g.profile, host.Name, profileList(offered)),
					"choose a host (host=) or cluster whose GPUs offer that profile, or move the VM powered off and change its vGPU profile in the target")
				srcVMs[v.Name].blocked = true
			case !offered[g.profile]:
				r.add(Warning, v.Name, fmt.Sprintf("%s of %s is a vGPU of profile %s, which target host %s does not offer (it offers %s); %s moves powered off, and will not start there with it",
					g.label, v.Name, g.profile, host.Name, profileList(offered), v.Name),
					"choose a host whose GPUs offer that profile, or change the VM's vGPU profile in the target before starting it")
			case running && (!migrates[g.profile] || (g.migrates != nil && !*g.migrates)):
				r.block(v.Name, fmt.Sprintf("%s of %s is a vGPU of profile %s that cannot be migrated while it runs (the GPU driver of its host or of %s does not support vGPU migration)",
					g.label, v.Name, g.profile, host.Name),
					"power the VM off for the move, or update the NVIDIA vGPU manager on both hosts to a release that supports migration")
				srcVMs[v.Name].blocked = true
			default:
				r.add(OK, v.Name, fmt.Sprintf("%s of %s is a vGPU of profile %s; target host %s offers it, and the VM keeps it", g.label, v.Name, g.profile, host.Name), "")
			}
		}
	}
	return nil
}

// profileList names the profiles a host offers, or says it offers none.
func profileList(offered map[string]bool) string {
	if len(offered) == 0 {
		return "no vGPU profile"
	}
	return strings.Join(slices.Sorted(maps.Keys(offered)), ", ")
}

// vGPUHotMigrate is the vCenter advanced setting that must be true for vCenter to move a
// running VM with a vGPU; it refuses otherwise ("vGPU hot migration is not enabled").
const vGPUHotMigrate = "vgpu.hotmigrate.enabled"

// checkVGPUHotMigrate reads the source vCenter's vgpu.hotmigrate.enabled when a VM that
// moves running has a vGPU: false is a blocker; a vCenter that does not list the setting
// (or does not let it be read) is a warning, since it may refuse the move all the same.
func (r *resolver) checkVGPUHotMigrate(ctx context.Context, c *vim25.Client, srcVMs map[string]*sourceVM) {
	var running []string
	for _, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		if svm == nil || svm.blocked || types.VirtualMachinePowerState(v.PowerState) == types.VirtualMachinePowerStatePoweredOff {
			continue
		}
		if len(vGPUs(svm.devices)) > 0 {
			running = append(running, v.Name)
		}
	}
	if len(running) == 0 || c.ServiceContent.Setting == nil {
		return
	}
	opts, err := object.NewOptionManager(c, *c.ServiceContent.Setting).Query(ctx, vGPUHotMigrate)
	value := ""
	for _, o := range opts {
		if ov := o.GetOptionValue(); ov.Key == vGPUHotMigrate {
			value = strings.ToLower(strings.TrimSpace(fmt.Sprint(ov.Value)))
		}
	}
	vms := strings.Join(running, ", ")
	switch {
	case value == "true":
	case err != nil || value == "":
		r.add(Warning, "", fmt.Sprintf("%s does not say whether it moves running VMs with a vGPU (%s, for %s, could not be read)", r.spec.Source, vGPUHotMigrate, vms),
			fmt.Sprintf("check that the advanced setting %s of %s is true; vCenter refuses the move otherwise", vGPUHotMigrate, r.spec.Source))
	default:
		for _, vm := range running {
			r.block(vm, fmt.Sprintf("%s has a vGPU and runs, and %s does not move running VMs with a vGPU (%s is %s)", vm, r.spec.Source, vGPUHotMigrate, value),
				fmt.Sprintf("set the advanced setting %s of %s to true, or power %s off for the move", vGPUHotMigrate, r.spec.Source, vm))
			srcVMs[vm].blocked = true
		}
	}
}
