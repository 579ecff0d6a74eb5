package vcenter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// bulkVMs is how many small VMs the lab of these tests adds to vc-east (bulk-0001, …).
const bulkVMs = 24

// bulkSpec moves the first n bulk VMs onto west-prod, ds-gold, app-pg.
func bulkSpec(n int) MoveSpec {
	s := MoveSpec{Source: xvmsim.EastVC, Target: xvmsim.WestVC,
		Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
	for i := 1; i <= n; i++ {
		s.VMs = append(s.VMs, fmt.Sprintf("bulk-%04d", i))
	}
	return s
}

func requests(lab *xvmsim.Lab) int64 {
	return lab.VC(xvmsim.EastVC).Requests() + lab.VC(xvmsim.WestVC).Requests()
}

// TestBulkPlan covers what a pre-flight of many VMs costs and says, on one lab.
func TestBulkPlan(t *testing.T) {
	t.Parallel()
	lab, m, reg := startLab(t, xvmsim.WithExtraVMs(bulkVMs))
	ctx := context.Background()
	if _, err := m.Plan(ctx, bulkSpec(1)); err != nil { // sessions made, VM list cached
		t.Fatal(err)
	}

	// Each VM more costs vCenter's compatibility check of it, one request, and nothing
	// else; a check awaited alone cost six.
	t.Run("each VM more costs one request", func(t *testing.T) {
		cost := func(n int) int64 {
			before := requests(lab)
			p, err := m.Plan(ctx, bulkSpec(n))
			if err != nil || p.Blocked() || len(p.VMs) != n {
				t.Fatalf("plan of %d VMs: %v, %+v", n, err, p)
			}
			return requests(lab) - before
		}
		one, all := cost(1), cost(bulkVMs)
		if perVM := float64(all-one) / (bulkVMs - 1); perVM > 1.2 {
			t.Errorf("a plan of 1 VM took %d requests, of %d VMs %d: %.1f more per VM, want at most 1.2", one, bulkVMs, all, perVM)
		}
	})

	// The review of a big request says once what is true of each VM.
	t.Run("what is true of each VM is said once", func(t *testing.T) {
		p, err := m.Plan(ctx, bulkSpec(bulkVMs))
		if err != nil {
			t.Fatal(err)
		}
		var off []Finding
		for _, f := range p.Findings {
			if strings.Contains(f.Message, "is powered off and will be moved powered off") {
				off = append(off, f)
			}
		}
		want := fmt.Sprintf("bulk-0001 is powered off and will be moved powered off; the same for %d other VMs (bulk-0002, bulk-0003, bulk-0004 and %d more)", bulkVMs-1, bulkVMs-4)
		if len(off) != 1 || off[0].Message != want || off[0].VM != "" || off[0].Severity != OK {
			t.Errorf("powered-off findings = %+v, want one: %q", off, want)
		}
		if len(p.Findings) > 5 {
			t.Errorf("a plan of %d alike VMs has %d findings, want a few: %+v", bulkVMs, len(p.Findings), p.Findings)
		}
	})

	// Two identical pre-flights at once cost the vCenters one: the second waits for
	// the first one's resolution, and each caller gets a plan of its own.
	t.Run("identical plans in flight share one resolution", func(t *testing.T) {
		spec := bulkSpec(bulkVMs)
		before := requests(lab)
		if _, err := m.Plan(ctx, spec); err != nil {
			t.Fatal(err)
		}
		one := requests(lab) - before
		shared := coalesced(t, reg)

		release := lab.VC(xvmsim.EastVC).HoldRequests()
		defer release()
		before = requests(lab)
		plans := make([]*Plan, 2)
		var wg sync.WaitGroup
		for i := range plans {
			wg.Go(func() {
				p, err := m.Plan(ctx, spec)
				if err != nil {
					t.Error(err)
				}
				plans[i] = p
			})
		}
		// Both are in: one resolving (held by vc-east), the other waiting for it.
		deadline := time.Now().Add(30 * time.Second)
		for coalesced(t, reg) < shared+1 {
			if time.Now().After(deadline) {
				release()
				wg.Wait()
				t.Fatal("the second plan never joined the first")
			}
			time.Sleep(time.Millisecond)
		}
		release()
		wg.Wait()
		if t.Failed() {
			return
		}
		if n := requests(lab) - before; n > one {
			t.Errorf("two identical plans at once took %d requests, one alone %d", n, one)
		}
		if got := coalesced(t, reg); got != shared+1 {
			t.Errorf("xvm_preflight_coalesced_total = %v, want %v", got, shared+1)
		}
		a, b := plans[0], plans[1]
		if a == b || len(a.VMs) != bulkVMs || len(b.VMs) != bulkVMs || a.Host != b.Host {
			t.Fatalf("plans %p and %p: %d and %d VMs, hosts %s and %s", a, b, len(a.VMs), len(b.VMs), a.Host, b.Host)
		}
		a.VMs[0].NICs[0].Target = "changed by its caller"
		a.Findings = append(a.Findings[:0], Finding{Message: "changed by its caller"})
		if b.VMs[0].NICs[0].Target != xvmsim.WestAppPortgroup || b.Findings[0].Message == "changed by its caller" {
			t.Errorf("a change to one caller's plan shows in the other's: %+v", b.VMs[0].NICs)
		}
	})
}

// coalesced reads xvm_preflight_coalesced_total from reg.
func coalesced(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "xvm_preflight_coalesced_total" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no xvm_preflight_coalesced_total")
	return 0
}

// TestSummarize: findings that say the same of more than summarizeAbove VMs become one;
// blockers, and findings that only look alike, stay as they are.
func TestSummarize(t *testing.T) {
	t.Parallel()
	each := func(n int, sev Severity, vm func(int) string, msg func(vm string) string) []Finding {
		var out []Finding
		for i := 1; i <= n; i++ {
			out = append(out, Finding{Severity: sev, VM: vm(i), Message: msg(vm(i)), Hint: "hint for " + vm(i)})
		}
		return out
	}
	web := func(i int) string { return fmt.Sprintf("web-%02d", i) }
	snap := func(vm string) string { return vm + " has snapshots; they move with it" }
	for _, tc := range []struct {
		name string
		in   []Finding
		want []string // messages
	}{
		{"as many as the limit stay", each(summarizeAbove, Warning, web, snap), func() (out []string) {
			for i := 1; i <= summarizeAbove; i++ {
				out = append(out, snap(web(i)))
			}
			return out
		}()},
		{"one more become one", append([]Finding{{Severity: Warning, Message: "about the request"}}, each(summarizeAbove+1, Warning, web, snap)...),
			[]string{"about the request", "web-01 has snapshots; they move with it; the same for 10 other VMs (web-02, web-03, web-04 and 7 more)"}},
		{"blockers stay one per VM", each(summarizeAbove+1, Blocker, web, snap), func() (out []string) {
			for i := 1; i <= summarizeAbove+1; i++ {
				out = append(out, snap(web(i)))
			}
			return out
		}()},
		// VM "app" on portgroup app-pg, VM "web" on web-pg, …: alike only if the VM's
		// name were taken out of the portgroup's too.
		{"a name inside another name is not the VM's", each(summarizeAbove+1, OK, func(i int) string { return fmt.Sprintf("vm%d", i) },
			func(vm string) string {
				return "Network adapter 1 of " + vm + " stays on a portgroup named " + vm + "-pg"
			}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(tc.in)
			if tc.want == nil {
				if len(got) != len(tc.in) {
					t.Errorf("%d findings became %d: %+v", len(tc.in), len(got), got)
				}
				return
			}
			var msgs []string
			for _, f := range got {
				msgs = append(msgs, f.Message)
			}
			if !slices.Equal(msgs, tc.want) {
				t.Errorf("messages = %q\nwant %q", msgs, tc.want)
			}
		})
	}
}
