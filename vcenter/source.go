package vcenter

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sync/errgroup"

	"github.com/xvmbot/xvmbot/move"
)

// sourceVM is one VM as read from the source vCenter.
type sourceVM struct {
	plan    *vmPlan
	view    VM
	devices object.VirtualDeviceList
	nics    []types.BaseVirtualDevice
	used    map[int32]int64 // bytes in use on the datastore, by disk key
	// swap and suspend are the bytes the VM's memory takes on the target datastore
	// besides its disks (see memoryFiles).
	swap, suspend int64
	blocked       bool        // a finding already rules this VM out
	policies      policyNames // its storage policies and its disks', by name (policy.go)
	// key is the VM's encryption key (config.keyId): set for an encrypted VM, and for
	// one with a vTPM, whose home files are encrypted.
	key *types.CryptoKeyId
	// stores identify the storage of the source datastores the VMs' disks are on
	// (shared by every sourceVM of a plan), to tell storage both vCenters mount.
	stores map[types.ManagedObjectReference]storeID
}

// vmRead is what a plan keeps of a VM read from the source: vmProps as read, less what
// no check looks at. A mo.VirtualMachine with its configuration and file layout takes
// several KB beyond its devices, and a plan of thousands of VMs would hold them all
// until the last VM is read.
type vmRead struct {
	self      types.ManagedObjectReference
	name      string
	power     types.VirtualMachinePowerState
	host      *types.ManagedObjectReference
	config    bool // config.hardware could be read
	cpus      int32
	memoryMB  int32
	devices   object.VirtualDeviceList
	template  bool
	key       *types.CryptoKeyId
	networks  []types.ManagedObjectReference
	snapshots bool
	used      map[int32]int64 // diskUsage of its file layout
	// swap and suspend are memoryFiles of the VM.
	swap, suspend int64
}

// readVM keeps of vm what the plan needs.
func readVM(vm *mo.VirtualMachine) vmRead {
	v := vmRead{self: vm.Self, name: readable(vm.Name), power: vm.Runtime.PowerState, host: vm.Runtime.Host,
		networks: vm.Network, snapshots: vm.Snapshot != nil && len(vm.Snapshot.RootSnapshotList) > 0}
	if vm.Config != nil {
		hw := vm.Config.Hardware
		v.config, v.cpus, v.memoryMB, v.devices = true, hw.NumCPU, hw.MemoryMB, hw.Device
		v.template, v.key = vm.Config.Template, vm.Config.KeyId
		v.used = diskUsage(vm.LayoutEx)
		v.swap, v.suspend = memoryFiles(vm)
	}
	return v
}

var vmProps = []string{"name", "config.hardware", "config.template", "config.memoryAllocation", "config.memoryReservationLockedToMax",
	"runtime.powerState", "runtime.host", "snapshot", "network", "layoutEx.disk", "layoutEx.file"}

// resolveSource finds the requested VMs in the source and reads them, in a
// fixed number of round trips however many VMs are asked for: one listing of
// every VM's name, one retrieve of the chosen VMs' properties (in parts of
// retrieveChunk VMs, read side by side), one or two for their networks, one for
// the hosts they run on.
func (r *resolver) resolveSource(ctx context.Context, c *vim25.Client) (map[string]*sourceVM, error) {
	if len(uniq(r.spec.VMs)) == 0 {
		return nil, nil
	}
	all, err := listOnlyNames(ctx, c, c.ServiceContent.RootFolder, "VirtualMachine")
	if err != nil {
		return nil, err
	}
	names := r.expandVMs(all)
	index := make(map[string][]named, len(all))
	for _, n := range all {
		index[n.Name] = append(index[n.Name], n)
	}
	var refs []types.ManagedObjectReference
	for _, name := range names {
		found := index[name]
		switch len(found) {
		case 0:
			r.block(name, fmt.Sprintf("VM %s not found in %s (VMs with similar names: %s)", name, r.spec.Source,
				nameList(similar(all, name), candidateLimit)), "check the VM name, and that it lives in "+r.spec.Source)
		case 1:
			refs = append(refs, found[0].Ref)
			r.refs.put(r.spec.Source, name, found[0].Ref)
		default:
			r.block(name, fmt.Sprintf("%d VMs are named %s in %s", len(found), name, r.spec.Source),
				"rename one of them so the request names exactly one VM")
		}
	}
	out := make(map[string]*sourceVM)
	if len(refs) == 0 {
		return out, nil
	}
	vms, err := retrieveEach(ctx, c, refs, vmPropsOf(c), readVM)
	if err != nil {
		return nil, err
	}
	var netRefs []types.ManagedObjectReference
	for _, vm := range vms {
		netRefs = append(netRefs, vm.networks...)
	}
	// The VMs' networks and hosts do not depend on each other: read side by side.
	var (
		nets  map[types.ManagedObjectReference]netInfo
		hosts map[types.ManagedObjectReference]*mo.HostSystem
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		nets, err = networks(gctx, c, uniqRefs(netRefs))
		return err
	})
	g.Go(func() (err error) {
		hosts, err = sourceHosts(gctx, c, vms)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range vms {
		svm := r.sourceVM(&vms[i], nets)
		r.checkSourceHost(&vms[i], svm, hosts)
		out[svm.view.Name] = svm
	}
	if err := r.readSourceStores(ctx, c, out); err != nil {
		return nil, err
	}
	// Keep the request's order on the review page.
	for _, name := range names {
		if svm, ok := out[name]; ok {
			r.plan.VMs = append(r.plan.VMs, svm.view)
		}
	}
	return out, nil
}

func (r *resolver) sourceVM(vm *vmRead, nets map[types.ManagedObjectReference]netInfo) *sourceVM {
	svm := &sourceVM{plan: &vmPlan{ref: vm.self}}
	svm.view = VM{VM: move.VM{Name: vm.name, Ref: vm.self.Value}, PowerState: string(vm.power)}
	if !vm.config {
		r.block(vm.name, fmt.Sprintf("the configuration of %s cannot be read", vm.name),
			"check that the VM is not orphaned or inaccessible, and that the service account may read it")
		return svm
	}
	svm.view.CPUs, svm.view.MemoryMB = int(vm.cpus), int(vm.memoryMB)
	svm.devices = vm.devices
	svm.key = vm.key
	var capacityKB int64
	for _, d := range svm.devices.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		svm.plan.disks = append(svm.plan.disks, disk)
		capacityKB += disk.CapacityInKB
	}
	svm.view.DiskGB = float64(capacityKB) / (1 << 20)
	svm.used = vm.used
	svm.swap, svm.suspend = vm.swap, vm.suspend
	for _, d := range svm.devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
		svm.nics = append(svm.nics, d)
		svm.view.NICs = append(svm.view.NICs, NIC{
			Label:   deviceLabel(svm.devices, d),
			Network: sourceNetworkName(d, nets),
			MAC:     d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard().MacAddress,
		})
	}
	if vm.template {
		r.block(vm.name, fmt.Sprintf("%s is a template", vm.name), "convert it to a VM first, or move it with the content library")
		svm.blocked = true
	}
	if r.checkDevices(vm.name, vm.power, svm.devices) {
		svm.blocked = true
	}
	switch vm.power {
	case types.VirtualMachinePowerStatePoweredOn:
	case types.VirtualMachinePowerStateSuspended:
		r.add(Warning, vm.name, fmt.Sprintf("%s is suspended; it moves with its suspended state and stays suspended in %s",
			vm.name, r.spec.Target), "resume it and shut it down cleanly first if the target hosts' CPUs differ from the source's")
	default:
		r.add(OK, vm.name, fmt.Sprintf("%s is %s and will be moved powered off", vm.name, powerWords(vm.power)), "")
	}
	if vm.snapshots {
		r.add(Warning, vm.name, fmt.Sprintf("%s has snapshots; they move with it and make the move slower", vm.name),
			"consolidate or delete snapshots that are no longer needed")
	}
	return svm
}

// sourceHosts reads the name and ESXi version of every host the VMs run on.
func sourceHosts(ctx context.Context, c *vim25.Client, vms []vmRead) (map[types.ManagedObjectReference]*mo.HostSystem, error) {
	var refs []types.ManagedObjectReference
	for _, vm := range vms {
		if vm.host != nil {
			refs = append(refs, *vm.host)
		}
	}
	out := map[types.ManagedObjectReference]*mo.HostSystem{}
	if len(refs) == 0 {
		return out, nil
	}
	var hosts []mo.HostSystem
	if err := property.DefaultCollector(c).Retrieve(ctx, uniqRefs(refs), []string{"name", "summary.config.product"}, &hosts); err != nil {
		return nil, err
	}
	for i := range hosts {
		hosts[i].Name = readable(hosts[i].Name)
		out[hosts[i].Self] = &hosts[i]
	}
	return out, nil
}

// checkSourceHost blocks a VM whose host runs ESXi older than 6.5: cross vCenter
// vMotion needs 6.5 or later on the hosts of both sides, not only on the vCenters.
func (r *resolver) checkSourceHost(vm *vmRead, svm *sourceVM, hosts map[types.ManagedObjectReference]*mo.HostSystem) {
	if vm.host == nil {
		return
	}
	h := hosts[*vm.host]
	if h == nil || !tooOld(hostVersion(h)) {
		return
	}
	r.block(vm.name, fmt.Sprintf("%s runs on %s, which runs ESXi %s; cross vCenter vMotion needs ESXi 6.5 or later on the source host too",
		vm.name, h.Name, hostVersion(h)),
		fmt.Sprintf("move %s to a host with ESXi 6.5 or later in %s first, or upgrade %s", vm.name, r.spec.Source, h.Name))
	svm.blocked = true
}

// deviceLabel is the label the vSphere Client shows ("Network adapter 1").
func deviceLabel(l object.VirtualDeviceList, d types.BaseVirtualDevice) string {
	if di := d.GetVirtualDevice().DeviceInfo; di != nil && di.GetDescription() != nil && di.GetDescription().Label != "" {
		return di.GetDescription().Label
	}
	return l.Name(d)
}

func powerWords(s types.VirtualMachinePowerState) string {
	switch s {
	case types.VirtualMachinePowerStatePoweredOn:
		return "powered on"
	case types.VirtualMachinePowerStatePoweredOff:
		return "powered off"
	case types.VirtualMachinePowerStateSuspended:
		return "suspended"
	}
	return string(s)
}

// sourceNetworkName is the name of the portgroup a NIC is on, as people know it.
func sourceNetworkName(d types.BaseVirtualDevice, nets map[types.ManagedObjectReference]netInfo) string {
	switch b := d.GetVirtualDevice().Backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.Network != nil {
			if n, ok := nets[*b.Network]; ok {
				return n.Name
			}
		}
		return readable(b.DeviceName)
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		for _, n := range nets {
			if n.Key != "" && n.Key == b.Port.PortgroupKey {
				return n.Name
			}
		}
		return b.Port.PortgroupKey
	case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
		// An NSX segment on an N-VDS: the backing names it by id only; people know
		// it by the name of the opaque network of that id.
		for _, n := range nets {
			if n.OpaqueID != "" && n.OpaqueID == b.OpaqueNetworkId {
				return n.Name
			}
		}
		return b.OpaqueNetworkId
	}
	return ""
}
