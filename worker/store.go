package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// NATSRecords keeps job records in the bus's job-record bucket.
type NATSRecords struct{ Jobs *events.JobRecords }

// Load returns the record of a job.
func (n NATSRecords) Load(ctx context.Context, jobID string) (events.JobRecord, bool, error) {
	rec, _, err := n.Jobs.Get(ctx, jobID)
	if errors.Is(err, events.ErrJobNotFound) {
		return events.JobRecord{}, false, nil
	}
	if err != nil {
		return events.JobRecord{}, false, err
	}
	return *rec, true, nil
}

// Save creates or replaces the record. The first Create of a job is the claim: of two
// workers racing to start the same job, the loser gets ErrBusy.
func (n NATSRecords) Save(ctx context.Context, rec events.JobRecord) error {
	cur, rev, err := n.Jobs.Get(ctx, rec.JobID)
	if errors.Is(err, events.ErrJobNotFound) {
		want := merged(nil, rec, time.Now().UTC())
		_, err = n.Jobs.Create(ctx, &want)
		if errors.Is(err, events.ErrJobClaimed) {
			return fmt.Errorf("job %s: %w", rec.JobID, ErrBusy)
		}
		return err
	}
	if err != nil {
		return err
	}
	if err := saveOver(cur, rec); err != nil {
		return err
	}
	want := merged(cur, rec, time.Time{})
	_, err = n.Jobs.Update(ctx, &want, rev)
	if errors.Is(err, events.ErrJobConflict) {
		return fmt.Errorf("job %s: %w", rec.JobID, ErrBusy)
	}
	return err
}

// Create stores the first record of a job that had none when it was loaded: one write
// instead of Save's read and write. It fails with an error wrapping ErrBusy when a record
// exists after all (the caller then saves over it as Save does).
func (n NATSRecords) Create(ctx context.Context, rec events.JobRecord) error {
	want := merged(nil, rec, time.Now().UTC())
	_, err := n.Jobs.Create(ctx, &want)
	if errors.Is(err, events.ErrJobClaimed) {
		return fmt.Errorf("job %s: %w", rec.JobID, ErrBusy)
	}
	return err
}

// saveOver says whether rec may replace cur: nothing but a cancel replaces a cancelled
// record (the bot cancelled the job before it started).
func saveOver(cur *events.JobRecord, rec events.JobRecord) error {
	if cur.State == events.JobCancelled && rec.State != events.JobCancelled {
		return fmt.Errorf("job %s: %w", rec.JobID, ErrCancelled)
	}
	return nil
}

// merged is the record a Save stores over cur (nil: there is none; now is then its start):
// what the worker wrote, with the cancel request that may have arrived since it last read
// the record, and what only the record's creator sets.
func merged(cur *events.JobRecord, rec events.JobRecord, now time.Time) events.JobRecord {
	if cur == nil {
		rec.StartedAt = now
		return rec
	}
	rec.CancelRequested = cur.CancelRequested || rec.CancelRequested
	if cur.CancelledBy != "" {
		rec.CancelledBy = cur.CancelledBy
	}
	rec.StartedAt, rec.RequestID, rec.VM = cur.StartedAt, cur.RequestID, cur.VM
	return rec
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

// Held lists the leases of owners that start with ownerPrefix.
func (n NATSLocks) Held(ctx context.Context, ownerPrefix string) (map[string]string, error) {
	return n.Leases.Held(ctx, ownerPrefix)
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
	c, err := n.Slots.Acquire(ctx, holder, n.Limits.wants(fp))
	if errors.Is(err, events.ErrSlotsBusy) {
		return nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// wants are the slots a move of footprint fp takes under the limits: one on each host,
// datastore and vCenter it occupies, each resource once.
func (l Limits) wants(fp vcenter.Footprint) []events.Want {
	var wants []events.Want
	add := func(kind, key string, limit int) {
		if key != "" && limit > 0 {
			wants = append(wants, events.Want{Key: kind + "/" + key, Limit: limit})
		}
	}
	add("host", fp.SourceHost, l.PerHost)
	add("host", fp.TargetHost, l.PerHost)
	for _, ds := range fp.SourceDatastores {
		add("datastore", ds, l.PerDatastore)
	}
	add("datastore", fp.TargetDatastore, l.PerDatastore)
	for _, ds := range fp.TargetDiskDatastores {
		add("datastore", ds, l.PerDatastore)
	}
	add("vcenter", fp.SourceVCenter, l.PerVCenter)
	add("vcenter", fp.TargetVCenter, l.PerVCenter)
	return dedupe(wants)
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

// NATSRequests reads request records from the bus's request store (*events.RequestStore;
// any approvals.Store will do). From a store that keeps a request in parts (as
// *events.RequestStore does) it reads what one job needs, not the whole request: the
// head, the job, and the chunk of VMs that holds it.
type NATSRequests struct {
	Store interface {
		Get(ctx context.Context, id string) (*approvals.Request, uint64, error)
	}
}

// requestParts is a store that keeps a request in parts.
type requestParts interface {
	Head(ctx context.Context, id string) (*approvals.Request, uint64, error)
	Job(ctx context.Context, h *approvals.Request, i int) (*approvals.Job, error)
	VMChunk(ctx context.Context, id string, k int) ([]approvals.ApprovedVM, error)
}

var _ requestParts = (*events.RequestStore)(nil)

// Admission reads what admitting job jobID of request requestID needs.
func (n NATSRequests) Admission(ctx context.Context, requestID, jobID string) (approvals.Admission, error) {
	p, ok := n.Store.(requestParts)
	if !ok {
		r, _, err := n.Store.Get(ctx, requestID)
		if err != nil {
			return approvals.Admission{}, err
		}
		return approvals.Admission{Request: r, Job: r.Job(jobID)}, nil
	}
	h, _, err := p.Head(ctx, requestID)
	if err != nil {
		return approvals.Admission{}, err
	}
	adm := approvals.Admission{Request: h}
	if h.Tally == nil { // stored whole
		adm.Job = h.Job(jobID)
		return adm, nil
	}
	i, ok := approvals.JobIndex(requestID, jobID)
	if !ok || i >= h.Tally.Jobs {
		return adm, nil // no such job: refused
	}
	// The job and its chunk of VMs are two keys: read side by side.
	var g errgroup.Group
	g.Go(func() (err error) { adm.Job, err = p.Job(ctx, h, i); return err })
	g.Go(func() (err error) { adm.Chunk, err = p.VMChunk(ctx, requestID, i/approvals.VMsPerChunk); return err })
	err = g.Wait()
	return adm, err
}

// VMs returns the VMs of the request whose jobs have not started yet. A running move is
// left out: its disks are already being written to the target datastore, whose free
// space shows them, and counting them again could block the rest of the request. From a
// store that keeps a request in parts it reads the head's tally and the chunks of VMs
// (cached), not the jobs.
func (n NATSRequests) VMs(ctx context.Context, requestID string) ([]string, error) {
	var (
		r   *approvals.Request
		err error
	)
	if p, ok := n.Store.(requestParts); ok {
		if r, _, err = p.Head(ctx, requestID); err != nil {
			return nil, err
		}
		if r.Tally != nil {
			var out []string
			for _, i := range r.Tally.NotStarted() {
				vms, err := p.VMChunk(ctx, requestID, i/approvals.VMsPerChunk)
				if err != nil {
					return nil, err
				}
				if k := i % approvals.VMsPerChunk; k < len(vms) {
					out = append(out, vms[k].Name)
				}
			}
			return out, nil
		}
	} else if r, _, err = n.Store.Get(ctx, requestID); err != nil {
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
