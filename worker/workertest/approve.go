// Package workertest approves jobs the way the bot does, for tests of the worker and of the
// tools that run one without the bot: it stores an approved request record whose approval
// is signed, and returns the jobs with their signed grants.
package workertest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// Key is approvaltest.Key, for the worker's tests.
var Key = approvaltest.Key

// Approver approves jobs into Store with Signer, reading the VMs' object ids and the
// vCenters' instance UUIDs from Lab, or from Inventory when there is no lab.
type Approver struct {
	Store     approvals.Store
	Signer    *approvals.Signer
	Lab       *xvmsim.Lab
	Inventory Inventory
	// RunWithin is the approval's time to start (default approvals.DefaultRunWithin).
	RunWithin time.Duration
	// Now is the approval's time (default time.Now).
	Now func() time.Time
	// Resolve, when set, is the placement the review resolved for a job's VM, by object
	// identity, which the approval then signs (nil: none, as in a record from before).
	Resolve func(ctx context.Context, j events.Job) (*move.Resolved, error)
}

// Requester and Approver are who a test request is from and who approved it.
const (
	Requester = "U0ALICE"
	Approver1 = "U0BOB"
)

// Approve stores (or extends) the approved request of jobs, which must share their request
// id, direction, vCenters and placement, and returns them as the bot queues them: signed,
// with their requester and approvers filled in. A VM the source vCenter does not have is
// approved as object "vm-missing".
func (a *Approver) Approve(ctx context.Context, jobs ...events.Job) ([]events.Job, error) {
	if len(jobs) == 0 {
		return nil, errors.New("approve: no jobs")
	}
	j0 := jobs[0]
	r, rev, err := a.Store.Get(ctx, j0.RequestID)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		r, rev = a.request(j0), 0
	case err != nil:
		return nil, err
	}
	for _, j := range jobs {
		if j.RequestID != j0.RequestID || j.Direction != j0.Direction || j.SourceVC != j0.SourceVC || j.TargetVC != j0.TargetVC ||
			!samePlacement(j.Placement, r.Placement) {
			return nil, fmt.Errorf("approve: job %s differs from the others of request %s", j.ID, j0.RequestID)
		}
		if r.Job(j.ID) != nil {
			continue
		}
		ref := a.inventory().VMRef(ctx, j.SourceVC, j.VM)
		if ref == "" {
			ref = "vm-missing"
		}
		var resolved *move.Resolved
		if a.Resolve != nil {
			if resolved, err = a.Resolve(ctx, j); err != nil {
				return nil, fmt.Errorf("resolve %s: %w", j.VM, err)
			}
		}
		r.VMs = append(r.VMs, j.VM)
		r.Review.VMs = append(r.Review.VMs, approvals.ReviewVM{VM: move.VM{Name: j.VM, Ref: ref}, Resolved: resolved})
		r.Jobs = append(r.Jobs, approvals.Job{ID: j.ID, VM: j.VM, State: approvals.StateQueued})
	}
	if err := a.Signer.SealApproval(r, a.RunWithin, r.DecidedAt); err != nil {
		return nil, err
	}
	if rev == 0 {
		_, err = a.Store.Create(ctx, r)
	} else {
		_, err = a.Store.Update(ctx, r, rev)
	}
	if err != nil {
		return nil, fmt.Errorf("store approved request %s: %w", r.ID, err)
	}
	ap, err := approvals.NewKeyring(map[string]ed25519.PublicKey{a.Signer.KeyID(): a.Signer.Public()}).OpenApproval(r)
	if err != nil {
		return nil, err
	}
	seals, err := a.Signer.Grants(ap)
	if err != nil {
		return nil, err
	}
	out := make([]events.Job, len(jobs))
	for i, j := range jobs {
		k := slices.IndexFunc(ap.VMs, func(v approvals.ApprovedVM) bool { return v.Job == j.ID })
		b, err := json.Marshal(seals[k])
		if err != nil {
			return nil, err
		}
		j.Approval, j.RequestedBy, j.ApprovedBy = b, r.Requester, r.Approvers()
		out[i] = j
	}
	return out, nil
}

func (a *Approver) request(j events.Job) *approvals.Request {
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	now = now.UTC().Truncate(time.Second)
	return &approvals.Request{ID: j.RequestID, Direction: approvals.Direction(j.Direction), SourceVC: j.SourceVC, TargetVC: j.TargetVC,
		Placement: j.Placement.Clone(),
		Review: approvals.Review{
			Source: approvals.VCenterRef{Name: j.SourceVC, InstanceUUID: a.inventory().InstanceUUID(j.SourceVC)},
			Target: approvals.VCenterRef{Name: j.TargetVC, InstanceUUID: a.inventory().InstanceUUID(j.TargetVC)},
		},
		Requester: Requester, Channel: "C0XVM", State: approvals.StateQueued, Quorum: 1,
		Approvals: []approvals.Decision{{User: Approver1, At: now}}, CreatedAt: now, DecidedAt: now}
}

// Inventory is what an approval binds a job to: the VM's object id in its source
// vCenter ("" when it has none) and each vCenter's instance UUID.
type Inventory interface {
	VMRef(ctx context.Context, vc, vm string) string
	InstanceUUID(vc string) string
}

// Static is an Inventory without vCenters: VM object ids by "vc/vm", instance UUIDs by
// vCenter name.
type Static struct {
	Refs  map[string]string
	UUIDs map[string]string
}

// VMRef returns the object id of vm in vc.
func (s Static) VMRef(_ context.Context, vc, vm string) string { return s.Refs[vc+"/"+vm] }

// InstanceUUID returns the instance UUID of vc.
func (s Static) InstanceUUID(vc string) string { return s.UUIDs[vc] }

// lab is the Inventory of a simulated lab.
type lab struct{ *xvmsim.Lab }

func (l lab) VMRef(ctx context.Context, vc, vm string) string {
	if p, err := l.VC(vc).FindVM(ctx, vm); err == nil {
		return p.Ref
	}
	return ""
}

func (l lab) InstanceUUID(vc string) string { return l.VC(vc).InstanceUUID }

func (a *Approver) inventory() Inventory {
	if a.Lab != nil {
		return lab{a.Lab}
	}
	return a.Inventory
}

func samePlacement(a, b move.Placement) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
