package approvals

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// DefaultRunWithin is how long after its approval a job may still start, unless the
// policy says otherwise: a week covers any weekly change window.
const DefaultRunWithin = 7 * 24 * time.Hour

// ApprovedVM is a VM as an approval binds it (by name and object id, move.VM) and the
// job that moves it.
type ApprovedVM struct {
	Job string `json:"job"`
	move.VM
	// Resolved is where the review placed the VM, by object identity: a worker that did
	// not plan the move rechecks it and moves the VM there, or plans from names again.
	// Nil in approvals made before it was kept, and for a VM the review did not place.
	Resolved *move.Resolved `json:"resolved,omitempty"`
}

// Terms are what the approvers approved, shared by every job of the request.
type Terms struct {
	RequestID   string         `json:"request_id"`
	Direction   Direction      `json:"direction"`
	Source      move.VCenter   `json:"source"`
	Target      move.VCenter   `json:"target"`
	Placement   move.Placement `json:"placement"`
	UndoOf      string         `json:"undo_of,omitempty"`
	RequestedBy string         `json:"requested_by"`
	Approvers   []string       `json:"approvers"`
	Quorum      int            `json:"quorum"`
	ApprovedAt  time.Time      `json:"approved_at"`
	// ExpiresAt is when the approval stops allowing a job to start; a move already
	// running when it passes runs to its end.
	ExpiresAt time.Time `json:"expires_at"`
}

// Approval is the decision on a whole request, signed by the bot in the same write that
// records the approval that completed the quorum, and kept in the request record.
//
// An approval of up to ListedVMs VMs lists them (VMs), as earlier versions did. A larger
// one lists, instead, the SHA-256 digest of each run of VMsPerChunk of its VMs (Chunks,
// see ChunkDigest): it stays small whatever the size of the request (it is read with the
// request on every job event), and a worker checks its own job against one chunk, which
// the store keeps apart, instead of reading every VM. A worker of an earlier version
// refuses a job of an approval by chunks: upgrade workers before the bot.
type Approval struct {
	Terms
	VMs    []ApprovedVM `json:"vms"`
	Chunks []string     `json:"chunks,omitempty"`
}

// VMsPerChunk is how many VMs one digest of a large approval covers, and one part of a
// request that a store keeps apart holds.
const VMsPerChunk = 500

// ListedVMs is how many VMs an approval lists itself at most; a larger one lists digests
// of chunks (about 100 bytes a VM against 64 per chunk of 500).
const ListedVMs = 50

// ChunkDigest is the digest a large approval signs for one chunk of its VMs: SHA-256 of
// their JSON, in hex.
func ChunkDigest(vms []ApprovedVM) string {
	b, err := json.Marshal(vms)
	if err != nil {
		panic(fmt.Sprintf("encode approved VMs: %v", err)) // plain strings always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Grant is one job's share of an Approval: the signed statement a job carries to a worker.
type Grant struct {
	Terms
	VM ApprovedVM `json:"vm"`
}

// ErrNoIdentity refuses to approve a request whose review does not say which objects its
// VMs are (a record written before VM identities were kept, or a VM that was not found).
var ErrNoIdentity = errors.New("the request does not record which VM objects it moves")

// approval builds the statement the approvers of r approved at now.
func (r *Request) approval(runWithin time.Duration, now time.Time) (*Approval, error) {
	if runWithin <= 0 {
		runWithin = DefaultRunWithin
	}
	a := &Approval{Terms: Terms{
		RequestID: r.ID, Direction: r.Direction,
		Source:    move.VCenter{Name: r.SourceVC, UUID: r.Review.Source.InstanceUUID},
		Target:    move.VCenter{Name: r.TargetVC, UUID: r.Review.Target.InstanceUUID},
		Placement: r.Placement, UndoOf: r.UndoOf, RequestedBy: r.Requester,
		Approvers: r.Approvers(), Quorum: max(r.Quorum, 1),
		ApprovedAt: now.UTC(), ExpiresAt: now.Add(runWithin).UTC(),
	}}
	if a.Source.UUID == "" || a.Target.UUID == "" {
		return nil, fmt.Errorf("%s: the vCenters' instance UUIDs were not recorded: %w", r.ID, ErrNoIdentity)
	}
	a.VMs = r.approvedVMs()
	for _, vm := range a.VMs {
		if vm.Ref == "" {
			return nil, fmt.Errorf("%s: %s: %w", r.ID, vm.Name, ErrNoIdentity)
		}
	}
	if len(a.VMs) > ListedVMs {
		for k := 0; k*VMsPerChunk < len(a.VMs); k++ {
			a.Chunks = append(a.Chunks, ChunkDigest(chunkOf(a.VMs, k)))
		}
		a.VMs = nil
	}
	return a, nil
}

// approvedVMs are r's jobs as an approval binds them: each job's VM by name and, as the
// review resolved it, by object id and placement (see Request.JobVMs).
func (r *Request) approvedVMs() []ApprovedVM {
	review := r.reviewByName()
	out := make([]ApprovedVM, len(r.Jobs))
	for i, j := range r.Jobs {
		out[i] = approvedVM(j.ID, j.VM, review)
	}
	return out
}

// chunkOf is chunk k of list, VMsPerChunk long (the last one shorter).
func chunkOf[T any](list []T, k int) []T {
	return list[k*VMsPerChunk : min((k+1)*VMsPerChunk, len(list))]
}

// SealApproval signs what r's approvers approved at now and stores it in r.Approval. It
// is called in the same compare-and-swap write that moves r to approved.
func (s *Signer) SealApproval(r *Request, runWithin time.Duration, now time.Time) error {
	a, err := r.approval(runWithin, now)
	if err != nil {
		return err
	}
	seal, err := s.seal(a)
	if err != nil {
		return err
	}
	r.Approval = seal
	return nil
}

// Grants signs one Grant per VM of an approval (the Approval must have been opened with a
// Keyring, never built from a record's other fields).
func (s *Signer) Grants(a *Approval) ([]*Seal, error) {
	out := make([]*Seal, 0, len(a.VMs))
	for _, vm := range a.VMs {
		seal, err := s.seal(Grant{Terms: a.Terms, VM: vm})
		if err != nil {
			return nil, err
		}
		out = append(out, seal)
	}
	return out, nil
}

// OpenApproval verifies r's signed approval and returns it. A record whose state says
// approved, but whose approval is missing, altered or signed by an unknown key, was not
// approved through xvmbot: nothing of it may run. An approval that lists its VMs by
// chunk is returned with them (VMs) when r holds them, once they match the digests; from
// a request's head (r.VMs nil) it is returned without.
func (k *Keyring) OpenApproval(r *Request) (*Approval, error) {
	a, err := k.openApproval(r)
	if err != nil || len(a.Chunks) == 0 || r.VMs == nil {
		return a, err
	}
	vms := r.approvedVMs()
	for c := range a.Chunks {
		if c*VMsPerChunk >= len(vms) {
			return nil, refuse(ReasonNotListed, fmt.Sprintf("request %s has fewer VMs than its approval", r.ID))
		}
		chunk := chunkOf(vms, c)
		if ChunkDigest(chunk) != a.Chunks[c] {
			return nil, refuse(ReasonNotListed, fmt.Sprintf("request %s's VMs %d to %d are not those approved", r.ID, c*VMsPerChunk+1, c*VMsPerChunk+len(chunk)))
		}
		a.VMs = append(a.VMs, chunk...)
	}
	if len(a.VMs) != len(vms) {
		return nil, refuse(ReasonNotListed, fmt.Sprintf("request %s has more VMs than its approval", r.ID))
	}
	return a, nil
}

func (k *Keyring) openApproval(r *Request) (*Approval, error) {
	var a Approval
	if err := k.open(r.Approval, &a); err != nil {
		var rf *Refusal
		if errors.As(err, &rf) {
			rf.Detail = fmt.Sprintf("request %s is marked %s, but %s", r.ID, r.State, rf.Detail)
		}
		return nil, err
	}
	if a.RequestID != r.ID {
		return nil, refuse(ReasonMismatch, fmt.Sprintf("request %s carries the approval of request %s", r.ID, a.RequestID))
	}
	return &a, nil
}

// OpenGrant verifies a job's signed grant and returns it.
func (k *Keyring) OpenGrant(s *Seal) (*Grant, error) {
	var g Grant
	if err := k.open(s, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// Admission is what a worker reads of a request to admit one of its jobs.
type Admission struct {
	// Request is the request as stored: whole, or its head (Jobs and VMs nil); nil if
	// there is none.
	Request *Request
	// Job is the grant's job as stored; nil if the request has none such.
	Job *Job
	// Chunk are the VMs (Request.JobVMs) of the chunk of VMsPerChunk jobs that holds
	// Job, as stored, for a head whose approval lists its VMs by chunk.
	Chunk []ApprovedVM
}

// Admit checks a verified grant against the request record as it is now, before its job
// starts (see AdmitJob).
func (k *Keyring) Admit(g *Grant, r *Request, now time.Time) error {
	adm := Admission{Request: r}
	if r != nil {
		adm.Job = r.Job(g.VM.Job)
	}
	return k.AdmitJob(g, adm, now)
}

// AdmitJob checks a verified grant against the request as it is now, before its job
// starts: the request exists, is approved and not over, its own signed approval lists
// this very job, VM and placement (in the chunk of VMs that holds it, for an approval
// that lists its VMs by chunk), and the grant has not expired.
func (k *Keyring) AdmitJob(g *Grant, adm Admission, now time.Time) error {
	r := adm.Request
	if r == nil {
		return refuse(ReasonNoRequest, fmt.Sprintf("request %s does not exist", g.RequestID))
	}
	switch r.State {
	case StateApproved, StateQueued, StateRunning:
	default:
		return refuse(ReasonRequestState, fmt.Sprintf("request %s is %s", r.ID, r.State))
	}
	if !now.Before(g.ExpiresAt) {
		return refuse(ReasonExpired, fmt.Sprintf("its approval of %s allowed it to start until %s",
			g.ApprovedAt.Format(time.RFC3339), g.ExpiresAt.Format(time.RFC3339)))
	}
	a, err := k.OpenApproval(r)
	if err != nil {
		return err
	}
	if !sameJSON(a.Terms, g.Terms) {
		return refuse(ReasonNotListed, fmt.Sprintf("request %s's approval says other than the job's (%s)", r.ID, termsDiff(a.Terms, g.Terms)))
	}
	if !a.lists(g.VM, adm.Chunk) {
		return refuse(ReasonNotListed, fmt.Sprintf("request %s's approval does not list job %s for %s (%s)", r.ID, g.VM.Job, g.VM.Name, g.VM.Ref))
	}
	j := adm.Job
	if j == nil || j.ID != g.VM.Job || j.VM != g.VM.Name {
		return refuse(ReasonNotListed, fmt.Sprintf("request %s has no job %s for %s", r.ID, g.VM.Job, g.VM.Name))
	}
	if j.State.Final() {
		return refuse(ReasonRequestState, fmt.Sprintf("job %s is already %s", j.ID, j.State))
	}
	return nil
}

// lists reports whether a lists vm: among its VMs, or, for an approval that lists them by
// chunk, in chunk (the VMs of the chunk that should hold vm, as stored), once chunk
// matches its signed digest.
func (a *Approval) lists(vm ApprovedVM, chunk []ApprovedVM) bool {
	same := func(v ApprovedVM) bool { return sameJSON(v, vm) } // Resolved is a pointer: compare what it says
	if len(a.Chunks) == 0 || a.VMs != nil {
		return slices.ContainsFunc(a.VMs, same)
	}
	i, ok := JobIndex(a.RequestID, vm.Job)
	if !ok || i/VMsPerChunk >= len(a.Chunks) {
		return false
	}
	return ChunkDigest(chunk) == a.Chunks[i/VMsPerChunk] && slices.ContainsFunc(chunk, same)
}

// CheckObjects compares the objects a job is about to move with the approved ones: the
// VM's managed object id and both vCenters' instance UUIDs (which vCenter reports in
// upper or lower case).
func (g *Grant) CheckObjects(vmRef, sourceUUID, targetUUID string) error {
	var off []string
	if vmRef != g.VM.Ref {
		off = append(off, fmt.Sprintf("%s is now %s in %s, not the approved %s (renamed or replaced since the approval)",
			g.VM.Name, orNone(vmRef), g.Source.Name, g.VM.Ref))
	}
	if !strings.EqualFold(sourceUUID, g.Source.UUID) {
		off = append(off, fmt.Sprintf("%s is now the vCenter %s, not the approved %s", g.Source.Name, orNone(sourceUUID), g.Source.UUID))
	}
	if !strings.EqualFold(targetUUID, g.Target.UUID) {
		off = append(off, fmt.Sprintf("%s is now the vCenter %s, not the approved %s", g.Target.Name, orNone(targetUUID), g.Target.UUID))
	}
	if len(off) > 0 {
		return refuse(ReasonVMIdentity, strings.Join(off, "; "))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// termsDiff names the fields in which two Terms differ, for the refusal's words.
func termsDiff(a, b Terms) string {
	var off []string
	add := func(name string, x, y any) {
		if !sameJSON(x, y) {
			off = append(off, name)
		}
	}
	add("request", a.RequestID, b.RequestID)
	add("direction", a.Direction, b.Direction)
	add("source", a.Source, b.Source)
	add("target", a.Target, b.Target)
	add("placement", a.Placement, b.Placement)
	add("undo", a.UndoOf, b.UndoOf)
	add("requester", a.RequestedBy, b.RequestedBy)
	add("approvers", a.Approvers, b.Approvers)
	add("quorum", a.Quorum, b.Quorum)
	add("approval time", a.ApprovedAt, b.ApprovedAt)
	add("expiry", a.ExpiresAt, b.ExpiresAt)
	if len(off) == 0 {
		return "no field differs"
	}
	return strings.Join(off, ", ") + " differ"
}
