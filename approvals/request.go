package approvals

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// Direction says which wizard a request follows.
type Direction string

const (
	// Migrate exports VMs from the source vCenter (by default the home one) to a target.
	Migrate Direction = "migrate"
	// Import pulls VMs from a remote vCenter into the target (by default the home one).
	Import Direction = "import"
)

// Severity grades a pre-flight finding.
type Severity string

const (
	// SeverityOK is a check that passed.
	SeverityOK Severity = "ok"
	// SeverityWarning is worth reading but does not stop the move.
	SeverityWarning Severity = "warning"
	// SeverityBlocker stops the request from being offered for approval.
	SeverityBlocker Severity = "blocker"
)

// Finding is one pre-flight result as a person reads it.
type Finding struct {
	Severity Severity `json:"severity"`
	VM       string   `json:"vm,omitempty"`
	Message  string   `json:"message"`
	Hint     string   `json:"hint,omitempty"`
	// Kind names a finding xvmbot itself may write again later (FindingChangeWindow).
	Kind string `json:"kind,omitempty"`
}

// FindingChangeWindow is the Kind of the finding that says when approved moves into
// the target start; it is rewritten as time passes.
const FindingChangeWindow = "change-window"

// ReviewVM is one VM as the review page shows it. Its Ref (move.VM) is the VM's managed
// object id in the source vCenter when the request was checked: the approval binds the
// move to this object, not only to its name.
type ReviewVM struct {
	move.VM
	PowerState string  `json:"power_state,omitempty"`
	CPUs       int     `json:"cpus,omitempty"`
	MemoryMB   int     `json:"memory_mb,omitempty"`
	DiskGB     float64 `json:"disk_gb,omitempty"`
	NICs       int     `json:"nics,omitempty"`
	// Resolved is where the review placed the VM, by object identity (nil when it did
	// not): the approval binds the VM's job to it.
	Resolved *move.Resolved `json:"resolved,omitempty"`
}

// VCenterRef names a vCenter as the review shows it.
type VCenterRef struct {
	Name       string `json:"name"`
	Version    string `json:"version,omitempty"`
	Thumbprint string `json:"thumbprint,omitempty"`
	// InstanceUUID identifies the vCenter itself; the approval binds the move to it.
	InstanceUUID string `json:"instance_uuid,omitempty"`
	// UIURL is the vSphere Client of this vCenter ("https://vc.example.com/ui/"), for
	// links to its VMs; "" links nothing.
	UIURL string `json:"ui_url,omitempty"`
}

// Review is the resolved placement: what will really happen, the wizard's review page.
// Its Placement names the objects the planner resolved (Networks: each distinct mapping of
// a NIC to the portgroup it lands on; Disks: those placed apart, as asked); its Priority
// is always "" (the request's Placement has it).
type Review struct {
	Source VCenterRef `json:"source"`
	Target VCenterRef `json:"target"`
	move.Placement
	// OtherHosts are the cluster's other hosts that qualify: a job whose planned host is
	// busy starts on one of them.
	OtherHosts []string   `json:"other_hosts,omitempty"`
	VMs        []ReviewVM `json:"vms,omitempty"`
	Findings   []Finding  `json:"findings,omitempty"`
}

// Blocked reports whether any finding is a blocker.
func (r Review) Blocked() bool {
	for _, f := range r.Findings {
		if f.Severity == SeverityBlocker {
			return true
		}
	}
	return false
}

// Decision is one person's approval, rejection or cancellation.
type Decision struct {
	User   string    `json:"user"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Job is the part of a request that moves one VM.
type Job struct {
	ID       string `json:"id"`
	VM       string `json:"vm"`
	State    State  `json:"state"`
	Progress int    `json:"progress,omitempty"`
	Error    string `json:"error,omitempty"`
	// Origin is where the VM was before it moved (set when the job succeeds).
	Origin *move.Origin `json:"origin,omitempty"`
	// Note is what the job is waiting for, if anything (a change window, a retry).
	Note string `json:"note,omitempty"`
	// Fault names the vSphere fault of a failure; Hint says what to check.
	Fault string `json:"fault,omitempty"`
	Hint  string `json:"hint,omitempty"`
	// Detail is the raw error behind Error (a transport error, vCenter's own text),
	// shown by /xvm status, not in the thread.
	Detail string `json:"detail,omitempty"`
	// Warning is what a succeeded move still wants someone to look at (tags not copied).
	Warning string `json:"warning,omitempty"`
	// UndoneBy is what stands for this move's way back (/xvm undo), if anything.
	UndoneBy  UndoRef   `json:"undone_by,omitzero"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// ThreadTS is where the transport shows this job (in Slack, the timestamp of its
	// progress message in the request's thread); see Request.Channel.
	ThreadTS string `json:"thread_ts,omitempty"`
	// Task is the source vCenter's task that moves the VM ("task-1234"), once one runs.
	Task string `json:"task,omitempty"`
	// Rev is the store's revision of the job as it was read, where the store keeps each
	// job apart (JobStore; 0: not written on its own yet): what a write of the job
	// compares and swaps against. It is not part of the record.
	Rev uint64 `json:"-"`
}

// Request is the durable record of one move request, from the command to the last VM.
type Request struct {
	ID        string         `json:"id"`
	Direction Direction      `json:"direction"`
	VMs       []string       `json:"vms"`
	SourceVC  string         `json:"source_vc"`
	TargetVC  string         `json:"target_vc"`
	Placement move.Placement `json:"placement"`
	Review    Review         `json:"review"`
	// UndoOf is the job whose way back this request asks for (/xvm undo), if any, or the
	// request whose moved VMs it takes back (all of them, or those that came from one
	// placement: an undo of a whole request asks one request per placement).
	UndoOf string `json:"undo_of,omitempty"`
	// RetryOf is the request whose failed VMs this request asks again ("Retry failed VMs").
	RetryOf string `json:"retry_of,omitempty"`
	// RetriedBy is what stands for the retry of this request's failed VMs, if anything.
	RetriedBy UndoRef `json:"retried_by,omitzero"`

	Requester string `json:"requester"`
	// Channel and MessageTS (and each job's ThreadTS) say where the request is shown, in
	// the transport's own terms: in Slack, the channel ID, the timestamp of the approval
	// message (edited in place as the summary, and the parent of the request's thread)
	// and that of each job's message in the thread. They are opaque here: approvals
	// stores them, keeps the first message recorded, and never reads them.
	Channel   string `json:"channel"`
	MessageTS string `json:"message_ts,omitempty"`
	// PostQueue names the bot process (its instance name) whose queue holds the approval
	// message until it is posted. A bot that starts again under that name posts the
	// request at once, since no other process can hold its queue; another bot waits until
	// no live queue could still hold the message, then takes the post over.
	PostQueue string `json:"post_queue,omitempty"`
	// TableTS is where the transport shows the progress of a large request as one table
	// (in Slack, the timestamp of that message in the request's thread), instead of one
	// message per job; opaque here like MessageTS.
	TableTS string `json:"table_ts,omitempty"`
	// FinalReplyDue is set in the same write that ends a request through its jobs, and
	// cleared once the final reply to the requester is posted, so that a bot that stops in
	// between posts it when it starts again.
	FinalReplyDue bool `json:"final_reply_due,omitempty"`

	// AskedOf are who may approve (user and group IDs, as the policy named them when the
	// request was asked) and Notify how they were told: the message says who is waited on.
	AskedOf []string `json:"asked_of,omitempty"`
	Notify  Notify   `json:"notify,omitempty"`
	// DMs are the direct messages that carry the request to each approver (Notify = dm),
	// kept in step with the channel message; Reminded are the reminders already posted,
	// by how long before the expiry each was due.
	DMs      []DirectMessage `json:"dms,omitempty"`
	Reminded []time.Duration `json:"reminded,omitempty"`

	State        State      `json:"state"`
	Approvals    []Decision `json:"approvals,omitempty"`
	Rejection    *Decision  `json:"rejection,omitempty"`
	Cancellation *Decision  `json:"cancellation,omitempty"`
	Quorum       int        `json:"quorum"`
	// Approval is what the approvers approved, signed by the bot in the write that
	// completed the quorum. Without a valid one, a record that says approved moves nothing.
	Approval  *Seal     `json:"approval,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Jobs      []Job     `json:"jobs,omitempty"`
	// Tally stands for the jobs where a store keeps each job apart from the request
	// (JobStore): a request read without its jobs (Jobs nil) still knows how far they are.
	Tally *Tally `json:"tally,omitempty"`
}

// NewRequestID returns a short, unguessable, human-typable id such as "xvm-k3m9q2".
func NewRequestID() string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return "xvm-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// JobID names the job that moves the i-th VM of request id; it is stable, so re-publishing
// the jobs of a request is deduplicated by NATS and by the worker.
func JobID(requestID string, i int) string { return fmt.Sprintf("%s-%02d", requestID, i+1) }

// jobIDShape is a job id as JobID writes it: the request's id and "-NN".
var jobIDShape = regexp.MustCompile(`^(xvm-[a-z0-9]+)-[0-9]+$`)

// RequestIDOf returns the request a job id belongs to; any other id is returned as it is,
// so a request's id and its jobs' ids may be used alike.
func RequestIDOf(id string) string {
	if m := jobIDShape.FindStringSubmatch(id); m != nil {
		return m[1]
	}
	return id
}

// Job returns the job with the given id, or nil.
func (r *Request) Job(id string) *Job {
	for i := range r.Jobs {
		if r.Jobs[i].ID == id {
			return &r.Jobs[i]
		}
	}
	return nil
}

// Approvers returns the user IDs that have approved so far, in order.
func (r *Request) Approvers() []string {
	out := make([]string, 0, len(r.Approvals))
	for _, d := range r.Approvals {
		out = append(out, d.User)
	}
	return out
}

// Counts returns how many jobs are in each state.
func (r *Request) Counts() map[State]int {
	c := map[State]int{}
	for _, j := range r.Jobs {
		c[j.State]++
	}
	return c
}

// Progress is the mean progress of all jobs, 0–100 (a finished job counts as 100).
func (r *Request) Progress() int {
	if len(r.Jobs) == 0 {
		return 0
	}
	sum := 0
	for _, j := range r.Jobs {
		if j.State.Final() {
			sum += 100
		} else {
			sum += j.Progress
		}
	}
	return sum / len(r.Jobs)
}

// JobIndex returns the number (0-based) of job jobID in request id, as JobID numbers them.
func JobIndex(id, jobID string) (int, bool) {
	rest, ok := strings.CutPrefix(jobID, id+"-")
	if !ok || RequestIDOf(jobID) != id {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 {
		return 0, false
	}
	return n - 1, true
}
