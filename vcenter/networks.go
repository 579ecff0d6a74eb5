package vcenter

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// targetNetworks reads every network any candidate host sees.
func (r *resolver) targetNetworks(ctx context.Context, c *vim25.Client, cr *compute) (map[types.ManagedObjectReference]netInfo, error) {
	var refs []types.ManagedObjectReference
	for _, h := range cr.hosts {
		refs = append(refs, h.Network...)
	}
	return networks(ctx, c, uniqRefs(refs))
}

// mapNetworks decides the target portgroup name of every NIC, and returns the
// set of names wanted. The rules, in order: an entry whose Source is the NIC's
// portgroup; an entry with an empty Source; a portgroup of the same name.
func (r *resolver) mapNetworks(srcVMs map[string]*sourceVM, nets map[types.ManagedObjectReference]netInfo) map[string]bool {
	exists := map[string]bool{}
	var names []string
	for _, n := range nets {
		if !exists[n.Name] {
			names = append(names, n.Name)
		}
		exists[n.Name] = true
	}
	used := map[string]bool{}
	wanted := map[string]bool{}
	for i, v := range r.plan.VMs {
		for j, nic := range v.NICs {
			target, how := "", ""
			for _, rule := range r.spec.Networks {
				if rule.Source != "" && rule.Source == nic.Network {
					target, how = rule.Target, "mapped"
					used[rule.Source] = true
					break
				}
			}
			if target == "" {
				for _, rule := range r.spec.Networks {
					if rule.Source == "" {
						target, how = rule.Target, "default"
						break
					}
				}
			}
			if target == "" && exists[nic.Network] {
				target, how = nic.Network, "same-name"
			}
			switch {
			case target == "":
				r.block(v.Name, fmt.Sprintf("%s of %s is on %s, which has no portgroup in %s (portgroups there: %s)",
					nic.Label, v.Name, nic.Network, r.spec.Target, nameList(names, candidateLimit)),
					fmt.Sprintf("add network=%s:<portgroup>", quoteIfSpace(nic.Network)))
			case !exists[target]:
				r.block(v.Name, fmt.Sprintf("portgroup %s not found in %s for %s of %s (portgroups seen by the target hosts: %s)",
					target, r.spec.Target, nic.Label, v.Name, nameList(names, candidateLimit)), "check the network mapping")
			default:
				wanted[target] = true
				if how == "same-name" {
					r.add(OK, v.Name, fmt.Sprintf("%s of %s stays on a portgroup named %s in %s (no mapping given)",
						nic.Label, v.Name, target, r.spec.Target), "")
				}
			}
			r.plan.VMs[i].NICs[j].Target = target
		}
	}
	for _, rule := range r.spec.Networks {
		if rule.Source != "" && !used[rule.Source] {
			r.add(Warning, "", fmt.Sprintf("network mapping %s:%s matches no NIC of the VMs", rule.Source, rule.Target),
				"check the source portgroup name")
		}
	}
	return wanted
}

// hostNetworks indexes the networks a host sees by name.
func hostNetworks(h mo.HostSystem, nets map[types.ManagedObjectReference]netInfo) map[string][]netInfo {
	out := map[string][]netInfo{}
	for _, ref := range h.Network {
		if n, ok := nets[ref]; ok {
			out[n.Name] = append(out[n.Name], n)
		}
	}
	return out
}

// checkSwitchKinds blocks a NIC that would go from a distributed portgroup
// to a standard one: cross vCenter vMotion refuses that move (a vDS→vSS
// migration is not supported), even where a standard portgroup of the
// right name exists.
func (r *resolver) checkSwitchKinds(srcVMs map[string]*sourceVM, nets map[types.ManagedObjectReference]netInfo) {
	standardOnly := map[string]bool{}
	for _, n := range nets {
		std := n.Ref.Type == "Network"
		if prev, seen := standardOnly[n.Name]; seen {
			standardOnly[n.Name] = prev && std
		} else {
			standardOnly[n.Name] = std
		}
	}
	for _, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		if svm == nil {
			continue
		}
		for j, nic := range v.NICs {
			if j >= len(svm.nics) || nic.Target == "" || !standardOnly[nic.Target] {
				continue
			}
			if _, dv := svm.nics[j].GetVirtualDevice().Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo); !dv {
				continue
			}
			r.block(v.Name, fmt.Sprintf("%s of %s is on distributed portgroup %s; cross vCenter vMotion cannot move it to standard portgroup %s in %s",
				nic.Label, v.Name, nic.Network, nic.Target, r.spec.Target),
				fmt.Sprintf("map it to a distributed portgroup (network=%s:<portgroup>), or choose a cluster on a distributed switch", quoteIfSpace(nic.Network)))
			svm.blocked = true
		}
	}
}

// backing is the NIC backing for a target network.
func backing(ctx context.Context, c *vim25.Client, n netInfo) (types.BaseVirtualDeviceBackingInfo, error) {
	switch n.Ref.Type {
	case "DistributedVirtualPortgroup":
		return object.NewDistributedVirtualPortgroup(c, n.Ref).EthernetCardBackingInfo(ctx)
	case "OpaqueNetwork":
		return object.NewOpaqueNetwork(c, n.Ref).EthernetCardBackingInfo(ctx)
	default:
		ref := n.Ref
		// object.Network's helper leaves Network unset; vCenter resolves a
		// standard portgroup by name per host, the reference pins it. The name is
		// the one vCenter returned, escapes and all, as object.Network's helper
		// (which reads it back from the network's name property) would write it.
		return &types.VirtualEthernetCardNetworkBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: n.Raw},
			Network:                        &ref,
		}, nil
	}
}

// segmentNames maps the id of every NSX segment (opaque network) in the vCenter to its
// readable name: a NIC on a segment names it by id only.
func segmentNames(ctx context.Context, c *vim25.Client) (map[string]string, error) {
	v, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"OpaqueNetwork"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	var segs []mo.OpaqueNetwork
	if err := v.Retrieve(ctx, []string{"OpaqueNetwork"}, []string{"name", "summary"}, &segs); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(segs))
	for _, s := range segs {
		if sum, ok := s.Summary.(*types.OpaqueNetworkSummary); ok {
			out[sum.OpaqueNetworkId] = readable(s.Name)
		}
	}
	return out, nil
}
