package events

import (
	"encoding/json"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// Names of everything xvmbot keeps in NATS. They are part of the operator contract:
// dashboards, `nats` CLI sessions and runbooks refer to them.
const (
	StreamJobs      = "XVM_JOBS"     // work queue, one message per VM
	SubjectJobs     = "xvm.jobs"     // the subject jobs are published on
	ConsumerWorkers = "xvm-workers"  // durable pull consumer shared by all workers
	StreamEvents    = "XVM_EVENTS"   // limits stream of job events
	SubjectEvents   = "xvm.events"   // events are published on xvm.events.<request-id>.<type>
	ConsumerBot     = "xvm-bot"      // durable consumer the bot reads events through
	BucketRequests  = "xvm-requests" // request records, CAS-updated
	BucketJobs      = "xvm-jobs"     // per-job execution records (vCenter task reference)
	BucketLeases    = "xvm-leases"   // per-VM leases: a VM is never relocated twice at once
	BucketSlots     = "xvm-slots"    // concurrency slots per host, datastore and vCenter
	// BucketDeliveries holds the Slack deliveries the bot handled, for a while: a retried
	// or replayed command or click is handled once by all bot replicas, across restarts.
	BucketDeliveries = "xvm-deliveries"
	// BucketDigests holds, per digest channel, the newest period whose digest a bot
	// replica claimed: each period's digest is posted once.
	BucketDigests = "xvm-digests"
	SchemaVersion = 1 // the "v" field of every message
)

// Job asks a worker to move one VM. It carries the names the request was approved with;
// the worker resolves them again against the live inventories before it starts.
type Job struct {
	V         int    `json:"v"`
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
	Direction string `json:"direction"` // migrate | import
	VM        string `json:"vm"`
	SourceVC  string `json:"source_vc"`
	TargetVC  string `json:"target_vc"`
	// Placement is flattened into the message, as its fields always were.
	move.Placement
	// RequestedBy and ApprovedBy are Slack user IDs, kept for the audit trail.
	RequestedBy string    `json:"requested_by"`
	ApprovedBy  []string  `json:"approved_by"`
	QueuedAt    time.Time `json:"queued_at"`
	// Approval is the job's signed grant, as the bot's approvals package writes it: what
	// the approvers approved for this one VM (by name and by object id), signed with the
	// bot's key. A worker refuses a job without a valid one, or whose fields above say
	// anything else.
	Approval json.RawMessage `json:"approval,omitempty"`
}

// EventType is what happened to a job.
type EventType string

// The event types, in the order a job normally produces them.
const (
	EventQueued    EventType = "queued"
	EventStarted   EventType = "started"
	EventProgress  EventType = "progress"
	EventSucceeded EventType = "succeeded"
	EventFailed    EventType = "failed"
	EventCancelled EventType = "cancelled"
	// EventRefused: a worker would not run a job because its approval did not check out.
	// Nothing was moved; the job may not even be the request's own (a forged one).
	EventRefused EventType = "refused"
)

// Final reports whether the job ends with this event.
func (t EventType) Final() bool {
	return t == EventSucceeded || t == EventFailed || t == EventCancelled
}

// Event reports one step of a job back to the bot.
type Event struct {
	V         int       `json:"v"`
	ID        string    `json:"id"` // unique; also the Nats-Msg-Id, so a re-sent event is stored once
	Type      EventType `json:"type"`
	RequestID string    `json:"request_id"`
	JobID     string    `json:"job_id"`
	VM        string    `json:"vm"`
	Direction string    `json:"direction,omitempty"`
	SourceVC  string    `json:"source_vc,omitempty"`
	TargetVC  string    `json:"target_vc,omitempty"`
	Progress  int       `json:"progress,omitempty"` // 0–100
	// Message is a plain-words line for people; Fault, Error and Hint explain a failure.
	Message string `json:"message,omitempty"`
	// Step is where a failure happened, in words ("relocation task task-12",
	// "verifying the placement").
	Step  string `json:"step,omitempty"`
	Fault string `json:"fault,omitempty"`
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
	// Warning is what a succeeded move still wants someone to look at (tags not copied).
	Warning  string  `json:"warning,omitempty"`
	TaskRef  string  `json:"task_ref,omitempty"`
	Worker   string  `json:"worker,omitempty"`
	Duration float64 `json:"duration_seconds,omitempty"`
	// Origin is where the VM was before the move (succeeded events), for /xvm undo.
	Origin *move.Origin `json:"origin,omitempty"`
	At     time.Time    `json:"at"`
}
