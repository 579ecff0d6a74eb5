package vcenter

import (
	"context"
	"maps"
	"slices"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// targetBase is what the target side of a plan reads without knowing the source's VMs:
// the compute resource, datastore, networks, pool and folder named in the spec.
type targetBase struct {
	cr     *compute
	ds     *types.ManagedObjectReference
	disks  map[int]diskTarget // disks placed apart (spec.Disks), when all resolved
	nets   map[types.ManagedObjectReference]netInfo
	pool   *types.ManagedObjectReference
	folder *types.ManagedObjectReference
}

// resolveTargetBase reads the target's side of the spec. A nil base without error means
// there is no compute resource to place the VMs on (a blocker says why).
func (r *resolver) resolveTargetBase(ctx context.Context, c *vim25.Client) (*targetBase, error) {
	cr, err := r.resolveCompute(ctx, c)
	if err != nil || cr == nil {
		return nil, err
	}
	dc, err := datacenterOf(ctx, c, cr.ref)
	if err != nil {
		return nil, err
	}
	b := &targetBase{cr: cr}
	if b.ds, b.disks, err = r.resolveDatastores(ctx, c, dc, cr); err != nil {
		return nil, err
	}
	if b.nets, err = r.targetNetworks(ctx, c, cr); err != nil {
		return nil, err
	}
	if b.pool, err = r.resolvePool(ctx, c, cr); err != nil {
		return nil, err
	}
	if b.folder, err = r.resolveFolder(ctx, c, dc); err != nil {
		return nil, err
	}
	return b, nil
}

// resolveTarget joins the source's VMs to the target's base: their networks, the host,
// name collisions, free space, and the device backings the relocation will use.
func (r *resolver) resolveTarget(ctx context.Context, c *vim25.Client, b *targetBase, srcVMs map[string]*sourceVM) error {
	cr, ds, nets, pool, folder := b.cr, b.ds, b.nets, b.pool, b.folder
	wanted := r.mapNetworks(srcVMs, nets)
	r.checkSwitchKinds(srcVMs, nets)
	r.checkDiskNumbers(srcVMs)
	var stores []namedRef // every datastore the VMs' files go to, for the host to see
	if ds != nil {
		stores = append(stores, namedRef{*ds, r.plan.Datastore})
	}
	for _, n := range slices.Sorted(maps.Keys(b.disks)) {
		if t := b.disks[n]; t.ds.Value != "" && !slices.ContainsFunc(stores, func(s namedRef) bool { return s.ref == t.ds }) {
			stores = append(stores, namedRef{t.ds, t.name})
		}
	}
	host := r.pickHost(cr, stores, wanted, nets)
	if err := r.checkISOs(ctx, c, host, srcVMs); err != nil {
		return err
	}
	if err := r.checkVGPUs(ctx, c, host, srcVMs); err != nil {
		return err
	}

	if err := r.checkCollisions(ctx, c, folder); err != nil {
		return err
	}
	targets, err := readTargetStores(ctx, c, host, stores, srcVMs)
	if err != nil {
		return err
	}
	if ds != nil {
		if err := r.checkDisks(ctx, c, host, *ds, b.disks, srcVMs, targets); err != nil {
			return err
		}
		if err := r.checkSpace(ctx, c, *ds, b.disks, srcVMs, targets); err != nil {
			return err
		}
	}
	if host == nil || ds == nil || pool == nil || folder == nil || b.disks == nil {
		return nil
	}
	pl := &placement{Host: host.Self, Pool: *pool, Datastore: *ds, Folder: *folder, Disks: b.disks, stores: targets}

	// Backings are read now so that Relocate's spec building is pure.
	backings := map[string]nicPlan{}
	hostNets := hostNetworks(*host, nets)
	for _, name := range slices.Sorted(maps.Keys(wanted)) {
		matches := hostNets[name]
		if len(matches) != 1 {
			continue // reported by pickHost / mapNetworks
		}
		b, err := backing(ctx, c, matches[0])
		if err != nil {
			return err
		}
		backings[name] = nicPlan{backing: b, network: matches[0].Ref}
	}

	pols, err := r.resolvePolicies(ctx, c, pl, srcVMs)
	if err != nil {
		return err
	}

	r.plan.placement = pl
	r.plan.vms = make(map[string]*vmPlan, len(srcVMs))
	for i, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		vp := &vmPlan{ref: svm.plan.ref, disks: svm.plan.disks, profiles: pols[v.Name], needs: vmNeeds(svm, pl, r.spec.DiskFormat)}
		complete := true
		for j, d := range svm.nics {
			n, ok := backings[v.NICs[j].Target]
			if !ok {
				complete = false
				continue
			}
			n.device = d
			vp.nics = append(vp.nics, n)
		}
		r.plan.VMs[i] = v
		if complete {
			r.plan.vms[v.Name] = vp
		}
	}
	return nil
}
