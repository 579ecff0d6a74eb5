package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/move"
)

// JobState is where a job's execution stands. It is stored as its string in the job
// record; worker/state.go holds the transitions between the states.
type JobState string

// Job execution states.
const (
	// JobQueued: no worker has started the job (it has no record yet).
	JobQueued JobState = "queued"
	// JobPreparing: a worker claimed the job and plans it; no vCenter task runs yet.
	JobPreparing JobState = "preparing"
	// JobWaiting: its host or datastore was full, so it went back to the queue before
	// anything started in vCenter.
	JobWaiting   JobState = "waiting"
	JobRunning   JobState = "running" // its vCenter task runs (TaskRef says which)
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
	// JobCancelled: cancelled before it started, or its vCenter task was cancelled.
	JobCancelled JobState = "cancelled"
)

// JobStates lists every job state, in the order a job goes through them.
func JobStates() []JobState {
	return []JobState{JobQueued, JobPreparing, JobWaiting, JobRunning, JobSucceeded, JobFailed, JobCancelled}
}

// Terminal reports whether no more work will happen on the job.
func (s JobState) Terminal() bool { return s == JobSucceeded || s == JobFailed || s == JobCancelled }

// Job record errors; callers decide with errors.Is.
var (
	// ErrJobClaimed: Create found a record, i.e. some worker started this job before.
	// A redelivered job hits this; the worker then reads the record and re-attaches.
	ErrJobClaimed = errors.New("job already claimed")
	// ErrJobNotFound: no record for this job id.
	ErrJobNotFound = errors.New("job record not found")
	// ErrJobConflict: the record changed since it was read (another worker took over).
	ErrJobConflict = errors.New("job record changed concurrently")
)

// JobRecord is what a worker writes down about running one job, so that whoever gets the
// job next (after a crash or a shutdown) can re-attach to the vCenter task instead of
// starting a second relocation.
type JobRecord struct {
	JobID     string   `json:"job_id"`
	RequestID string   `json:"request_id,omitempty"`
	VM        string   `json:"vm,omitempty"`
	State     JobState `json:"state"`
	Worker    string   `json:"worker"`
	// Delivery is the token of the delivery the worker runs the job under (see
	// Delivery.Token): the worker's next run hands it back at once if this one died.
	Delivery string `json:"delivery,omitempty"`
	TaskRef  string `json:"task_ref,omitempty"`  // vCenter task MoRef, e.g. "task-1234"
	SourceVC string `json:"source_vc,omitempty"` // the vCenter the task runs on
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
	// Slots are the scheduling slots the running relocation holds, so a worker that
	// re-attaches after a crash holds them again.
	Slots []string `json:"slots,omitempty"`
	// CancelRequested asks the worker running the job to cancel its vCenter task.
	CancelRequested bool   `json:"cancel_requested,omitempty"`
	CancelledBy     string `json:"cancelled_by,omitempty"`
	// StartUnanswered says the last start of a relocation got no answer (the connection
	// broke): vCenter may run it, so the next delivery looks for it before starting.
	StartUnanswered bool `json:"start_unanswered,omitempty"`
	// Move is recorded with the task: what the move was approved to do and what the VM
	// leaves behind, so that whoever finishes the job after a restart verifies it,
	// copies its tags and attributes, and offers undo.
	Move *JobMove `json:"move,omitempty"`
	// Final is the outcome event as first published, published again (same id) when the
	// job is delivered after it ended, with everything it said.
	Final     *Event    `json:"final,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
}

// JobMove is what a worker records as it starts a relocation. The source copy of the VM,
// with its tags, is gone once the move ends: this is all that is left of it.
type JobMove struct {
	// Where the plan puts the VM.
	Host      string       `json:"host,omitempty"`
	Pool      string       `json:"pool,omitempty"`
	Datastore string       `json:"datastore,omitempty"`
	Folder    string       `json:"folder,omitempty"`
	NICs      []PlannedNIC `json:"nics,omitempty"` // in device order
	// Disks are the disks placed apart (Datastore set: where "Hard disk N" goes).
	Disks []move.Disk `json:"disks,omitempty"`
	// Origin is where the VM was (Networks unset; OriginNICs holds them), nil if it
	// could not be read.
	Origin     *move.Origin `json:"origin,omitempty"`
	OriginNICs []string     `json:"origin_nics,omitempty"` // each NIC's portgroup, in device order
	// Tags and Attributes are the VM's vSphere tags and custom attributes in the source;
	// MetadataError says why they could not be read, if so.
	Tags          []Tag             `json:"tags,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	MetadataError string            `json:"metadata_error,omitempty"`
	// Unread says that Origin, the tags and the attributes are still to be read: the
	// running task is recorded before them, and whoever follows the task reads them from
	// the source while it runs (the VM leaves the source only at the switch-over).
	Unread bool `json:"unread,omitempty"`
}

// PlannedNIC is a NIC and the portgroup the plan puts it on ("" for unchanged).
type PlannedNIC struct {
	Label  string `json:"label"`
	Target string `json:"target,omitempty"`
}

// Tag is a vSphere tag by category and name (vCenters do not share tag IDs).
type Tag struct {
	Category string `json:"category"`
	Name     string `json:"name"`
}

// JobRecords keeps JobRecords in the KV bucket BucketJobs, keyed by job id.
type JobRecords struct {
	kv jetstream.KeyValue
}

// Create claims a job: it stores rec only if no record exists for rec.JobID, and of
// several workers racing for the same job exactly one succeeds; the others get
// ErrJobClaimed. UpdatedAt is set to now.
func (r *JobRecords) Create(ctx context.Context, rec *JobRecord) (uint64, error) {
	rec.UpdatedAt = time.Now().UTC()
	rev, err := kvCreate(ctx, r.kv, rec.JobID, rec)
	switch {
	case errors.Is(err, errKVExists):
		return 0, fmt.Errorf("claim job %s: %w", rec.JobID, ErrJobClaimed)
	case err != nil:
		return 0, fmt.Errorf("claim job %s: %w", rec.JobID, err)
	}
	return rev, nil
}

// Get returns the record of a job and its revision; ErrJobNotFound if none.
func (r *JobRecords) Get(ctx context.Context, jobID string) (*JobRecord, uint64, error) {
	var rec JobRecord
	rev, err := kvGet(ctx, r.kv, jobID, &rec)
	switch {
	case errors.Is(err, errKVNotFound) || errors.Is(err, jetstream.ErrInvalidKey):
		return nil, 0, fmt.Errorf("get job record %s: %w", jobID, ErrJobNotFound)
	case err != nil:
		return nil, 0, fmt.Errorf("get job record %s: %w", jobID, err)
	}
	return &rec, rev, nil
}

// Update replaces the record if it is still at revision rev (ErrJobConflict otherwise,
// ErrJobNotFound if it is gone). UpdatedAt is set to now.
func (r *JobRecords) Update(ctx context.Context, rec *JobRecord, rev uint64) (uint64, error) {
	rec.UpdatedAt = time.Now().UTC()
	newRev, err := kvUpdate(ctx, r.kv, rec.JobID, rec, rev)
	switch {
	case errors.Is(err, errKVConflict):
		return 0, fmt.Errorf("update job record %s at revision %d: %w", rec.JobID, rev, ErrJobConflict)
	case errors.Is(err, errKVNotFound):
		return 0, fmt.Errorf("update job record %s: %w", rec.JobID, ErrJobNotFound)
	case err != nil:
		return 0, fmt.Errorf("update job record %s: %w", rec.JobID, err)
	}
	return newRev, nil
}

// RequestCancel stops a job: one that has not started is marked cancelled, so no worker
// will ever start it (a worker claims a job by creating its record, and that create now
// fails); one that is running gets CancelRequested, and its worker cancels the vCenter
// task. It returns the job's state after the call: JobCancelled, JobRunning (cancel
// requested), or a final state if the job had already ended.
func (r *JobRecords) RequestCancel(ctx context.Context, jobID, by string) (JobState, error) {
	for range 50 {
		cur, rev, err := r.Get(ctx, jobID)
		if errors.Is(err, ErrJobNotFound) {
			_, err = r.Create(ctx, &JobRecord{JobID: jobID, State: JobCancelled, CancelledBy: by,
				Error: "cancelled by " + by + " before it started"})
			if errors.Is(err, ErrJobClaimed) {
				continue // a worker claimed it just now: cancel the running job instead
			}
			if err != nil {
				return "", err
			}
			return JobCancelled, nil
		}
		if err != nil {
			return "", err
		}
		if cur.State.Terminal() {
			return cur.State, nil
		}
		cur.CancelRequested, cur.CancelledBy = true, by
		if _, err := r.Update(ctx, cur, rev); errors.Is(err, ErrJobConflict) {
			continue
		} else if err != nil {
			return "", err
		}
		return JobRunning, nil
	}
	return "", fmt.Errorf("cancel job %s: %w", jobID, ErrJobConflict)
}
