package approvals

import (
	"context"
	"errors"
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
// returns the request as stored and its state before the report. A report that changes
// nothing returns ErrUnchanged; one the record refuses (no such job, a transition it
// forbids) returns that error with the request as read, and redelivering it would not
// change that.
func (s *Service) ApplyReport(ctx context.Context, id string, rep Report) (r *Request, before State, err error) {
	r, err = s.change(ctx, id, func(r *Request) (bool, error) {
		before = r.State
		return r.ApplyReport(rep, s.now())
	})
	return r, before, err
}

// NoteJob records what a job of request id that has not started is waiting for.
func (s *Service) NoteJob(ctx context.Context, id, jobID, note string) (*Request, error) {
	return s.change(ctx, id, func(r *Request) (bool, error) { return r.NoteJob(jobID, note) })
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

// RecordJobMessage records where a job of request id is shown, unless the job already
// has a message (or does not exist: there is nothing to show it on).
func (s *Service) RecordJobMessage(ctx context.Context, id, jobID, msg string) (*Request, error) {
	return s.change(ctx, id, func(r *Request) (bool, error) {
		j := r.Job(jobID)
		if j == nil || j.ThreadTS != "" {
			return false, nil
		}
		j.ThreadTS = msg
		return true, nil
	})
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
