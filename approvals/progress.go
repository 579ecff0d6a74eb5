package approvals

import (
	"context"
	"errors"
)

// ErrUnchanged is returned, with the request as stored, by a change the record already
// holds (a redelivered report, a message already recorded): nothing was written.
var ErrUnchanged = errors.New("the request already says so")

// ApplyReport applies a worker's report to request id (see Request.ApplyReport) and
// returns the request as stored and its state before the report. A report that changes
// nothing returns ErrUnchanged; one the record refuses (no such job, a transition it
// forbids) returns that error with the request as read, and redelivering it would not
// change that.
func (s *Service) ApplyReport(ctx context.Context, id string, rep Report) (r *Request, before State, err error) {
	r, err = s.update(ctx, id, func(r *Request) error {
		before = r.State
		changed, err := r.ApplyReport(rep, s.now())
		if err == nil && !changed {
			return ErrUnchanged
		}
		return err
	})
	return r, before, err
}

// NoteJob records what a job of request id that has not started is waiting for; a note
// it already has returns ErrUnchanged.
func (s *Service) NoteJob(ctx context.Context, id, jobID, note string) (*Request, error) {
	return s.update(ctx, id, func(r *Request) error {
		changed, err := r.NoteJob(jobID, note)
		if err == nil && !changed {
			return ErrUnchanged
		}
		return err
	})
}

// MarkQueued records that every job of approved request id was published. A request
// that is no longer approved (queued by another path, or running already) returns
// ErrUnchanged.
func (s *Service) MarkQueued(ctx context.Context, id string) (*Request, error) {
	return s.update(ctx, id, func(r *Request) error {
		if r.State != StateApproved {
			return ErrUnchanged
		}
		return r.MarkQueued(s.now())
	})
}

// RecordMessage records where request id is shown (the transport's id of its message),
// unless it already is: the first message recorded stays the request's. A request that
// has one returns ErrUnchanged and the request as stored.
func (s *Service) RecordMessage(ctx context.Context, id, msg string) (*Request, error) {
	return s.update(ctx, id, func(r *Request) error {
		if r.MessageTS != "" {
			return ErrUnchanged
		}
		r.MessageTS = msg
		return nil
	})
}

// RecordJobMessage records where a job of request id is shown, unless the job already
// has a message (ErrUnchanged) or does not exist (ErrUnchanged too: there is nothing to
// show it on).
func (s *Service) RecordJobMessage(ctx context.Context, id, jobID, msg string) (*Request, error) {
	return s.update(ctx, id, func(r *Request) error {
		if j := r.Job(jobID); j != nil && j.ThreadTS == "" {
			j.ThreadTS = msg
			return nil
		}
		return ErrUnchanged
	})
}

// FinalReplyPosted records that the requester was told how request id ended, so the
// reply is not posted again; a reply not due returns ErrUnchanged.
func (s *Service) FinalReplyPosted(ctx context.Context, id string) error {
	_, err := s.update(ctx, id, func(r *Request) error {
		if !r.FinalReplyDue {
			return ErrUnchanged
		}
		r.FinalReplyDue = false
		return nil
	})
	return err
}
