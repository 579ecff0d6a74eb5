package vcenter

import (
	"context"
	"errors"
	"testing"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// A bot at one site may move VMs between two other sites' vCenters: neither end of
// the move is home, and both directions work as they do from home, for the placement
// asked for and with the VM gone from where it was.
func TestMoveBetweenTwoRemoteVCenters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, err := xvmsim.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	home := startStockVC(t, "vc-home", "33333333-3333-3333-3333-333333333333")
	home.cfg.Home = true
	east, west := labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC)
	east.Home = false
	m, _ := newTestManager(t, home.cfg, east, west)
	if m.Home() != "vc-home" {
		t.Fatalf("home is %s, want vc-home", m.Home())
	}

	for _, tt := range []struct {
		name   string
		spec   MoveSpec
		wantOn string
		nic    string
	}{{
		name:   "web-01 from vc-east to vc-west",
		spec:   MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Pool: xvmsim.WestPool, Datastore: xvmsim.WestSilver, Folder: xvmsim.WestWebFolder, DiskFormat: move.Thin, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}},
		wantOn: "poweredOn", nic: xvmsim.WestAppPortgroup,
	}, {
		name:   "legacy-01 from vc-west to vc-east",
		spec:   MoveSpec{VMs: []string{"legacy-01"}, Source: xvmsim.WestVC, Target: xvmsim.EastVC, Placement: move.Placement{Cluster: xvmsim.EastCluster, Pool: xvmsim.EastPool, Datastore: xvmsim.EastDatastore2, Folder: xvmsim.EastWebFolder, Networks: []move.Network{{Source: xvmsim.WestAppPortgroup, Target: xvmsim.EastAppPortgroup}}}},
		wantOn: "poweredOn", nic: xvmsim.EastAppPortgroup,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			vm := tt.spec.VMs[0]
			src, dst := lab.VC(tt.spec.Source), lab.VC(tt.spec.Target)
			before, err := src.FindVM(ctx, vm)
			if err != nil {
				t.Fatal(err)
			}
			p, err := m.Plan(ctx, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if p.Blocked() {
				t.Fatalf("plan blocked: %v", findingsOf(p, Blocker))
			}
			if p.Source.Name != tt.spec.Source || p.Target.Name != tt.spec.Target || p.Source.Home || p.Target.Home {
				t.Errorf("endpoints %s (home %v) → %s (home %v), want %s → %s, neither home",
					p.Source.Name, p.Source.Home, p.Target.Name, p.Target.Home, tt.spec.Source, tt.spec.Target)
			}
			fp, err := m.Footprint(ctx, p, vm)
			if err != nil {
				t.Fatal(err)
			}
			if fp.SourceVCenter != tt.spec.Source || fp.TargetVCenter != tt.spec.Target {
				t.Errorf("footprint charges %s → %s, want %s → %s", fp.SourceVCenter, fp.TargetVCenter, tt.spec.Source, tt.spec.Target)
			}

			if _, err := m.Relocate(ctx, p, vm, nil); err != nil {
				t.Fatalf("relocate: %v", err)
			}
			after, err := dst.FindVM(ctx, vm)
			if err != nil {
				t.Fatalf("%s not in %s after the move: %v", vm, dst.Name, err)
			}
			if after.Folder != tt.spec.Folder || after.Cluster != tt.spec.Cluster || after.Pool != tt.spec.Pool || after.Host != p.Host {
				t.Errorf("placed in folder %q cluster %q pool %q host %q, want %q %q %q %q", after.Folder, after.Cluster, after.Pool,
					after.Host, tt.spec.Folder, tt.spec.Cluster, tt.spec.Pool, p.Host)
			}
			for i, d := range after.Disks {
				if d.Datastore != tt.spec.Datastore {
					t.Errorf("disk %d on %s, want %s", i, d.Datastore, tt.spec.Datastore)
				}
			}
			if len(after.NICs) != 1 || after.NICs[0].Network != tt.nic || after.NICs[0].MAC != before.NICs[0].MAC {
				t.Errorf("NICs %+v, want one on %s with MAC %s", after.NICs, tt.nic, before.NICs[0].MAC)
			}
			if after.UUID != before.UUID || after.PowerState != tt.wantOn {
				t.Errorf("identity or power changed: before %+v, after %+v", before, after)
			}
			if _, err := src.FindVM(ctx, vm); !errors.Is(err, xvmsim.ErrNotFound) {
				t.Errorf("%s still in %s after the move (err %v)", vm, src.Name, err)
			}
			if found, err := m.Locate(ctx, tt.spec.Target, vm); err != nil || !found {
				t.Errorf("Locate in the target = %v, %v", found, err)
			}
			if found, err := m.Locate(ctx, tt.spec.Source, vm); err != nil || found {
				t.Errorf("Locate in the source = %v, %v", found, err)
			}
			if found, err := m.Locate(ctx, "vc-home", vm); err != nil || found {
				t.Errorf("Locate in the home vCenter = %v, %v", found, err)
			}
		})
	}
}
