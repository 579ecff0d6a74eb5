package vcenter

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// mirrored returns a Manager of the lab's two vCenters with an inventory mirror each,
// fed by RunMirrors until the test ends, once both mirrors hold the whole inventory.
// edit, if given, changes each mirror before its feed starts.
func mirrored(t *testing.T, lab *xvmsim.Lab, maxAge time.Duration, edit func(*inventoryMirror)) (*Manager, *prometheus.Registry) {
	t.Helper()
	east, west := labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC)
	east.MirrorMaxAge, west.MirrorMaxAge = maxAge, maxAge
	m, reg := newTestManager(t, east, west)
	if edit != nil {
		for _, mi := range m.mirrors.byName {
			edit(mi)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.RunMirrors(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	await(t, "both inventory mirrors to hold the whole inventory", func() bool {
		return m.freshMirror(xvmsim.EastVC) != nil && m.freshMirror(xvmsim.WestVC) != nil
	})
	return m, reg
}

// await waits until cond holds, failing the test after 30 s.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mirrorSpec is the benchmark's move: one VM onto west-prod's gold datastore.
func mirrorSpec(vms ...string) MoveSpec {
	return MoveSpec{VMs: vms, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
		Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
}

// A change made in vCenter reaches pre-flights through the mirror's change feed: none of
// the plans below reads either vCenter's inventory live, and each sees the change.
func TestMirrorSeesChangesInVCenter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, err := xvmsim.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	m, reg := mirrored(t, lab, time.Hour, nil)
	east, west := lab.VC(xvmsim.EastVC), lab.VC(xvmsim.WestVC)
	plan := func(vms ...string) *Plan {
		t.Helper()
		p, err := m.Plan(ctx, mirrorSpec(vms...))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	notFound := func(p *Plan, vm string) bool { return hasFinding(p, Blocker, "VM "+vm+" not found") }

	// Each plan before the change shows what the change will alter. Once the mirror
	// holds the change, a plan shows it. (The mirror is watched, not asked by pre-flight
	// after pre-flight: each of those is a task in the simulated source, which its
	// property collector answers by reading the whole inventory again.)
	tests := []struct {
		name   string
		before func() bool
		change func(t *testing.T)
		held   func() bool // the mirror holds the change
		seen   func() bool
	}{
		{"VM renamed",
			func() bool {
				return notFound(plan("web-02-renamed"), "web-02-renamed") && !notFound(plan("web-02"), "web-02")
			},
			func(t *testing.T) {
				if err := east.RenameVM(ctx, "web-02", "web-02-renamed"); err != nil {
					t.Fatal(err)
				}
			},
			func() bool { return mirrorHas(m, xvmsim.EastVC, "VirtualMachine", "web-02-renamed", "name") != nil },
			func() bool {
				return !notFound(plan("web-02-renamed"), "web-02-renamed") && notFound(plan("web-02"), "web-02")
			}},
		{"VM powered off",
			func() bool {
				return plan("web-03").VMs[0].PowerState == string(types.VirtualMachinePowerStatePoweredOn)
			},
			func(t *testing.T) {
				c, err := east.Client(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = c.Logout(ctx) }()
				vm, err := find.NewFinder(c.Client).VirtualMachine(ctx, "/"+xvmsim.EastDatacenter+"/vm/"+xvmsim.EastWebFolder+"/web-03")
				if err != nil {
					t.Fatal(err)
				}
				task, err := vm.PowerOff(ctx)
				wait(t, task, err)
			},
			func() bool {
				return mirrorHas(m, xvmsim.EastVC, "VirtualMachine", "web-03", "runtime.powerState") == types.VirtualMachinePowerStatePoweredOff
			},
			func() bool {
				return plan("web-03").VMs[0].PowerState == string(types.VirtualMachinePowerStatePoweredOff)
			}},
		{"new VM",
			func() bool { return notFound(plan("web-04"), "web-04") },
			func(t *testing.T) {
				c, err := east.Client(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = c.Logout(ctx) }()
				f := find.NewFinder(c.Client)
				folder, err := f.Folder(ctx, "/"+xvmsim.EastDatacenter+"/vm/"+xvmsim.EastWebFolder)
				if err != nil {
					t.Fatal(err)
				}
				pool, err := f.ResourcePool(ctx, "/"+xvmsim.EastDatacenter+"/host/"+xvmsim.EastCluster+"/Resources")
				if err != nil {
					t.Fatal(err)
				}
				task, err := folder.CreateVM(ctx, types.VirtualMachineConfigSpec{
					Name: "web-04", GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
					Files: &types.VirtualMachineFileInfo{VmPathName: "[" + xvmsim.EastDatastore1 + "]"},
				}, pool, nil)
				wait(t, task, err)
			},
			func() bool { return mirrorHas(m, xvmsim.EastVC, "VirtualMachine", "web-04", "name") != nil },
			func() bool { return !notFound(plan("web-04"), "web-04") }},
		{"VM removed",
			func() bool { return !notFound(plan("db-01"), "db-01") },
			func(t *testing.T) {
				c, err := east.Client(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = c.Logout(ctx) }()
				vm, err := find.NewFinder(c.Client).VirtualMachine(ctx, "/"+xvmsim.EastDatacenter+"/vm/"+xvmsim.EastDBFolder+"/db-01")
				if err != nil {
					t.Fatal(err)
				}
				task, err := vm.Destroy(ctx)
				wait(t, task, err)
			},
			func() bool { return mirrorHas(m, xvmsim.EastVC, "VirtualMachine", "db-01", "name") == nil },
			func() bool { return notFound(plan("db-01"), "db-01") }},
		{"host into maintenance",
			func() bool { return plan("web-01").Host == xvmsim.WestHost3 },
			func(t *testing.T) {
				c, err := west.Client(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = c.Logout(ctx) }()
				h, err := find.NewFinder(c.Client).HostSystem(ctx, "/"+xvmsim.WestDatacenter+"/host/"+xvmsim.WestCluster+"/"+xvmsim.WestHost3)
				if err != nil {
					t.Fatal(err)
				}
				task, err := h.EnterMaintenanceMode(ctx, 0, false, nil)
				wait(t, task, err)
			},
			func() bool {
				return mirrorHas(m, xvmsim.WestVC, "HostSystem", xvmsim.WestHost3, "runtime.inMaintenanceMode") == true
			},
			func() bool {
				p := plan("web-01")
				return p.Host != xvmsim.WestHost3 && hasFinding(p, OK, xvmsim.WestHost3+" is in maintenance mode")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.before() {
				t.Fatal("the plan shows the change before it was made")
			}
			tt.change(t)
			await(t, "the mirror to hold the change", tt.held)
			if !tt.seen() {
				t.Error("the mirror holds the change, but the pre-flight does not show it")
			}
		})
	}
	for _, vc := range []string{xvmsim.EastVC, xvmsim.WestVC} {
		if live := reads(t, reg, vc, "live"); live != 0 {
			t.Errorf("%s: %v pre-flight steps read the inventory live, want every one from the mirror", vc, live)
		}
		if n := reads(t, reg, vc, "mirror"); n == 0 {
			t.Errorf("%s: no pre-flight step read the mirror", vc)
		}
	}
}

// mirrorHas returns property prop of the object of type kind named name in vCenter vc's
// mirror, nil if the mirror holds no such object (or not that property).
func mirrorHas(m *Manager, vc, kind, name, prop string) types.AnyType {
	mi := m.mirrors.byName[vc]
	mi.mu.RLock()
	defer mi.mu.RUnlock()
	for ref, o := range mi.objects {
		if ref.Type == kind && o.props["name"] == name {
			return o.props[prop]
		}
	}
	return nil
}

// reads is xvm_inventory_mirror_reads_total{vcenter,from}.
func reads(t *testing.T, reg *prometheus.Registry, vc, from string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "xvm_inventory_mirror_reads_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["vcenter"] == vc && got["from"] == from {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// planShown is what a plan shows and holds, without when it was made.
func planShown(p *Plan) Plan {
	q := *p
	q.ResolvedAt = time.Time{}
	return q
}

// A plan from the mirror is the plan live reads make, resolved references and NIC
// backings included, over the moves the lab's trip wires and the usual mistakes make;
// the target vCenter is not asked anything while the mirror plans, and the source only
// its compatibility check.
func TestMirrorPlanEqualsLivePlan(t *testing.T) {
	// Not parallel: it counts the shared lab's requests.
	ctx := context.Background()
	lab, live, _ := sharedLab(t)
	// A heartbeat of the feed is a request too: none comes while the plans are made.
	m, _ := mirrored(t, lab, time.Hour, func(mi *inventoryMirror) { mi.wait = 30 * time.Minute })
	east, west := lab.VC(xvmsim.EastVC), lab.VC(xvmsim.WestVC)

	with := func(edit func(*MoveSpec), vms ...string) MoveSpec {
		s := mirrorSpec(vms...)
		if edit != nil {
			edit(&s)
		}
		return s
	}
	tests := []struct {
		name string
		spec MoveSpec
	}{
		{"one VM", with(nil, "web-01")},
		{"several VMs, thin", with(func(s *MoveSpec) { s.DiskFormat = move.Thin }, "web-01", "web-02", "db-01")},
		{"a pattern", with(nil, "web-*")},
		{"host, pool and folder", with(func(s *MoveSpec) {
			s.Host, s.Pool, s.Folder = xvmsim.WestHost2, xvmsim.WestPool, xvmsim.WestWebFolder
		}, "web-03")},
		{"inventory paths", with(func(s *MoveSpec) {
			s.Cluster = "/" + xvmsim.WestDatacenter + "/host/" + xvmsim.WestCluster
			s.Folder = "/" + xvmsim.WestDatacenter + "/vm/" + xvmsim.WestDBFolder
		}, "db-01")},
		{"trip wires", with(func(s *MoveSpec) { s.Datastore = xvmsim.WestSilver }, xvmsim.TripSnapshot, xvmsim.TripSuspended,
			xvmsim.TripTemplate, xvmsim.TripTwin, xvmsim.TripBigDisk, xvmsim.TripSwap, xvmsim.TripCDROMISO, xvmsim.TripCheckWarn, xvmsim.DupVM)},
		{"unknown names", with(func(s *MoveSpec) { s.Datastore, s.Folder = "ds-bronze", "migrated/nowhere" }, "web-99")},
		{"unknown cluster", with(func(s *MoveSpec) { s.Cluster = "west-test" }, "web-01")},
		{"host of another cluster", with(func(s *MoveSpec) { s.Host = xvmsim.WestMaintHost }, "web-01")},
		{"host in maintenance", with(func(s *MoveSpec) { s.Cluster = xvmsim.WestMaintCluster }, "web-01")},
		{"standard switch only", with(func(s *MoveSpec) { s.Cluster = xvmsim.WestStdCluster }, "web-01")},
		{"segments and escaped names", with(func(s *MoveSpec) {
			s.Cluster, s.Folder = xvmsim.WestNSXCluster, "dev/test"
			s.Networks = []move.Network{{Source: xvmsim.EastSegment, Target: xvmsim.WestSegment}, {Source: xvmsim.StandardPortgroup, Target: "10.10.12.0/24"}}
		}, xvmsim.SegmentVM, "app/01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := live.Plan(ctx, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			eastLive := east.Requests()
			_, _ = live.Plan(ctx, tt.spec)
			eastLive = east.Requests() - eastLive

			eastBefore, westBefore := east.Requests(), west.Requests()
			got, err := m.Plan(ctx, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			eastMirror, westMirror := east.Requests()-eastBefore, west.Requests()-westBefore
			if !reflect.DeepEqual(planShown(got), planShown(want)) {
				t.Errorf("plan from the mirror differs from the live plan:\nmirror %+v\nlive   %+v", planShown(got), planShown(want))
			}
			// A cluster named by its inventory path is found by the target's search
			// index, live: the mirror keeps no paths.
			if byPath := isInventoryPath(tt.spec.Cluster); westMirror != 0 && !byPath {
				t.Errorf("the target served %d requests while the mirror planned, want none", westMirror)
			}
			if eastMirror >= eastLive {
				t.Errorf("the source served %d requests while the mirror planned, %d for a live plan: want fewer", eastMirror, eastLive)
			}
			if strings.Contains(tt.name, "one VM") && want.Blocked() {
				t.Errorf("the benchmark's move is blocked: %v", findingsOf(want, Blocker))
			}
		})
	}
}

// When the mirror has not heard from its feed for longer than its maximum age, or the
// feed stopped, pre-flights read live, and see what changed meanwhile; the staleness is
// reported, and a feed that comes back is read from again.
func TestMirrorStaleOrStoppedFallsBackToLive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, err := xvmsim.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	const maxAge = time.Minute
	var skew atomic.Int64 // how far the mirrors' clock is ahead
	// A feed that failed starts again only once the test lets it.
	restart := make(chan struct{})
	m, reg := mirrored(t, lab, maxAge, func(mi *inventoryMirror) {
		mi.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		mi.pause = func(int) time.Duration { <-restart; return 0 }
	})
	var once sync.Once
	letRestart := func() { once.Do(func() { close(restart) }) }
	t.Cleanup(letRestart) // before the mirrors' own cleanup, which waits for them
	east := lab.VC(xvmsim.EastVC)
	gauge := func(name string) float64 { return metricValue(t, reg, name, xvmsim.EastVC) }
	power := func(vm string) string {
		t.Helper()
		p, err := m.Plan(ctx, mirrorSpec(vm))
		if err != nil {
			t.Fatal(err)
		}
		return p.VMs[0].PowerState
	}

	if gauge("xvm_inventory_mirror_fresh") != 1 || gauge("xvm_inventory_mirror_age_seconds") >= maxAge.Seconds() {
		t.Fatalf("a mirror just synced: fresh %v, age %vs; want fresh and younger than %v",
			gauge("xvm_inventory_mirror_fresh"), gauge("xvm_inventory_mirror_age_seconds"), maxAge)
	}
	if power("web-01") != "poweredOn" || reads(t, reg, xvmsim.EastVC, "mirror") == 0 {
		t.Fatal("the first pre-flight did not read the mirror")
	}

	t.Run("silent longer than the maximum age", func(t *testing.T) {
		skew.Store(int64(maxAge + time.Second))
		defer skew.Store(0)
		if gauge("xvm_inventory_mirror_fresh") != 0 || gauge("xvm_inventory_mirror_age_seconds") <= maxAge.Seconds() {
			t.Errorf("a mirror silent for longer than %v: fresh %v, age %vs; want not fresh, older than that", maxAge,
				gauge("xvm_inventory_mirror_fresh"), gauge("xvm_inventory_mirror_age_seconds"))
		}
		before := reads(t, reg, xvmsim.EastVC, "live")
		if power("web-01") != "poweredOn" {
			t.Error("the live pre-flight got web-01's power state wrong")
		}
		if reads(t, reg, xvmsim.EastVC, "live") == before {
			t.Error("the pre-flight read the stale mirror, not the vCenter")
		}
	})

	t.Run("feed stopped", func(t *testing.T) {
		east.SetDown(true)
		await(t, "the mirror to notice its feed stopped", func() bool { return gauge("xvm_inventory_mirror_fresh") == 0 })
		east.SetDown(false) // the vCenter is back; the mirror waits out its pause
		c, err := east.Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Logout(ctx) }()
		vm, err := find.NewFinder(c.Client).VirtualMachine(ctx, "/"+xvmsim.EastDatacenter+"/vm/"+xvmsim.EastWebFolder+"/web-02")
		if err != nil {
			t.Fatal(err)
		}
		task, err := vm.PowerOff(ctx)
		wait(t, task, err)
		before := reads(t, reg, xvmsim.EastVC, "live")
		if got := power("web-02"); got != "poweredOff" {
			t.Errorf("web-02 is %s in the pre-flight after it was powered off, want poweredOff", got)
		}
		if reads(t, reg, xvmsim.EastVC, "live") == before {
			t.Error("the pre-flight did not read the vCenter while the feed was stopped")
		}
	})

	t.Run("feed back", func(t *testing.T) {
		letRestart()
		await(t, "the mirror to be fresh again", func() bool { return gauge("xvm_inventory_mirror_fresh") == 1 })
		before := reads(t, reg, xvmsim.EastVC, "mirror")
		if got := power("web-02"); got != "poweredOff" {
			t.Errorf("web-02 is %s in the mirror's pre-flight, want poweredOff", got)
		}
		if reads(t, reg, xvmsim.EastVC, "mirror") == before {
			t.Error("the pre-flight did not read the mirror once its feed was back")
		}
	})
}
