package vcenter

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// compute is the target compute resource and its hosts.
type compute struct {
	name     string // cluster name, or the host's name for a standalone host
	ref      types.ManagedObjectReference
	rootPool types.ManagedObjectReference
	hosts    []mo.HostSystem
}

var hostProps = []string{"name", "parent", "runtime.connectionState", "runtime.inMaintenanceMode", "runtime.powerState", "runtime.inQuarantineMode", "summary.config.product",
	"summary.hardware.cpuModel", "datastore", "network", "vm"}

func (r *resolver) resolveCompute(ctx context.Context, c *vim25.Client) (*compute, error) {
	s := r.spec
	root := c.ServiceContent.RootFolder
	pc := property.DefaultCollector(c)
	cr := &compute{}
	if s.Cluster == "" && s.Host == "" {
		clusters, err := listNames(ctx, c, root, "ClusterComputeResource")
		if err != nil {
			return nil, err
		}
		r.block("", fmt.Sprintf("no cluster or host given for %s (clusters: %s)", s.Target, candidates(clusters, candidateLimit)),
			"add cluster=<name> or host=<name>")
		return nil, nil
	}
	if s.Cluster != "" {
		clusters, err := listNames(ctx, c, root, "ClusterComputeResource")
		if err != nil {
			return nil, err
		}
		found, miss, err := lookup(ctx, c, clusters, s.Cluster, "clusters")
		if err != nil {
			return nil, err
		}
		switch len(found) {
		case 0:
			r.block("", fmt.Sprintf("cluster %s not found in %s (%s)", s.Cluster, s.Target, miss),
				"check the cluster name, or give its inventory path as the vSphere Client shows it (cluster=/<datacenter>/host/<cluster>)")
			return nil, nil
		case 1:
		default:
			r.block("", fmt.Sprintf("%d clusters are named %s in %s", len(found), s.Cluster, s.Target),
				"give the cluster's inventory path (cluster=/<datacenter>/host/<cluster>), or name a host instead")
			return nil, nil
		}
		var cl mo.ClusterComputeResource
		if err := pc.RetrieveOne(ctx, found[0].Ref, []string{"name", "host", "resourcePool"}, &cl); err != nil {
			return nil, err
		}
		cr.name, cr.ref = found[0].Name, cl.Self
		if cl.ResourcePool != nil {
			cr.rootPool = *cl.ResourcePool
		}
		if len(cl.Host) > 0 {
			if err := pc.Retrieve(ctx, cl.Host, hostProps, &cr.hosts); err != nil {
				return nil, err
			}
		}
		r.plan.Cluster = cr.name
	}
	if s.Host != "" {
		scope := root
		if s.Cluster != "" {
			scope = cr.ref
		}
		hosts, err := listNames(ctx, c, scope, "HostSystem")
		if err != nil {
			return nil, err
		}
		found, miss, err := lookup(ctx, c, hosts, s.Host, "hosts")
		if err != nil {
			return nil, err
		}
		if len(found) != 1 {
			where := s.Target
			if s.Cluster != "" {
				where = "cluster " + s.Cluster
			}
			if len(found) > 1 {
				miss = fmt.Sprintf("%d hosts have that name", len(found))
			}
			r.block("", fmt.Sprintf("host %s not found in %s (%s)", s.Host, where, miss),
				"check the host name as shown in the vSphere Client, or give its inventory path (host=/<datacenter>/host/<cluster>/<host>)")
			return nil, nil
		}
		var h mo.HostSystem
		if err := pc.RetrieveOne(ctx, found[0].Ref, hostProps, &h); err != nil {
			return nil, err
		}
		cr.hosts = []mo.HostSystem{h}
		if s.Cluster == "" && h.Parent != nil {
			var parent mo.ComputeResource
			if err := pc.RetrieveOne(ctx, *h.Parent, []string{"name", "resourcePool"}, &parent); err != nil {
				return nil, err
			}
			cr.name, cr.ref = readable(parent.Name), parent.Self
			if parent.ResourcePool != nil {
				cr.rootPool = *parent.ResourcePool
			}
			if parent.Self.Type == "ClusterComputeResource" {
				r.plan.Cluster = cr.name
			}
		}
	}
	for i := range cr.hosts {
		cr.hosts[i].Name = readable(cr.hosts[i].Name)
	}
	if len(cr.hosts) == 0 {
		r.block("", fmt.Sprintf("cluster %s has no hosts", cr.name), "choose another cluster")
		return nil, nil
	}
	return cr, nil
}

func (r *resolver) resolvePool(ctx context.Context, c *vim25.Client, cr *compute) (*types.ManagedObjectReference, error) {
	if cr.rootPool.Value == "" {
		r.block("", fmt.Sprintf("%s has no resource pool", cr.name), "check the compute resource in the vSphere Client")
		return nil, nil
	}
	if r.spec.Pool == "" {
		r.plan.Pool = "Resources"
		return &cr.rootPool, nil
	}
	pools, err := listNames(ctx, c, cr.rootPool, "ResourcePool")
	if err != nil {
		return nil, err
	}
	if isInventoryPath(r.spec.Pool) {
		// The root pool is not in the list of pools under it.
		pools = append(pools, named{Ref: cr.rootPool, Name: "Resources"})
	}
	found, miss, err := lookup(ctx, c, pools, r.spec.Pool, "pools")
	if err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		if r.spec.Pool == "Resources" {
			// The root pool, by the name the vSphere Client and the review show for it
			// (and that Where records, so that undo returns a VM there).
			r.plan.Pool = "Resources"
			return &cr.rootPool, nil
		}
		r.block("", fmt.Sprintf("resource pool %s not found in %s (%s)", r.spec.Pool, cr.name, miss),
			"check the pool name or its inventory path (pool=/<datacenter>/host/<cluster>/Resources/<pool>), or leave it out to use the cluster's root pool")
	case 1:
		// The name, as the review and the VM's placement after the move (Where) show it.
		r.plan.Pool = found[0].Name
		return &found[0].Ref, nil
	default:
		r.block("", fmt.Sprintf("%d resource pools are named %s in %s", len(found), r.spec.Pool, cr.name),
			"give the pool's inventory path (pool=/<datacenter>/host/<cluster>/Resources/<pool>), or rename one of them")
	}
	return nil, nil
}
