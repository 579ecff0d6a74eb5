package worker

import (
	"context"
	"time"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// What the worker needs of vCenter, in the four things it does with it. Each is small
// so that a test fakes one function, not a lab; *vcenter.Manager has them all.

// planner resolves a move against the live inventories, and says what it occupies.
type planner interface {
	Plan(ctx context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error)
	// RecentPlan is a plan of spec made at most maxAge ago in this process (the bot's).
	RecentPlan(spec vcenter.MoveSpec, maxAge time.Duration) (*vcenter.Plan, bool)
	// PlannedRecently says, without reading vCenter, whether RecentPlan may have a plan of
	// spec's move that includes vm, whichever VMs spec lists.
	PlannedRecently(spec vcenter.MoveSpec, vm string, maxAge time.Duration) bool
	// Recheck rebuilds an approved move from the placement pre-flight resolved for it,
	// reading only what may have changed since; an error wrapping vcenter.ErrChanged
	// says it changed, and the move is planned from names instead.
	Recheck(ctx context.Context, spec vcenter.MoveSpec, vm move.VM, r *move.Resolved) (*vcenter.Plan, error)
	Footprint(ctx context.Context, p *vcenter.Plan, vm string) (vcenter.Footprint, error)
}

// mover starts a relocation task, follows it, and cancels it.
type mover interface {
	Start(ctx context.Context, p *vcenter.Plan, vm string) (taskRef string, err error)
	Watch(ctx context.Context, vcName, taskRef, vm string, progress vcenter.ProgressFunc) (*vcenter.Result, error)
	Cancel(ctx context.Context, vcName, taskRef string) error
	// RunningRelocation is the task of a relocation vCenter runs for vm ("" if none),
	// looked for when a start went unanswered.
	RunningRelocation(ctx context.Context, vcName, vm string) (taskRef string, err error)
}

// inspector says where a VM is now: whether a vCenter has it, and its placement there.
type inspector interface {
	Locate(ctx context.Context, vcName, vm string) (bool, error)
	Where(ctx context.Context, vcName, vm string) (*vcenter.Where, error)
}

// tagger reads a VM's tags and custom attributes and applies them to its moved copy.
type tagger interface {
	ReadMetadata(ctx context.Context, vcName, vm string) (*vcenter.Metadata, error)
	ApplyMetadata(ctx context.Context, vcName, vm string, md *vcenter.Metadata) error
}

// relocator is all of vCenter a worker uses, as New takes it.
type relocator interface {
	planner
	mover
	inspector
	tagger
}

var (
	_ planner   = (*vcenter.Manager)(nil)
	_ mover     = (*vcenter.Manager)(nil)
	_ inspector = (*vcenter.Manager)(nil)
	_ tagger    = (*vcenter.Manager)(nil)
)

// The NATS side: the job bus, records, leases and slots. cmd/xvmbot wires the NATS
// implementations (store.go); the worker's tests keep them in memory.

// bus is what the worker needs of the job bus.
type bus interface {
	RunWorker(ctx context.Context, slots int, h events.JobHandler) error
	PublishEvent(ctx context.Context, e events.Event) error
	// HandBack gives a delivery a previous run left unsettled back to the queue now.
	HandBack(ctx context.Context, token string) error
}

// Records keeps one execution record per job. The first Save of a job creates its record
// and is the claim: of two workers racing to start the same job, the loser gets an error
// wrapping ErrBusy; a Save over a record cancelled meanwhile gets ErrCancelled.
type Records interface {
	// Load returns the record of a job, or ok=false when the job never started.
	Load(ctx context.Context, jobID string) (rec events.JobRecord, ok bool, err error)
	// Save stores the record (creating it if needed), keeping a cancel request that
	// arrived since it was loaded.
	Save(ctx context.Context, rec events.JobRecord) error
}

// Locker hands out per-VM leases.
type Locker interface {
	// Lock takes the lease on key for owner; it fails with an error wrapping ErrBusy when
	// another owner holds it. The returned renew keeps it, release gives it back.
	Lock(ctx context.Context, key, owner string) (renew func(context.Context) error, release func(context.Context) error, err error)
	// Held lists the leases held by owners whose name starts with ownerPrefix, key to owner.
	Held(ctx context.Context, ownerPrefix string) (map[string]string, error)
}

// Scheduler hands out the per-host, per-datastore and per-vCenter slots a relocation
// occupies, counted across every worker; a full resource makes Acquire fail with an error
// wrapping ErrBusy, and the job waits its turn.
type Scheduler interface {
	Acquire(ctx context.Context, holder string, fp vcenter.Footprint) (Claim, error)
	// Hold re-takes slots after a crash, over the limits if need be: the task runs anyway.
	Hold(ctx context.Context, holder string, keys []string) (Claim, error)
}

// Claim is a set of slots held by one job.
type Claim interface {
	Renew(ctx context.Context) error
	Release(ctx context.Context) error
	Keys() []string
}
