package vcenter

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// mirroredProps are the properties a pre-flight reads, by managed object type: what the
// inventory mirror keeps of each object. A read of anything else goes to the vCenter.
// parent is kept of every type: listings by scope (a cluster's hosts, a datacenter's
// datastores) and walks up to a datacenter follow it. What a pre-flight reads only in
// rare cases (a host's vGPU profiles and disks, storage policies, tags) is read live.
var mirroredProps = map[string][]string{
	"VirtualMachine":                 append([]string{"parent"}, vmProps...), // and config.keyId where pre-flights ask for it (feed)
	"HostSystem":                     hostProps,
	"ClusterComputeResource":         {"name", "parent", "host", "resourcePool"},
	"ComputeResource":                {"name", "parent", "host", "resourcePool"},
	"Datastore":                      {"name", "parent", "summary", "info"},
	"StoragePod":                     {"name", "parent", "childEntity", "summary"},
	"Network":                        {"name", "parent"},
	"DistributedVirtualPortgroup":    {"name", "parent", "key", "config.uplink", "config.distributedVirtualSwitch"},
	"OpaqueNetwork":                  {"name", "parent", "summary"},
	"DistributedVirtualSwitch":       {"name", "parent", "uuid"},
	"VmwareDistributedVirtualSwitch": {"name", "parent", "uuid"},
	"ResourcePool":                   {"name", "parent", "owner"},
	"VirtualApp":                     {"name", "parent", "owner"},
	"Folder":                         {"name", "parent", "childEntity", "childType"},
	"Datacenter":                     {"name", "parent", "vmFolder"},
}

// Defaults of a mirror's timing.
const (
	// mirrorWait is how long one WaitForUpdatesEx may wait for a change: an empty answer
	// after it is the feed's heartbeat, which proves it alive while nothing changes.
	mirrorWait = 10 * time.Second
	// mirrorRetryFirst and mirrorRetryMax bound the pause before a feed that failed is
	// started again (retryPause).
	mirrorRetryFirst = time.Second
	mirrorRetryMax   = time.Minute
	// mirrorCallGrace is how much longer than its wait one WaitForUpdatesEx may take
	// before the feed gives up on it; mirrorCleanup bounds removing the feed's collector
	// and view once it ended.
	mirrorCallGrace = 30 * time.Second
	mirrorCleanup   = 5 * time.Second
)

// inventoryMirror is one vCenter's inventory as the property collector's change feed
// keeps it: a container view of the root folder over the types in mirroredProps, one
// filter, and WaitForUpdatesEx in a loop. Pre-flights read from it instead of the
// vCenter while it is fresh (docs/inventory-mirror.md): the feed answered within
// maxAge. Otherwise they read live, as without a mirror.
type inventoryMirror struct {
	maxAge time.Duration
	wait   time.Duration // MaxWaitSeconds of one WaitForUpdatesEx
	now    func() time.Time
	// pause is how long to wait before starting the feed again after its failures-th
	// failure in a row (retryPause).
	pause func(failures int) time.Duration

	mu      sync.RWMutex
	root    types.ManagedObjectReference // the vCenter's root folder
	props   map[string][]string          // what the current feed keeps, by type (mirroredProps)
	objects map[types.ManagedObjectReference]*mirroredObject
	synced  bool      // the current feed has delivered the whole inventory
	heard   time.Time // when the feed last answered (changes or a heartbeat)
}

// mirroredObject is one object's kept properties, as the vCenter sent them.
type mirroredObject struct {
	props map[string]types.AnyType
}

func newInventoryMirror(maxAge time.Duration) *inventoryMirror {
	// heard starts at its making: its age is how long it has had no feed, not since 1970.
	return &inventoryMirror{maxAge: maxAge, wait: min(mirrorWait, max(maxAge/3, time.Second)),
		now: time.Now, pause: retryPause, heard: time.Now()}
}

// retryPause doubles from mirrorRetryFirst with each failure in a row, up to
// mirrorRetryMax: a full read of a large inventory is not repeated every second
// against a vCenter that keeps failing.
func retryPause(failures int) time.Duration {
	return min(mirrorRetryFirst<<min(failures-1, 16), mirrorRetryMax)
}

// fresh reports whether pre-flights may read from the mirror now: the feed delivered
// the whole inventory and answered within maxAge.
func (mi *inventoryMirror) fresh() bool {
	mi.mu.RLock()
	defer mi.mu.RUnlock()
	return mi.synced && mi.now().Sub(mi.heard) <= mi.maxAge
}

// age is how long ago the feed last answered; with no feed synced, since it last did
// (or since the mirror started).
func (mi *inventoryMirror) age() time.Duration {
	mi.mu.RLock()
	defer mi.mu.RUnlock()
	return mi.now().Sub(mi.heard)
}

// run keeps the mirror fed until ctx ends, starting the feed again after a failure
// (a lost session, a vCenter that went away) with a growing pause; while it is down,
// pre-flights read live.
func (mi *inventoryMirror) run(ctx context.Context, c *conn, onFailure func(error)) error {
	mi.mu.Lock()
	mi.heard = mi.now()
	mi.mu.Unlock()
	failures := 0
	for {
		started := mi.now()
		err := mi.follow(ctx, c)
		mi.mu.Lock()
		mi.synced = false
		mi.objects = nil
		mi.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		onFailure(err)
		if mi.now().Sub(started) > mirrorRetryMax {
			failures = 0 // it ran well for a while: this is a new failure
		}
		failures++
		t := time.NewTimer(mi.pause(failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// follow reads the whole inventory through a new collector and view, then applies the
// changes as they come, until the feed fails or ctx ends.
func (mi *inventoryMirror) follow(ctx context.Context, c *conn) error {
	client, _, err := c.session(ctx)
	if err != nil {
		return err
	}
	err = mi.feed(ctx, client)
	if isNotAuthenticated(err) {
		c.invalidate(ctx, client) // the next attempt logs in again
	}
	return err
}

func (mi *inventoryMirror) feed(ctx context.Context, client *vim25.Client) error {
	// What the feed made in the vCenter is removed even after ctx ended, within a bound:
	// a vCenter that stopped answering must not hold up shutdown.
	cleanup := func(f func(context.Context)) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mirrorCleanup)
		defer cancel()
		f(cctx)
	}
	pc, err := property.DefaultCollector(client).Create(ctx)
	if err != nil {
		return err
	}
	defer cleanup(func(ctx context.Context) { _ = pc.Destroy(ctx) })
	kept := maps.Clone(mirroredProps)
	kept["VirtualMachine"] = append([]string{"parent"}, vmPropsOf(client)...) // as pre-flights ask for them
	kinds := slices.Sorted(maps.Keys(kept))
	props := make([]types.PropertySpec, 0, len(kinds))
	for _, kind := range kinds {
		props = append(props, types.PropertySpec{Type: kind, PathSet: kept[kind]})
	}
	v, err := view.NewManager(client).CreateContainerView(ctx, client.ServiceContent.RootFolder, kinds, true)
	if err != nil {
		return err
	}
	defer cleanup(func(ctx context.Context) { _ = v.Destroy(ctx) })
	if _, err := pc.CreateFilter(ctx, types.CreateFilter{
		Spec: types.PropertyFilterSpec{
			ObjectSet: []types.ObjectSpec{{Obj: v.Reference(), Skip: types.NewBool(true),
				SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}},
			PropSet: props,
		},
		PartialUpdates: true,
	}); err != nil {
		return err
	}

	mi.mu.Lock()
	mi.root, mi.props, mi.objects = client.ServiceContent.RootFolder, kept, map[types.ManagedObjectReference]*mirroredObject{}
	mi.mu.Unlock()
	secs := int32(mi.wait / time.Second)
	req := types.WaitForUpdatesEx{This: pc.Reference(), Options: &types.WaitOptions{MaxWaitSeconds: &secs}}
	for {
		// A call that outlasts its wait by far means a vCenter that stopped answering
		// on an open connection: the feed starts again.
		callCtx, cancel := context.WithTimeout(ctx, mi.wait+mirrorCallGrace)
		res, err := methods.WaitForUpdatesEx(callCtx, client, &req)
		cancel()
		if err != nil {
			// The vCenter would keep waiting for the abandoned call until
			// MaxWaitSeconds: end it, as property.Collector does.
			cleanup(func(ctx context.Context) {
				_, _ = methods.CancelWaitForUpdates(ctx, client, &types.CancelWaitForUpdates{This: pc.Reference()})
			})
			return err
		}
		set := res.Returnval
		mi.mu.Lock()
		mi.heard = mi.now()
		if set != nil {
			req.Version = set.Version
			for _, fs := range set.FilterSet {
				for _, u := range fs.ObjectSet {
					mi.apply(u)
				}
			}
			// The first answers hold the whole inventory, in parts when it is large.
			if set.Truncated == nil || !*set.Truncated {
				mi.synced = true
			}
		}
		mi.mu.Unlock()
	}
}

// apply records one object's update; mi.mu is held.
func (mi *inventoryMirror) apply(u types.ObjectUpdate) {
	if u.Kind == types.ObjectUpdateKindLeave {
		delete(mi.objects, u.Obj)
		return
	}
	o := mi.objects[u.Obj]
	if o == nil {
		o = &mirroredObject{props: map[string]types.AnyType{}}
		mi.objects[u.Obj] = o
	}
	for _, ch := range u.ChangeSet {
		if ch.Op == types.PropertyChangeOpRemove || ch.Op == types.PropertyChangeOpIndirectRemove || ch.Val == nil {
			delete(o.props, ch.Name)
			continue
		}
		o.props[ch.Name] = ch.Val
	}
	for _, m := range u.MissingSet {
		delete(o.props, m.Path)
	}
}

// mirrors are the Manager's inventory mirrors, by vCenter name, and their metrics.
type mirrors struct {
	byName map[string]*inventoryMirror
	reg    prometheus.Registerer
	reads  *prometheus.CounterVec
}

func newMirrors(reg prometheus.Registerer) mirrors {
	return mirrors{byName: map[string]*inventoryMirror{}, reg: reg,
		reads: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_inventory_mirror_reads_total",
			Help: "Pre-flight steps that read a vCenter's inventory, for the vCenters with a mirror, by where they read it: mirror, or live while the mirror was not fresh (its feed down, or silent longer than its maximum age).",
		}, []string{"vcenter", "from"}),
	}
}

// add gives vCenter name its mirror and the mirror's gauges, read when scraped.
func (ms *mirrors) add(name string, mi *inventoryMirror) {
	ms.byName[name] = mi
	f := promauto.With(ms.reg)
	labels := prometheus.Labels{"vcenter": name}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "xvm_inventory_mirror_age_seconds",
		Help:        "Seconds since the vCenter's inventory mirror last heard from its change feed (a change, or the heartbeat of an empty wait); pre-flights read live once it exceeds the configured maximum age.",
		ConstLabels: labels,
	}, func() float64 { return mi.age().Seconds() })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "xvm_inventory_mirror_fresh",
		Help:        "1 while pre-flights read the vCenter's inventory from its mirror (the feed holds the whole inventory and answered within the maximum age), else 0.",
		ConstLabels: labels,
	}, func() float64 {
		if mi.fresh() {
			return 1
		}
		return 0
	})
	ms.reads.WithLabelValues(name, "mirror")
	ms.reads.WithLabelValues(name, "live")
}

// RunMirrors keeps the inventory mirror of every vCenter configured with one (Config's
// MirrorMaxAge) fed until ctx ends. Pre-flights read a vCenter's inventory from its
// mirror while the mirror is fresh, and live otherwise, so without RunMirrors (or
// while a feed is down) they read live.
func (m *Manager) RunMirrors(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range m.names {
		mi := m.mirrors.byName[name]
		if mi == nil {
			continue
		}
		c := m.conns[name]
		wg.Go(func() {
			_ = mi.run(ctx, c, func(err error) {
				m.log.Warn("inventory mirror feed stopped; pre-flights read the vCenter directly until it is back",
					"vcenter", name, "err", m.scrub(err))
			})
		})
	}
	wg.Wait()
	return nil
}

// freshMirror returns vCenter name's mirror if pre-flights may read from it now.
func (m *Manager) freshMirror(name string) *inventoryMirror {
	mi := m.mirrors.byName[name]
	if mi == nil || !mi.fresh() {
		return nil
	}
	return mi
}

// planClient is the client a pre-flight reads vCenter name's inventory through: c
// itself, or, while the vCenter's mirror is fresh, a copy of c whose property reads
// the mirror answers.
func (m *Manager) planClient(name string, c *vim25.Client) *vim25.Client {
	mi := m.freshMirror(name)
	if mi == nil {
		if m.mirrors.byName[name] != nil {
			m.mirrors.reads.WithLabelValues(name, "live").Inc()
		}
		return c
	}
	m.mirrors.reads.WithLabelValues(name, "mirror").Inc()
	pc := *c
	pc.RoundTripper = &mirrorReads{next: c.RoundTripper, mirror: mi}
	return &pc
}
