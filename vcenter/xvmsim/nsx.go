package xvmsim

import (
	"fmt"
	"slices"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// NSX-T segments on an N-VDS are opaque networks: vCenter lists them among a host's
// networks, and a NIC on one has a VirtualEthernetCardOpaqueNetworkBackingInfo that
// names the segment by id (opaqueNetworkId) and type (nsx.LogicalSwitch), never by
// name. vcsim has opaque networks (Folder.AddOpaqueNetwork; no vSphere API creates
// one) but models only NSX on a vSphere Distributed Switch: a NIC it is given with an
// nsx.LogicalSwitch backing is turned into one on the distributed portgroup of that
// logical switch, or refused with NotFound when there is none. Nor does it list an
// opaque network among any host's networks. The lab therefore creates its segments
// directly in the simulator, gives them to their hosts, and puts a NIC on a segment by
// creating it without a backing and then setting the opaque backing in place, with the
// segment in the VM's network list, as vCenter shows such a VM.

// segmentType is the opaqueNetworkType of an NSX-T segment.
const segmentType = "nsx.LogicalSwitch"

// segmentSpec is an NSX segment and the hosts that see it (its transport zone).
type segmentSpec struct {
	name  string
	id    string
	hosts []string
}

// addSegments creates the segments in the network folder of the datacenter named dc
// and lists each among the networks of its hosts.
func (e *labEdit) addSegments(dc string, segs []segmentSpec) error {
	obj, err := e.find("datacenter", dc, "Datacenter")
	if err != nil {
		return err
	}
	folder, ok := e.ctx.Map.Get(obj.(*simulator.Datacenter).NetworkFolder).(*simulator.Folder)
	if !ok {
		return fmt.Errorf("%s: datacenter %s has no network folder", e.vc.Name, dc)
	}
	for _, s := range segs {
		if err := folder.AddOpaqueNetwork(e.ctx, types.OpaqueNetworkSummary{
			NetworkSummary:    types.NetworkSummary{Name: s.name},
			OpaqueNetworkId:   s.id,
			OpaqueNetworkType: segmentType,
		}); err != nil {
			return fmt.Errorf("%s: add segment %s: %w", e.vc.Name, s.name, err)
		}
		seg, err := e.segment(s.id)
		if err != nil {
			return err
		}
		var hosts []types.ManagedObjectReference
		for _, name := range s.hosts {
			h, err := e.find("HostSystem", name, "HostSystem")
			if err != nil {
				return err
			}
			hs := h.(*simulator.HostSystem)
			e.update(h, func() []types.PropertyChange {
				return []types.PropertyChange{{Name: "network", Val: withRef(hs.Network, seg.Self, true)}}
			})
			hosts = append(hosts, hs.Self)
		}
		e.update(seg, func() []types.PropertyChange {
			return []types.PropertyChange{{Name: "host", Val: hosts}}
		})
	}
	return nil
}

// segment is the opaque network of the given id.
func (e *labEdit) segment(id string) (*mo.OpaqueNetwork, error) {
	for _, obj := range e.ctx.Map.All("OpaqueNetwork") {
		seg, ok := obj.(*mo.OpaqueNetwork)
		if !ok {
			continue
		}
		var sid string
		e.ctx.WithLock(seg, func() {
			if s, ok := seg.Summary.(*types.OpaqueNetworkSummary); ok {
				sid = s.OpaqueNetworkId
			}
		})
		if sid == id {
			return seg, nil
		}
	}
	return nil, fmt.Errorf("%s: segment %s: %w", e.vc.Name, id, ErrNotFound)
}

// putOnSegments gives the NICs of the VM vm (by their position among its NICs) their
// opaque backings, and the VM the segments in its network list in place of the empty
// references a NIC without a backing left there.
func (e *labEdit) putOnSegments(vm types.ManagedObjectReference, nics map[int]*types.VirtualEthernetCardOpaqueNetworkBackingInfo) error {
	obj, ok := e.ctx.Map.Get(vm).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("%s: vm %s: %w", e.vc.Name, vm.Value, ErrNotFound)
	}
	var segs []types.ManagedObjectReference
	for _, b := range nics {
		seg, err := e.segment(b.OpaqueNetworkId)
		if err != nil {
			return err
		}
		segs = append(segs, seg.Self)
	}
	e.update(obj, func() []types.PropertyChange {
		devices := slices.Clone(obj.Config.Hardware.Device)
		n := 0
		for _, d := range devices {
			card, ok := d.(types.BaseVirtualEthernetCard)
			if !ok {
				continue
			}
			if b, ok := nics[n]; ok {
				card.GetVirtualEthernetCard().Backing = b
			}
			n++
		}
		nets := slices.DeleteFunc(slices.Clone(obj.Network), func(r types.ManagedObjectReference) bool { return r.Value == "" })
		for _, s := range segs {
			nets = withRef(nets, s, true)
		}
		return []types.PropertyChange{{Name: "config.hardware.device", Val: devices}, {Name: "network", Val: nets}}
	})
	return nil
}

// heldEdit is edit for code that already holds the lab's exclusive section (see exclusive).
func (v *VC) heldEdit(fn func(*labEdit) error) error {
	ctx := simulator.NewContext()
	ctx.Map = v.model.Map()
	return fn(&labEdit{vc: v, ctx: ctx})
}
