package approvals

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// State is where a request (or one of its jobs) is in its life.
type State string

// The states. A request goes pending → approved | rejected | expired | cancelled;
// approved → queued → running → succeeded | failed | cancelled. A job goes
// queued → running → succeeded | failed | cancelled.
const (
	StatePending   State = "pending"
	StateApproved  State = "approved"
	StateRejected  State = "rejected"
	StateExpired   State = "expired"
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// Final reports whether nothing more will happen in this state.
func (s State) Final() bool {
	switch s {
	case StateRejected, StateExpired, StateSucceeded, StateFailed, StateCancelled:
		return true
	}
	return false
}

var transitions = map[State][]State{
	StatePending:  {StateApproved, StateRejected, StateExpired, StateCancelled},
	StateApproved: {StateQueued, StateCancelled},
	StateQueued:   {StateRunning, StateSucceeded, StateFailed, StateCancelled},
	StateRunning:  {StateSucceeded, StateFailed, StateCancelled},
}

// ErrTransition is returned for a state change the machine does not allow.
var ErrTransition = errors.New("state change not allowed")

// CanMove reports whether a request may go from one state to another.
func CanMove(from, to State) bool { return slices.Contains(transitions[from], to) }

func (r *Request) moveTo(to State, now time.Time) error {
	if !CanMove(r.State, to) {
		return fmt.Errorf("request %s is %s, cannot become %s: %w", r.ID, r.State, to, ErrTransition)
	}
	r.State = to
	if to.Final() {
		r.EndedAt = now
	}
	return nil
}

// MarkQueued records that every job has been published.
func (r *Request) MarkQueued(now time.Time) error {
	if err := r.moveTo(StateQueued, now); err != nil {
		return err
	}
	for i := range r.Jobs {
		if r.Jobs[i].State == "" {
			r.Jobs[i].State = StateQueued
		}
	}
	return nil
}

// moveTo moves a job to the state a worker reported. A report about a job that already
// ended changes nothing (events can be redelivered), but a success outranks a cancel mark.
func (j *Job) moveTo(state State, progress int, errMsg string, now time.Time) (changed bool, err error) {
	if j.State.Final() && (j.State != StateCancelled || state != StateSucceeded) {
		return false, nil
	}
	// (A job the request's cancel marked cancelled before its start was seen may still
	// have moved: vCenter refused the cancel, or the move was past the point of no
	// return. The VM's real fate wins: undo and the counts must know it moved.)
	before := *j
	if state != j.State {
		j.Note = "" // what it waited for, or what was said while it ran, is over
	}
	switch state {
	case StateRunning:
		if j.StartedAt.IsZero() {
			j.StartedAt = now
		}
		if progress > j.Progress {
			j.Progress = min(progress, 100)
		}
	case StateSucceeded:
		j.Progress = 100
		j.EndedAt = now
	case StateFailed, StateCancelled:
		j.Error = errMsg
		j.EndedAt = now
	case StateQueued:
		if j.State != "" && j.State != StateQueued {
			return false, nil // a late "queued" report must not move a started job back
		}
	default:
		return false, fmt.Errorf("job %s cannot become %s: %w", j.ID, state, ErrTransition)
	}
	j.State = state
	return *j != before, nil
}

// jobCounts are how many of a request's jobs are in the states that decide its own.
type jobCounts struct{ total, ended, failed, succeeded, running int }

func countsOf(jobs []Job) jobCounts {
	c := jobCounts{total: len(jobs)}
	for _, j := range jobs {
		switch {
		case j.State == StateRunning:
			c.running++
		case j.State.Final():
			c.ended++
		}
		switch j.State {
		case StateFailed:
			c.failed++
		case StateSucceeded:
			c.succeeded++
		}
	}
	return c
}

// settle derives the request's state from its jobs once it is executing.
func (r *Request) settle(now time.Time) {
	if r.Jobs == nil && r.Tally != nil {
		r.settleFrom(r.Tally.counts(), now)
		return
	}
	r.settleFrom(countsOf(r.Jobs), now)
}

// settleFrom derives the request's state from how many of its jobs are in which state.
func (r *Request) settleFrom(c jobCounts, now time.Time) {
	if r.State != StateQueued && r.State != StateRunning {
		return
	}
	switch {
	case c.ended == c.total && c.failed > 0:
		r.State, r.EndedAt = StateFailed, now
	case c.ended == c.total && c.succeeded > 0:
		r.State, r.EndedAt = StateSucceeded, now
	case c.ended == c.total:
		r.State, r.EndedAt = StateCancelled, now
	case c.running > 0 || c.ended > 0:
		r.State = StateRunning
	}
}
