package vcenter

import (
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// Disks are numbered as the vSphere Client labels them ("Hard disk N"), whatever their
// place in the device list; without such a label, by their place. The RelocateSpec puts
// each disk where its number says.
func TestDisksAreNumberedByTheirLabel(t *testing.T) {
	disk := func(key int32, label string) *types.VirtualDisk {
		d := &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: key,
			Backing: &types.VirtualDiskFlatVer2BackingInfo{}}}
		if label != "" {
			d.DeviceInfo = &types.Description{Label: label}
		}
		return d
	}
	// Listed out of label order, as a VM whose disks were added and removed over time is.
	vm := &vmPlan{disks: []*types.VirtualDisk{disk(2001, "Hard disk 2"), disk(2000, "Hard disk 1"), disk(2002, "")}}
	for i, want := range []int{2, 1, 3} {
		if got := diskNumber(vm.disks[i], i); got != want {
			t.Errorf("disk %d (key %d): number %d, want %d", i, vm.disks[i].Key, got, want)
		}
	}
	pl := testPlacement
	other := types.ManagedObjectReference{Type: "Datastore", Value: "datastore-other"}
	pl.Disks = map[int]diskTarget{2: {ds: other, name: "other", format: move.Eager}}
	spec := buildRelocateSpec(pl, vm, move.Thin, nil)
	for _, dl := range spec.Disk {
		b := dl.DiskBackingInfo.(*types.VirtualDiskFlatVer2BackingInfo)
		apart := dl.DiskId == 2001 // "Hard disk 2", listed first
		if (dl.Datastore == other) != apart || isTrue(b.EagerlyScrub) != apart || isTrue(b.ThinProvisioned) == apart {
			t.Errorf("disk %d: datastore %s, thin %v, eager %v", dl.DiskId, dl.Datastore.Value, isTrue(b.ThinProvisioned), isTrue(b.EagerlyScrub))
		}
	}
}
