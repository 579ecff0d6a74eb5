package xvmsim

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/types"
)

func startLab(t *testing.T, opts ...Option) *Lab {
	t.Helper()
	// Parallel tests take turns starting their labs: the time allowed covers the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := Start(ctx, append([]Option{WithTaskDuration(150 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

// shared is the lab of the tests that only read it (and log in to it), started on first
// use and closed by TestMain; those tests run in parallel. A test that changes a lab
// starts its own.
var shared struct {
	once sync.Once
	lab  *Lab
	err  error
}

// sharedLab returns the shared lab, which has three extra VMs.
func sharedLab(t *testing.T) *Lab {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		shared.lab, shared.err = Start(ctx, WithTaskDuration(150*time.Millisecond), WithExtraVMs(3))
	})
	if shared.err != nil {
		t.Fatalf("start the shared lab: %v", shared.err)
	}
	return shared.lab
}

// testCtx bounds what a test waits for. The tests run in parallel on a machine that may
// be busy: the bound only keeps a broken test from hanging, it measures nothing.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestTwoDistinctVCenters(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	ctx := testCtx(t)
	east, west := l.VC(EastVC), l.VC(WestVC)
	if east == nil || west == nil || l.VC("vc-nowhere") != nil {
		t.Fatalf("VC lookup: east=%v west=%v", east, west)
	}
	if got := len(l.VCs()); got != 2 {
		t.Fatalf("VCs() = %d, want 2", got)
	}

	for _, tc := range []struct {
		what string
		a, b string
	}{
		{"instance uuid", east.InstanceUUID, west.InstanceUUID},
		{"sha1 thumbprint", east.Thumbprint, west.Thumbprint},
		{"sha256 thumbprint", east.ThumbprintSHA256, west.ThumbprintSHA256},
		{"password", east.Password, west.Password},
		{"url", east.URL.String(), west.URL.String()},
	} {
		if tc.a == "" || tc.a == tc.b {
			t.Errorf("%s: east %q, west %q: want distinct and non-empty", tc.what, tc.a, tc.b)
		}
	}

	refs := map[string]map[types.ManagedObjectReference]string{}
	for _, vc := range l.VCs() {
		c, err := vc.Client(ctx)
		if err != nil {
			t.Fatalf("login to %s: %v", vc.Name, err)
		}
		if got := c.ServiceContent.About.InstanceUuid; got != vc.InstanceUUID {
			t.Errorf("%s reports instance uuid %s, VC says %s", vc.Name, got, vc.InstanceUUID)
		}
		m := view.NewManager(c.Client)
		kinds := []string{"HostSystem", "Datastore", "Network", "DistributedVirtualSwitch", "ClusterComputeResource", "ResourcePool", "Folder"}
		cv, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, kinds, true)
		if err != nil {
			t.Fatal(err)
		}
		all, err := cv.Find(ctx, kinds, nil)
		if err != nil {
			t.Fatal(err)
		}
		refs[vc.Name] = map[types.ManagedObjectReference]string{}
		for _, r := range all {
			refs[vc.Name][r] = r.Type
		}
		logout(c)
	}
	for r := range refs[EastVC] {
		// The root folder is fixed by the vSphere API.
		if _, ok := refs[WestVC][r]; ok && r.Value != "group-d1" {
			t.Errorf("MoRef %s exists in both vCenters", r)
		}
	}
	for _, vc := range []string{EastVC, WestVC} {
		kinds := map[string]int{}
		for _, kind := range refs[vc] {
			kinds[kind]++
		}
		// 3 hosts (and vc-west's three clusters of one host each: two trip wires and
		// west-nsx); 2 datastores; VM Network + 2 portgroups + the DVS uplink portgroup.
		hosts := map[string]int{EastVC: 3, WestVC: 6}[vc]
		if kinds["HostSystem"] != hosts || kinds["Datastore"] != 2 || kinds["Network"] < 1 || kinds["DistributedVirtualPortgroup"] < 2 {
			t.Errorf("%s inventory: %v", vc, kinds)
		}
	}

	bad := &VC{URL: east.URL, Username: east.Username, Password: west.Password, Thumbprint: east.Thumbprint, cert: east.cert}
	if c, err := bad.Client(ctx); err == nil {
		logout(c)
		t.Fatal("login to vc-east with vc-west's password succeeded")
	}
	bad = &VC{URL: east.URL, Username: east.Username, Password: east.Password, Thumbprint: west.Thumbprint, cert: west.cert}
	if c, err := bad.Client(ctx); err == nil {
		logout(c)
		t.Fatal("login to vc-east pinned to vc-west's thumbprint succeeded")
	}
}

func TestDefaultInventory(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		vc, vm string
		want   VMPlacement
	}{
		{EastVC, "web-01", VMPlacement{Folder: EastWebFolder, Pool: EastPool, Cluster: EastCluster, Host: EastHost1, PowerState: "poweredOn"}},
		{EastVC, "web-03", VMPlacement{Folder: EastWebFolder, Pool: EastPool, Cluster: EastCluster, Host: EastHost3, PowerState: "poweredOn"}},
		{EastVC, "db-01", VMPlacement{Folder: EastDBFolder, Pool: "Resources", Cluster: EastCluster, Host: EastHost1, PowerState: "poweredOff"}},
		{EastVC, "bulk-0003", VMPlacement{Folder: EastWebFolder, Pool: "Resources", Cluster: EastCluster, Host: EastHost1, PowerState: "poweredOff"}},
		{WestVC, "legacy-01", VMPlacement{Folder: WestLegacyFolder, Pool: "Resources", Cluster: WestCluster, Host: WestHost1, PowerState: "poweredOn"}},
	} {
		t.Run(tc.vc+"/"+tc.vm, func(t *testing.T) {
			p, err := l.VC(tc.vc).FindVM(ctx, tc.vm)
			if err != nil {
				t.Fatal(err)
			}
			if p.Folder != tc.want.Folder || p.Pool != tc.want.Pool || p.Cluster != tc.want.Cluster || p.Host != tc.want.Host || p.PowerState != tc.want.PowerState {
				t.Errorf("placement = %+v, want %+v", p, tc.want)
			}
			if len(p.Disks) == 0 || len(p.NICs) == 0 || p.UUID == "" || p.InstanceUUID == "" {
				t.Errorf("incomplete placement %+v", p)
			}
		})
	}

	db, err := l.VC(EastVC).FindVM(ctx, "db-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Disks) != 2 || len(db.NICs) != 2 || db.NICs[0].Network != EastAppPortgroup || !db.NICs[0].Distributed ||
		db.NICs[1].Network != StandardPortgroup || db.NICs[1].Distributed {
		t.Errorf("db-01 = %+v", db)
	}
	for _, name := range []string{"DC0_C0_RP0_VM0", "DC0_H0_VM0", "legacy-01"} {
		if _, err := l.VC(EastVC).FindVM(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("FindVM(%s) in east: err = %v, want ErrNotFound", name, err)
		}
	}
}

func TestSetDown(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	west := l.VC(WestVC)
	c, err := west.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer logout(c)

	west.SetDown(true)
	if _, err := c.SessionManager.UserSession(ctx); err == nil {
		t.Error("call on an open session succeeded while down")
	}
	if _, err := west.FindVM(ctx, "legacy-01"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("FindVM while down: err = %v, want a connection error", err)
	}
	if _, err := l.VC(EastVC).FindVM(ctx, "web-01"); err != nil {
		t.Errorf("vc-east affected by vc-west being down: %v", err)
	}

	west.SetDown(false)
	if _, err := west.FindVM(ctx, "legacy-01"); err != nil {
		t.Errorf("FindVM after coming back: %v", err)
	}
}
