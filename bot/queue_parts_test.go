package bot

import (
	"fmt"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
)

// An approved request of more VMs than queue signs at a time (queuePart) is queued whole:
// every VM once, in the request's order, each job with the grant of its own VM, across
// the parts' edges.
func TestApprovedRequestIsQueuedWholeAcrossParts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 2*queuePart + 50
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("bulk-%04d", i+1))
	}
	e.planner.matches = map[string][]string{"bulk-*": names}
	r, msg := e.submit("migrate bulk-* to vc-west")
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	jobs := e.jobs.published()
	if len(jobs) != n {
		t.Fatalf("%d jobs published for %d approved VMs", len(jobs), n)
	}
	for i, j := range jobs {
		g := grantOf(t, j)
		if j.ID != approvals.JobID(r.ID, i) || j.VM != names[i] || g.VM.Job != j.ID || g.VM.Name != names[i] {
			t.Fatalf("job %d is %s for %s with the grant of %s (%s), want %s for %s",
				i, j.ID, j.VM, g.VM.Name, g.VM.Job, approvals.JobID(r.ID, i), names[i])
		}
	}
}
