package vcenter

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// hostLoads reads how many VMs each host of a cluster runs, as vCenter reports it.
func hostLoads(t *testing.T, vc *xvmsim.VC, datacenter, cluster string) map[string]int {
	t.Helper()
	ctx := context.Background()
	c, err := vc.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(ctx) }()
	cr, err := find.NewFinder(c.Client).ClusterComputeResource(ctx, "/"+datacenter+"/host/"+cluster)
	if err != nil {
		t.Fatal(err)
	}
	pc := property.DefaultCollector(c.Client)
	var cl mo.ClusterComputeResource
	if err := pc.RetrieveOne(ctx, cr.Reference(), []string{"host"}, &cl); err != nil {
		t.Fatal(err)
	}
	var hosts []mo.HostSystem
	if err := pc.Retrieve(ctx, cl.Host, []string{"name", "vm"}, &hosts); err != nil {
		t.Fatal(err)
	}
	loads := map[string]int{}
	for _, h := range hosts {
		loads[h.Name] = len(h.Vm)
	}
	return loads
}

// byLoad orders the hosts fewest VMs first, leaving out those in except.
func byLoad(loads map[string]int, except ...string) []string {
	var out []string
	for name := range maps.Keys(loads) {
		if !slices.Contains(except, name) {
			out = append(out, name)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(loads[a], loads[b]), cmp.Compare(a, b)) })
	return out
}

// datastoreUnmounted unmounts a datastore from one host until the test ends.
func datastoreUnmounted(t *testing.T, vc *xvmsim.VC, host, ds string) {
	t.Helper()
	toggledFor(t, func(on bool) (bool, error) { return vc.SetDatastoreMounted(host, ds, on) }, false)
}

// portgroupOff takes a portgroup off one host until the test ends.
func portgroupOff(t *testing.T, vc *xvmsim.VC, host, pg string) {
	t.Helper()
	toggledFor(t, func(on bool) (bool, error) { return vc.SetPortgroupOnHost(host, pg, on) }, false)
}

// Within a cluster, the plan's host is the least loaded one that sees the datastore and
// has every portgroup the VMs need; a host lacking either is neither the plan's host nor
// one of the others a worker may fall back to, and the plan is not blocked while another
// host qualifies.
func TestHostChoiceInCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	west := lab.VC(xvmsim.WestVC)

	// The lab's west-prod hosts run one, one and no VMs. One more on esx-w1 makes the
	// order by load the reverse of the order by name, so that a choice by name, or by
	// the cluster's order, cannot pass for a choice by load.
	skew := MoveSpec{VMs: []string{"web-02"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Host: xvmsim.WestHost1, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
	sp, err := m.Plan(ctx, skew)
	if err != nil || sp.Blocked() {
		t.Fatalf("plan web-02 onto %s: %v %v", xvmsim.WestHost1, err, findingsOf(sp, Blocker))
	}
	if _, err := m.Relocate(ctx, sp, "web-02", nil); err != nil {
		t.Fatal(err)
	}
	loads := hostLoads(t, west, xvmsim.WestDatacenter, xvmsim.WestCluster)
	order := byLoad(loads)
	if len(order) != 3 {
		t.Fatalf("%s has hosts %v, want three", xvmsim.WestCluster, loads)
	}

	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
	least := order[0]
	for _, tt := range []struct {
		name  string
		fault func(*testing.T)
		skip  string // the host the fault makes unfit
	}{
		{"all fit", func(*testing.T) {}, ""},
		{"least loaded does not see the datastore", func(t *testing.T) { datastoreUnmounted(t, west, least, xvmsim.WestGold) }, least},
		{"least loaded lacks the portgroup", func(t *testing.T) { portgroupOff(t, west, least, xvmsim.WestAppPortgroup) }, least},
		{"next one lacks the portgroup", func(t *testing.T) { portgroupOff(t, west, order[1], xvmsim.WestAppPortgroup) }, order[1]},
		{"busiest does not see the datastore", func(t *testing.T) { datastoreUnmounted(t, west, order[2], xvmsim.WestGold) }, order[2]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault(t)
			p, err := m.Plan(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			if p.Blocked() {
				t.Fatalf("blocked, though other hosts fit: %v", findingsOf(p, Blocker))
			}
			want := byLoad(loads, tt.skip)
			if want[0] == slices.Min(want) {
				t.Fatalf("loads %v do not tell a choice by load from one by name", loads)
			}
			if p.Host != want[0] {
				t.Errorf("host %s, want %s, the least loaded of %v (loads %v)", p.Host, want[0], want, loads)
			}
			if !slices.Equal(p.OtherHosts, want[1:]) {
				t.Errorf("other hosts %v, want %v, least loaded first", p.OtherHosts, want[1:])
			}
			if tt.skip != "" && (p.Host == tt.skip || slices.Contains(p.OtherHosts, tt.skip)) {
				t.Errorf("%s is offered (host %s, others %v) though it cannot take the VM", tt.skip, p.Host, p.OtherHosts)
			}
		})
	}
}
