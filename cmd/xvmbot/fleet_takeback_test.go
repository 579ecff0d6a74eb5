//go:build faults

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// A worker process on an external NATS, with no worker.name, SIGKILLed mid-wave and
// started again as before (same config, same ops address) is the same worker: it takes
// back at once the jobs its previous run left, instead of waiting out their ten-minute
// leases and ack wait.
func TestFaultWorkerKilledOnExternalNATSTakesBackItsJobs(t *testing.T) {
	t.Parallel() // mostly waiting on vCenter tasks; two at a time (-parallel = GOMAXPROCS)
	f := newFleet(t, fleetOpt{taskDuration: 3 * time.Second})
	slow := func(c map[string]any) {
		n := c["nats"].(map[string]any)
		n["ack_wait"], n["lease_ttl"] = "10m", "10m"
	}
	f.bot(slow)
	w := f.start("worker", "w1", func(c map[string]any) {
		slow(c)
		delete(c["worker"].(map[string]any), "name")
	})
	vms := []string{"web-01", "web-02", "web-03"}
	msg := f.request(uReq, "migrate "+strings.Join(vms, ",")+moveTo)
	f.click(uBoss, msg, "xvm_approve")
	f.awaitProgress("web-01", 10)
	w.kill()
	w.restart()

	// Far less than the ten minutes a lease or a delivery would otherwise wait.
	f.awaitFinal(msg.TS, approvals.StateSucceeded, 90*time.Second)
	f.checkMovedOnce("vc-east", "vc-west", vms...)
	if !strings.Contains(w.log(), "took back a job a previous run of this worker left") {
		t.Errorf("the restarted worker does not say it took its jobs back:\n%s", lastLines(w.log(), 40))
	}
}
