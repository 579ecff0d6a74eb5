package vcenter

import (
	"context"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sync/singleflight"
)

// Kind is a kind of inventory object the wizard's selects offer.
type Kind string

// The kinds List serves.
const (
	KindClusters   Kind = "clusters"
	KindHosts      Kind = "hosts"
	KindDatastores Kind = "datastores"
	KindFolders    Kind = "folders" // VM folders, as paths relative to the datacenter's VM folder
	KindPortgroups Kind = "portgroups"
	KindVMs        Kind = "vms" // VMs, templates left out
	KindPools      Kind = "pools"
	KindPolicies   Kind = "policies" // VM storage policies, by name (scope does not narrow them)
)

// Scope narrows a list to what a cluster or a host sees: the datastores
// and portgroups mounted on, hosts and pools in, VMs running on. Empty
// fields do not narrow; with both set, Host wins.
type Scope struct {
	Cluster string
	Host    string
}

// Option is one entry of a select: Value is what the command grammar
// accepts for it (a name, or a folder path).
type Option struct {
	Label       string
	Value       string
	Description string
}

// MaxOptions is the most entries List returns: Slack shows no more than
// 100 options in a select, so typing more of the name is the way to narrow.
const MaxOptions = 100

// listTTL is how long a listing is served from memory. Slack asks for
// options on every keystroke of a typeahead; a short TTL spares vCenter
// those bursts while a wizard still sees changes within half a minute.
const listTTL = 30 * time.Second

// List returns the objects of a kind in vCenter vcName whose label contains
// prefix (case-insensitive; those starting with it first), sorted, at most MaxOptions. Listings are
// cached per vCenter, kind and scope for 30 s, and concurrent requests for
// the same listing share one trip to vCenter.
func (m *Manager) List(ctx context.Context, vcName string, kind Kind, prefix string, scope Scope) ([]Option, error) {
	if _, err := m.conn(vcName); err != nil {
		return nil, err
	}
	if !kind.valid() {
		return nil, fmt.Errorf("list %s in %s: unknown kind (want clusters, hosts, datastores, folders, portgroups, vms, pools or policies)", kind, vcName)
	}
	all, err := m.lists.get(ctx, listKey{vc: vcName, kind: kind, scope: scope}, func(ctx context.Context) ([]Option, error) {
		var opts []Option
		err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
			var err error
			if kind == KindPolicies {
				opts, err = policyOptions(ctx, c)
			} else {
				opts, err = loadOptions(ctx, c, kind, scope)
			}
			return err
		})
		if err != nil {
			return nil, m.scrub(classify(err, vcName, "", "", StepResolve))
		}
		return opts, nil
	})
	if err != nil {
		return nil, err
	}
	return search(all, prefix), nil
}

// search returns the options whose label contains query (case-insensitive), those that
// start with it first ("web" lists web-01 before old-web), each part in the listing's
// order, at most MaxOptions: typing "01" finds web-01, as the vSphere Client's filter does.
func search(all []Option, query string) []Option {
	q := strings.ToLower(query)
	var first, rest []Option
	for _, o := range all {
		l := strings.ToLower(o.Label)
		switch {
		case strings.HasPrefix(l, q):
			first = append(first, o)
		case strings.Contains(l, q):
			rest = append(rest, o)
		}
		if len(first) == MaxOptions {
			break
		}
	}
	out := append(first, rest...)
	return out[:min(len(out), MaxOptions)]
}

func (k Kind) valid() bool {
	switch k {
	case KindClusters, KindHosts, KindDatastores, KindFolders, KindPortgroups, KindVMs, KindPools, KindPolicies:
		return true
	}
	return false
}

type listKey struct {
	vc    string
	kind  Kind
	scope Scope
}

type listEntry struct {
	opts []Option
	at   time.Time
}

// listMaxEntries bounds the listings held at once. Keys carry the scope a wizard sends
// (any cluster or host name), so without a bound every scope ever asked for would stay.
// A few wizards open at once use a few dozen listings within listTTL.
const listMaxEntries = 256

// listCache holds listings for listTTL, at most max of them; loads of one key are shared.
type listCache struct {
	ttl   time.Duration
	max   int
	now   func() time.Time
	group singleflight.Group

	mu      sync.Mutex
	entries map[listKey]listEntry
}

func newListCache() *listCache {
	return &listCache{ttl: listTTL, max: listMaxEntries, now: time.Now, entries: map[listKey]listEntry{}}
}

// put stores a listing loaded now. Expired listings go first, as nobody will be served
// them again; if the cache is still full, the oldest make room.
func (lc *listCache) put(key listKey, opts []Option) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	now := lc.now()
	for k, e := range lc.entries {
		if now.Sub(e.at) >= lc.ttl {
			delete(lc.entries, k)
		}
	}
	delete(lc.entries, key)
	for len(lc.entries) >= max(lc.max, 1) {
		var oldest listKey
		var at time.Time
		found := false
		for k, e := range lc.entries {
			if !found || e.at.Before(at) {
				oldest, at, found = k, e.at, true
			}
		}
		delete(lc.entries, oldest)
	}
	lc.entries[key] = listEntry{opts: opts, at: now}
}

func (lc *listCache) get(ctx context.Context, key listKey, load func(context.Context) ([]Option, error)) ([]Option, error) {
	lc.mu.Lock()
	e, ok := lc.entries[key]
	lc.mu.Unlock()
	if ok && lc.now().Sub(e.at) < lc.ttl {
		return e.opts, nil
	}
	ch := lc.group.DoChan(fmt.Sprintf("%s\x00%s\x00%s\x00%s", key.vc, key.kind, key.scope.Cluster, key.scope.Host), func() (any, error) {
		// Detached from the first caller's context: the others share the
		// result, and one of them hanging up must not fail the rest.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		opts, err := load(lctx)
		if err != nil {
			return nil, err
		}
		lc.put(key, opts)
		return opts, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.([]Option), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// inventoryProps are read for clusters and hosts on every listing: scopes
// and descriptions need them. A listing costs one container view and two
// to four retrieves, whatever the inventory's size.
var inventoryProps = map[string][]string{
	"ClusterComputeResource": {"name", "host"},
	"HostSystem":             {"name", "parent", "runtime.connectionState", "runtime.inMaintenanceMode", "vm", "datastore", "network"},
}

// loadOptions reads one listing.
func loadOptions(ctx context.Context, c *vim25.Client, kind Kind, scope Scope) ([]Option, error) {
	root := c.ServiceContent.RootFolder
	v, err := view.NewManager(c).CreateContainerView(ctx, root, nil, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()

	var clusters []mo.ClusterComputeResource
	var hosts []mo.HostSystem
	if err := v.Retrieve(ctx, []string{"ClusterComputeResource"}, inventoryProps["ClusterComputeResource"], &clusters); err != nil {
		return nil, err
	}
	if err := v.Retrieve(ctx, []string{"HostSystem"}, inventoryProps["HostSystem"], &hosts); err != nil {
		return nil, err
	}
	clusterName := map[types.ManagedObjectReference]string{}
	for _, cl := range clusters {
		clusterName[cl.Self] = readable(cl.Name)
	}
	// The hosts in scope, and the objects they see.
	inScope := map[types.ManagedObjectReference]bool{}
	seen := map[types.ManagedObjectReference]bool{}
	hostName := map[types.ManagedObjectReference]string{}
	for _, h := range hosts {
		hostName[h.Self] = readable(h.Name)
		ok := true
		switch {
		case scope.Host != "":
			ok = hostName[h.Self] == readable(scope.Host)
		case scope.Cluster != "":
			ok = h.Parent != nil && clusterName[*h.Parent] == readable(scope.Cluster)
		}
		if !ok {
			continue
		}
		inScope[h.Self] = true
		for _, r := range append(append(append([]types.ManagedObjectReference(nil), h.Datastore...), h.Network...), h.Vm...) {
			seen[r] = true
		}
	}
	scoped := scope.Host != "" || scope.Cluster != ""
	visible := func(r types.ManagedObjectReference) bool { return !scoped || seen[r] }

	var out []Option
	switch kind {
	case KindClusters:
		for _, cl := range clusters {
			out = append(out, Option{Label: readable(cl.Name), Value: readable(cl.Name), Description: plural(len(cl.Host), "host")})
		}
	case KindHosts:
		for _, h := range hosts {
			if !inScope[h.Self] {
				continue
			}
			state := plural(len(h.Vm), "VM")
			switch {
			case h.Runtime.ConnectionState != types.HostSystemConnectionStateConnected:
				state = string(h.Runtime.ConnectionState)
			case h.Runtime.InMaintenanceMode:
				state = "in maintenance mode"
			}
			where := "standalone"
			if h.Parent != nil && clusterName[*h.Parent] != "" {
				where = clusterName[*h.Parent]
			}
			out = append(out, Option{Label: readable(h.Name), Value: readable(h.Name), Description: where + " · " + state})
		}
	case KindDatastores:
		var dss []mo.Datastore
		if err := v.Retrieve(ctx, []string{"Datastore"}, []string{"name", "summary"}, &dss); err != nil {
			return nil, err
		}
		for _, d := range dss {
			if !visible(d.Self) {
				continue
			}
			desc := fmt.Sprintf("%s free of %s", gib(d.Summary.FreeSpace), gib(d.Summary.Capacity))
			if !d.Summary.Accessible {
				desc = "not accessible"
			}
			out = append(out, Option{Label: readable(d.Name), Value: readable(d.Name), Description: desc})
		}
		// Datastore clusters whose datastores the hosts see, as the wizard offers them.
		var pods []mo.StoragePod
		if err := v.Retrieve(ctx, []string{"StoragePod"}, []string{"name", "childEntity", "summary"}, &pods); err != nil {
			return nil, err
		}
		free := map[types.ManagedObjectReference]int64{}
		for _, d := range dss {
			if d.Summary.Accessible {
				free[d.Self] = d.Summary.FreeSpace
			}
		}
		for _, p := range pods {
			n, most := 0, int64(0)
			for _, d := range p.ChildEntity {
				if visible(d) {
					n++
					most = max(most, free[d])
				}
			}
			if n == 0 {
				continue
			}
			out = append(out, Option{Label: readable(p.Name), Value: readable(p.Name),
				Description: fmt.Sprintf("datastore cluster of %s · up to %s free on one", plural(n, "datastore"), gib(most))})
		}
	case KindPortgroups:
		var content []types.ObjectContent
		if err := v.Retrieve(ctx, []string{"Network"}, []string{"name"}, &content); err != nil {
			return nil, err
		}
		var refs []types.ManagedObjectReference
		for _, oc := range content {
			refs = append(refs, oc.Obj)
		}
		nets, err := networks(ctx, c, refs) // drops uplink portgroups
		if err != nil {
			return nil, err
		}
		dedupe := map[string]bool{}
		for _, n := range nets {
			if !visible(n.Ref) || dedupe[n.Name+n.Ref.Type] {
				continue
			}
			dedupe[n.Name+n.Ref.Type] = true
			desc := "standard"
			switch n.Ref.Type {
			case "DistributedVirtualPortgroup":
				desc = "distributed"
			case "OpaqueNetwork":
				desc = "NSX"
			}
			out = append(out, Option{Label: n.Name, Value: n.Name, Description: desc})
		}
	case KindVMs:
		var vms []mo.VirtualMachine
		if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "runtime.powerState", "runtime.host", "config.template"}, &vms); err != nil {
			return nil, err
		}
		for _, vm := range vms {
			if (vm.Config != nil && vm.Config.Template) || (scoped && (vm.Runtime.Host == nil || !inScope[*vm.Runtime.Host])) {
				continue
			}
			desc := powerWords(vm.Runtime.PowerState)
			if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
				desc = "powered on"
			}
			if vm.Runtime.Host != nil {
				desc += " · " + hostName[*vm.Runtime.Host]
			}
			out = append(out, Option{Label: readable(vm.Name), Value: readable(vm.Name), Description: desc})
		}
	case KindPools:
		var pools []mo.ResourcePool
		if err := v.Retrieve(ctx, []string{"ResourcePool"}, []string{"name", "parent", "owner"}, &pools); err != nil {
			return nil, err
		}
		for _, p := range pools {
			// A compute resource's root pool is the default, not a choice.
			if p.Parent == nil || p.Parent.Type != "ResourcePool" {
				continue
			}
			owner := clusterName[p.Owner]
			if scope.Cluster != "" && owner != readable(scope.Cluster) && scope.Host == "" {
				continue
			}
			out = append(out, Option{Label: readable(p.Name), Value: readable(p.Name), Description: "in " + owner})
		}
	case KindFolders:
		opts, err := folderOptions(ctx, c, v)
		if err != nil {
			return nil, err
		}
		out = opts
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.ToLower(out[i].Label) < strings.ToLower(out[j].Label) })
	return out, nil
}

// folderOptions lists every VM folder as a path under its datacenter's VM
// folder, the form folder= takes.
func folderOptions(ctx context.Context, c *vim25.Client, v *view.ContainerView) ([]Option, error) {
	var dcs []mo.Datacenter
	if err := v.Retrieve(ctx, []string{"Datacenter"}, []string{"name", "vmFolder"}, &dcs); err != nil {
		return nil, err
	}
	var folders []mo.Folder
	if err := v.Retrieve(ctx, []string{"Folder"}, []string{"name", "parent", "childType"}, &folders); err != nil {
		return nil, err
	}
	byRef := map[types.ManagedObjectReference]mo.Folder{}
	for _, f := range folders {
		byRef[f.Self] = f
	}
	roots := map[types.ManagedObjectReference]string{}
	for _, dc := range dcs {
		roots[dc.VmFolder] = readable(dc.Name)
	}
	var out []Option
	for _, f := range folders {
		if _, root := roots[f.Self]; root {
			continue
		}
		var parts []string
		dc := ""
		for cur, ok := f, true; ok; cur, ok = byRef[*cur.Parent] {
			if name, root := roots[cur.Self]; root {
				dc = name
				break
			}
			parts = append([]string{pathSegment(readable(cur.Name))}, parts...)
			if cur.Parent == nil {
				break
			}
		}
		if dc == "" {
			continue // a host, datastore or network folder
		}
		p := strings.Join(parts, "/")
		out = append(out, Option{Label: p, Value: p, Description: "in " + dc})
	}
	return out, nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
