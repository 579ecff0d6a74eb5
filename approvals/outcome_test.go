package approvals

import (
	"strings"
	"testing"
)

func TestCheckOutcome(t *testing.T) {
	t.Parallel()
	jobs := func(states ...State) []Job {
		var js []Job
		for i, s := range states {
			js = append(js, Job{ID: JobID("xvm-t", i), VM: "vm", State: s})
		}
		return js
	}
	for _, tt := range []struct {
		name  string
		r     Request
		want  State
		wrong string // part of the complaint; "" for none
	}{
		{"every VM moved", Request{State: StateSucceeded, Jobs: jobs(StateSucceeded, StateSucceeded)}, StateSucceeded, ""},
		{"a request said succeeded with a failed job", Request{State: StateSucceeded, Jobs: jobs(StateSucceeded, StateFailed)}, StateSucceeded, "is failed"},
		{"a failed request where a succeeded one was expected", Request{State: StateFailed, Jobs: jobs(StateSucceeded, StateFailed)}, StateSucceeded, "is failed, want succeeded"},
		{"failed with one failed job", Request{State: StateFailed, Jobs: jobs(StateSucceeded, StateFailed)}, StateFailed, ""},
		{"failed with a job still running", Request{State: StateFailed, Jobs: jobs(StateRunning, StateFailed)}, StateFailed, "still running"},
		{"failed with no failed job", Request{State: StateFailed, Jobs: jobs(StateSucceeded, StateCancelled)}, StateFailed, "no job failed"},
		{"rejected before any job", Request{State: StateRejected, Jobs: jobs("", "")}, StateRejected, ""},
		{"rejected with a job that ran", Request{State: StateRejected, Jobs: jobs("", StateSucceeded)}, StateRejected, "never ran"},
		{"still running", Request{State: StateRunning, Jobs: jobs(StateRunning)}, StateSucceeded, "is running, want succeeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.ID = "xvm-t"
			got := CheckOutcome(&tt.r, tt.want)
			switch {
			case tt.wrong == "" && got != "":
				t.Errorf("CheckOutcome = %q, want nothing wrong", got)
			case tt.wrong != "" && !strings.Contains(got, tt.wrong):
				t.Errorf("CheckOutcome = %q, want it to say %q", got, tt.wrong)
			}
		})
	}
}
