package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A request that ended with failures may be asked again for its failed VMs ("Retry failed
// VMs"). The retry is a new request that needs its own approval: the request's approval
// lists its jobs, and a job that ended is over for every worker (its record says so), so
// no approval given before can start a move again. The retry asks for nothing wider than
// the request did: the same direction, vCenters and placement, and only the VMs that
// failed without moving. One retry at a time: the request's record names what stands for
// it, as a job names its way back (UndoRef: a reservation while the retry is planned, then
// the retry request).

// Why a retry is not asked for.
var (
	// ErrNothingToRetry: the request did not end with a VM that failed without moving.
	ErrNothingToRetry = errors.New("no VM of the request failed without moving")
	// ErrRetryTaken is wrapped by RetryTakenError.
	ErrRetryTaken = errors.New("a retry of the failed VMs is already asked for")
)

// RetryTakenError refuses a retry of a request another retry may still take.
type RetryTakenError struct {
	Request string
	By      UndoRef // what holds the retry
}

// Error says which request's retry is held, and by what.
func (e *RetryTakenError) Error() string {
	return fmt.Sprintf("request %s: %s by %s", e.Request, ErrRetryTaken, e.By)
}

// Unwrap makes errors.Is(err, ErrRetryTaken) hold.
func (e *RetryTakenError) Unwrap() error { return ErrRetryTaken }

// RetryVMs are the VMs a retry of r asks for: those whose job failed without moving them
// (a failed job with an origin moved its VM elsewhere than approved: that wants undo, not
// a second move). nil unless r ended as failed.
func (r *Request) RetryVMs() []string {
	if r.State != StateFailed {
		return nil
	}
	var out []string
	for _, j := range r.Jobs {
		if j.State == StateFailed && j.Origin == nil {
			out = append(out, j.VM)
		}
	}
	return out
}

// ReserveRetry reserves the retry of request id's failed VMs for user, in one write of its
// record. It returns the reservation, which the caller passes to ReleaseRetry if no retry
// request is stored in the end; ErrNothingToRetry, or a *RetryTakenError while another
// retry may still take them.
func (s *Service) ReserveRetry(ctx context.Context, id, user string) (UndoRef, error) {
	mine := UndoRef{By: user, At: time.Unix(s.now().Unix(), 0)}
	_, err := s.update(ctx, id, func(r *Request) error {
		if len(r.RetryVMs()) == 0 {
			return fmt.Errorf("%s is %s: %w", r.ID, r.State, ErrNothingToRetry)
		}
		if !r.RetriedBy.IsZero() && s.undoHolds(ctx, r.RetriedBy) {
			return &RetryTakenError{Request: r.ID, By: r.RetriedBy}
		}
		r.RetriedBy = mine
		return nil
	})
	if err != nil {
		return UndoRef{}, err
	}
	return mine, nil
}

// ReleaseRetry frees the retry of a request that mine reserved and no retry request took.
func (s *Service) ReleaseRetry(ctx context.Context, id string, mine UndoRef) error {
	_, err := s.change(ctx, id, func(r *Request) (bool, error) {
		if !r.RetriedBy.same(mine) {
			return false, nil
		}
		r.RetriedBy = UndoRef{}
		return true, nil
	})
	if errors.Is(err, ErrUnchanged) {
		return nil
	}
	return err
}

// recordRetry names the stored retry request r on the request it retries, replacing a
// reservation; a request another retry holds by now is left alone.
func (s *Service) recordRetry(ctx context.Context, r *Request) error {
	_, err := s.change(ctx, r.RetryOf, func(o *Request) (bool, error) {
		if !o.RetriedBy.IsZero() && !o.RetriedBy.Reserved() {
			return false, nil
		}
		o.RetriedBy = UndoRef{Request: r.ID}
		return true, nil
	})
	if errors.Is(err, ErrUnchanged) {
		return nil
	}
	return err
}
