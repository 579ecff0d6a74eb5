package vcenter

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// BenchmarkResolve1000Of10000 resolves 1,000 VM names, and reads what a
// plan needs of each (hardware, power state, snapshots, networks, disk
// layout), in a 10,000-VM vCenter: the way Plan does it (one container-view
// listing, one property retrieve for all), and one find.Finder lookup plus
// one retrieve per name, the usual govmomi idiom.
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
	start := time.Now()
	lab, err := xvmsim.Start(ctx, xvmsim.WithExtraVMs(total))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("xvmsim with %d extra VMs built in %v", total, time.Since(start).Round(time.Second))
	b.Cleanup(lab.Close)
	vc := lab.VC(xvmsim.EastVC)
	m, err := NewManager([]Config{labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC)}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	names := make([]string, 0, wanted)
	for i := 1; i <= wanted; i++ {
		names = append(names, fmt.Sprintf("bulk-%04d", i*total/wanted))
	}

	b.Run("collector", func(b *testing.B) {
		for b.Loop() {
			err := m.withSession(ctx, xvmsim.EastVC, func(c *vim25.Client, _ *x509.Certificate) error {
				r := &resolver{plan: &Plan{}, spec: MoveSpec{VMs: names, Source: xvmsim.EastVC, Target: xvmsim.WestVC}}
				got, err := r.resolveSource(ctx, c)
				if err == nil && len(got) != wanted {
					err = fmt.Errorf("resolved %d VMs, want %d: %v", len(got), wanted, r.plan.Findings)
				}
				return err
			})
			if err != nil {
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
		f := find.NewFinder(c.Client)
		dc, err := f.Datacenter(ctx, vc.Datacenter)
		if err != nil {
			b.Fatal(err)
		}
		f.SetDatacenter(dc)
		for b.Loop() {
			for _, name := range sample {
				vm, err := f.VirtualMachine(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				var o mo.VirtualMachine
				if err := vm.Properties(ctx, vm.Reference(), vmProps, &o); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sample)), "ns/name")
	})
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
	lab, err := xvmsim.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lab.Close)
	m, err := NewManager([]Config{labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC)}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Cluster: "west-prod",
		Datastore: "ds-gold", Networks: []NetworkMap{{Target: "app-pg"}}, DiskFormat: DiskThin}
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
