package xvmsim

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// VMPlacement is where a VM lives, as read back over the vCenter API.
type VMPlacement struct {
	Name string
	Ref  string // managed object id, e.g. "vm-42"
	// Folder is the path of the VM's folder relative to the datacenter's vm
	// folder, e.g. "apps/web"; "" for the vm folder itself.
	Folder  string
	Host    string
	Pool    string // resource pool name; "Resources" for a cluster's root pool
	Cluster string

	Datastores []string
	Disks      []DiskInfo
	NICs       []NICInfo

	UUID         string // BIOS UUID
	InstanceUUID string
	PowerState   string // "poweredOn" or "poweredOff"
}

// DiskInfo is one virtual disk of a VM.
type DiskInfo struct {
	Datastore  string
	Thin       bool
	EagerScrub bool
	CapacityKB int64
	// RDM is the compatibility mode of a raw device mapping (physicalMode, virtualMode),
	// "" for a disk that is not one; LUN is the canonical name of the LUN it maps.
	RDM, LUN string
	// SESparse marks an SE sparse disk.
	SESparse bool
}

// NICInfo is one network adapter of a VM.
type NICInfo struct {
	Network     string // portgroup, network or NSX segment name, as vCenter returns it
	MAC         string
	Distributed bool
	Segment     bool // on an NSX segment (an opaque network)
}

// FindVM reads where the VM with the given name lives. It returns an error
// wrapping ErrNotFound when the vCenter has no such VM.
func (v *VC) FindVM(ctx context.Context, name string) (*VMPlacement, error) {
	c, err := v.Client(ctx)
	if err != nil {
		return nil, fmt.Errorf("find vm %s in %s: %w", name, v.Name, err)
	}
	defer logout(c)
	p, err := findVM(ctx, c, name)
	if err != nil {
		return nil, fmt.Errorf("find vm %s in %s: %w", name, v.Name, err)
	}
	return p, nil
}

func findVM(ctx context.Context, c *govmomi.Client, name string) (*VMPlacement, error) {
	cv, err := view.NewManager(c.Client).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cv.Destroy(context.Background()) }()
	refs, err := cv.Find(ctx, []string{"VirtualMachine"}, property.Match{"name": name})
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, ErrNotFound
	}

	var vm mo.VirtualMachine
	props := []string{"name", "parent", "resourcePool", "datastore", "network", "config", "runtime"}
	if err := c.RetrieveOne(ctx, refs[0], props, &vm); err != nil {
		return nil, err
	}

	n := namer{c: c, names: map[types.ManagedObjectReference]string{}}
	p := &VMPlacement{Name: vm.Name, Ref: vm.Self.Value, PowerState: string(vm.Runtime.PowerState)}
	if vm.Config != nil {
		p.UUID, p.InstanceUUID = vm.Config.Uuid, vm.Config.InstanceUuid
	}
	if p.Folder, err = folderPath(ctx, c, vm.Parent); err != nil {
		return nil, err
	}
	if vm.Runtime.Host != nil {
		var h mo.HostSystem
		if err := c.RetrieveOne(ctx, *vm.Runtime.Host, []string{"name", "parent"}, &h); err != nil {
			return nil, err
		}
		p.Host = h.Name
		if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
			p.Cluster = n.name(ctx, *h.Parent)
		}
	}
	if vm.ResourcePool != nil {
		p.Pool = n.name(ctx, *vm.ResourcePool)
	}
	for _, ds := range vm.Datastore {
		p.Datastores = append(p.Datastores, n.name(ctx, ds))
	}
	slices.Sort(p.Datastores)

	if vm.Config == nil {
		return p, nil
	}
	for _, d := range vm.Config.Hardware.Device {
		switch dev := d.(type) {
		case *types.VirtualDisk:
			info := DiskInfo{CapacityKB: dev.CapacityInKB}
			if b, ok := dev.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				info.Thin = b.ThinProvisioned != nil && *b.ThinProvisioned
				info.EagerScrub = b.EagerlyScrub != nil && *b.EagerlyScrub
				if b.Datastore != nil {
					info.Datastore = n.name(ctx, *b.Datastore)
				}
			}
			if b, ok := dev.Backing.(*types.VirtualDiskSeSparseBackingInfo); ok {
				info.SESparse = true
				if b.Datastore != nil {
					info.Datastore = n.name(ctx, *b.Datastore)
				}
			}
			if b, ok := dev.Backing.(*types.VirtualDiskRawDiskMappingVer1BackingInfo); ok {
				info.RDM, info.LUN = b.CompatibilityMode, lunCanonical(b.DeviceName)
				if b.Datastore != nil {
					info.Datastore = n.name(ctx, *b.Datastore)
				}
			}
			p.Disks = append(p.Disks, info)
		case types.BaseVirtualEthernetCard:
			card := dev.GetVirtualEthernetCard()
			info := NICInfo{MAC: card.MacAddress}
			switch b := card.Backing.(type) {
			case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
				info.Distributed = true
				info.Network = n.name(ctx, types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey})
			case *types.VirtualEthernetCardNetworkBackingInfo:
				info.Network = b.DeviceName
				if b.Network != nil {
					info.Network = n.name(ctx, *b.Network)
				}
			case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
				info.Segment, info.Network = true, b.OpaqueNetworkId
				for _, ref := range vm.Network {
					if ref.Type != "OpaqueNetwork" {
						continue
					}
					var seg mo.OpaqueNetwork
					if err := c.RetrieveOne(ctx, ref, []string{"name", "summary"}, &seg); err != nil {
						return nil, err
					}
					if s, ok := seg.Summary.(*types.OpaqueNetworkSummary); ok && s.OpaqueNetworkId == b.OpaqueNetworkId {
						info.Network = seg.Name
					}
				}
			}
			p.NICs = append(p.NICs, info)
		}
	}
	return p, nil
}

// folderPath walks up from a VM's folder to the datacenter's vm folder.
func folderPath(ctx context.Context, c *govmomi.Client, parent *types.ManagedObjectReference) (string, error) {
	var parts []string
	for ref := parent; ref != nil && ref.Type == "Folder"; {
		var f mo.Folder
		if err := c.RetrieveOne(ctx, *ref, []string{"name", "parent"}, &f); err != nil {
			return "", err
		}
		if f.Parent == nil || f.Parent.Type != "Folder" {
			break // f is the datacenter's vm folder
		}
		parts = append(parts, f.Name)
		ref = f.Parent
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/"), nil
}

// namer caches entity names; a name that cannot be read is left empty
// rather than failing the whole placement.
type namer struct {
	c     *govmomi.Client
	names map[types.ManagedObjectReference]string
}

func (n namer) name(ctx context.Context, ref types.ManagedObjectReference) string {
	if s, ok := n.names[ref]; ok {
		return s
	}
	name, _ := entityName(ctx, n.c, ref)
	n.names[ref] = name
	return name
}

// entityName reads an entity's name from the raw property set: decoding into
// mo.ManagedEntity loses it for types such as Network that redeclare Name.
func entityName(ctx context.Context, c *govmomi.Client, ref types.ManagedObjectReference) (string, error) {
	var content []types.ObjectContent
	if err := c.RetrieveOne(ctx, ref, []string{"name"}, &content); err != nil {
		return "", err
	}
	for _, oc := range content {
		for _, p := range oc.PropSet {
			if name, ok := p.Val.(string); ok && p.Name == "name" && name != "" {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("%s has no name", ref)
}

// RenameVM renames a VM over SOAP, as a person in the vSphere Client would: tests use it to
// put another VM in the place (the name) of one that was approved to move.
func (v *VC) RenameVM(ctx context.Context, from, to string) error {
	c, err := v.Client(ctx)
	if err != nil {
		return fmt.Errorf("rename vm %s in %s: %w", from, v.Name, err)
	}
	defer logout(c)
	p, err := findVM(ctx, c, from)
	if err != nil {
		return fmt.Errorf("rename vm %s in %s: %w", from, v.Name, err)
	}
	task, err := object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: p.Ref}).Rename(ctx, to)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("rename vm %s to %s in %s: %w", from, to, v.Name, err)
	}
	return nil
}
