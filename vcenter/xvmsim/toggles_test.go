package xvmsim

import (
	"errors"
	"slices"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Each toggle shows over the vCenter API exactly where a client reads it, reaches only the
// object it names, and is undone by the same call.
func TestToggles(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east, west := l.VC(EastVC), l.VC(WestVC)
	c, err := west.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logout(c) })
	f := find.NewFinder(c.Client, true)
	pc := property.DefaultCollector(c.Client)
	// Each host is looked up once: a finder's walk of the host folder takes a second
	// under the race detector.
	hostRefs := map[string]types.ManagedObjectReference{}
	for _, name := range []string{WestHost1, WestHost2, WestHost3} {
		h, err := f.HostSystem(ctx, "/"+WestDatacenter+"/host/*/"+name)
		if err != nil {
			t.Fatal(err)
		}
		hostRefs[name] = h.Reference()
	}
	host := func(name string) mo.HostSystem {
		t.Helper()
		var out mo.HostSystem
		if err := pc.RetrieveOne(ctx, hostRefs[name], []string{"name", "runtime.connectionState", "config.product", "summary.config.product"}, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	datastore := func(name string) mo.Datastore {
		t.Helper()
		ds, err := f.Datastore(ctx, "/"+WestDatacenter+"/datastore/"+name)
		if err != nil {
			t.Fatal(err)
		}
		var out mo.Datastore
		if err := pc.RetrieveOne(ctx, ds.Reference(), []string{"summary", "host"}, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("host connection", func(t *testing.T) {
		before := types.HostSystemConnectionStateConnected
		for _, state := range []types.HostSystemConnectionState{types.HostSystemConnectionStateNotResponding,
			types.HostSystemConnectionStateDisconnected, types.HostSystemConnectionStateConnected} {
			if was, err := west.SetHostConnection(WestHost3, state); err != nil || was != before {
				t.Fatalf("set %s: was %s (%v), want %s", state, was, err, before)
			}
			before = state
			if got := host(WestHost3).Runtime.ConnectionState; got != state {
				t.Errorf("%s is %s, want %s", WestHost3, got, state)
			}
			if got := host(WestHost2).Runtime.ConnectionState; got != types.HostSystemConnectionStateConnected {
				t.Errorf("%s is %s; only %s was set", WestHost2, got, WestHost3)
			}
		}
	})

	t.Run("datastore accessibility", func(t *testing.T) {
		if was, err := west.SetDatastoreAccessible(WestGold, false); err != nil || !was {
			t.Fatalf("was accessible: %v, %v", was, err)
		}
		ds := datastore(WestGold)
		if ds.Summary.Accessible {
			t.Errorf("%s still accessible", WestGold)
		}
		for _, m := range ds.Host {
			if m.MountInfo.Accessible == nil || *m.MountInfo.Accessible {
				t.Errorf("%s still accessible from %s", WestGold, m.Key)
			}
		}
		if !datastore(WestSilver).Summary.Accessible {
			t.Errorf("%s became inaccessible too", WestSilver)
		}
		if was, err := west.SetDatastoreAccessible(WestGold, true); err != nil || was {
			t.Fatalf("was accessible: %v, %v", was, err)
		}
		if ds := datastore(WestGold); !ds.Summary.Accessible || ds.Host[0].MountInfo.InaccessibleReason != "" {
			t.Errorf("%s not restored: %+v", WestGold, ds.Summary)
		}
	})

	t.Run("host version", func(t *testing.T) {
		was := host(WestHost1).Config.Product.Version
		if prev, err := west.SetHostVersion(WestHost1, "6.0.0"); err != nil || prev != was {
			t.Fatalf("previous version %q (%v), want %q", prev, err, was)
		}
		h := host(WestHost1)
		if h.Config.Product.Version != "6.0.0" || h.Summary.Config.Product == nil || h.Summary.Config.Product.Version != "6.0.0" {
			t.Errorf("%s reports %q / %+v, want 6.0.0 in both", WestHost1, h.Config.Product.Version, h.Summary.Config.Product)
		}
		// vcsim builds every host from one template: a change must not reach the others.
		if v := host(WestHost2).Summary.Config.Product.Version; v != was {
			t.Errorf("%s reports %s after %s was changed, want %s", WestHost2, v, WestHost1, was)
		}
		ec, err := east.Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer logout(ec)
		eh, err := find.NewFinder(ec.Client, true).HostSystem(ctx, "/"+EastDatacenter+"/host/*/"+EastHost1)
		if err != nil {
			t.Fatal(err)
		}
		var e mo.HostSystem
		if err := property.DefaultCollector(ec.Client).RetrieveOne(ctx, eh.Reference(), []string{"summary.config.product"}, &e); err != nil {
			t.Fatal(err)
		}
		if e.Summary.Config.Product.Version != was {
			t.Errorf("%s in %s reports %s after %s in %s was changed", EastHost1, EastVC, e.Summary.Config.Product.Version, WestHost1, WestVC)
		}
		if _, err := west.SetHostVersion(WestHost1, was); err != nil {
			t.Fatal(err)
		}
		if v := host(WestHost1).Summary.Config.Product.Version; v != was {
			t.Errorf("%s not restored: %s", WestHost1, v)
		}
	})

	// What a host sees and what sees it, read the way pre-flight and the wizard's lists
	// read them: the host's own lists and the datastore's mounts or the network's hosts.
	hostSees := func(name string) mo.HostSystem {
		t.Helper()
		var out mo.HostSystem
		if err := pc.RetrieveOne(ctx, hostRefs[name], []string{"datastore", "network"}, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	mountedOn := func(ds mo.Datastore, h types.ManagedObjectReference) *types.DatastoreHostMount {
		for i, m := range ds.Host {
			if m.Key == h {
				return &ds.Host[i]
			}
		}
		return nil
	}

	t.Run("datastore mount", func(t *testing.T) {
		gold := datastore(WestGold).Self
		h1, h2 := hostRefs[WestHost1], hostRefs[WestHost2]
		if was, err := west.SetDatastoreMounted(WestHost1, WestGold, false); err != nil || !was {
			t.Fatalf("was mounted: %v, %v", was, err)
		}
		if slices.Contains(hostSees(WestHost1).Datastore, gold) {
			t.Errorf("%s still lists %s", WestHost1, WestGold)
		}
		ds := datastore(WestGold)
		if mountedOn(ds, h1) != nil {
			t.Errorf("%s still mounted on %s", WestGold, WestHost1)
		}
		if !slices.Contains(hostSees(WestHost2).Datastore, gold) || mountedOn(ds, h2) == nil {
			t.Errorf("%s lost %s too; only %s was unmounted", WestHost2, WestGold, WestHost1)
		}
		if !slices.Contains(hostSees(WestHost1).Datastore, datastore(WestSilver).Self) {
			t.Errorf("%s lost %s too", WestHost1, WestSilver)
		}
		if was, err := west.SetDatastoreMounted(WestHost1, WestGold, false); err != nil || was {
			t.Errorf("unmounted twice: was mounted %v, %v", was, err)
		}
		if was, err := west.SetDatastoreMounted(WestHost1, WestGold, true); err != nil || was {
			t.Fatalf("was mounted: %v, %v", was, err)
		}
		m := mountedOn(datastore(WestGold), h1)
		if !slices.Contains(hostSees(WestHost1).Datastore, gold) || m == nil {
			t.Fatalf("%s not mounted on %s again", WestGold, WestHost1)
		}
		if m.MountInfo.Mounted == nil || !*m.MountInfo.Mounted || m.MountInfo.Accessible == nil || !*m.MountInfo.Accessible {
			t.Errorf("mount restored as %+v, want mounted and accessible", m.MountInfo)
		}
		if n := len(datastore(WestGold).Host); n != len(ds.Host)+1 {
			t.Errorf("%s has %d mounts after remounting, want %d", WestGold, n, len(ds.Host)+1)
		}
	})

	t.Run("portgroup on host", func(t *testing.T) {
		for _, tt := range []struct {
			pg          string
			distributed bool // vcsim keeps a host list for distributed portgroups only
		}{{WestAppPortgroup, true}, {StandardPortgroup, false}} {
			n, err := f.Network(ctx, "/"+WestDatacenter+"/network/"+tt.pg)
			if err != nil {
				t.Fatal(err)
			}
			ref := n.Reference()
			network := func() []types.ManagedObjectReference {
				t.Helper()
				var out mo.Network
				if err := pc.RetrieveOne(ctx, ref, []string{"host"}, &out); err != nil {
					t.Fatal(err)
				}
				return out.Host
			}
			// on reports whether the host lists the portgroup and, where vcsim keeps
			// one, the portgroup the host.
			on := func(host string) bool {
				t.Helper()
				listed := slices.Contains(hostSees(host).Network, ref)
				if tt.distributed && slices.Contains(network(), hostRefs[host]) != listed {
					t.Errorf("%s: %s lists it %v, its own host list says otherwise: %v", tt.pg, host, listed, network())
				}
				return listed
			}
			before := network()
			if was, err := west.SetPortgroupOnHost(WestHost1, tt.pg, false); err != nil || !was {
				t.Fatalf("%s: host had it: %v, %v", tt.pg, was, err)
			}
			if on(WestHost1) {
				t.Errorf("%s still on %s", tt.pg, WestHost1)
			}
			if !on(WestHost2) {
				t.Errorf("%s gone from %s too; only %s lost it", tt.pg, WestHost2, WestHost1)
			}
			if was, err := west.SetPortgroupOnHost(WestHost1, tt.pg, true); err != nil || was {
				t.Fatalf("%s: host had it: %v, %v", tt.pg, was, err)
			}
			if !on(WestHost1) {
				t.Errorf("%s not back on %s", tt.pg, WestHost1)
			}
			if after := network(); len(after) != len(before) {
				t.Errorf("%s lists hosts %v after the round trip, %v before", tt.pg, after, before)
			}
		}
	})

	t.Run("unknown names", func(t *testing.T) {
		if _, err := west.SetHostConnection("esx-nowhere", types.HostSystemConnectionStateDisconnected); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown host: %v, want ErrNotFound", err)
		}
		if _, err := west.SetDatastoreAccessible("ds-nowhere", false); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown datastore: %v, want ErrNotFound", err)
		}
		if _, err := west.SetDatastoreMounted(WestHost1, "ds-nowhere", false); !errors.Is(err, ErrNotFound) {
			t.Errorf("unmount unknown datastore: %v, want ErrNotFound", err)
		}
		if _, err := west.SetPortgroupOnHost("esx-nowhere", WestAppPortgroup, false); !errors.Is(err, ErrNotFound) {
			t.Errorf("portgroup off unknown host: %v, want ErrNotFound", err)
		}
		if _, err := west.SetPortgroupOnHost(WestHost1, "pg-nowhere", false); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown portgroup: %v, want ErrNotFound", err)
		}
	})
}
