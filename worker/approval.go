package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// A worker moves a VM only under an approval it can verify itself: write access to the
// bus or to the request store is not enough. Before anything else it checks the job's
// signed grant and every field of the job against it (checkJob); before it starts a
// relocation, that the request is still approved and lists the job (admitRead); and once it
// has planned the move, that the VM and the vCenters are the very objects approved
// (approvals.Grant.CheckObjects). A job that fails any of these moves nothing, is
// acknowledged, logged, counted in xvm_jobs_refused_total and said in the request's
// thread.

// stepApproval is the step of a failure found by checking a job's approval.
const stepApproval = "approval"

// checkJob verifies the grant a job carries and that the job says exactly what the grant
// says. It reads nothing but the job.
func checkJob(keys *approvals.Keyring, j events.Job) (*approvals.Grant, error) {
	var seal *approvals.Seal
	if len(j.Approval) > 0 {
		seal = new(approvals.Seal)
		if err := json.Unmarshal(j.Approval, seal); err != nil {
			return nil, approvals.Refuse(approvals.ReasonBadSignature, "its approval cannot be read: "+err.Error())
		}
	}
	g, err := keys.OpenGrant(seal)
	if err != nil {
		return nil, err
	}
	if off := jobDiff(j, g); len(off) > 0 {
		return g, approvals.Refuse(approvals.ReasonMismatch, "the job says other than its signed approval: "+strings.Join(off, "; "))
	}
	return g, nil
}

// grantedJob is the job the bot queues for a grant; what a worker receives must equal it
// in every field but the schema version, the time it was queued and the grant itself.
func grantedJob(g *approvals.Grant) events.Job {
	return events.Job{ID: g.VM.Job, RequestID: g.RequestID, Direction: string(g.Direction), VM: g.VM.Name,
		SourceVC: g.Source.Name, TargetVC: g.Target.Name, Placement: g.Placement.Clone(),
		RequestedBy: g.RequestedBy, ApprovedBy: slices.Clone(g.Approvers)}
}

// unsignedFields are the job fields a grant does not cover: the message's schema version,
// when it was queued, and the grant itself.
var unsignedFields = map[string]bool{"V": true, "QueuedAt": true, "Approval": true}

// jobDiff names the fields in which j differs from the job its grant describes. Fields are
// compared as JSON, so an empty list and no list are the same.
func jobDiff(j events.Job, g *approvals.Grant) []string {
	want := grantedJob(g)
	got, exp := reflect.ValueOf(j), reflect.ValueOf(want)
	var off []string
	// Field by field, the embedded placement's fields too: each is a field of the message.
	for _, f := range reflect.VisibleFields(got.Type()) {
		if unsignedFields[f.Name] || f.Anonymous {
			continue
		}
		a, _ := json.Marshal(got.FieldByIndex(f.Index).Interface())
		b, _ := json.Marshal(exp.FieldByIndex(f.Index).Interface())
		if string(a) != string(b) {
			off = append(off, fmt.Sprintf("%s is %s, approved %s", jsonName(f), clip(string(a)), clip(string(b))))
		}
	}
	return off
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// admissionRead is a read of what admitting a job needs, started by readAdmission; wait
// returns it once done.
type admissionRead struct {
	done chan struct{}
	adm  approvals.Admission
	err  error
}

func (a *admissionRead) wait() (approvals.Admission, error) {
	<-a.done
	return a.adm, a.err
}

// readAdmission starts reading what admitting the job of grant g needs (the request's
// head, the job and its VMs: the worker's reads of the request) in the background, so that
// it runs while the VM's lease is taken. Whoever starts it waits for it (wait).
func (w *Worker) readAdmission(ctx context.Context, g *approvals.Grant) *admissionRead {
	a := &admissionRead{done: make(chan struct{})}
	if w.cfg.Requests == nil {
		close(a.done)
		return a
	}
	go func() {
		defer close(a.done)
		a.adm, a.err = w.cfg.Requests.Admission(ctx, g.RequestID, g.VM.Job)
	}()
	return a
}

// notStarted lists the VMs of the request whose moves have not started, from what
// admission read a moment ago (as Requests.VMs lists them), when that was the head of a
// request kept in parts and the one chunk of VMs read holds every such VM; ok is false
// otherwise (nil a included).
func (a *admissionRead) notStarted(jobID string) (vms []string, ok bool) {
	if a == nil {
		return nil, false
	}
	adm, err := a.wait()
	if err != nil || adm.Request == nil || adm.Request.Tally == nil {
		return nil, false
	}
	i, ok := approvals.JobIndex(adm.Request.ID, jobID)
	if !ok {
		return nil, false
	}
	k := i / approvals.VMsPerChunk
	for _, n := range adm.Request.Tally.NotStarted() {
		if n/approvals.VMsPerChunk != k || n%approvals.VMsPerChunk >= len(adm.Chunk) {
			return nil, false
		}
		vms = append(vms, adm.Chunk[n%approvals.VMsPerChunk].Name)
	}
	return vms, true
}

// admitRead checks, just before a relocation may start, that the job's request is still
// approved, lists this job and has not expired, on the read a (readAdmission). An error
// that is not a Refusal is a failure to read the request: the job waits.
func (w *Worker) admitRead(g *approvals.Grant, a *admissionRead) error {
	if w.cfg.Requests == nil {
		return approvals.Refuse(approvals.ReasonNoRequest, "this worker cannot read request records to check the approval")
	}
	adm, err := a.wait()
	if errors.Is(err, approvals.ErrNotFound) {
		adm, err = approvals.Admission{}, nil
	}
	if err != nil {
		return fmt.Errorf("read request %s to check the approval: %w: %w", g.RequestID, err, events.ErrRetry)
	}
	return w.cfg.Trust.AdmitJob(g, adm, w.now())
}

// admitted is admitRead as the job's handler needs it: nil when the job may start; a retry
// when the request could not be read; otherwise the job is refused (and err says how that
// was reported).
func (jr *jobRun) admitted(ctx context.Context) error {
	return jr.admittedBy(ctx, jr.w.readAdmission(ctx, jr.g))
}

// admittedBy is admitted on the read a, started earlier.
func (jr *jobRun) admittedBy(ctx context.Context, a *admissionRead) error {
	err := jr.w.admitRead(jr.g, a)
	if err == nil {
		jr.read = a
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, events.ErrRetry):
		jr.log.Warn("could not check the job's approval; trying again", "err", err)
		return events.RetryAfter(err, jr.w.cfg.WaitDelay)
	}
	if rerr := jr.refuse(ctx, err); rerr != nil {
		return rerr
	}
	return errRefused
}

// errRefused ends the handling of a job that was refused and reported.
var errRefused = errors.New("job refused")

// ackRefused is what a handler returns after admitted failed: nil (acknowledge) for a job
// refused and reported, the error itself otherwise.
func ackRefused(err error) error {
	if errors.Is(err, errRefused) {
		return nil
	}
	return err
}

// checkObjects compares the planned VM and vCenters with the approved objects.
func checkObjects(g *approvals.Grant, plan *vcenter.Plan, vm string) error {
	ref := ""
	if i := slices.IndexFunc(plan.VMs, func(v vcenter.VM) bool { return v.Name == vm }); i >= 0 {
		ref = plan.VMs[i].Ref
	}
	return g.CheckObjects(ref, plan.Source.InstanceUUID, plan.Target.InstanceUUID)
}

// refuse ends a job that may not run; nothing was moved. A genuine job of a live request
// (its grant verified) whose approval ran out or whose VM is no longer the approved one
// fails, so that its request ends and its thread says why; any other job is reported as
// refused, to the thread of the request it names, if there is one. Either way the job is
// acknowledged and never delivered again.
func (jr *jobRun) refuse(ctx context.Context, err error) error {
	w, j, log := jr.w, jr.j, jr.log
	var rf *approvals.Refusal
	if !errors.As(err, &rf) {
		return err
	}
	w.m.refused.WithLabelValues(string(rf.Reason)).Inc()
	log.Warn("job refused: nothing moved", "reason", rf.Reason, "detail", rf.Detail)
	hint := refusalHint(rf.Reason, j)
	if kind, ok := refusalFaults[rf.Reason]; ok && jr.g != nil {
		ferr := jr.fail(ctx, &vcenter.Fault{VCenter: j.SourceVC, VM: j.VM, Step: stepApproval, Kind: kind,
			Message: fmt.Sprintf("%s was not moved: %s", j.VM, rf.Detail), Hint: hint}, nil)
		var f *vcenter.Fault
		if errors.As(ferr, &f) {
			return nil // reported; acknowledge
		}
		return ferr
	}
	e := w.event(j, events.EventRefused, fmt.Sprintf("%s: job refused, nothing moved: %s", j.VM, rf.Detail), 0)
	e.ID = j.ID + ".refused." + string(rf.Reason)
	e.Fault, e.Error, e.Hint, e.Step = string(rf.Reason), rf.Detail, hint, "checking the job's approval"
	w.publish(ctx, log, e)
	return nil
}

// refusalFaults are the refusals of a genuine job that fail it, by the fault they report.
var refusalFaults = map[approvals.RefusalReason]vcenter.FaultKind{
	approvals.ReasonExpired:    vcenter.KindApprovalExpired,
	approvals.ReasonVMIdentity: vcenter.KindNotTheApprovedVM,
}

// refusalHint says what to do about a refused job.
func refusalHint(reason approvals.RefusalReason, j events.Job) string {
	switch reason {
	case approvals.ReasonExpired:
		return "ask for the move again: an approval lets its jobs start only for approvals.run_within after it"
	case approvals.ReasonVMIdentity:
		return fmt.Sprintf("check %s in %s; if it is the VM you mean, ask for its move again so that it is approved as it is now", j.VM, j.SourceVC)
	case approvals.ReasonUntrustedKey:
		return "if the bot's signing key was changed, add its public key to approvals.trusted_keys of every worker; " +
			"otherwise someone with access to NATS sent this job"
	case approvals.ReasonRequestState:
		return "the request no longer runs, so none of its jobs may start"
	}
	return "nobody approved this job through xvmbot: someone who can write to the NATS bus or the request store sent it. " +
		"Check who holds NATS credentials (docs/security.md)"
}
