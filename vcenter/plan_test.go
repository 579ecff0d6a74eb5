package vcenter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// twoStockVCs starts a source and a target stock simulator whose instance
// UUIDs differ, the target with a folder migrated/web.
func twoStockVCs(t *testing.T) (src, dst *stockVC, m *Manager) {
	t.Helper()
	src = startStockVC(t, "vc-a", "11111111-1111-1111-1111-111111111111")
	dst = startStockVC(t, "vc-b", "22222222-2222-2222-2222-222222222222")
	src.disconnectCDROMs(t)
	src.cfg.Home = true
	dst.mkdirs(t, "migrated", "web")
	m, _ = newTestManager(t, src.cfg, dst.cfg)
	return src, dst, m
}

func findingsOf(p *Plan, sev Severity) []string {
	var out []string
	for _, f := range p.Findings {
		if f.Severity == sev {
			out = append(out, f.Message)
		}
	}
	return out
}

func hasFinding(p *Plan, sev Severity, parts ...string) bool {
	for _, msg := range findingsOf(p, sev) {
		ok := true
		for _, part := range parts {
			ok = ok && strings.Contains(msg, part)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestPlanResolvesNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, m := sharedStockVCs(t)

	p, err := m.Plan(ctx, MoveSpec{VMs: []string{"DC0_H0_VM0", "DC0_C0_RP0_VM0"}, Source: "vc-a", Target: "vc-b", Placement: move.Placement{Cluster: "DC0_C0", Datastore: "LocalDS_0", Folder: "migrated/web", Networks: []move.Network{{Target: "DC0_DVPG0"}}, DiskFormat: move.Thin}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Fatalf("plan blocked: %v", findingsOf(p, Blocker))
	}
	if !strings.HasPrefix(p.Host, "DC0_C0_H") {
		t.Errorf("host %q is not a host of cluster DC0_C0", p.Host)
	}
	if p.Cluster != "DC0_C0" || p.Pool != "Resources" || p.Datastore != "LocalDS_0" || p.Folder != "migrated/web" {
		t.Errorf("resolved cluster=%q pool=%q datastore=%q folder=%q", p.Cluster, p.Pool, p.Datastore, p.Folder)
	}
	if p.Source.InstanceUUID != "11111111-1111-1111-1111-111111111111" || p.Target.InstanceUUID != "22222222-2222-2222-2222-222222222222" {
		t.Errorf("endpoints %+v %+v", p.Source, p.Target)
	}
	if len(p.VMs) != 2 || p.VMs[0].Name != "DC0_H0_VM0" {
		t.Fatalf("VMs %+v, want the request's order", p.VMs)
	}
	for _, v := range p.VMs {
		if len(v.NICs) == 0 || v.NICs[0].Target != "DC0_DVPG0" || v.NICs[0].MAC == "" || v.NICs[0].Network == "" {
			t.Errorf("vm %s NICs %+v, want each mapped to DC0_DVPG0", v.Name, v.NICs)
		}
		vp := p.vms[v.Name]
		if vp == nil || len(vp.disks) == 0 || len(vp.nics) != len(v.NICs) {
			t.Fatalf("vm %s not fully resolved: %+v", v.Name, vp)
		}
		if _, ok := vp.nics[0].backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo); !ok {
			t.Errorf("vm %s NIC backing %T, want a distributed port backing", v.Name, vp.nics[0].backing)
		}
	}
	// The same names exist in the stock target, elsewhere than migrated/web.
	if !hasFinding(p, Warning, "DC0_H0_VM0", "already exists elsewhere") {
		t.Errorf("no warning about the same name elsewhere: %+v", p.Findings)
	}
}

func TestPlanBlockers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dst, m := twoStockVCs(t)
	c, f := dst.client(t)
	h, err := f.HostSystem(ctx, "DC0_C0_H2")
	if err != nil {
		t.Fatal(err)
	}
	task, err := h.EnterMaintenanceMode(ctx, 0, false, nil)
	wait(t, task, err)
	_ = c

	base := MoveSpec{VMs: []string{"DC0_H0_VM0"}, Source: "vc-a", Target: "vc-b", Placement: move.Placement{Cluster: "DC0_C0", Datastore: "LocalDS_0", Folder: "migrated/web"}}
	tests := []struct {
		name  string
		edit  func(*MoveSpec)
		words []string // all in one blocker
	}{
		{"unknown vm", func(s *MoveSpec) { s.VMs = []string{"web-99"} }, []string{"VM web-99 not found in vc-a", "DC0_H0_VM0"}},
		{"unknown cluster", func(s *MoveSpec) { s.Cluster = "west-prod" }, []string{"cluster west-prod not found", "DC0_C0"}},
		{"unknown datastore", func(s *MoveSpec) { s.Datastore = "ds-gold" }, []string{"datastore ds-gold not found", "LocalDS_0"}},
		{"no datastore", func(s *MoveSpec) { s.Datastore = "" }, []string{"no datastore given", "LocalDS_0"}},
		{"unknown folder", func(s *MoveSpec) { s.Folder = "migrated/db" }, []string{"folder migrated/db not found", "web"}},
		{"unknown pool", func(s *MoveSpec) { s.Pool = "prod-pool" }, []string{"resource pool prod-pool not found"}},
		{"unknown portgroup", func(s *MoveSpec) { s.Networks = []move.Network{{Source: "DC0_DVPG0", Target: "app-pg"}} },
			[]string{"portgroup app-pg not found", "VM Network"}},
		{"unknown host", func(s *MoveSpec) { s.Host = "esx-9" }, []string{"host esx-9 not found", "DC0_C0_H0"}},
		{"host in maintenance", func(s *MoveSpec) { s.Host = "DC0_C0_H2" }, []string{"DC0_C0_H2 is in maintenance mode"}},
		{"no compute", func(s *MoveSpec) { s.Cluster = "" }, []string{"no cluster or host given", "DC0_C0"}},
		{"same vcenter", func(s *MoveSpec) { s.Target = "vc-a" }, []string{"source and target are both vc-a"}},
		{"bad disk format", func(s *MoveSpec) { s.DiskFormat = "sparse" }, []string{`unknown disk format "sparse"`}},
		{"bad priority", func(s *MoveSpec) { s.Priority = "urgent" }, []string{`unknown priority "urgent"`}},
		{"name collision", func(s *MoveSpec) { s.Folder = "" }, []string{"a VM named DC0_H0_VM0 already exists in vc-b folder"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := base
			tt.edit(&spec)
			p, err := m.Plan(ctx, spec)
			if err != nil {
				t.Fatalf("Plan: %v (user input must become findings, not errors)", err)
			}
			if !p.Blocked() || !hasFinding(p, Blocker, tt.words...) {
				t.Errorf("want a blocker saying %q, got %v", tt.words, findingsOf(p, Blocker))
			}
			if _, err := m.Start(ctx, p, spec.VMs[0]); err == nil {
				t.Errorf("Start on a blocked plan: %v, want a fault", err)
			} else {
				var f *Fault
				if !errors.As(err, &f) || f.Kind != KindBlocked || f.Retryable {
					t.Errorf("Start on a blocked plan: %#v, want a permanent PlanBlocked fault", err)
				}
			}
		})
	}
	// A host in maintenance is skipped when the cluster is named.
	p, err := m.Plan(ctx, base)
	if err != nil || p.Blocked() || p.Host == "DC0_C0_H2" || p.Host == "" {
		t.Errorf("cluster plan: host %q, err %v, blockers %v", p.Host, err, findingsOf(p, Blocker))
	}
}

// TestPlanCollisionInFolderWhateverTheOrder: vCenter refuses a VM whose name is taken in
// its folder, so a same-named VM there must block the plan even when a copy elsewhere in
// the target is listed before it; each folder is asked for in turn, so one of the two
// cases has the requested folder's copy second whatever order vCenter lists them in.
func TestPlanCollisionInFolderWhateverTheOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dst, m := twoStockVCs(t)
	// The stock target already has DC0_H0_VM0 at the VM folder root; a second one goes
	// into migrated/web.
	_, f := dst.client(t)
	web, err := f.Folder(ctx, "/DC0/vm/migrated/web")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := f.ResourcePool(ctx, "/DC0/host/DC0_C0/Resources")
	if err != nil {
		t.Fatal(err)
	}
	task, err := web.CreateVM(ctx, types.VirtualMachineConfigSpec{
		Name: "DC0_H0_VM0", GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
		Files: &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
	}, pool, nil)
	wait(t, task, err)

	for _, tt := range []struct{ folder, shown string }{{"", "/"}, {"migrated/web", "migrated/web"}} {
		t.Run("folder="+tt.shown, func(t *testing.T) {
			p, err := m.Plan(ctx, MoveSpec{VMs: []string{"DC0_H0_VM0"}, Source: "vc-a", Target: "vc-b", Placement: move.Placement{Cluster: "DC0_C0", Datastore: "LocalDS_0", Folder: tt.folder}})
			if err != nil {
				t.Fatal(err)
			}
			if !hasFinding(p, Blocker, "a VM named DC0_H0_VM0 already exists in vc-b folder "+tt.shown) {
				t.Errorf("want a blocker for the VM of the same name in folder %s, got blockers %v, warnings %v",
					tt.shown, findingsOf(p, Blocker), findingsOf(p, Warning))
			}
		})
	}
}

func TestPlanVMStateFindings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, _, m := twoStockVCs(t)
	_, f := src.client(t)
	off, err := f.VirtualMachine(ctx, "DC0_H0_VM1")
	if err != nil {
		t.Fatal(err)
	}
	task, err := off.PowerOff(ctx)
	wait(t, task, err)
	snap, err := f.VirtualMachine(ctx, "DC0_H0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	task, err = snap.CreateSnapshot(ctx, "before-upgrade", "", false, false)
	wait(t, task, err)

	p, err := m.Plan(ctx, MoveSpec{VMs: []string{"DC0_H0_VM0", "DC0_H0_VM1"}, Source: "vc-a", Target: "vc-b", Placement: move.Placement{Cluster: "DC0_C0", Datastore: "LocalDS_0", Folder: "migrated/web"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Fatalf("blocked: %v", findingsOf(p, Blocker))
	}
	if !hasFinding(p, OK, "DC0_H0_VM1 is powered off and will be moved powered off") {
		t.Errorf("no powered-off finding: %+v", p.Findings)
	}
	if !hasFinding(p, Warning, "DC0_H0_VM0 has snapshots") {
		t.Errorf("no snapshot warning: %+v", p.Findings)
	}
	if !hasFinding(p, OK, "stays on a portgroup named DC0_DVPG0") {
		t.Errorf("same-name network mapping not reported: %+v", p.Findings)
	}
}

func TestPlanUnknownVCenter(t *testing.T) {
	t.Parallel()
	_, _, m := sharedStockVCs(t)
	_, err := m.Plan(context.Background(), MoveSpec{VMs: []string{"x"}, Source: "vc-a", Target: "vc-nowhere"})
	if !errors.Is(err, ErrUnknownVCenter) || !strings.Contains(err.Error(), "vc-nowhere") {
		t.Fatalf("err %v, want ErrUnknownVCenter naming vc-nowhere", err)
	}
	if _, err := m.Locate(context.Background(), "vc-nowhere", "x"); !errors.Is(err, ErrUnknownVCenter) {
		t.Fatalf("Locate: %v", err)
	}
}

func TestLocate(t *testing.T) {
	t.Parallel()
	_, _, m := sharedStockVCs(t)
	for _, tt := range []struct {
		vc, vm string
		want   bool
	}{{"vc-a", "DC0_H0_VM0", true}, {"vc-b", "web-01", false}} {
		got, err := m.Locate(context.Background(), tt.vc, tt.vm)
		if err != nil || got != tt.want {
			t.Errorf("Locate(%s, %s) = %v, %v; want %v", tt.vc, tt.vm, got, err, tt.want)
		}
	}
}

// Many worker slots plan at once over shared sessions.
func TestPlanConcurrent(t *testing.T) {
	t.Parallel()
	_, _, m := sharedStockVCs(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := m.Plan(context.Background(), MoveSpec{VMs: []string{"DC0_H0_VM0"}, Source: "vc-a", Target: "vc-b", Placement: move.Placement{Cluster: "DC0_C0", Datastore: "LocalDS_0", Folder: "migrated/web"}})
			if err == nil && p.Blocked() {
				err = errors.New(strings.Join(findingsOf(p, Blocker), "; "))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
