package vcenter

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sync/errgroup"
)

// named is an inventory object by name, as one ContainerView retrieve lists it.
type named struct {
	Ref    types.ManagedObjectReference
	Name   string
	Parent types.ManagedObjectReference
}

// listNames lists every object of the given kinds under root with one
// ContainerView retrieve of name and parent: resolving ten names costs the
// same single round trip as resolving one, and the list doubles as the
// candidates shown when a name is not found.
func listNames(ctx context.Context, c *vim25.Client, root types.ManagedObjectReference, kinds ...string) ([]named, error) {
	return list(ctx, c, root, []string{"name", "parent"}, kinds...)
}

// listOnlyNames is listNames without the parents, for lists of thousands where only
// the names matter: a third less for vCenter to send and for xvmbot to decode.
func listOnlyNames(ctx context.Context, c *vim25.Client, root types.ManagedObjectReference, kinds ...string) ([]named, error) {
	return list(ctx, c, root, []string{"name"}, kinds...)
}

func list(ctx context.Context, c *vim25.Client, root types.ManagedObjectReference, props []string, kinds ...string) ([]named, error) {
	v, err := view.NewManager(c).CreateContainerView(ctx, root, kinds, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()

	var content []types.ObjectContent
	if err := v.Retrieve(ctx, kinds, props, &content); err != nil {
		return nil, err
	}
	out := make([]named, 0, len(content))
	for _, oc := range content {
		out = append(out, namedOf(oc))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// namedOf reads the name and parent of one object's retrieved content. Raw content, not
// a decoded struct: decoding objects of mixed types into one struct loses the name of
// some (a distributed portgroup's name is its Network's, not its ManagedEntity's).
func namedOf(oc types.ObjectContent) named {
	n := named{Ref: oc.Obj}
	for _, p := range oc.PropSet {
		switch p.Name {
		case "name":
			raw, _ := p.Val.(string)
			n.Name = readable(raw)
		case "parent":
			if r, ok := p.Val.(types.ManagedObjectReference); ok {
				n.Parent = r
			}
		}
	}
	return n
}

// retrieveChunk and retrieveWorkers shape retrieveEach: a retrieve of thousands of VMs
// is split into requests of retrieveChunk objects, retrieveWorkers of them at once.
// A part's answer is held twice while it is decoded (as vCenter's generic property
// values, then as the Go type asked for), about 25 KB a VM with its devices and files:
// 100 VMs a part, four at a time, hold a few MB where 250 held tens.
const (
	retrieveChunk   = 100
	retrieveWorkers = 4
)

// retrieveEach reads props of every object of refs, as one property.Collector.Retrieve
// would, but in requests of retrieveChunk objects sent side by side: vCenter pages a
// large result anyway, and while xvmbot decodes one part vCenter encodes the next, so a
// few thousand VMs take a fraction of one request's time. The number of round trips
// grows with the chunks, not with the VMs' properties.
//
// keep turns each object read into what the caller holds on to, in refs' order; it runs
// as each part arrives, so a part's decoded objects are garbage before the next parts
// are read, and what is held for thousands of VMs is only what keep returns. keep may
// run for several parts at once.
func retrieveEach[T, U any](ctx context.Context, c *vim25.Client, refs []types.ManagedObjectReference, props []string, keep func(*T) U) ([]U, error) {
	out := make([]U, len(refs))
	n := make([]int, (len(refs)+retrieveChunk-1)/retrieveChunk) // objects each part returned
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(retrieveWorkers)
	pc := property.DefaultCollector(c)
	for i := range n {
		start := i * retrieveChunk
		chunk := refs[start:min(start+retrieveChunk, len(refs))]
		g.Go(func() error {
			var part []T
			if err := pc.Retrieve(gctx, chunk, props, &part); err != nil {
				return err
			}
			for j := range part {
				out[start+j] = keep(&part[j])
			}
			n[i] = len(part)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// An object gone between the listing and the read is not in its part's answer.
	kept := out[:0]
	for i, got := range n {
		kept = append(kept, out[i*retrieveChunk:i*retrieveChunk+got]...)
	}
	return kept, nil
}

// byName returns the objects named exactly name.
func byName(list []named, name string) []named {
	var out []named
	for _, n := range list {
		if n.Name == name {
			out = append(out, n)
		}
	}
	return out
}

// findVMsByName returns, for each name, the VMs of that name in the whole vCenter.
func findVMsByName(ctx context.Context, c *vim25.Client, names []string) (map[string][]types.ManagedObjectReference, error) {
	all, err := listNames(ctx, c, c.ServiceContent.RootFolder, "VirtualMachine")
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string][]types.ManagedObjectReference)
	for _, n := range all {
		if want[n.Name] {
			out[n.Name] = append(out[n.Name], n.Ref)
		}
	}
	return out, nil
}

// candidates renders a few names for a finding: what exists instead.
func candidates(list []named, limit int) string {
	seen := map[string]bool{}
	var names []string
	for _, n := range list {
		if !seen[n.Name] {
			seen[n.Name] = true
			names = append(names, n.Name)
		}
	}
	return nameList(names, limit)
}

func nameList(names []string, limit int) string {
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	if len(names) > limit {
		return strings.Join(names[:limit], ", ") + fmt.Sprintf(" and %d more", len(names)-limit)
	}
	return strings.Join(names, ", ")
}

// netInfo describes a network (standard, distributed portgroup or opaque).
type netInfo struct {
	Ref  types.ManagedObjectReference
	Name string // readable, as the vSphere Client shows it
	Raw  string // as vCenter returns it (escaped), what a standard portgroup's backing names
	Key  string // portgroup key of a distributed portgroup
	// OpaqueID is an NSX segment's (an opaque network's) id: what a NIC's backing names.
	OpaqueID string
}

// networks reads names (and portgroup keys) of the given network references.
func networks(ctx context.Context, c *vim25.Client, refs []types.ManagedObjectReference) (map[types.ManagedObjectReference]netInfo, error) {
	out := make(map[types.ManagedObjectReference]netInfo, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	pc := property.DefaultCollector(c)
	var nets []mo.Network
	if err := pc.Retrieve(ctx, refs, []string{"name"}, &nets); err != nil {
		return nil, err
	}
	var pgs, opaque []types.ManagedObjectReference
	for _, n := range nets {
		out[n.Self] = netInfo{Ref: n.Self, Name: readable(n.Name), Raw: n.Name}
		switch n.Self.Type {
		case "DistributedVirtualPortgroup":
			pgs = append(pgs, n.Self)
		case "OpaqueNetwork":
			opaque = append(opaque, n.Self)
		}
	}
	if len(opaque) > 0 {
		var segs []mo.OpaqueNetwork
		if err := pc.Retrieve(ctx, opaque, []string{"summary"}, &segs); err != nil {
			return nil, err
		}
		for _, s := range segs {
			if sum, ok := s.Summary.(*types.OpaqueNetworkSummary); ok {
				ni := out[s.Self]
				ni.OpaqueID = sum.OpaqueNetworkId
				out[s.Self] = ni
			}
		}
	}
	if len(pgs) > 0 {
		var dvpgs []mo.DistributedVirtualPortgroup
		if err := pc.Retrieve(ctx, pgs, []string{"key", "config.uplink"}, &dvpgs); err != nil {
			return nil, err
		}
		for _, pg := range dvpgs {
			if isTrue(pg.Config.Uplink) || strings.Contains(out[pg.Self].Name, "-DVUplinks-") {
				// Uplink portgroups carry host uplinks, never VMs. vcsim
				// leaves config.uplink unset; its name gives it away.
				delete(out, pg.Self)
				continue
			}
			ni := out[pg.Self]
			ni.Key = pg.Key
			out[pg.Self] = ni
		}
	}
	return out, nil
}

// datacenterOf walks up from ref to its datacenter.
func datacenterOf(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference) (mo.Datacenter, error) {
	pc := property.DefaultCollector(c)
	for i := 0; i < 32 && ref.Type != "Datacenter"; i++ {
		var me mo.ManagedEntity
		if err := pc.RetrieveOne(ctx, ref, []string{"parent"}, &me); err != nil {
			return mo.Datacenter{}, err
		}
		if me.Parent == nil {
			return mo.Datacenter{}, fmt.Errorf("%s is not inside a datacenter", ref)
		}
		ref = *me.Parent
	}
	var dc mo.Datacenter
	err := pc.RetrieveOne(ctx, ref, []string{"name", "vmFolder"}, &dc)
	return dc, err
}
