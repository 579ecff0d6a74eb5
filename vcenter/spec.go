package vcenter

import (
	"reflect"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// placement is where in the target a plan puts its VMs.
type placement struct {
	Host, Pool, Datastore, Folder types.ManagedObjectReference
	// Disks are the disks placed apart, by "Hard disk N" number.
	Disks map[int]diskTarget
	// stores are the target datastores as the disk rules need them (diskkinds.go).
	stores map[types.ManagedObjectReference]targetStore
}

// vmPlan is one VM resolved in the source, with the target backing of each NIC.
type vmPlan struct {
	ref   types.ManagedObjectReference
	disks []*types.VirtualDisk
	nics  []nicPlan
	// profiles are the storage policies the VM is moved with (policy.go); nil: none.
	profiles *profiles
	// moves, when set, say where each of disks goes and in what format, instead of the
	// placement's rules: a plan rebuilt from an approved resolution (Recheck) has them.
	moves []diskMove
	// needs are the bytes the VM's files take on each target datastore.
	needs map[types.ManagedObjectReference]int64
	// at is where the VM ran when it was read again just before the move (Recheck): its
	// footprint needs no other read. Nil for a plan made from names.
	at *runningAt
}

// diskMove is where one disk goes, and the format it is converted to ("" none).
type diskMove struct {
	ds     types.ManagedObjectReference
	format move.DiskFormat
}

// runningAt is the source host and datastores of a VM.
type runningAt struct {
	host       *types.ManagedObjectReference
	datastores []types.ManagedObjectReference
}

// diskMoves are where vm's disks go and in what format each is converted.
func (pl placement) diskMoves(vm *vmPlan, format move.DiskFormat) []diskMove {
	if vm.moves != nil {
		return vm.moves
	}
	out := make([]diskMove, len(vm.disks))
	for i, d := range vm.disks {
		ds, f := pl.disk(d, i, format)
		out[i] = diskMove{ds: ds, format: sentFormat(d, f, pl.stores[ds])}
	}
	return out
}

// nicPlan pairs a source network adapter with its backing in the target.
type nicPlan struct {
	device  types.BaseVirtualDevice            // as read from the source: key and MAC are kept
	backing types.BaseVirtualDeviceBackingInfo // the target portgroup
	network types.ManagedObjectReference       // the target portgroup's object
}

// buildRelocateSpec is the RelocateSpec for one VM: pure, so tests can read
// exactly what would be sent. With Service set vCenter needs host, pool and
// datastore; the folder is given too so the VM does not land in the root.
func buildRelocateSpec(pl placement, vm *vmPlan, format move.DiskFormat, loc *types.ServiceLocator) types.VirtualMachineRelocateSpec {
	spec := types.VirtualMachineRelocateSpec{
		Host:      ref(pl.Host),
		Pool:      ref(pl.Pool),
		Datastore: ref(pl.Datastore),
		Folder:    ref(pl.Folder),
		Service:   loc,
	}
	for i, mv := range pl.diskMoves(vm, format) {
		d := vm.disks[i]
		dl := types.VirtualMachineRelocateSpecDiskLocator{DiskId: d.Key, Datastore: mv.ds}
		if b := formatBacking(d, mv.format); b != nil {
			dl.DiskBackingInfo = b
		}
		spec.Disk = append(spec.Disk, dl)
	}
	for _, n := range vm.nics {
		dev := copyDevice(n.device)
		dev.GetVirtualDevice().Backing = n.backing
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationEdit,
			Device:    dev,
		})
	}
	withProfiles(&spec, vm.profiles)
	return spec
}

// movePriority maps the request's priority to vSphere's.
func movePriority(p move.Priority) types.VirtualMachineMovePriority {
	if p == move.PriorityHigh {
		return types.VirtualMachineMovePriorityHighPriority
	}
	return types.VirtualMachineMovePriorityDefaultPriority
}

// copyDevice makes a shallow copy so that editing the backing for a spec
// never changes the device kept in the plan.
func copyDevice(d types.BaseVirtualDevice) types.BaseVirtualDevice {
	v := reflect.ValueOf(d)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return d
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	return c.Interface().(types.BaseVirtualDevice)
}

func ref(r types.ManagedObjectReference) *types.ManagedObjectReference {
	if r.Value == "" {
		return nil
	}
	return &r
}

func isTrue(b *bool) bool { return b != nil && *b }
