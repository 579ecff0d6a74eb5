package vcenter

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// namedRef is a managed object and its name as the spec gave it.
type namedRef struct {
	ref  types.ManagedObjectReference
	name string
}

// resolveDatastores finds the spec's datastore and those of its disks placed apart
// (diskN=), among the datastores the compute resource's hosts see. disks is nil when
// one of those could not be resolved (a blocker says why), else it holds every disk
// placed apart, by number.
func (r *resolver) resolveDatastores(ctx context.Context, c *vim25.Client, dc mo.Datacenter, cr *compute) (*types.ManagedObjectReference, map[int]diskTarget, error) {
	listed, err := listNames(ctx, c, dc.Self, "Datastore", "StoragePod")
	if err != nil {
		return nil, nil, err
	}
	var all, pods []named
	for _, n := range listed {
		if n.Ref.Type == "StoragePod" {
			pods = append(pods, n)
		} else {
			all = append(all, n)
		}
	}
	visible := map[types.ManagedObjectReference]bool{}
	for _, h := range cr.hosts {
		for _, d := range h.Datastore {
			visible[d] = true
		}
	}
	var seen []named
	for _, d := range all {
		if visible[d.Ref] {
			seen = append(seen, d)
		}
	}
	// find resolves one datastore or datastore cluster name to a datastore and its name;
	// option is the diskN= that named it, "" for the spec's datastore, for the messages.
	find := func(name, option string) (*types.ManagedObjectReference, string, error) {
		what := "datastore " + name
		if option != "" {
			what += " (" + option + "=)"
		}
		found := byName(seen, name)
		if pod := byName(pods, name); len(found) == 0 && len(pod) == 1 {
			return r.fromDatastoreCluster(ctx, c, pod[0], seen, cr)
		}
		switch {
		case len(found) == 1:
			return &found[0].Ref, name, nil
		case len(found) > 1:
			r.block("", fmt.Sprintf("%d datastores are named %s", len(found), name), "rename one of them")
		case len(byName(all, name)) > 0:
			r.block("", fmt.Sprintf("%s exists in %s but no host of %s sees it (datastores seen: %s)",
				what, dc.Name, cr.name, candidates(seen, candidateLimit)), "choose a datastore mounted on the target hosts")
		default:
			r.block("", fmt.Sprintf("%s not found in %s (datastores seen by %s: %s)",
				what, r.spec.Target, cr.name, candidates(seen, candidateLimit)), "check the datastore name")
		}
		return nil, "", nil
	}
	var main *types.ManagedObjectReference
	if name := r.spec.Datastore; name == "" {
		r.block("", fmt.Sprintf("no datastore given (datastores seen by %s: %s)", cr.name, candidates(seen, candidateLimit)),
			"add datastore=<name>")
	} else {
		var chosen string
		if main, chosen, err = find(name, ""); err != nil {
			return nil, nil, err
		}
		if main != nil {
			r.plan.Datastore = chosen
		}
	}
	disks := map[int]diskTarget{}
	if !r.diskNumbersValid() {
		return main, nil, nil
	}
	for _, d := range r.spec.Disks {
		t := diskTarget{format: d.DiskFormat}
		if d.Datastore != "" {
			ref, chosen, err := find(d.Datastore, fmt.Sprintf("disk%d", d.Disk))
			if err != nil {
				return nil, nil, err
			}
			if ref == nil {
				disks = nil
				continue
			}
			t.ds, t.name = *ref, chosen
		}
		if disks != nil {
			disks[d.Disk] = t
		}
	}
	return main, disks, nil
}

// fromDatastoreCluster picks the datastore a move into datastore cluster pod goes to, as
// the wizard's "datastore cluster" choice does when Storage DRS is not asked: of the
// cluster's datastores the target hosts see, accessible and not in maintenance, the one
// with the most free space. The review says which and why.
func (r *resolver) fromDatastoreCluster(ctx context.Context, c *vim25.Client, pod named, seen []named, cr *compute) (*types.ManagedObjectReference, string, error) {
	var members []types.ManagedObjectReference
	for _, d := range seen {
		if d.Parent == pod.Ref {
			members = append(members, d.Ref)
		}
	}
	var stores []mo.Datastore
	if len(members) > 0 {
		if err := property.DefaultCollector(c).Retrieve(ctx, members, []string{"name", "summary"}, &stores); err != nil {
			return nil, "", err
		}
	}
	var best *mo.Datastore
	for i := range stores {
		s := &stores[i]
		if !s.Summary.Accessible || s.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateInMaintenance) ||
			s.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateEnteringMaintenance) {
			continue
		}
		if best == nil || s.Summary.FreeSpace > best.Summary.FreeSpace ||
			(s.Summary.FreeSpace == best.Summary.FreeSpace && s.Name < best.Name) {
			best = s
		}
	}
	if best == nil {
		r.block("", fmt.Sprintf("datastore cluster %s has no datastore that the hosts of %s see, accessible and out of maintenance", pod.Name, cr.name),
			"choose another datastore or datastore cluster, or mount one of its datastores on the target hosts")
		return nil, "", nil
	}
	r.add(OK, "", fmt.Sprintf("datastore cluster %s: %s is used, its datastore with the most free space (%s) that the hosts of %s see",
		pod.Name, best.Name, gib(best.Summary.FreeSpace), cr.name), "")
	ref := best.Self
	return &ref, readable(best.Name), nil
}
