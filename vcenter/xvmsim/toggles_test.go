package xvmsim

import (
	"errors"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Each toggle shows over the vCenter API exactly where a client reads it, reaches only the
// object it names, and is undone by the same call.
func TestToggles(t *testing.T) {
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
	host := func(name string) mo.HostSystem {
		t.Helper()
		h, err := f.HostSystem(ctx, "/"+WestDatacenter+"/host/*/"+name)
		if err != nil {
			t.Fatal(err)
		}
		var out mo.HostSystem
		if err := pc.RetrieveOne(ctx, h.Reference(), []string{"name", "runtime.connectionState", "config.product", "summary.config.product"}, &out); err != nil {
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

	t.Run("unknown names", func(t *testing.T) {
		if _, err := west.SetHostConnection("esx-nowhere", types.HostSystemConnectionStateDisconnected); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown host: %v, want ErrNotFound", err)
		}
		if _, err := west.SetDatastoreAccessible("ds-nowhere", false); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown datastore: %v, want ErrNotFound", err)
		}
	})
}
