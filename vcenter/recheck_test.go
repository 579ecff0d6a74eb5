package vcenter

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// resolvedOf plans spec and returns the plan and the resolution of its one VM as it
// travels in a signed grant (through JSON).
func resolvedOf(t testing.TB, m *Manager, spec MoveSpec) (*Plan, move.VM, *move.Resolved) {
	t.Helper()
	p, err := m.Plan(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	vm := spec.VMs[0]
	if p.BlockedFor(vm) {
		t.Fatalf("plan blocked: %+v", p.Findings)
	}
	r := p.Resolved(vm)
	if r == nil {
		t.Fatalf("the plan resolved no placement of %s", vm)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back move.Resolved
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return p, p.VMs[0].VM, &back
}

// relocateSpecJSON is the RelocateSpec p starts vm with (no locator), as JSON to compare.
func relocateSpecJSON(t *testing.T, p *Plan, vm string) string {
	t.Helper()
	b, err := json.MarshalIndent(buildRelocateSpec(*p.placement, p.vms[vm], p.Spec.DiskFormat, nil), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A move rebuilt from its resolution is the move the plan would start: the same
// RelocateSpec to the byte (host, pool, datastore, folder, each disk's datastore, format
// and policy, each NIC's device and target backing), the same other hosts and the same
// slots, for the lab's kinds of placement.
func TestRecheckBuildsThePlansMove(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	ctx := context.Background()
	for name, spec := range map[string]MoveSpec{
		"cluster, thin, distributed portgroup": {VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
			Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder,
				Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}, DiskFormat: move.Thin}},
		"two disks, one placed apart, eager, two NICs one standard": {VMs: []string{"db-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
			Placement: move.Placement{Cluster: xvmsim.WestCluster, Pool: xvmsim.WestPool, Datastore: xvmsim.WestSilver, Folder: xvmsim.WestDBFolder,
				DiskFormat: move.Eager, Priority: move.PriorityHigh, Disks: []move.Disk{{Disk: 2, Datastore: xvmsim.WestGold, DiskFormat: move.Thin}},
				Networks: []move.Network{{Source: xvmsim.EastAppPortgroup, Target: xvmsim.WestDBPortgroup}, {Source: xvmsim.StandardPortgroup, Target: xvmsim.StandardPortgroup}}}},
		"a host, same format": {VMs: []string{"web-02"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
			Placement: move.Placement{Host: xvmsim.WestHost2, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}},
		"NSX segment": {VMs: []string{xvmsim.SegmentVM}, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
			Placement: move.Placement{Cluster: xvmsim.WestNSXCluster, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestSegment}}}},
	} {
		t.Run(name, func(t *testing.T) {
			p, vm, r := resolvedOf(t, m, spec)
			q, err := m.Recheck(ctx, spec, vm, r)
			if err != nil {
				t.Fatalf("Recheck of an unchanged lab: %v", err)
			}
			if got, want := relocateSpecJSON(t, q, vm.Name), relocateSpecJSON(t, p, vm.Name); got != want {
				t.Errorf("Recheck's RelocateSpec differs from the plan's:\n got %s\nwant %s", got, want)
			}
			if q.Host != p.Host || !slices.Equal(q.OtherHosts, p.OtherHosts) {
				t.Errorf("Recheck places on %s (then %v), the plan on %s (then %v)", q.Host, q.OtherHosts, p.Host, p.OtherHosts)
			}
			// What the job's record and the thread say of the move: the same names.
			if q.Pool != p.Pool || q.Datastore != p.Datastore || q.Folder != p.Folder {
				t.Errorf("Recheck names pool %q, datastore %q, folder %q; the plan %q, %q, %q", q.Pool, q.Datastore, q.Folder, p.Pool, p.Datastore, p.Folder)
			}
			for k, nic := range p.VMs[0].NICs {
				if k >= len(q.VMs[0].NICs) || q.VMs[0].NICs[k].Label != nic.Label || q.VMs[0].NICs[k].Target != nic.Target {
					t.Errorf("Recheck's NICs %+v, the plan's %+v", q.VMs[0].NICs, p.VMs[0].NICs)
					break
				}
			}
			if q.Source.InstanceUUID != p.Source.InstanceUUID || q.Target.InstanceUUID != p.Target.InstanceUUID || q.VMs[0].Ref != p.VMs[0].Ref {
				t.Errorf("Recheck's objects %s %s %s, the plan's %s %s %s", q.VMs[0].Ref, q.Source.InstanceUUID, q.Target.InstanceUUID,
					p.VMs[0].Ref, p.Source.InstanceUUID, p.Target.InstanceUUID)
			}
			fq, err := m.Footprint(ctx, q, vm.Name)
			if err != nil {
				t.Fatal(err)
			}
			fp, err := m.Footprint(ctx, p, vm.Name)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := jsonOf(t, fq), jsonOf(t, fp); a != b {
				t.Errorf("Recheck's footprint %s, the plan's %s", a, b)
			}
		})
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// What changed since a move was resolved is found by Recheck, which then builds no move
// (its caller plans from names again): the VM powered otherwise, renamed or gone; its
// host in maintenance, disconnected, in standby or no longer seeing its portgroup or
// datastore; its datastore inaccessible or too full; its portgroup gone. A change that
// concerns only one of the other hosts leaves that host out of the plan.
func TestRecheckFindsWhatChanged(t *testing.T) {
	t.Parallel()
	lab, m, _ := startLab(t)
	ctx := context.Background()
	east, west := lab.VC(xvmsim.EastVC), lab.VC(xvmsim.WestVC)
	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
		Placement: move.Placement{Host: xvmsim.WestHost1, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder,
			Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}, DiskFormat: move.Thick}}
	_, vm, r := resolvedOf(t, m, spec)
	clusterSpec := spec
	clusterSpec.Host, clusterSpec.Cluster = "", xvmsim.WestCluster
	cp, _, cr := resolvedOf(t, m, clusterSpec)
	if len(cp.OtherHosts) == 0 {
		t.Fatal("the cluster's plan has no other hosts")
	}

	eastC, err := east.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	westC, err := west.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finder := func(c *vim25.Client, dc string) *find.Finder {
		f := find.NewFinder(c, true)
		d, err := f.Datacenter(ctx, dc)
		if err != nil {
			t.Fatal(err)
		}
		return f.SetDatacenter(d)
	}
	westF := finder(westC.Client, xvmsim.WestDatacenter)
	host := func(name string) *object.HostSystem {
		h, err := westF.HostSystem(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	eastVM, err := finder(eastC.Client, xvmsim.EastDatacenter).VirtualMachine(ctx, "web-01")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	waitTask := func(task *object.Task, err error) {
		t.Helper()
		must(err)
		must(task.Wait(ctx))
	}

	var wasFree int64
	for _, tc := range []struct {
		name          string
		change, undo  func()
		words         string
		vm            move.VM // "" the one planned
		resolved      *move.Resolved
		dropOtherHost string // with cr: the change only drops this other host
	}{
		{name: "vm powered off", words: "it is powered off, not powered on as approved",
			change: func() { waitTask(eastVM.PowerOff(ctx)) }, undo: func() { waitTask(eastVM.PowerOn(ctx)) }},
		{name: "vm renamed", words: "is now named web-01-old",
			change: func() { must(east.RenameVM(ctx, "web-01", "web-01-old")) }, undo: func() { must(east.RenameVM(ctx, "web-01-old", "web-01")) }},
		{name: "vm gone", words: "is no longer in vc-east", vm: move.VM{Name: "web-01", Ref: "vm-9999"}},
		{name: "host in maintenance", words: "host " + xvmsim.WestHost1 + " is in maintenance mode",
			change: func() { waitTask(host(xvmsim.WestHost1).EnterMaintenanceMode(ctx, 0, false, nil)) },
			undo:   func() { waitTask(host(xvmsim.WestHost1).ExitMaintenanceMode(ctx, 0)) }},
		{name: "host disconnected", words: "host " + xvmsim.WestHost1 + " is",
			change: func() {
				_, err := west.SetHostConnection(xvmsim.WestHost1, types.HostSystemConnectionStateNotResponding)
				must(err)
			},
			undo: func() {
				_, err := west.SetHostConnection(xvmsim.WestHost1, types.HostSystemConnectionStateConnected)
				must(err)
			}},
		{name: "host in standby", words: "host " + xvmsim.WestHost1 + " is",
			change: func() {
				_, err := west.SetHostPowerState(xvmsim.WestHost1, types.HostSystemPowerStateStandBy)
				must(err)
			},
			undo: func() {
				_, err := west.SetHostPowerState(xvmsim.WestHost1, types.HostSystemPowerStatePoweredOn)
				must(err)
			}},
		{name: "portgroup gone from the host", words: "does not see portgroup " + xvmsim.WestAppPortgroup,
			change: func() { _, err := west.SetPortgroupOnHost(xvmsim.WestHost1, xvmsim.WestAppPortgroup, false); must(err) },
			undo:   func() { _, err := west.SetPortgroupOnHost(xvmsim.WestHost1, xvmsim.WestAppPortgroup, true); must(err) }},
		{name: "datastore unmounted from the host", words: "does not mount datastore",
			change: func() { _, err := west.SetDatastoreMounted(xvmsim.WestHost1, xvmsim.WestGold, false); must(err) },
			undo:   func() { _, err := west.SetDatastoreMounted(xvmsim.WestHost1, xvmsim.WestGold, true); must(err) }},
		{name: "datastore inaccessible", words: "datastore " + xvmsim.WestGold + " is not accessible",
			change: func() { _, err := west.SetDatastoreAccessible(xvmsim.WestGold, false); must(err) },
			undo:   func() { _, err := west.SetDatastoreAccessible(xvmsim.WestGold, true); must(err) }},
		{name: "datastore full", words: "datastore " + xvmsim.WestGold + " has 0.0 GB free; the VM needs",
			change: func() { wasFree, err = west.SetDatastoreFreeSpace(xvmsim.WestGold, 1<<20); must(err) },
			undo:   func() { _, err := west.SetDatastoreFreeSpace(xvmsim.WestGold, wasFree); must(err) }},
		{name: "portgroup gone", words: "portgroup dvportgroup-9999 is gone",
			resolved: func() *move.Resolved { c := r.Clone(); c.NICs[0].Network.Value = "dvportgroup-9999"; return c }()},
		{name: "another host in maintenance", dropOtherHost: cp.OtherHosts[0],
			change: func() { waitTask(host(cp.OtherHosts[0]).EnterMaintenanceMode(ctx, 0, false, nil)) },
			undo:   func() { waitTask(host(cp.OtherHosts[0]).ExitMaintenanceMode(ctx, 0)) }},
	} {
		// One after the other: each changes the lab and puts it back.
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != nil {
				tc.change()
				defer tc.undo()
			}
			if tc.dropOtherHost != "" {
				q, err := m.Recheck(ctx, clusterSpec, vm, cr)
				if err != nil {
					t.Fatalf("a change to another host fails the recheck: %v", err)
				}
				if q.Host != cp.Host || slices.Contains(q.OtherHosts, tc.dropOtherHost) || len(q.OtherHosts) != len(cp.OtherHosts)-1 {
					t.Errorf("placed on %s then %v; want %s then %v without %s", q.Host, q.OtherHosts, cp.Host, cp.OtherHosts, tc.dropOtherHost)
				}
				return
			}
			v, res := vm, r
			if tc.vm.Ref != "" {
				v = tc.vm
			}
			if tc.resolved != nil {
				res = tc.resolved
			}
			q, err := m.Recheck(ctx, spec, v, res)
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("Recheck = %v, %v; want an error wrapping ErrChanged", q, err)
			}
			if q != nil || !strings.Contains(err.Error(), tc.words) {
				t.Errorf("Recheck = %v, %q; want no plan and an error saying %q", q, err, tc.words)
			}
		})
	}
	// Put back, the lab is as approved again.
	if _, err := m.Recheck(ctx, spec, vm, r); err != nil {
		t.Errorf("after every change was undone: %v", err)
	}
}

// BenchmarkRecheckOneVM is what a worker that cannot reuse a plan does before it starts
// an approved move instead of BenchmarkPlanOneVM's full pre-flight: the same VM and
// placement, rebuilt from the approval's resolution by reading the VM and the target's
// objects again.
//
//	go test -run '^$' -bench 'PlanOneVM|RecheckOneVM' ./vcenter
func BenchmarkRecheckOneVM(b *testing.B) {
	ctx := context.Background()
	m := benchLab(b)
	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Networks: []move.Network{{Target: "app-pg"}}, DiskFormat: move.Thin}}
	_, vm, r := resolvedOf(b, m, spec)
	for b.Loop() {
		if _, err := m.Recheck(ctx, spec, vm, r); err != nil {
			b.Fatal(err)
		}
	}
}
