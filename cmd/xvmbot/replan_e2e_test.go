package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// planAlways makes the worker's pre-flights good for no time, as on a worker in another
// process than the bot, or for an approval that comes after worker.plan_reuse.
func planAlways(c *config.Config) { c.Worker.PlanReuse = time.Nanosecond }

// A late approval (the worker cannot reuse the bot's plan) starts the move on the
// placement the approvers reviewed, rechecked against vCenter as it is now; when the
// reviewed host went into maintenance meanwhile, the move is planned from names again
// and goes to another host of the approved cluster, never to that one.
func TestLateApprovalMovesOntoTheReviewedPlacementOrPlansAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		maintenance bool
		counted     string
	}{
		{"unchanged", false, `xvm_worker_rechecks_total{result="used"} 1`},
		{"reviewed host in maintenance", true, `xvm_worker_rechecks_total{result="changed"} 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, planAlways)
			west := h.lab.VC(xvmsim.WestVC)
			// Only esx-w1 is powered on when the request is reviewed: the review places the VM there.
			for _, host := range []string{xvmsim.WestHost2, xvmsim.WestHost3} {
				if _, err := west.SetHostPowerState(host, types.HostSystemPowerStateStandBy); err != nil {
					t.Fatal(err)
				}
			}
			msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
			if review := h.ws.Plain(msg); !strings.Contains(review, xvmsim.WestHost1) {
				t.Fatalf("the review does not place web-01 on %s:\n%s", xvmsim.WestHost1, review)
			}
			for _, host := range []string{xvmsim.WestHost2, xvmsim.WestHost3} {
				if _, err := west.SetHostPowerState(host, types.HostSystemPowerStatePoweredOn); err != nil {
					t.Fatal(err)
				}
			}
			if tc.maintenance {
				c, err := west.Client(h.ctx)
				if err != nil {
					t.Fatal(err)
				}
				f := find.NewFinder(c.Client, true)
				dc, err := f.Datacenter(h.ctx, xvmsim.WestDatacenter)
				if err != nil {
					t.Fatal(err)
				}
				host, err := f.SetDatacenter(dc).HostSystem(h.ctx, xvmsim.WestHost1)
				if err != nil {
					t.Fatal(err)
				}
				task, err := host.EnterMaintenanceMode(h.ctx, 0, false, nil)
				if err == nil {
					err = task.Wait(h.ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			h.click(uBoss, msg, "xvm_approve")
			h.awaitEnd(msg.TS, approvals.StateSucceeded)
			p, err := west.FindVM(h.ctx, "web-01")
			if err != nil {
				t.Fatal(err)
			}
			if moved := p.Host != xvmsim.WestHost1; moved != tc.maintenance {
				t.Errorf("web-01 is on %s (reviewed %s, in maintenance since: %v)", p.Host, xvmsim.WestHost1, tc.maintenance)
			}
			if !h.metric(h.sys, tc.counted) {
				t.Errorf("/metrics does not say %s", tc.counted)
			}
		})
	}
}
