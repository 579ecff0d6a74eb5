package vcenter

import (
	"context"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// A worker asks, before it reads vCenter to recheck a move, whether this process planned
// the move a moment ago: yes for any VM of that plan whatever other VMs are asked with
// it, and no for a VM the plan left out, another spec, or a plan older than asked for.
func TestPlannedRecentlyBeforeARecheck(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	spec := MoveSpec{VMs: []string{"web-01", "web-03"}, Target: "vc-west",
		Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", DiskFormat: move.Eager, Networks: []move.Network{{Target: "app-pg"}}}}
	if _, err := m.Plan(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	one := spec
	one.VMs = []string{"web-03"} // the job's VM alone, as a worker knows it before reading the request
	for _, tc := range []struct {
		name   string
		spec   MoveSpec
		vm     string
		maxAge time.Duration
		want   bool
	}{
		{"a VM of the plan", one, "web-03", time.Minute, true},
		{"the same, spec listing no VMs", MoveSpec{Target: spec.Target, Placement: spec.Placement}, "web-01", time.Minute, true},
		{"a VM the plan left out", one, "web-02", time.Minute, false},
		{"older than asked for", one, "web-03", 0, false},
		{"another datastore", MoveSpec{Target: spec.Target, Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-silver",
			DiskFormat: move.Eager, Networks: spec.Networks}}, "web-03", time.Minute, false},
	} {
		if got := m.PlannedRecently(tc.spec, tc.vm, tc.maxAge); got != tc.want {
			t.Errorf("%s: PlannedRecently = %v, want %v", tc.name, got, tc.want)
		}
	}
}
