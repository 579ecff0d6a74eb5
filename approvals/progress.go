package approvals

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnchanged is returned, with the request as stored, by a change the record already
// holds (a redelivered report, a message already recorded): nothing was written.
var ErrUnchanged = errors.New("the request already says so")

// change is update for a rule that may find nothing to do: fn reports whether it changed
// r, and if it did not, nothing is written and ErrUnchanged is returned.
func (s *Service) change(ctx context.Context, id string, fn func(r *Request) (bool, error)) (*Request, error) {
	return s.update(ctx, id, func(r *Request) error {
		changed, err := fn(r)
		if err == nil && !changed {
			return ErrUnchanged
		}
		return err
	})
}

// ApplyReport applies a worker's report to request id (see Request.ApplyReport) and
// returns the request and the job as stored, and the request's state before the report.
// Where the store keeps jobs apart (JobStore) the request is returned without its jobs
// (Jobs nil, Tally set): the report read and wrote only its job and, when the job started
// or ended, the request's head. A report that changes nothing returns ErrUnchanged; one
// the record refuses (no such job, a transition it forbids) returns that error with the
// request as read, and redelivering it would not change that.
func (s *Service) ApplyReport(ctx context.Context, id string, rep Report) (r *Request, j *Job, before State, err error) {
	now := s.now()
	return s.changeJob(ctx, id, rep.Job,
		func(j *Job) (bool, error) { return j.ApplyReport(rep, now) },
		func(r *Request) (bool, error) { return r.ApplyReport(rep, now) })
}

// NoteJob records what a job of request id that has not started is waiting for; it
// returns the request and the job as ApplyReport does.
func (s *Service) NoteJob(ctx context.Context, id, jobID, note string) (*Request, *Job, error) {
	r, j, _, err := s.changeJob(ctx, id, jobID,
		func(j *Job) (bool, error) { return j.NoteWaiting(note), nil },
		func(r *Request) (bool, error) { return r.NoteJob(jobID, note) })
	return r, j, err
}

// changeJob applies a change of one job of request id: job to the job alone where the
// store keeps jobs apart, whole to the whole request otherwise (a store that does not, or
// a request stored before it did). Either reports whether it changed anything; nothing
// changed is ErrUnchanged.
func (s *Service) changeJob(ctx context.Context, id, jobID string, job func(j *Job) (bool, error), whole func(r *Request) (bool, error)) (*Request, *Job, State, error) {
	if js, ok := s.store.(JobStore); ok {
		h, rev, err := js.Head(ctx, id)
		if err != nil {
			return nil, nil, "", err
		}
		if h.Tally != nil {
			return s.changeJobApart(ctx, js, h, rev, jobID, job)
		}
	}
	var before State
	r, err := s.change(ctx, id, func(r *Request) (bool, error) {
		before = r.State
		return whole(r)
	})
	var j *Job
	if r != nil {
		j = r.Job(jobID)
	}
	return r, j, before, err
}

// changeJobApart is changeJob on a store that keeps jobs apart, from the request's head h
// at revision rev: the job is changed by compare-and-swap on its own key, then the head
// takes note of the job's state (Request.NoteJobState) when that tells it something new,
// by compare-and-swap on the head. The head's note is made even when the job did not
// change, so that a report redelivered after a crash between the two writes completes it.
func (s *Service) changeJobApart(ctx context.Context, js JobStore, h *Request, rev uint64, jobID string, change func(j *Job) (bool, error)) (*Request, *Job, State, error) {
	i, ok := JobIndex(h.ID, jobID)
	if !ok || i >= h.Tally.Jobs {
		return h, nil, h.State, fmt.Errorf("request %s has no job %s", h.ID, jobID)
	}
	var (
		j       *Job
		changed bool
		err     error
	)
	for attempt := 0; ; attempt++ {
		if j, err = js.Job(ctx, h, i); err != nil {
			return nil, nil, "", err
		}
		if changed, err = change(j); err != nil {
			return h, j, h.State, err
		}
		if !changed {
			break
		}
		jrev, err := js.UpdateJob(ctx, h.ID, i, j)
		if err == nil {
			j.Rev = jrev
			break
		}
		if !errors.Is(err, ErrConflict) || attempt > 1000 {
			return nil, nil, "", fmt.Errorf("update job %s: %w", jobID, err)
		}
		if h, rev, err = js.Head(ctx, h.ID); err != nil { // a new job's first state comes from it
			return nil, nil, "", err
		}
	}
	before := h.State
	for attempt := 0; ; attempt++ {
		was := h.State
		noted, err := h.NoteJobState(i, *j, s.now())
		if err != nil {
			return h, j, before, err
		}
		if !noted {
			break
		}
		if _, err := js.UpdateHead(ctx, h, rev); err == nil {
			before, changed = was, true
			break
		} else if !errors.Is(err, ErrConflict) || attempt > 1000 {
			return nil, nil, "", fmt.Errorf("update request %s: %w", h.ID, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, "", err
		}
		if h, rev, err = js.Head(ctx, h.ID); err != nil {
			return nil, nil, "", err
		}
		before = h.State
	}
	if !changed {
		return h, j, before, ErrUnchanged
	}
	return h, j, before, nil
}

// MarkQueued records that every job of approved request id was published; a request no
// longer approved (queued by another path, or running already) is left as it is.
func (s *Service) MarkQueued(ctx context.Context, id string) (*Request, error) {
	return s.change(ctx, id, func(r *Request) (bool, error) {
		if r.State != StateApproved {
			return false, nil
		}
		return true, r.MarkQueued(s.now())
	})
}

// RecordMessage records where request id is shown (the transport's id of its message).
// The first message recorded stays the request's.
func (s *Service) RecordMessage(ctx context.Context, id, msg string) (*Request, error) {
	return s.change(ctx, id, func(r *Request) (bool, error) {
		if r.MessageTS != "" {
			return false, nil
		}
		r.MessageTS = msg
		return true, nil
	})
}

// TakePost makes queue (a bot's instance name) the one that posts request id's approval
// message, unless it has one or has ended; ErrUnchanged then, or if queue has it already.
// Only one caller wins it (the write is compare-and-swap).
func (s *Service) TakePost(ctx context.Context, id, queue string) (*Request, error) {
	return s.change(ctx, id, func(r *Request) (bool, error) {
		if r.MessageTS != "" || r.State.Final() || r.PostQueue == queue {
			return false, nil
		}
		r.PostQueue = queue
		return true, nil
	})
}

// RecordJobMessage records where a job of request id is shown, unless the job already
// has a message (or does not exist: there is nothing to show it on). It returns the
// request and the job as ApplyReport does.
func (s *Service) RecordJobMessage(ctx context.Context, id, jobID, msg string) (*Request, *Job, error) {
	show := func(j *Job) (bool, error) {
		if j == nil || j.ThreadTS != "" {
			return false, nil
		}
		j.ThreadTS = msg
		return true, nil
	}
	r, j, _, err := s.changeJob(ctx, id, jobID, show,
		func(r *Request) (bool, error) { return show(r.Job(jobID)) })
	if err != nil && !errors.Is(err, ErrUnchanged) && r != nil && j == nil {
		err = ErrUnchanged // no such job: nothing to show it on
	}
	return r, j, err
}

// RecordTable records msg as where the progress table of request id is shown, unless one
// is recorded already (the first posted stays).
func (s *Service) RecordTable(ctx context.Context, id, msg string) (*Request, error) {
	return s.change(ctx, id, func(r *Request) (bool, error) {
		if r.TableTS != "" {
			return false, nil
		}
		r.TableTS = msg
		return true, nil
	})
}

// FinalReplyPosted records that the requester was told how request id ended, so the
// reply is not posted again.
func (s *Service) FinalReplyPosted(ctx context.Context, id string) error {
	_, err := s.change(ctx, id, func(r *Request) (bool, error) {
		due := r.FinalReplyDue
		r.FinalReplyDue = false
		return due, nil
	})
	return err
}

// CatchUp brings r, request h.ID as read whole earlier, up to what is stored now, given
// h, its head as read since: r takes h's account of the request itself (Request.Refresh)
// and reads again, one by one, only the jobs whose state h's tally says r has behind
// (Request.Behind): the jobs reported since in another process. So a copy of a large
// request kept in memory stays right at the cost of what changed, not of its size. If
// more than most jobs are behind, or the store does not keep jobs apart, nothing is read
// or changed and CatchUp reports false: reading the whole request again is then the way.
// A job's progress while it runs is not in the tally: r keeps what it knew of it.
func (s *Service) CatchUp(ctx context.Context, r, h *Request, most int) (bool, error) {
	js, ok := s.store.(JobStore)
	if !ok || h.Jobs != nil || h.Tally == nil || h.ID != r.ID || len(r.Jobs) != h.Tally.Jobs {
		return false, nil
	}
	behind := r.Behind(h.Tally)
	if len(behind) > most {
		return false, nil
	}
	jobs := make([]*Job, len(behind))
	for k, i := range behind {
		j, err := js.Job(ctx, h, i)
		if err != nil {
			return false, fmt.Errorf("catch up with request %s: %w", h.ID, err)
		}
		jobs[k] = j
	}
	r.Refresh(h)
	for k, i := range behind {
		r.Jobs[i] = *jobs[k]
	}
	return true, nil
}
