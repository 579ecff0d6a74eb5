package vcenter

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Footprint is what one relocation occupies while it runs: vSphere charges a
// cross-vCenter vMotion (a vMotion without shared storage) against the source and target
// hosts, the source and target datastores, and both vCenters. Keys are stable across
// processes ("<vcenter>/<moref>"), so limits can be counted cluster-wide.
type Footprint struct {
	SourceVCenter    string
	TargetVCenter    string
	SourceHost       string
	TargetHost       string
	SourceDatastores []string
	TargetDatastore  string
	// TargetDiskDatastores are the other datastores disks placed apart go to.
	TargetDiskDatastores []string
}

// Footprint returns what moving vm as planned will occupy.
func (m *Manager) Footprint(ctx context.Context, p *Plan, vm string) (Footprint, error) {
	pl, vp, err := m.resolved(ctx, p, vm)
	if err != nil {
		return Footprint{}, err
	}
	src, dst := p.Spec.Source, p.Spec.Target
	if src == "" {
		src = m.home
	}
	if dst == "" {
		dst = m.home
	}
	fp := Footprint{
		SourceVCenter:   src,
		TargetVCenter:   dst,
		TargetHost:      dst + "/" + pl.Host.Value,
		TargetDatastore: dst + "/" + pl.Datastore.Value,
	}
	for _, n := range slices.Sorted(maps.Keys(pl.Disks)) {
		if ds := pl.Disks[n].ds; ds.Value != "" && ds != pl.Datastore {
			if key := dst + "/" + ds.Value; !slices.Contains(fp.TargetDiskDatastores, key) {
				fp.TargetDiskDatastores = append(fp.TargetDiskDatastores, key)
			}
		}
	}
	if vp.at != nil {
		// Rebuilt from its resolution a moment ago: where it runs was read then.
		for _, mv := range vp.moves {
			if key := dst + "/" + mv.ds.Value; mv.ds != pl.Datastore && !slices.Contains(fp.TargetDiskDatastores, key) {
				fp.TargetDiskDatastores = append(fp.TargetDiskDatastores, key)
			}
		}
		fp.SourceHost, fp.SourceDatastores = sourceKeys(src, vp.at.host, vp.at.datastores)
		return fp, nil
	}
	err = m.withSession(ctx, src, func(c *vim25.Client, _ *x509.Certificate) error {
		var v mo.VirtualMachine
		if err := property.DefaultCollector(c).RetrieveOne(ctx, vp.ref, []string{"runtime.host", "datastore"}, &v); err != nil {
			return err
		}
		fp.SourceHost, fp.SourceDatastores = sourceKeys(src, v.Runtime.Host, v.Datastore)
		return nil
	})
	if err != nil {
		return Footprint{}, m.scrub(classify(fmt.Errorf("read where %s runs: %w", vm, err), src, dst, vm, StepResolve))
	}
	return fp, nil
}

// sourceKeys are the slot keys of a VM's source host and datastores.
func sourceKeys(src string, host *types.ManagedObjectReference, dss []types.ManagedObjectReference) (string, []string) {
	h := ""
	if host != nil {
		h = src + "/" + host.Value
	}
	var out []string
	for _, ds := range dss {
		out = append(out, src+"/"+ds.Value)
	}
	return h, out
}
