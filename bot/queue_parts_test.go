package bot

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
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
	_, keys := approvaltest.Key(1)
	for i, j := range jobs {
		var seal approvals.Seal
		if err := json.Unmarshal(j.Approval, &seal); err != nil {
			t.Fatalf("job %s: %v", j.ID, err)
		}
		g, err := keys.OpenGrant(&seal)
		if err != nil {
			t.Fatalf("job %s: its grant does not open: %v", j.ID, err)
		}
		if j.ID != approvals.JobID(r.ID, i) || j.VM != names[i] || g.VM.Job != j.ID || g.VM.Name != names[i] {
			t.Fatalf("job %d is %s for %s with the grant of %s (%s), want %s for %s",
				i, j.ID, j.VM, g.VM.Name, g.VM.Job, approvals.JobID(r.ID, i), names[i])
		}
	}
}
