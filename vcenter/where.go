package vcenter

import (
	"context"
	"crypto/x509"
	"strings"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
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
	Disks      []WhereDisk // in device order
	Folder     string      // path under the datacenter's VM folder, "" for its root
	Networks   []string    // portgroup of each NIC, in device order
	DiskFormat DiskFormat
	PowerState string
}

// WhereDisk is where one disk of a VM is, and in what format.
type WhereDisk struct {
	Number    int // N of its "Hard disk N", as MoveSpec.Disks numbers disks
	Datastore string
	Format    DiskFormat
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

func where(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference) (*Where, error) {
	pc := property.DefaultCollector(c)
	var v mo.VirtualMachine
	if err := pc.RetrieveOne(ctx, ref, []string{"runtime.host", "runtime.powerState", "resourcePool", "datastore", "parent", "config.hardware.device", "config.files.vmPathName"}, &v); err != nil {
		return nil, err
	}
	w := &Where{PowerState: string(v.Runtime.PowerState)}
	name := func(r types.ManagedObjectReference) (string, *types.ManagedObjectReference, error) {
		var e mo.ManagedEntity
		if err := pc.RetrieveOne(ctx, r, []string{"name", "parent"}, &e); err != nil {
			return "", nil, err
		}
		return e.Name, e.Parent, nil
	}
	if v.Runtime.Host != nil {
		h, parent, err := name(*v.Runtime.Host)
		if err != nil {
			return nil, err
		}
		w.Host = h
		if parent != nil && parent.Type == "ClusterComputeResource" {
			if w.Cluster, _, err = name(*parent); err != nil {
				return nil, err
			}
		}
	}
	if v.ResourcePool != nil {
		p, _, err := name(*v.ResourcePool)
		if err != nil {
			return nil, err
		}
		w.Pool = p
	}
	var dsNames []string
	for _, ds := range v.Datastore {
		n, _, err := name(ds)
		if err != nil {
			return nil, err
		}
		dsNames = append(dsNames, n)
	}
	w.Datastores = dsNames
	// Folder path: walk up to the datacenter; its VM folder itself is the root ("").
	var path []string
	for parent := v.Parent; parent != nil; {
		n, up, err := name(*parent)
		if err != nil {
			return nil, err
		}
		if up == nil || up.Type == "Datacenter" {
			break
		}
		path = append([]string{n}, path...)
		parent = up
	}
	w.Folder = strings.Join(path, "/")

	var nicRefs [][]types.ManagedObjectReference
	if v.Config != nil {
		for _, d := range v.Config.Hardware.Device {
			switch dev := d.(type) {
			case *types.VirtualDisk:
				wd := WhereDisk{Number: diskNumber(dev, len(w.Disks)), Format: DiskThick}
				if b, ok := dev.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					wd.Datastore = datastoreOfPath(b.FileName)
					switch {
					case b.ThinProvisioned != nil && *b.ThinProvisioned:
						wd.Format = DiskThin
					case b.EagerlyScrub != nil && *b.EagerlyScrub:
						wd.Format = DiskEager
					}
				}
				if len(w.Disks) == 0 {
					w.Datastore, w.DiskFormat = wd.Datastore, wd.Format
				}
				w.Disks = append(w.Disks, wd)
			case types.BaseVirtualEthernetCard:
				var refs []types.ManagedObjectReference
				switch b := dev.GetVirtualEthernetCard().Backing.(type) {
				case *types.VirtualEthernetCardNetworkBackingInfo:
					w.Networks = append(w.Networks, b.DeviceName)
					continue
				case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
					refs = []types.ManagedObjectReference{{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}}
				}
				nicRefs = append(nicRefs, refs)
				w.Networks = append(w.Networks, "") // filled below
			}
		}
	}
	// Distributed portgroups are named by key in the backing: read their names.
	k := 0
	for i, n := range w.Networks {
		if n != "" || k >= len(nicRefs) {
			continue
		}
		for _, r := range nicRefs[k] {
			var pg mo.DistributedVirtualPortgroup
			if err := pc.RetrieveOne(ctx, r, []string{"name"}, &pg); err == nil {
				w.Networks[i] = pg.Name
			}
		}
		k++
	}
	if w.Datastore == "" && len(dsNames) > 0 {
		w.Datastore = dsNames[0]
	}
	if v.Config != nil && v.Config.Files.VmPathName != "" {
		// The VM's own files decide its datastore, as the relocation's spec.Datastore does.
		w.Datastore = datastoreOfPath(v.Config.Files.VmPathName)
	}
	return w, nil
}

// datastoreOfPath is the datastore of a path such as "[ds-gold] web-01/web-01.vmdk".
func datastoreOfPath(p string) string {
	return strings.TrimPrefix(strings.SplitN(p, "]", 2)[0], "[")
}
