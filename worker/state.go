package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xvmbot/xvmbot/events"
)

// NATSRecords keeps job records in the bus's job-record bucket.
type NATSRecords struct{ Jobs *events.JobRecords }

// Load returns the record of a job.
func (n NATSRecords) Load(ctx context.Context, jobID string) (Record, bool, error) {
	rec, _, err := n.Jobs.Get(ctx, jobID)
	if errors.Is(err, events.ErrJobNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	return Record{JobID: rec.JobID, State: string(rec.State), Worker: rec.Worker, Attempts: rec.Attempts,
		TaskRef: rec.TaskRef, SourceVC: rec.SourceVC, Error: rec.Error, UpdatedAt: rec.UpdatedAt}, true, nil
}

// Save creates or replaces the record. The first Create of a job is the claim: of two
// workers racing to start the same job, the loser gets ErrBusy.
func (n NATSRecords) Save(ctx context.Context, rec Record) error {
	want := &events.JobRecord{JobID: rec.JobID, State: events.JobState(rec.State), Worker: rec.Worker,
		Attempts: rec.Attempts, TaskRef: rec.TaskRef, SourceVC: rec.SourceVC, Error: rec.Error}
	cur, rev, err := n.Jobs.Get(ctx, rec.JobID)
	if errors.Is(err, events.ErrJobNotFound) {
		want.StartedAt = time.Now().UTC()
		_, err = n.Jobs.Create(ctx, want)
		if errors.Is(err, events.ErrJobClaimed) {
			return fmt.Errorf("job %s: %w", rec.JobID, ErrBusy)
		}
		return err
	}
	if err != nil {
		return err
	}
	want.StartedAt, want.RequestID, want.VM = cur.StartedAt, cur.RequestID, cur.VM
	_, err = n.Jobs.Update(ctx, want, rev)
	if errors.Is(err, events.ErrJobConflict) {
		return fmt.Errorf("job %s: %w", rec.JobID, ErrBusy)
	}
	return err
}

// NATSLocks hands out per-VM leases from the bus's lease bucket.
type NATSLocks struct{ Leases *events.Leases }

// Lock takes the lease on key for owner.
func (n NATSLocks) Lock(ctx context.Context, key, owner string) (func(context.Context) error, func(context.Context) error, error) {
	l, err := n.Leases.Acquire(ctx, key, owner)
	if errors.Is(err, events.ErrLeaseHeld) {
		return nil, nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	if err != nil {
		return nil, nil, err
	}
	return l.Renew, l.Release, nil
}

var (
	_ Records = NATSRecords{}
	_ Locker  = NATSLocks{}
)
