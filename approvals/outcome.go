package approvals

import (
	"fmt"
	"strings"
)

// CheckOutcome says what in r contradicts an ending in want, or "" when r ended so: the
// request is in state want, and its jobs agree with it (a succeeded request moved every
// VM; a failed one has a failed job and nothing still running; a request that never ran
// has no job that started). Tests and the demo use it to check what was stored, not
// only what a message says.
func CheckOutcome(r *Request, want State) string {
	var bad []string
	if r.State != want {
		bad = append(bad, fmt.Sprintf("request %s is %s, want %s", r.ID, r.State, want))
	}
	failed := 0
	for _, j := range r.Jobs {
		switch {
		case want == StateSucceeded && j.State != StateSucceeded:
			bad = append(bad, fmt.Sprintf("job %s (%s) is %s", j.ID, j.VM, j.State))
		case (want == StateFailed || want == StateCancelled) && !j.State.Final():
			bad = append(bad, fmt.Sprintf("job %s (%s) is still %s", j.ID, j.VM, j.State))
		case (want == StateRejected || want == StateExpired) && j.State != StatePending && j.State != StateQueued && j.State != "":
			bad = append(bad, fmt.Sprintf("job %s (%s) is %s in a request that never ran", j.ID, j.VM, j.State))
		}
		if j.State == StateFailed {
			failed++
		}
	}
	if want == StateFailed && failed == 0 {
		bad = append(bad, "no job failed")
	}
	return strings.Join(bad, "; ")
}
