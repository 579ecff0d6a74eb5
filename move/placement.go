package move

import (
	"slices"
	"strings"
)

// Placement is where a move puts a VM, by name, as asked for. An empty field is left to
// the planner: it keeps the VM's own setting or picks one (the target's default), as
// each field says.
type Placement struct {
	// Cluster is the target compute resource; "" lets Host decide, or the planner choose.
	Cluster string `json:"cluster,omitempty"`
	// Host is the target host; with Cluster set it must be in that cluster. "" lets the
	// planner pick a host of Cluster.
	Host string `json:"host,omitempty"`
	// Pool is the target resource pool; "" is the compute resource's root pool.
	Pool string `json:"pool,omitempty"`
	// Datastore takes the VM's own files and every disk Disks does not place elsewhere;
	// it may name a datastore cluster. "" lets the planner choose.
	Datastore string `json:"datastore,omitempty"`
	// Folder is the VM folder path under the target datacenter ("migrated/web"); "" is
	// the datacenter's VM folder itself.
	Folder string `json:"folder,omitempty"`
	// Networks map portgroups; none keeps each NIC on the portgroup of its name.
	Networks []Network `json:"networks,omitempty"`
	// DiskFormat is the format of the disks Disks does not say otherwise of; "" is Same.
	DiskFormat DiskFormat `json:"disk_format,omitempty"`
	// Priority is the vMotion priority; "" is PriorityDefault.
	Priority Priority `json:"priority,omitempty"`
	// Policy is the VM storage policy of the target, by name, for the VM's own files and
	// every disk Disks does not say otherwise of; DatastoreDefault asks for none. "" keeps
	// the policy the VM has, by name, when the target has a policy of that name (the
	// wizard's "Keep existing VM storage policies"); else the VM takes the datastore's
	// default policy.
	Policy string `json:"policy,omitempty"`
	// Disks place single disks elsewhere (the wizard's "Configure per disk"), at most one
	// entry per disk; the other disks, and the VM's own files, follow Datastore and
	// DiskFormat.
	Disks []Disk `json:"disks,omitempty"`
}

// DatastoreDefault is the wizard's "Datastore Default" storage policy choice: no policy is
// given, and the datastore's default applies. It is typed as a policy name
// (policy="Datastore Default"), in any case.
const DatastoreDefault = "Datastore Default"

// IsDatastoreDefault reports whether a policy name is DatastoreDefault, in any case.
func IsDatastoreDefault(policy string) bool { return strings.EqualFold(policy, DatastoreDefault) }

// Network maps a source portgroup to a target portgroup.
type Network struct {
	// Source is the portgroup a NIC is on before the move; "" maps every NIC.
	Source string `json:"source,omitempty"`
	// Target is the portgroup the NIC is on after the move; never "".
	Target string `json:"target"`
}

// Disk puts "Hard disk N" of each VM on its own datastore, in its own format and/or under
// its own storage policy.
type Disk struct {
	// Disk is the N of "Hard disk N", from 1.
	Disk int `json:"disk"`
	// Datastore is where the disk goes; "" keeps the Placement's Datastore.
	Datastore string `json:"datastore,omitempty"`
	// DiskFormat is the disk's format; "" keeps the Placement's DiskFormat.
	DiskFormat DiskFormat `json:"disk_format,omitempty"`
	// Policy is the disk's VM storage policy, by name; "" keeps the Placement's Policy.
	Policy string `json:"policy,omitempty"`
}

// Clone returns a copy of p that shares no slice with it.
func (p Placement) Clone() Placement {
	p.Networks = slices.Clone(p.Networks)
	p.Disks = slices.Clone(p.Disks)
	return p
}

// Origin is where a VM was before a move, by name: what /xvm undo asks to go back to.
type Origin struct {
	// VCenter is the configured name of the vCenter the VM was in.
	VCenter string `json:"vcenter"`
	// Placement is where it was in VCenter. Its Networks map each NIC's portgroup after
	// the move (Source) to the one before (Target); its Disks are the disks that were not
	// on Datastore, not in DiskFormat or not under Policy; its Priority is always "".
	Placement
}

// Clone returns a copy of o that shares no slice with it.
func (o Origin) Clone() Origin {
	o.Placement = o.Placement.Clone()
	return o
}

// NetworksBack maps each NIC's portgroup after a move to the one it had before (the two
// lists in device order, as long as each other or not: the NICs both have), each pair
// once: the Networks of an Origin.
func NetworksBack(after, before []string) []Network {
	var out []Network
	for i := range min(len(after), len(before)) {
		n := Network{Source: after[i], Target: before[i]}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
