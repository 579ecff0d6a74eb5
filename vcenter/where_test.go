package vcenter

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

func TestWhere(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		vc, vm string
		want   Where
	}{
		{"vc-east", "web-01", Where{VCenter: "vc-east", Cluster: "east-prod", Pool: "apps", Datastore: "east-ds-01",
			Folder: "apps/web", Networks: []string{"east-app-pg"}, DiskFormat: move.Thick, PowerState: "poweredOn"}},
		{"vc-east", "db-01", Where{VCenter: "vc-east", Cluster: "east-prod", Pool: "Resources", Datastore: "east-ds-01",
			Folder: "apps/db", Networks: []string{"east-app-pg", "VM Network"}, DiskFormat: move.Thick, PowerState: "poweredOff"}},
		{"vc-west", "legacy-01", Where{VCenter: "vc-west", Cluster: "west-prod", Pool: "Resources", Datastore: "ds-gold",
			Folder: "legacy", Networks: []string{"app-pg"}, DiskFormat: move.Thin, PowerState: "poweredOn"}},
	}
	for _, tt := range tests {
		t.Run(tt.vm, func(t *testing.T) {
			got, err := m.Where(ctx, tt.vc, tt.vm)
			if err != nil {
				t.Fatal(err)
			}
			if got.Host == "" {
				t.Errorf("no host")
			}
			got.Host, got.Datastores = "", nil
			if got.VCenter != tt.want.VCenter || got.Cluster != tt.want.Cluster || got.Pool != tt.want.Pool ||
				got.Datastore != tt.want.Datastore || got.Folder != tt.want.Folder || !slices.Equal(got.Networks, tt.want.Networks) ||
				got.DiskFormat != tt.want.DiskFormat || got.PowerState != tt.want.PowerState {
				t.Errorf("Where = %+v\nwant    %+v", *got, tt.want)
			}
		})
	}
	if _, err := m.Where(ctx, "vc-east", "nope-99"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
}

// A VM found once is looked up again by its reference, not by listing every VM; a
// reference that now names nothing (the VM moved away) is looked up afresh.
func TestWhereRemembersTheVM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	east := lab.VC("vc-east")
	if _, err := m.Where(ctx, "vc-east", "web-02"); err != nil {
		t.Fatal(err)
	}
	before := east.Requests()
	w, err := m.Where(ctx, "vc-east", "web-02")
	if err != nil || w.Cluster != "east-prod" {
		t.Fatalf("Where: %+v, %v", w, err)
	}
	again := east.Requests() - before
	if _, err := m.ReadMetadata(ctx, "vc-east", "web-02"); err != nil {
		t.Fatal(err)
	}
	// The listing is a container view: create, retrieve, destroy. A remembered VM
	// costs one read of its name before the placement itself.
	m2, _ := newTestManager(t, labConfig(lab, "vc-east"), labConfig(lab, "vc-west"))
	before = east.Requests()
	if _, err := m2.Where(ctx, "vc-east", "web-02"); err != nil {
		t.Fatal(err)
	}
	fresh := east.Requests() - before
	if again >= fresh {
		t.Errorf("a second Where cost %d requests, a first one %d: the VM was not remembered", again, fresh)
	}

	spec := MoveSpec{VMs: []string{"web-02"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Networks: []move.Network{{Target: "app-pg"}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, p.Findings)
	}
	task, err := m.Start(ctx, p, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Watch(ctx, "vc-east", task, "web-02", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Where(ctx, "vc-east", "web-02"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Where in the source after the move: %v, want ErrNotFound", err)
	}
	if w, err := m.Where(ctx, "vc-west", "web-02"); err != nil || w.Cluster != "west-prod" {
		t.Errorf("Where in the target after the move: %+v, %v", w, err)
	}
}

// Where reads a VM's placement in a handful of round trips, not one per object: the VM,
// the names of what it sits in at once, the cluster with the next folder up, then one per
// further folder level (web-01 is in apps/web), after finding the VM by its reference.
//
// Not parallel: it counts vc-east's requests on the shared lab (shared_test.go).
func TestWhereReadsPlacementInFewRoundTrips(t *testing.T) {
	ctx := context.Background()
	lab, m, _ := sharedLab(t)
	east := lab.VC("vc-east")
	if _, err := m.Where(ctx, "vc-east", "web-01"); err != nil {
		t.Fatal(err)
	}
	before := east.Requests()
	w, err := m.Where(ctx, "vc-east", "web-01")
	if err != nil || w.Folder != "apps/web" || w.Cluster != "east-prod" || w.Host == "" || w.Pool != "apps" || len(w.Networks) != 1 || w.Networks[0] != "east-app-pg" {
		t.Fatalf("Where = %+v, %v", w, err)
	}
	if n := east.Requests() - before; n > 5 {
		t.Fatalf("Where took %d requests, want at most 5 (it took 10 reading each object alone)", n)
	}
}

// BenchmarkReadSource is what a worker reads of a VM's source for each move, the two
// reads side by side as it makes them: where the VM is (for undo, storage policies
// included) and its tags and custom attributes (for the copy after the move). The worker
// makes them while vCenter runs the task; until they are recorded, a worker killed whose
// move ends before another takes it over loses both.
//
//	go test -run '^$' -bench ReadSource ./vcenter
func BenchmarkReadSource(b *testing.B) {
	ctx := context.Background()
	m := benchLab(b)
	for b.Loop() {
		var (
			whereErr, metaErr error
			reading           sync.WaitGroup
		)
		reading.Go(func() { _, whereErr = m.Where(ctx, xvmsim.EastVC, "web-01") })
		reading.Go(func() { _, metaErr = m.ReadMetadata(ctx, xvmsim.EastVC, "web-01") })
		reading.Wait()
		if whereErr != nil || metaErr != nil {
			b.Fatal(whereErr, metaErr)
		}
	}
}
