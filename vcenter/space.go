package vcenter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// spaceNeed is what the moving VMs need on one datastore: their disks placed there in
// the requested formats, and, on the VMs' own datastore, their memory files.
type spaceNeed struct {
	ds                         types.ManagedObjectReference
	name                       string
	disks, grow, swap, suspend int64
	thinner                    bool // disk=thin would need less
	byPolicy                   bool // vSAN or vVols: the storage policy decides what the disks take
	formats                    []move.DiskFormat
	who                        []string
}

// checkSpace checks each datastore the VMs' files go to: the spec's datastore (their
// own files and every disk not placed apart) and the datastores of disks placed apart.
//
// What is not copied is not counted: disks on storage both vCenters mount, and RDMs
// whose mapping file alone moves (diskSpace).
func (r *resolver) checkSpace(ctx context.Context, c *vim25.Client, home types.ManagedObjectReference, disks map[int]diskTarget, srcVMs map[string]*sourceVM, stores map[types.ManagedObjectReference]targetStore) error {
	needs := []*spaceNeed{{ds: home, name: r.plan.Datastore}}
	at := func(ds types.ManagedObjectReference, name string) *spaceNeed {
		for _, n := range needs {
			if n.ds == ds {
				return n
			}
		}
		n := &spaceNeed{ds: ds, name: name}
		needs = append(needs, n)
		return n
	}
	for _, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		if svm == nil {
			continue
		}
		h := needs[0]
		h.swap, h.suspend = h.swap+svm.swap, h.suspend+svm.suspend
		h.who = append(h.who, v.Name)
		for i, d := range svm.plan.disks {
			ds, name, format := home, r.plan.Datastore, r.spec.DiskFormat
			if t, ok := disks[diskNumber(d, i)]; ok {
				if t.ds.Value != "" {
					ds, name = t.ds, t.name
				}
				if t.format != "" {
					format = t.format
				}
			}
			t := stores[ds]
			need, grow, counted := diskSpace(svm, d, format, t)
			if !counted {
				continue
			}
			n := at(ds, name)
			n.disks, n.grow = n.disks+need, n.grow+grow
			n.byPolicy = t.byPolicy()
			if thin, _, _ := diskSpace(svm, d, move.Thin, t); thin < need {
				n.thinner = true
			}
			if !slices.Contains(n.formats, format) {
				n.formats = append(n.formats, format)
			}
			if len(n.who) == 0 || n.who[len(n.who)-1] != v.Name { // a VM's disks come together
				n.who = append(n.who, v.Name)
			}
		}
	}
	for _, n := range needs {
		if err := r.checkDatastoreSpace(ctx, c, n); err != nil {
			return err
		}
	}
	return nil
}

// vmNeeds is what one VM's files take on each target datastore of pl: its disks where
// they go, in their formats, and its memory files on its own datastore (checkSpace adds
// these up over the VMs, with what thin disks may grow to).
func vmNeeds(svm *sourceVM, pl *placement, format move.DiskFormat) map[types.ManagedObjectReference]int64 {
	out := map[types.ManagedObjectReference]int64{pl.Datastore: svm.swap + svm.suspend}
	for i, d := range svm.plan.disks {
		ds, f := pl.disk(d, i, format)
		if need, _, counted := diskSpace(svm, d, f, pl.stores[ds]); counted {
			out[ds] += need
		}
	}
	return out
}

// checkDatastoreSpace blocks when the datastore cannot hold what n needs (thin disks:
// what they use now; thick ones: their full size; plus memory files), and warns when thin
// disks could outgrow its free space later. It also blocks on a datastore that is
// inaccessible or in maintenance mode.
func (r *resolver) checkDatastoreSpace(ctx context.Context, c *vim25.Client, n *spaceNeed) error {
	var d mo.Datastore
	if err := property.DefaultCollector(c).RetrieveOne(ctx, n.ds, []string{"summary"}, &d); err != nil {
		return err
	}
	name := n.name
	if !d.Summary.Accessible {
		r.block("", fmt.Sprintf("datastore %s is not accessible", name), "choose another datastore")
		return nil
	}
	if d.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateInMaintenance) ||
		d.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateEnteringMaintenance) {
		r.block("", fmt.Sprintf("datastore %s is in maintenance mode", name), "choose another datastore")
		return nil
	}
	if n.byPolicy {
		// vSAN and vVols keep as many copies as the policy asks (RAID-1 with one failure to
		// tolerate: two): the free space checked below is what the data needs once.
		r.add(OK, "", fmt.Sprintf("%s provisions by storage policy: the disks are counted as thin, once; the policy may keep more copies of them",
			name), "")
	}
	disks, grow, swap, suspend, thinner, who := n.disks, n.grow, n.swap, n.suspend, n.thinner, n.who
	formats := "disks in the requested formats"
	if len(n.formats) == 1 {
		formats = formatWords(n.formats[0])
	}
	need, free := disks+swap+suspend, d.Summary.FreeSpace
	if need <= free && need+grow <= free {
		return nil
	}
	// Disks only: "the disks of web-01 need …". With memory files, the VMs themselves
	// need the space, and the message says how much of it is what.
	subject, needs, fits, their := fmt.Sprintf("the disks of the %d VMs", len(who)), "need", "fit", "their"
	vm := ""
	if len(who) == 1 {
		subject, vm = "the disks of "+who[0], who[0]
	}
	breakdown := "" // "disks … as …, swap …" when memory files add to the disks
	if swap+suspend > 0 {
		subject = fmt.Sprintf("the %d VMs", len(who))
		if len(who) == 1 {
			subject, needs, fits, their = who[0], "needs", "fits", "its"
		}
		parts := []string{fmt.Sprintf("disks %s as %s", gib(disks), formats)}
		if swap > 0 {
			parts = append(parts, "swap "+gib(swap))
		}
		if suspend > 0 {
			parts = append(parts, "suspended memory "+gib(suspend))
		}
		breakdown = strings.Join(parts, ", ")
	}
	if need > free {
		msg := fmt.Sprintf("%s %s %s on %s as %s; it has %s free", subject, needs, gib(need), name, formats, gib(free))
		if breakdown != "" {
			msg = fmt.Sprintf("%s %s %s on %s (%s); it has %s free", subject, needs, gib(need), name, breakdown, gib(free))
		}
		hint := "choose a datastore with more free space, or move fewer VMs at once"
		if thinner {
			hint = "choose a datastore with more free space, move fewer VMs at once, or use disk=thin"
		}
		if swap > 0 && disks+suspend <= free {
			hint += "; the disks alone would fit: a VM with all its memory reserved, or moved powered off, needs no swap file"
		}
		r.block(vm, msg, hint)
		return nil
	}
	now := fmt.Sprintf("%s of %s free", gib(need), gib(free))
	if breakdown != "" {
		now = fmt.Sprintf("%s needed, %s free; %s", gib(need), gib(free), breakdown)
	}
	r.add(Warning, vm, fmt.Sprintf("%s %s on %s now (%s), but %s thin disks can grow to %s in all",
		subject, fits, name, now, their, gib(need+grow)), "watch the datastore's free space after the move")
	return nil
}

// memoryFiles is what a VM's memory takes on the target datastore besides its disks:
// a running VM gets a swap file there of its memory less what is reserved for it, and a
// suspended one brings its suspended memory, as large as its memory.
func memoryFiles(vm *mo.VirtualMachine) (swap, suspend int64) {
	if vm.Config == nil {
		return 0, 0
	}
	memory := int64(vm.Config.Hardware.MemoryMB) << 20
	switch vm.Runtime.PowerState {
	case types.VirtualMachinePowerStatePoweredOn:
		if isTrue(vm.Config.MemoryReservationLockedToMax) {
			return 0, 0
		}
		var reserved int64
		if a := vm.Config.MemoryAllocation; a != nil && a.Reservation != nil {
			reserved = *a.Reservation << 20
		}
		return max(memory-reserved, 0), 0
	case types.VirtualMachinePowerStateSuspended:
		return 0, memory
	}
	return 0, 0
}

// gib renders bytes as people read datastore sizes.
func gib(b int64) string { return fmt.Sprintf("%.1f GB", float64(b)/(1<<30)) }

func formatWords(f move.DiskFormat) string {
	switch f {
	case move.Thin:
		return "thin disks"
	case move.Thick:
		return "thick (lazy zeroed) disks"
	case move.Eager:
		return "thick eager zeroed disks"
	}
	return "disks in their current format"
}
