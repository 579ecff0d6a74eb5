package vcenter

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// diskTarget is where one disk goes when the spec places it apart from the VM
// (MoveSpec.Disks, the wizard's "Configure per disk").
type diskTarget struct {
	ds     types.ManagedObjectReference // zero: the plan's datastore
	name   string                       // the datastore's name, "" with a zero ds
	format move.DiskFormat              // "": the plan's format
}

// diskNumber is the N of a disk's "Hard disk N": from its label when it has that form,
// else its place among the VM's disks (vSphere numbers them in device order).
func diskNumber(d *types.VirtualDisk, index int) int {
	if di := d.DeviceInfo; di != nil && di.GetDescription() != nil {
		if n, ok := strings.CutPrefix(di.GetDescription().Label, "Hard disk "); ok {
			if v, err := strconv.Atoi(n); err == nil && v > 0 {
				return v
			}
		}
	}
	return index + 1
}

// disk is where disk (the index-th of the VM) goes and in what format.
func (pl placement) disk(d *types.VirtualDisk, index int, format move.DiskFormat) (types.ManagedObjectReference, move.DiskFormat) {
	ds := pl.Datastore
	if t, ok := pl.Disks[diskNumber(d, index)]; ok {
		if t.ds.Value != "" {
			ds = t.ds
		}
		if t.format != "" {
			format = t.format
		}
	}
	return ds, format
}

// checkDiskNumbers warns about each VM that has no disk a diskN= option names: the
// option does nothing for it, which its requester should know before approval.
func (r *resolver) checkDiskNumbers(srcVMs map[string]*sourceVM) {
	if len(r.spec.Disks) == 0 {
		return
	}
	for _, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		if svm == nil || svm.blocked {
			continue
		}
		have := map[int]bool{}
		for i, d := range svm.plan.disks {
			have[diskNumber(d, i)] = true
		}
		var missing []string
		for _, d := range r.spec.Disks {
			if !have[d.Disk] {
				missing = append(missing, fmt.Sprintf("Hard disk %d", d.Disk))
			}
		}
		if len(missing) > 0 {
			r.add(Warning, v.Name, fmt.Sprintf("%s has no %s: what the request says for it does not apply to %s (it has %s)",
				v.Name, strings.Join(missing, " or "), v.Name, plural(len(svm.plan.disks), "disk")),
				"check the disk numbers against the VM's \"Hard disk N\" in the vSphere Client")
		}
	}
}

// diskNumbersValid blocks a spec that names one disk twice.
func (r *resolver) diskNumbersValid() bool {
	var seen []int
	for _, d := range r.spec.Disks {
		if slices.Contains(seen, d.Disk) {
			r.block("", fmt.Sprintf("Hard disk %d is placed twice", d.Disk), fmt.Sprintf("give disk%d= once", d.Disk))
			return false
		}
		seen = append(seen, d.Disk)
	}
	return true
}
