package vcenter

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// BenchmarkResolve1000Of10000 resolves 1,000 VM names, reads what a plan
// needs of each (hardware, power state, snapshots, networks, disk layout,
// host), and where each one is (host, cluster, resource pool, datastores and
// folder, by name), in a 10,000-VM vCenter: the way Plan finds and reads
// VMs (one container-view listing, one property retrieve for all, sent in parts of
// retrieveChunk side by side), then the
// placements in the same pattern (one retrieve per kind of object for all the
// VMs at once), against one find.Finder lookup plus a retrieve per name and
// per placement object, the usual govmomi idiom.
//
// A Finder lookup walks the folder and lists all 10,000 VMs each time, so
// the finder side looks up the first finderSample of the same names and
// reports ns/name for both sides; -finder-all looks up all 1,000 (about
// 20 minutes here).
//
//	go test -run '^$' -bench Resolve1000Of10000 -benchtime 1x -timeout 30m ./vcenter
func BenchmarkResolve1000Of10000(b *testing.B) {
	const total, wanted = 10000, 1000
	ctx := context.Background()
	lab, m, names := bulkLab(b, total, wanted)
	vc := lab.VC(xvmsim.EastVC)

	b.Run("collector", func(b *testing.B) {
		for b.Loop() {
			if err := resolveTogether(ctx, m, names); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*wanted), "ns/name")
	})

	sample := names[:finderSample]
	if *finderAll {
		sample = names
	}

	b.Run("finder", func(b *testing.B) {
		c, err := vc.Client(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = c.Logout(context.Background()) }()
		for b.Loop() {
			if err := resolveOneByOne(ctx, c.Client, vc.Datacenter, sample); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sample)), "ns/name")
	})
}

// TestResolveBenchmarkRuns runs both sides of BenchmarkResolve1000Of10000 on the shared
// lab's small inventory, so that a change to the resolver cannot leave the benchmark
// broken unseen (it takes minutes, and CI does not run benchmarks).
func TestResolveBenchmarkRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, _, _ := sharedLab(t)
	m, err := NewManager([]Config{labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	names := []string{"web-01", "db-01", "web-03"}
	if err := resolveTogether(ctx, m, names); err != nil {
		t.Fatalf("collector side: %v", err)
	}
	vc := lab.VC(xvmsim.EastVC)
	c, err := vc.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(context.Background()) }()
	if err := resolveOneByOne(ctx, c.Client, vc.Datacenter, names); err != nil {
		t.Fatalf("finder side: %v", err)
	}
}

// resolveTogether is the collector side: what Plan does to find and read the VMs,
// then where they are, a retrieve per kind of object.
func resolveTogether(ctx context.Context, m *Manager, names []string) error {
	return m.withSession(ctx, xvmsim.EastVC, func(c *vim25.Client, _ *x509.Certificate) error {
		r := &resolver{plan: &Plan{}, spec: MoveSpec{VMs: names, Source: xvmsim.EastVC, Target: xvmsim.WestVC}, refs: &m.refs}
		got, err := r.resolveSource(ctx, c)
		if err == nil && len(got) != len(names) {
			err = fmt.Errorf("resolved %d VMs, want %d: %v", len(got), len(names), r.plan.Findings)
		}
		if err != nil {
			return err
		}
		refs := make([]types.ManagedObjectReference, 0, len(got))
		for _, svm := range got {
			refs = append(refs, svm.plan.ref)
		}
		placed, err := placementsTogether(ctx, c, refs)
		if err == nil && placed != len(names) {
			err = fmt.Errorf("placed %d VMs, want %d", placed, len(names))
		}
		return err
	})
}

// resolveOneByOne is the finder side: a find.Finder lookup per name, a retrieve of the
// same properties, and the names of where the VM is, one object at a time.
func resolveOneByOne(ctx context.Context, c *vim25.Client, datacenter string, names []string) error {
	f := find.NewFinder(c)
	dc, err := f.Datacenter(ctx, datacenter)
	if err != nil {
		return err
	}
	f.SetDatacenter(dc)
	for _, name := range names {
		vm, err := f.VirtualMachine(ctx, name)
		if err != nil {
			return err
		}
		var o mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), append(slices.Clone(vmProps), placementProps...), &o); err != nil {
			return err
		}
		if err := placementOneByOne(ctx, c, &o); err != nil {
			return err
		}
	}
	return nil
}

// placementProps are the properties that say where a VM is.
var placementProps = []string{"runtime.host", "resourcePool", "datastore", "parent"}

// placementsTogether reads where each of the VMs is, by name, in three retrieves, as
// Where does for one VM: the VMs, then their hosts, then everything else they sit in
// with the hosts' clusters. It returns how many VMs it placed.
func placementsTogether(ctx context.Context, c *vim25.Client, vms []types.ManagedObjectReference) (int, error) {
	pc := property.DefaultCollector(c)
	var got []mo.VirtualMachine
	if err := pc.Retrieve(ctx, vms, placementProps, &got); err != nil {
		return 0, err
	}
	var hosts, others []types.ManagedObjectReference
	for _, v := range got {
		if v.Runtime.Host != nil {
			hosts = append(hosts, *v.Runtime.Host)
		}
		if v.ResourcePool != nil {
			others = append(others, *v.ResourcePool)
		}
		if v.Parent != nil {
			others = append(others, *v.Parent)
		}
		others = append(others, v.Datastore...)
	}
	hs, err := entities(ctx, pc, hosts)
	if err != nil {
		return 0, err
	}
	for _, h := range hs {
		others = append(others, h.Parent)
	}
	if _, err := entities(ctx, pc, others); err != nil {
		return 0, err
	}
	return len(got), nil
}

// placementOneByOne reads the names of where a VM is one object at a time, as code
// built on object.Common.ObjectName does.
func placementOneByOne(ctx context.Context, c *vim25.Client, v *mo.VirtualMachine) error {
	refs := slices.Clone(v.Datastore)
	if v.ResourcePool != nil {
		refs = append(refs, *v.ResourcePool)
	}
	if v.Parent != nil {
		refs = append(refs, *v.Parent)
	}
	if v.Runtime.Host != nil {
		var h mo.HostSystem
		if err := property.DefaultCollector(c).RetrieveOne(ctx, *v.Runtime.Host, []string{"name", "parent"}, &h); err != nil {
			return err
		}
		if h.Parent != nil {
			refs = append(refs, *h.Parent)
		}
	}
	for _, r := range refs {
		if _, err := object.NewCommon(c, r).ObjectName(ctx); err != nil {
			return err
		}
	}
	return nil
}

// finderSample is how many names the finder side looks up by default.
const finderSample = 50

var finderAll = flag.Bool("finder-all", false, "BenchmarkResolve1000Of10000: look up all 1,000 names with find.Finder, not a sample")

// BenchmarkPlanOneVM is one pre-flight of one VM with a full placement, as a worker runs
// it when it cannot reuse the bot's plan: resolve in the source, resolve in the target,
// vCenter's CheckRelocate. Nothing is cached between iterations but the sessions and the
// VM's remembered reference, as in a running xvmbot.
//
//	go test -run '^$' -bench PlanOneVM ./vcenter
func BenchmarkPlanOneVM(b *testing.B) {
	ctx := context.Background()
	m := benchLab(b)
	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Networks: []move.Network{{Target: "app-pg"}}, DiskFormat: move.Thin}}
	for b.Loop() {
		p, err := m.Plan(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		if p.Blocked() {
			b.Fatalf("plan blocked: %+v", p.Findings)
		}
	}
}

// BenchmarkPlanOneVMMirrored is BenchmarkPlanOneVM with both vCenters' inventories read
// from their mirrors: what is left is vCenter's compatibility check and the storage
// policies, asked live.
//
//	go test -run '^$' -bench PlanOneVM ./vcenter
func BenchmarkPlanOneVMMirrored(b *testing.B) {
	ctx := context.Background()
	lab, err := xvmsim.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lab.Close)
	east, west := labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC)
	east.MirrorMaxAge, west.MirrorMaxAge = time.Hour, time.Hour
	m, err := NewManager([]Config{east, west}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = m.RunMirrors(mctx) }()
	b.Cleanup(func() { cancel(); <-done })
	for m.freshMirror(xvmsim.EastVC) == nil || m.freshMirror(xvmsim.WestVC) == nil {
		time.Sleep(10 * time.Millisecond)
	}
	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Networks: []move.Network{{Target: "app-pg"}}, DiskFormat: move.Thin}}
	for b.Loop() {
		p, err := m.Plan(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		if p.Blocked() {
			b.Fatalf("plan blocked: %+v", p.Findings)
		}
	}
}

// BenchmarkPlan5000Of20000 is a datacenter exit's pre-flight: one Plan of 5,000 VMs
// named in the request, in a source vCenter of 20,000, onto a cluster of the target. It
// is the whole pre-flight a person waits for after typing the command (names found,
// every VM read, networks mapped, hosts chosen, space checked, vCenter's own check),
// reported as seconds per plan and the findings it made.
//
//	go test -run '^$' -bench Plan5000Of20000 -benchtime 1x -timeout 30m ./vcenter
func BenchmarkPlan5000Of20000(b *testing.B) {
	const total, wanted = 20000, 5000
	ctx := context.Background()
	_, m, names := bulkLab(b, total, wanted)
	var err error
	spec := MoveSpec{VMs: names, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
		Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
	var p *Plan
	for b.Loop() {
		if p, err = m.Plan(ctx, spec); err != nil {
			b.Fatal(err)
		}
	}
	if len(p.VMs) != wanted {
		b.Fatalf("the plan has %d VMs, want %d", len(p.VMs), wanted)
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/plan")
	b.Logf("%d VMs planned; %d findings, blocked: %v", len(p.VMs), len(p.Findings), p.Blocked())
}

// bulkLab starts a lab whose home vCenter has total extra VMs, a Manager of its two
// vCenters, and the names of wanted of those VMs spread over all of them.
func bulkLab(b *testing.B, total, wanted int) (*xvmsim.Lab, *Manager, []string) {
	b.Helper()
	start := time.Now()
	lab, err := xvmsim.Start(context.Background(), xvmsim.WithExtraVMs(total))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("xvmsim with %d extra VMs built in %v", total, time.Since(start).Round(time.Second))
	b.Cleanup(lab.Close)
	m, err := NewManager([]Config{labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC)}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	names := make([]string, 0, wanted)
	for i := 1; i <= wanted; i++ {
		names = append(names, fmt.Sprintf("bulk-%04d", i*total/wanted))
	}
	return lab, m, names
}

// benchLab is a Manager of a lab of the benchmark's own, both closed at the end.
func benchLab(b *testing.B) *Manager {
	b.Helper()
	lab, err := xvmsim.Start(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lab.Close)
	m, err := NewManager([]Config{labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC)}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	return m
}
