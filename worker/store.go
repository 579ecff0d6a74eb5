package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
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
		TaskRef: rec.TaskRef, SourceVC: rec.SourceVC, Error: rec.Error, UpdatedAt: rec.UpdatedAt,
		CancelRequested: rec.CancelRequested, CancelledBy: rec.CancelledBy, Slots: rec.Slots, Move: rec.Move, Final: rec.Final}, true, nil
}

// Save creates or replaces the record. The first Create of a job is the claim: of two
// workers racing to start the same job, the loser gets ErrBusy.
func (n NATSRecords) Save(ctx context.Context, rec Record) error {
	want := &events.JobRecord{JobID: rec.JobID, State: events.JobState(rec.State), Worker: rec.Worker,
		Attempts: rec.Attempts, TaskRef: rec.TaskRef, SourceVC: rec.SourceVC, Error: rec.Error, Slots: rec.Slots, Move: rec.Move, Final: rec.Final}
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
	if cur.State == events.JobCancelled && rec.State != string(events.JobCancelled) {
		return fmt.Errorf("job %s: %w", rec.JobID, ErrCancelled)
	}
	// A cancel request may have arrived since the worker last read the record: keep it.
	want.CancelRequested = cur.CancelRequested || rec.CancelRequested
	want.CancelledBy = cur.CancelledBy
	if want.CancelledBy == "" {
		want.CancelledBy = rec.CancelledBy
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

// Limits are the concurrency limits per resource; zero means unlimited.
type Limits struct {
	PerHost      int
	PerDatastore int
	PerVCenter   int
}

// NATSSlots counts the limits' slots in the bus's slot bucket, across every worker.
type NATSSlots struct {
	Slots  *events.Slots
	Limits Limits
}

// Acquire takes a slot on each host, datastore and vCenter the move occupies.
func (n NATSSlots) Acquire(ctx context.Context, holder string, fp vcenter.Footprint) (Claim, error) {
	var wants []events.Want
	add := func(kind, key string, limit int) {
		if key != "" && limit > 0 {
			wants = append(wants, events.Want{Key: kind + "/" + key, Limit: limit})
		}
	}
	add("host", fp.SourceHost, n.Limits.PerHost)
	add("host", fp.TargetHost, n.Limits.PerHost)
	for _, ds := range fp.SourceDatastores {
		add("datastore", ds, n.Limits.PerDatastore)
	}
	add("datastore", fp.TargetDatastore, n.Limits.PerDatastore)
	for _, ds := range fp.TargetDiskDatastores {
		add("datastore", ds, n.Limits.PerDatastore)
	}
	add("vcenter", fp.SourceVCenter, n.Limits.PerVCenter)
	add("vcenter", fp.TargetVCenter, n.Limits.PerVCenter)
	c, err := n.Slots.Acquire(ctx, holder, dedupe(wants))
	if errors.Is(err, events.ErrSlotsBusy) {
		return nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Hold re-takes slots a crashed worker's relocation held.
func (n NATSSlots) Hold(ctx context.Context, holder string, keys []string) (Claim, error) {
	return n.Slots.Hold(ctx, holder, keys)
}

// dedupe drops repeated resources (a same-datastore source and target, say).
func dedupe(ws []events.Want) []events.Want {
	seen := map[string]bool{}
	out := ws[:0]
	for _, w := range ws {
		if !seen[w.Key] {
			seen[w.Key] = true
			out = append(out, w)
		}
	}
	return out
}

var (
	_ Records   = NATSRecords{}
	_ Locker    = NATSLocks{}
	_ Scheduler = NATSSlots{}
)

// NATSRequests reads request records from the bus's request store.
type NATSRequests struct{ Store *events.RequestStore }

// Request returns a request record.
func (n NATSRequests) Request(ctx context.Context, id string) (*approvals.Request, error) {
	r, _, err := n.Store.Get(ctx, id)
	return r, err
}

// VMs returns the VMs of the request whose jobs have not started yet. A running move is
// left out: its disks are already being written to the target datastore, whose free
// space shows them, and counting them again could block the rest of the request.
func (n NATSRequests) VMs(ctx context.Context, requestID string) ([]string, error) {
	r, _, err := n.Store.Get(ctx, requestID)
	if err != nil {
		return nil, err
	}
	if len(r.Jobs) == 0 {
		return r.VMs, nil
	}
	var out []string
	for _, j := range r.Jobs {
		if !j.State.Final() && j.State != approvals.StateRunning {
			out = append(out, j.VM)
		}
	}
	return out, nil
}
