package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A move has one way back at a time (/xvm undo): its job records what stands for it, so
// that two undos of one move cannot both be asked for. While an undo is being planned
// (pre-flight can take a while) the job holds a reservation by the person who asked;
// once the undo request is stored, the job names that request. Either may lapse: a
// reservation after UndoReservationFor (its planner stopped), a request once it can no
// longer move the VM (rejected, expired, cancelled or failed).

// UndoReservationFor is how long a reservation of a way back holds without a request:
// as long as a pre-flight may take, not forever if the bot stopped in between.
const UndoReservationFor = 10 * time.Minute

// UndoRef is what stands for a move's way back on its job: nothing (the zero value), a
// reservation by a person while the undo is planned, or the undo request. It is stored
// as text: "", "reserved:<user>@<unix seconds>" or the request's id.
type UndoRef struct {
	Request string    // the undo request, once stored
	By      string    // who reserved the way back, while it is planned
	At      time.Time // when they did
}

const undoReservedPrefix = "reserved:"

// IsZero reports whether nothing stands for the way back.
func (u UndoRef) IsZero() bool { return u.Request == "" && u.By == "" }

// Reserved reports whether u is a reservation, not yet a request.
func (u UndoRef) Reserved() bool { return u.Request == "" && u.By != "" }

// String returns u as it is stored.
func (u UndoRef) String() string {
	switch {
	case u.Request != "":
		return u.Request
	case u.By != "":
		return fmt.Sprintf("%s%s@%d", undoReservedPrefix, u.By, u.At.Unix())
	}
	return ""
}

// MarshalText stores u as String writes it.
func (u UndoRef) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText reads what MarshalText wrote. A reservation whose time cannot be read is
// kept with a zero time, so it has lapsed: it must not hold a way back forever, nor make
// its record unreadable.
func (u *UndoRef) UnmarshalText(b []byte) error {
	s := string(b)
	rest, ok := strings.CutPrefix(s, undoReservedPrefix)
	if !ok {
		*u = UndoRef{Request: s}
		return nil
	}
	by, at, _ := strings.Cut(rest, "@")
	*u = UndoRef{By: by}
	if secs, err := strconv.ParseInt(at, 10, 64); err == nil {
		u.At = time.Unix(secs, 0)
	}
	return nil
}

// same reports whether u and v stand for the same thing, as stored.
func (u UndoRef) same(v UndoRef) bool { return u.String() == v.String() }

// Why a way back is not asked for.
var (
	// ErrNotMoved: the job did not move its VM, so there is nothing to take back.
	ErrNotMoved = errors.New("the job did not move its VM")
	// ErrNoOrigin: where the VM was before is not recorded, so the way back is unknown.
	ErrNoOrigin = errors.New("where the VM was before its move is not recorded")
	// ErrUndoTaken is wrapped by UndoTakenError.
	ErrUndoTaken = errors.New("the way back of this move is already asked for")
)

// UndoTakenError refuses a way back of a move that another undo may still take.
type UndoTakenError struct {
	Job string
	By  UndoRef // what holds the way back
}

// Error says which job's way back is held, and by what.
func (e *UndoTakenError) Error() string {
	return fmt.Sprintf("job %s: %s by %s", e.Job, ErrUndoTaken, e.By)
}

// Unwrap makes errors.Is(err, ErrUndoTaken) hold.
func (e *UndoTakenError) Unwrap() error { return ErrUndoTaken }

// Undoable says whether j's move may be taken back: nil, ErrNotMoved or ErrNoOrigin. A
// job with an origin moved its VM even if it failed or was marked cancelled after all
// (it landed elsewhere than approved): the way back is wanted then too.
func (j *Job) Undoable() error {
	switch {
	case j.State != StateSucceeded && j.Origin == nil:
		return fmt.Errorf("%s is %s: %w", j.ID, j.State, ErrNotMoved)
	case j.Origin == nil:
		return fmt.Errorf("%s: %w", j.ID, ErrNoOrigin)
	}
	return nil
}

// ReserveUndo reserves the way back of job jobID of request id for user, in one write of
// the record, so that two undos of one move cannot both be asked for. It returns the
// reservation, which the caller passes to ReleaseUndo if no undo request is stored in the
// end; an *UndoTakenError when another undo may still take the way back; ErrNotMoved or
// ErrNoOrigin when there is none.
func (s *Service) ReserveUndo(ctx context.Context, id, jobID, user string) (UndoRef, error) {
	mine := UndoRef{By: user, At: time.Unix(s.now().Unix(), 0)}
	_, err := s.update(ctx, id, func(r *Request) error {
		j := r.Job(jobID)
		if j == nil {
			return fmt.Errorf("request %s has no job %s", id, jobID)
		}
		if err := j.Undoable(); err != nil {
			return err
		}
		if !j.UndoneBy.IsZero() && s.undoHolds(ctx, j.UndoneBy) {
			return &UndoTakenError{Job: jobID, By: j.UndoneBy}
		}
		j.UndoneBy = mine
		return nil
	})
	if err != nil {
		return UndoRef{}, err
	}
	return mine, nil
}

// ReleaseUndo frees the way back of a job that mine reserved and no undo request took:
// if the job holds anything else by now, it is left alone.
func (s *Service) ReleaseUndo(ctx context.Context, id, jobID string, mine UndoRef) error {
	_, err := s.change(ctx, id, func(r *Request) (bool, error) {
		j := r.Job(jobID)
		if j == nil || !j.UndoneBy.same(mine) {
			return false, nil
		}
		j.UndoneBy = UndoRef{}
		return true, nil
	})
	if errors.Is(err, ErrUnchanged) {
		return nil
	}
	return err
}

// undoHolds reports whether u still holds a way back: a reservation younger than
// UndoReservationFor, or an undo request that may still move the VM (or did). A request
// gone from the store holds nothing.
func (s *Service) undoHolds(ctx context.Context, u UndoRef) bool {
	if u.Reserved() {
		return s.now().Sub(u.At) < UndoReservationFor
	}
	r, _, err := s.store.Get(ctx, u.Request)
	if err != nil {
		return false
	}
	switch r.State {
	case StateRejected, StateExpired, StateCancelled, StateFailed:
		return false
	}
	return true
}

// UndoTaken is a job of a request whose way back could not be reserved, and why.
type UndoTaken struct {
	Job, VM string
	By      UndoRef // what holds it
}

// ReserveRequestUndo reserves, in one write of request id's record, the way back of every
// job of it that moved its VM and whose way back nothing else holds (/xvm undo of a whole
// request). It returns the reservation and the jobs it holds, and the moved jobs whose way
// back another undo holds; jobs that moved nothing are left out. The caller passes the
// jobs whose undo request was not stored to ReleaseUndo.
func (s *Service) ReserveRequestUndo(ctx context.Context, id, user string) (mine UndoRef, reserved []string, taken []UndoTaken, err error) {
	mine = UndoRef{By: user, At: time.Unix(s.now().Unix(), 0)}
	_, err = s.update(ctx, id, func(r *Request) error {
		reserved, taken = nil, nil
		for i := range r.Jobs {
			j := &r.Jobs[i]
			if j.Undoable() != nil {
				continue
			}
			if !j.UndoneBy.IsZero() && s.undoHolds(ctx, j.UndoneBy) {
				taken = append(taken, UndoTaken{Job: j.ID, VM: j.VM, By: j.UndoneBy})
				continue
			}
			j.UndoneBy = mine
			reserved = append(reserved, j.ID)
		}
		if len(reserved) == 0 {
			return ErrUnchanged
		}
		return nil
	})
	if errors.Is(err, ErrUnchanged) {
		err = nil
	}
	if err != nil {
		return UndoRef{}, nil, nil, err
	}
	return mine, reserved, taken, nil
}

// recordUndo names the stored undo request r on each job whose way back it asks for (the
// job UndoOf names, or, when UndoOf names a whole request, its jobs that move r's VMs),
// replacing a reservation; a job another undo request holds by now is left alone.
func (s *Service) recordUndo(ctx context.Context, r *Request) error {
	whole := RequestIDOf(r.UndoOf) == r.UndoOf
	_, err := s.change(ctx, RequestIDOf(r.UndoOf), func(o *Request) (bool, error) {
		var jobs []*Job
		if whole {
			for i := range o.Jobs {
				if slices.Contains(r.VMs, o.Jobs[i].VM) {
					jobs = append(jobs, &o.Jobs[i])
				}
			}
		} else if j := o.Job(r.UndoOf); j != nil {
			jobs = append(jobs, j)
		} else {
			return false, fmt.Errorf("request %s has no job %s", o.ID, r.UndoOf)
		}
		changed := false
		for _, j := range jobs {
			if !j.UndoneBy.IsZero() && !j.UndoneBy.Reserved() {
				continue // someone else's by now
			}
			j.UndoneBy, changed = UndoRef{Request: r.ID}, true
		}
		return changed, nil
	})
	if errors.Is(err, ErrUnchanged) {
		return nil
	}
	return err
}
