package worker

import (
	"fmt"

	"github.com/xvmbot/xvmbot/events"
)

// outcome is what happened to a job that moves its record from one state to another.
type outcome string

const (
	// claimed: the job's approval holds and its record claims it; nothing runs yet.
	claimed outcome = "claimed"
	// slotsFull: every candidate host or datastore is full; the job goes back to the
	// queue before anything starts in vCenter.
	slotsFull outcome = "slots full"
	// started: vCenter accepted the relocation; its task runs.
	started outcome = "task started"
	// retried: an attempt failed with a fault worth retrying; the next delivery goes on
	// from where this one stood (following the task, if one runs).
	retried outcome = "retried"
	// lostSight: the task runs but could not be followed (vCenter unreachable); the next
	// delivery follows it again, without spending an attempt.
	lostSight outcome = "lost sight of the task"
	// nothingRuns: no task of the job runs (vCenter rolled a failed one back, or forgot
	// it and the VM has not moved); the next start is a new relocation.
	nothingRuns outcome = "nothing runs"
	// moved: the VM is in the target (verified, or not verifiable).
	moved outcome = "moved"
	// failed: the job ends without the move it was approved for.
	failed outcome = "failure"
	// cancelled: someone cancelled the job, and nothing runs any more.
	cancelled outcome = "cancel"
)

// transitions is the worker's state machine: from a state, on an outcome, to a state.
// A job with no record is queued; the terminal states have no way out: a terminal job
// delivered again only has its outcome announced again.
var transitions = map[events.JobState]map[outcome]events.JobState{
	events.JobQueued: {
		claimed:   events.JobPreparing,
		failed:    events.JobFailed, // refused after it could be claimed (approval expired, another VM)
		cancelled: events.JobCancelled,
	},
	events.JobWaiting: {
		claimed:   events.JobPreparing,
		failed:    events.JobFailed,
		cancelled: events.JobCancelled,
	},
	events.JobPreparing: {
		slotsFull:   events.JobWaiting,
		started:     events.JobRunning,
		retried:     events.JobPreparing,
		nothingRuns: events.JobPreparing,
		moved:       events.JobSucceeded, // a previous delivery's task moved it
		failed:      events.JobFailed,
		cancelled:   events.JobCancelled,
	},
	events.JobRunning: {
		retried:     events.JobRunning,
		lostSight:   events.JobRunning,
		nothingRuns: events.JobPreparing,
		moved:       events.JobSucceeded,
		failed:      events.JobFailed,
		cancelled:   events.JobCancelled,
	},
	events.JobSucceeded: {},
	events.JobFailed:    {},
	events.JobCancelled: {},
}

// next is the state a job in state from goes to on outcome o; an error names an
// outcome the state machine does not allow there (a bug of the worker).
func next(from events.JobState, o outcome) (events.JobState, error) {
	if from == "" {
		from = events.JobQueued // a record written before it had a state
	}
	to, ok := transitions[from][o]
	if !ok {
		return from, fmt.Errorf("job state machine: no transition from %s on %q", from, o)
	}
	return to, nil
}

// resumes reports whether a delivery of a job in state s must first look for what a
// previous delivery left running (its task, or the VM already moved) before it starts
// anything.
func resumes(s events.JobState) bool {
	return s == events.JobPreparing || s == events.JobRunning
}
