package approvals

import (
	"fmt"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// Report is what a worker said about one job, as the request record takes it: whatever
// carried it (an event on the bus) is the transport's business. Reports are delivered at
// least once and may arrive late; ApplyReport makes that harmless.
type Report struct {
	Job   string // the job's id
	State State  // StateRunning, StateSucceeded, StateFailed or StateCancelled
	// Started marks a job that (re)started: what was said while it ran before is over.
	Started  bool
	Progress int // percent done, while running
	// Note is what the worker says while the job runs (a retry, a cancel vCenter
	// refused); it stays on the job until the next start or the end. "" keeps the last.
	Note string
	// Error is what a failure or a cancellation says, in plain words.
	Error string
	// Fault says where a failure happened and which fault it was; Hint what to check;
	// Detail the raw error behind Error, when it says more (for /xvm status).
	Fault, Hint, Detail string
	// Warning is what a succeeded move still wants someone to look at.
	Warning string
	// Origin is where the VM was before it moved, if it moved.
	Origin *move.Origin
	// Task is the vCenter task that moves the VM ("" keeps the last).
	Task string
	// Shown is the transport's id of a message it posted to show this job before the
	// report was stored ("" if none): stored in the same write, unless the job has one.
	Shown string
}

// ApplyReport applies what a worker reported about one job: the job's state, progress,
// note and outcome, the request's state derived from its jobs, and FinalReplyDue when
// this report ends the request. It reports whether anything changed: a report applied
// before (a redelivery) or one about a job that already ended changes nothing, except
// that a success outranks a cancel mark and an origin is always kept (a move that ended
// otherwise than planned may still have moved the VM, and undo must be able to take it
// back).
func (r *Request) ApplyReport(rep Report, now time.Time) (changed bool, err error) {
	before := r.State
	if r.State == StateApproved {
		// The jobs evidently went out before the queued mark was stored.
		if err := r.MarkQueued(now); err != nil {
			return false, err
		}
	}
	j := r.Job(rep.Job)
	if j == nil {
		return false, fmt.Errorf("request %s has no job %s", r.ID, rep.Job)
	}
	if changed, err = j.apply(rep, now); err != nil || !changed {
		return false, err
	}
	r.settle(now)
	r.noteEnd(before)
	return true, nil
}

// NoteJobState is the part of a report that changes the request itself, for a request
// read without its jobs (a head, whose Tally stands for them): job number i is now as j
// says. It reports whether the request changed. Noting a job again changes nothing, so
// the caller may note a job whose own write is already stored (a redelivered report).
func (r *Request) NoteJobState(i int, j Job, now time.Time) (changed bool, err error) {
	if r.Tally == nil {
		return false, fmt.Errorf("request %s was read with its jobs, not with a tally of them", r.ID)
	}
	before := r.State
	if !r.Tally.Note(i, j.State) && (r.State != StateApproved || j.State == StateQueued) {
		return false, nil
	}
	if r.State == StateApproved {
		if err := r.moveTo(StateQueued, now); err != nil {
			return false, err
		}
	}
	r.settle(now)
	r.noteEnd(before)
	return true, nil
}

// noteEnd sets FinalReplyDue when a report ended the request (it was in state before).
func (r *Request) noteEnd(before State) {
	if r.State.Final() && !before.Final() {
		r.FinalReplyDue = true
	}
}

// ApplyReport applies the part of a report that is about the job itself (see
// Request.ApplyReport) and reports whether the job changed.
func (j *Job) ApplyReport(rep Report, now time.Time) (changed bool, err error) {
	return j.apply(rep, now)
}

func (j *Job) apply(rep Report, now time.Time) (changed bool, err error) {
	changed, err = j.moveTo(rep.State, rep.Progress, rep.Error, now)
	if err != nil {
		return false, err
	}
	if rep.Shown != "" && j.ThreadTS == "" {
		j.ThreadTS, changed = rep.Shown, true
	}
	if j.State == StateRunning {
		note := j.Note
		switch {
		case rep.Started:
			note = ""
		case rep.Note != "":
			note = rep.Note
		}
		if note != j.Note {
			j.Note, changed = note, true
		}
	}
	if rep.Task != "" && rep.Task != j.Task {
		j.Task, changed = rep.Task, true
	}
	if rep.Origin != nil && j.Origin == nil {
		o := rep.Origin.Clone()
		j.Origin, changed = &o, true
	}
	if !changed {
		return false, nil
	}
	switch {
	case rep.State == StateFailed && j.State == StateFailed:
		j.Fault, j.Hint, j.Detail = rep.Fault, rep.Hint, rep.Detail
	case rep.State == StateSucceeded && j.State == StateSucceeded:
		j.Warning = rep.Warning
	}
	return true, nil
}

// NoteJob records what a job that has not started is waiting for (a change window, say).
func (r *Request) NoteJob(jobID, note string) (changed bool, err error) {
	j := r.Job(jobID)
	if j == nil {
		return false, fmt.Errorf("request %s has no job %s", r.ID, jobID)
	}
	return j.NoteWaiting(note), nil
}

// NoteWaiting records what j, if it has not started, is waiting for, and reports whether
// that changed j.
func (j *Job) NoteWaiting(note string) bool {
	if j.State.Final() || j.State == StateRunning || j.Note == note {
		return false
	}
	j.Note = note
	return true
}
