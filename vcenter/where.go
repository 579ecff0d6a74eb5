package vcenter

import (
	"context"
	"crypto/x509"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// Where is a VM's placement by name, in the terms of a MoveSpec: what the worker records
// before a move so that /xvm undo can ask for the way back, and what it checks after one.
type Where struct {
	VCenter    string
	Cluster    string // empty for a standalone host
	Host       string
	Pool       string // "Resources" for the root pool
	Datastore  string // the datastore of the VM's own files (its .vmx), else of its first disk
	Datastores []string
	Disks      []move.Disk // every disk, in device order, with its datastore and format
	Folder     string      // path under the datacenter's VM folder, "" for its root
	Networks   []string    // portgroup of each NIC, in device order
	DiskFormat move.DiskFormat
	// Policy is the storage policy of the VM's own files, by name; move.DatastoreDefault
	// is none, "" unknown (the policy service did not answer).
	Policy     string
	PowerState string
	diskKeys   []int32 // each disk's device key, in device order, for its policy (policy.go)

	// DatastoreClusters names, for each of Datastores in a datastore cluster, that
	// cluster: Storage DRS moves files among its datastores.
	DatastoreClusters map[string]string
}

// Where reads where vm is in vCenter vcName now.
func (m *Manager) Where(ctx context.Context, vcName, vm string) (*Where, error) {
	var out *Where
	err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		ref, err := m.oneVM(ctx, c, vcName, vm)
		if err != nil {
			return err
		}
		out, err = where(ctx, c, ref)
		if out != nil {
			out.VCenter = vcName
		}
		return err
	})
	if err != nil {
		return nil, m.scrub(err)
	}
	return out, nil
}

// Origin is w as the place a move takes the VM from: what /xvm undo asks to go back to.
// Its disks are those not on w's Datastore, in its DiskFormat or under its Policy, each
// saying only what differs; its Networks are left to the caller, who knows where each
// NIC went.
func (w *Where) Origin() move.Origin {
	o := move.Origin{VCenter: w.VCenter, Placement: move.Placement{Cluster: w.Cluster, Host: w.Host, Pool: w.Pool,
		Datastore: w.Datastore, Folder: w.Folder, DiskFormat: w.DiskFormat, Policy: w.Policy}}
	for _, d := range w.Disks {
		if d.Datastore == w.Datastore && d.DiskFormat == w.DiskFormat && d.Policy == w.Policy {
			continue
		}
		if d.Datastore == w.Datastore {
			d.Datastore = ""
		}
		if d.Policy == w.Policy {
			d.Policy = ""
		}
		o.Disks = append(o.Disks, d)
	}
	return o
}

// where reads a VM's placement in a fixed handful of round trips: the VM, then the names
// of everything it sits in at once (host, pool, datastores, folder, distributed
// portgroups), then the host's cluster with the next folder up, then one call per
// further folder level; and, for a VM with a NIC on an NSX segment, one listing of the
// segments. Segments are named by their entity name, as every listing names the
// networks a plan maps NICs to, so that the check after a move compares like with like.
func where(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference) (*Where, error) {
	pc := property.DefaultCollector(c)
	var v mo.VirtualMachine
	if err := pc.RetrieveOne(ctx, ref, []string{"runtime.host", "runtime.powerState", "resourcePool", "datastore", "parent", "config.hardware.device", "config.files.vmPathName"}, &v); err != nil {
		return nil, err
	}
	w := &Where{PowerState: string(v.Runtime.PowerState)}
	// The devices first: the disks, and the NICs' networks, some of which are named by
	// a distributed portgroup's key that is read with the rest below.
	nicPG := map[int]types.ManagedObjectReference{} // NIC index → distributed portgroup
	nicSeg := map[int]string{}                      // NIC index → NSX segment id
	if v.Config != nil {
		for _, d := range v.Config.Hardware.Device {
			switch dev := d.(type) {
			case *types.VirtualDisk:
				wd := move.Disk{Disk: diskNumber(dev, len(w.Disks)), DiskFormat: move.Thick}
				if b, ok := dev.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					wd.Datastore = datastoreOfPath(b.FileName)
					switch {
					case b.ThinProvisioned != nil && *b.ThinProvisioned:
						wd.DiskFormat = move.Thin
					case b.EagerlyScrub != nil && *b.EagerlyScrub:
						wd.DiskFormat = move.Eager
					}
				} else if b, ok := dev.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					// An RDM or an SE sparse disk has no format to ask for: "same" keeps it
					// as it is when /xvm undo moves it back (a format would convert an RDM).
					wd.Datastore, wd.DiskFormat = datastoreOfPath(b.GetVirtualDeviceFileBackingInfo().FileName), move.Same
				}
				if len(w.Disks) == 0 {
					w.Datastore, w.DiskFormat = wd.Datastore, wd.DiskFormat
				}
				w.Disks = append(w.Disks, wd)
				w.diskKeys = append(w.diskKeys, dev.Key)
			case types.BaseVirtualEthernetCard:
				name := ""
				switch b := dev.GetVirtualEthernetCard().Backing.(type) {
				case *types.VirtualEthernetCardNetworkBackingInfo:
					name = readable(b.DeviceName)
				case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
					nicPG[len(w.Networks)] = types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
				case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
					name, nicSeg[len(w.Networks)] = b.OpaqueNetworkId, b.OpaqueNetworkId
				}
				w.Networks = append(w.Networks, name)
			}
		}
	}

	// The storage policies need only the disks' keys: they are read from the policy
	// service while the names are read from vCenter.
	var (
		policies    map[types.ManagedObjectReference]policyNames
		policiesErr error
		reading     sync.WaitGroup
	)
	reading.Go(func() {
		policies, policiesErr = associatedPolicies(ctx, c, map[types.ManagedObjectReference][]int32{ref: w.diskKeys})
	})
	defer reading.Wait()

	refs := slices.Clone(v.Datastore)
	for _, r := range []*types.ManagedObjectReference{v.Runtime.Host, v.ResourcePool, v.Parent} {
		if r != nil {
			refs = append(refs, *r)
		}
	}
	for _, r := range nicPG {
		refs = append(refs, r)
	}
	seen, err := entities(ctx, pc, refs)
	if err != nil {
		return nil, err
	}
	var next []types.ManagedObjectReference // the second round: the cluster, a folder up
	if v.Runtime.Host != nil {
		h := seen[*v.Runtime.Host]
		w.Host = h.Name
		if h.Parent.Type == "ClusterComputeResource" {
			next = append(next, h.Parent)
		}
	}
	if v.ResourcePool != nil {
		w.Pool = seen[*v.ResourcePool].Name
	}
	for _, ds := range v.Datastore {
		w.Datastores = append(w.Datastores, seen[ds].Name)
		if p := seen[ds].Parent; p.Type == "StoragePod" {
			next = append(next, p)
		}
	}
	for i, r := range nicPG {
		if e, ok := seen[r]; ok {
			w.Networks[i] = e.Name
		}
	}
	if len(nicSeg) > 0 {
		// An NSX segment on an N-VDS: named in the backing by id only.
		segs, err := segmentNames(ctx, c)
		if err != nil {
			return nil, err
		}
		for i, id := range nicSeg {
			if name, ok := segs[id]; ok {
				w.Networks[i] = name
			}
		}
	}
	// Folder path: walk up to the datacenter; its VM folder itself is the root ("").
	var path []string
	folder := v.Parent
	up := func() {
		e := seen[*folder]
		if e.Parent.Value == "" || e.Parent.Type == "Datacenter" {
			folder = nil
			return
		}
		path = append([]string{pathSegment(e.Name)}, path...)
		folder = &e.Parent
	}
	if folder != nil {
		up()
	}
	if folder != nil {
		next = append(next, *folder)
	}
	more, err := entities(ctx, pc, next)
	if err != nil {
		return nil, err
	}
	maps.Copy(seen, more)
	for _, ds := range v.Datastore {
		if pod, ok := seen[seen[ds].Parent]; ok && seen[ds].Parent.Type == "StoragePod" {
			if w.DatastoreClusters == nil {
				w.DatastoreClusters = map[string]string{}
			}
			w.DatastoreClusters[seen[ds].Name] = pod.Name
		}
	}
	if h := v.Runtime.Host; h != nil {
		if p := seen[*h].Parent; p.Type == "ClusterComputeResource" {
			w.Cluster = seen[p].Name
		}
	}
	for folder != nil {
		if _, ok := seen[*folder]; !ok {
			more, err := entities(ctx, pc, []types.ManagedObjectReference{*folder})
			if err != nil {
				return nil, err
			}
			maps.Copy(seen, more)
		}
		up()
	}
	w.Folder = strings.Join(path, "/")

	if w.Datastore == "" && len(w.Datastores) > 0 {
		w.Datastore = w.Datastores[0]
	}
	if v.Config != nil && v.Config.Files.VmPathName != "" {
		// The VM's own files decide its datastore, as the relocation's spec.Datastore does.
		w.Datastore = datastoreOfPath(v.Config.Files.VmPathName)
	}
	reading.Wait()
	if policiesErr == nil {
		w.setPolicies(policies[ref])
	}
	return w, nil
}

// entities reads the name and parent of several managed objects, of any types, at once.
func entities(ctx context.Context, pc *property.Collector, refs []types.ManagedObjectReference) (map[types.ManagedObjectReference]named, error) {
	out := map[types.ManagedObjectReference]named{}
	if len(refs) == 0 {
		return out, nil
	}
	var content []types.ObjectContent
	if err := pc.Retrieve(ctx, uniqRefs(refs), []string{"name", "parent"}, &content); err != nil {
		return nil, err
	}
	for _, oc := range content {
		out[oc.Obj] = namedOf(oc)
	}
	return out, nil
}

// datastoreOfPath is the datastore of a path such as "[ds-gold] web-01/web-01.vmdk".
func datastoreOfPath(p string) string {
	return readable(strings.TrimPrefix(strings.SplitN(p, "]", 2)[0], "["))
}
