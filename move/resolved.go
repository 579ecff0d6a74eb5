package move

// Resolved is where pre-flight placed one VM, by object identity in the target vCenter:
// everything its RelocateSpec is built from besides the VM's own devices, which are read
// when the move starts. The review keeps it per VM and the approval signs it with the VM,
// so a worker that did not make the plan (another process, or an approval that came
// late) checks only what may have changed since (the VM is there and powered as
// approved, the host takes VMs, the datastores have room, the objects still exist) and
// moves the VM to these very objects or, when anything changed, plans from names again.
//
// Unlike the rest of the package it holds managed object ids; its JSON is signed, and its
// field names never change.
type Resolved struct {
	// PowerState is the VM's power state as the review showed it ("poweredOn").
	PowerState string `json:"power_state"`
	Host       Object `json:"host"`
	Pool       Object `json:"pool"`
	Datastore  Object `json:"datastore"` // the VM's own files, and each disk not placed apart
	Folder     Object `json:"folder"`
	// OtherHosts are the ids of the cluster's other hosts that qualified, least loaded
	// first: a job whose host is busy may start on one of them (same pool, datastores
	// and networks).
	OtherHosts []string `json:"other_hosts,omitempty"`
	// Profile is the target storage policy id of the VM's own files; "" sends none.
	Profile string `json:"profile,omitempty"`
	// Disks are every disk of the VM, in device order.
	Disks []ResolvedDisk `json:"disks,omitempty"`
	// NICs are every network adapter of the VM, in device order.
	NICs []ResolvedNIC `json:"nics,omitempty"`
	// Needs are the bytes the VM's files take on each target datastore.
	Needs []Need `json:"needs,omitempty"`
}

// Object is a managed object of a vCenter: its type and id ("HostSystem", "host-21").
// Name is set only where the object's own name does not say what the review showed (a
// folder's path); the others are read again with the object.
type Object struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Name  string `json:"name,omitempty"`
}

// ResolvedDisk is one disk of a VM as its move places it.
type ResolvedDisk struct {
	Key       int32  `json:"key"`       // the device key in the source
	Datastore string `json:"datastore"` // the target datastore's id
	// Format is the format the disk is converted to; "" sends no backing (the disk keeps
	// its format, or it is not copied).
	Format  DiskFormat `json:"format,omitempty"`
	Profile string     `json:"profile,omitempty"` // the target storage policy id; "" none
}

// ResolvedNIC is one network adapter of a VM and the target backing it gets.
type ResolvedNIC struct {
	Key     int32  `json:"key"` // the device key in the source
	Network Object `json:"network"`
	// The backing's ids: a distributed portgroup's switch and key, an NSX segment's id
	// and type, a standard portgroup's name as vCenter spells it.
	SwitchUUID   string `json:"switch_uuid,omitempty"`
	PortgroupKey string `json:"portgroup_key,omitempty"`
	OpaqueID     string `json:"opaque_id,omitempty"`
	OpaqueType   string `json:"opaque_type,omitempty"`
	DeviceName   string `json:"device_name,omitempty"`
}

// Need is what a VM's files take on one target datastore (by id): its disks copied
// there, in their formats, and on its own datastore its memory files.
type Need struct {
	Datastore string `json:"datastore"`
	Bytes     int64  `json:"bytes"`
}

// Clone returns a copy of r that shares no slice with it.
func (r *Resolved) Clone() *Resolved {
	if r == nil {
		return nil
	}
	c := *r
	c.OtherHosts = append([]string(nil), r.OtherHosts...)
	c.Disks = append([]ResolvedDisk(nil), r.Disks...)
	c.NICs = append([]ResolvedNIC(nil), r.NICs...)
	c.Needs = append([]Need(nil), r.Needs...)
	return &c
}
