package worker

import (
	"slices"
	"testing"

	"github.com/xvmbot/xvmbot/events"
)

// The state machine covers every job state, ends only in the terminal ones, and lets
// every job that has not ended still end each way: moved, failed or cancelled.
func TestStateMachineCoversEveryState(t *testing.T) {
	t.Parallel()
	// What the job records in NATS hold: these strings never change.
	var stored []string
	for _, s := range events.JobStates() {
		stored = append(stored, string(s))
	}
	if want := []string{"queued", "preparing", "waiting", "running", "succeeded", "failed", "cancelled"}; !slices.Equal(stored, want) {
		t.Fatalf("job states %q, want %q", stored, want)
	}
	if len(transitions) != len(events.JobStates()) {
		t.Fatalf("the table has %d states, events.JobStates %d", len(transitions), len(events.JobStates()))
	}
	for _, s := range events.JobStates() {
		out, ok := transitions[s]
		if !ok {
			t.Errorf("state %s is not in the table", s)
			continue
		}
		if s.Terminal() != (len(out) == 0) {
			t.Errorf("state %s: terminal %v, but %d ways out", s, s.Terminal(), len(out))
		}
		for o, to := range out {
			if !slices.Contains(events.JobStates(), to) {
				t.Errorf("%s on %q goes to unknown state %q", s, o, to)
			}
		}
		if s.Terminal() {
			continue
		}
		for _, end := range []events.JobState{events.JobSucceeded, events.JobFailed, events.JobCancelled} {
			if !reaches(s, end) {
				t.Errorf("a job in state %s can never end %s", s, end)
			}
		}
	}
}

// reaches reports whether the table leads from one state to another.
func reaches(from, to events.JobState) bool {
	seen := map[events.JobState]bool{from: true}
	queue := []events.JobState{from}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if s == to {
			return true
		}
		for _, n := range transitions[s] {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	return false
}

func TestNextFollowsTheTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from    events.JobState
		o       outcome
		want    events.JobState
		illegal bool
	}{
		{"", claimed, events.JobPreparing, false}, // a record without a state is queued
		{events.JobQueued, claimed, events.JobPreparing, false},
		{events.JobWaiting, claimed, events.JobPreparing, false},
		{events.JobPreparing, slotsFull, events.JobWaiting, false},
		{events.JobPreparing, started, events.JobRunning, false},
		{events.JobRunning, nothingRuns, events.JobPreparing, false},
		{events.JobRunning, lostSight, events.JobRunning, false},
		{events.JobRunning, moved, events.JobSucceeded, false},
		{events.JobRunning, cancelled, events.JobCancelled, false},
		{events.JobQueued, started, events.JobQueued, true},      // nothing starts unclaimed
		{events.JobWaiting, moved, events.JobWaiting, true},      // a waiting job has no task
		{events.JobSucceeded, failed, events.JobSucceeded, true}, // an ended job stays ended
		{events.JobCancelled, claimed, events.JobCancelled, true},
	} {
		got, err := next(tc.from, tc.o)
		if got != tc.want || (err != nil) != tc.illegal {
			t.Errorf("next(%q, %q) = %s, %v; want %s (illegal %v)", tc.from, tc.o, got, err, tc.want, tc.illegal)
		}
	}
}
