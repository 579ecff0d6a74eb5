package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// errScheduler marks a failure to reach the scheduler's slots (not a full resource).
var errScheduler = errors.New("scheduler unavailable")

// ErrBusy says another job holds the VM's lease (or a resource the move needs is full).
var ErrBusy = errors.New("busy")

// watchRetryDelay is how soon a worker looks again for a running task it lost sight of.
const watchRetryDelay = 3 * time.Second

// ErrCancelled says the job was cancelled before it could start.
var ErrCancelled = errors.New("job cancelled")

// Config tunes a Worker.
type Config struct {
	// Name is the worker's identity in records, leases and events. A worker started
	// again under the same name takes back at once what its previous run left running
	// (takeBack): no two running workers may share a name.
	Name        string
	Slots       int // concurrent jobs (default 4)
	MaxAttempts int // tries for retryable faults before failing (default 3)
	// WaitDelay is how long a job that found its host or datastore full waits before it
	// is tried again (default 500ms).
	WaitDelay time.Duration
	// Windows are the change windows of target vCenters (by name): moves into a vCenter
	// with windows start only inside one. A vCenter without windows takes moves any time.
	Windows map[string][]approvals.Window
	// PlanReuse is how long a pre-flight made on this worker stays good (default 30s):
	// for the other jobs of the same request, and for the next tries of a job that waits
	// for a host or datastore slot. A job never starts on an older plan; vCenter still
	// checks the exact spec when the task starts.
	PlanReuse time.Duration
	// HoldFor is how long a job whose host or datastore is full waits in the worker for
	// a slot before it goes back to the queue for WaitDelay (default 2s).
	HoldFor time.Duration
	// Trust holds the public keys of the bots whose approvals this worker accepts: a job
	// runs only under a grant signed by one of them (nil: every job is refused).
	Trust *approvals.Keyring
	// Requests reads request records: a job starts only while its request is approved and
	// lists it, and the jobs of a request share one pre-flight (see planFor). Without it
	// every job is refused.
	Requests Requests
	// RenewEvery is how often the VM lease and the slots are renewed while a relocation
	// runs, and how often a cancel request is looked for (default 5s; keep it well under
	// the lease TTL).
	RenewEvery time.Duration
}

// Worker runs jobs.
type Worker struct {
	cfg     Config
	plan    planner
	move    mover
	look    inspector
	tags    tagger
	bus     bus
	records Records
	locks   Locker
	sched   Scheduler
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	plans   planCache
	freed   signal // fired whenever this worker gives slots back
}

// New returns a Worker.
// sched may be nil: no limits beyond the worker's own slots.
func New(cfg Config, vc relocator, b bus, records Records, locks Locker, sched Scheduler, logger *slog.Logger, reg prometheus.Registerer) *Worker {
	if cfg.Slots <= 0 {
		cfg.Slots = 4
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Name == "" {
		cfg.Name = "worker"
	}
	if cfg.WaitDelay <= 0 {
		cfg.WaitDelay = 500 * time.Millisecond
	}
	if cfg.RenewEvery <= 0 {
		cfg.RenewEvery = 5 * time.Second
	}
	if cfg.HoldFor <= 0 {
		cfg.HoldFor = 2 * time.Second
	}
	if cfg.PlanReuse <= 0 {
		cfg.PlanReuse = 30 * time.Second
	}
	w := &Worker{cfg: cfg, plan: vc, move: vc, look: vc, tags: vc, bus: b, records: records, locks: locks, sched: sched,
		log: logger.With("component", "worker", "worker", cfg.Name), m: newMetrics(reg), now: time.Now, plans: newPlanCache()}
	w.m.running.now = func() time.Time { return w.now() } // the worker's clock, which tests set
	return w
}

// Run takes jobs until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("worker started", "slots", w.cfg.Slots)
	w.takeBack(ctx)
	return w.bus.RunWorker(ctx, w.cfg.Slots, w.Handle)
}

// Handle runs one job delivery. It is exported so tests and the bus runner share it.
func (w *Worker) Handle(ctx context.Context, j events.Job, d events.Delivery) (err error) {
	jr := &jobRun{w: w, j: j, d: d,
		log: w.log.With("job_id", j.ID, "request_id", j.RequestID, "vm", j.VM, "src_vc", j.SourceVC, "dst_vc", j.TargetVC)}
	defer func() {
		if p := recover(); p != nil {
			jr.log.Error("job handler panic", "panic", p, "stack", string(debug.Stack()))
			err = w.afterPanic(ctx, j, p, jr.log)
		}
	}()
	return jr.handle(ctx)
}

// afterPanic settles a delivery that panicked: it is tried again (a redelivery of a job
// whose task was started re-attaches to it, it never starts a second move) up to
// MaxAttempts, then reported failed, so that nobody waits for an outcome that would
// never come. The panic's value goes to the log only.
func (w *Worker) afterPanic(ctx context.Context, j events.Job, p any, log *slog.Logger) error {
	retry := events.RetryAfter(fmt.Errorf("%s: internal error: %v", j.VM, p), watchRetryDelay)
	rec, ok, err := w.records.Load(ctx, j.ID)
	if err != nil || !ok || rec.Attempts < w.cfg.MaxAttempts {
		return retry
	}
	ierr := &vcenter.Fault{VM: j.VM, Kind: vcenter.KindInternalError,
		Message: fmt.Sprintf("xvmbot failed internally while moving %s, %d times", j.VM, rec.Attempts),
		Hint: fmt.Sprintf("check where %s is in %s and %s; the worker's log has the details (job_id=%s): report them",
			j.VM, j.SourceVC, j.TargetVC, j.ID)}
	var origin *move.Origin
	if rec.TaskRef != "" && rec.Move != nil {
		origin = rec.Move.Origin // the task may have moved it: undo can take it back
	}
	jr := &jobRun{w: w, j: j, rec: rec, log: log}
	return jr.fail(ctx, ierr, origin)
}
