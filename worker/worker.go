package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// relocator is what the worker needs of vcenter; *vcenter.Manager has it.
type relocator interface {
	Plan(ctx context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error)
	RecentPlan(spec vcenter.MoveSpec, maxAge time.Duration) (*vcenter.Plan, bool)
	Start(ctx context.Context, p *vcenter.Plan, vm string) (taskRef string, err error)
	Watch(ctx context.Context, vcName, taskRef, vm string, progress vcenter.ProgressFunc) (*vcenter.Result, error)
	Locate(ctx context.Context, vcName, vm string) (bool, error)
	Footprint(ctx context.Context, p *vcenter.Plan, vm string) (vcenter.Footprint, error)
	Cancel(ctx context.Context, vcName, taskRef string) error
	Where(ctx context.Context, vcName, vm string) (*vcenter.Where, error)
	ReadMetadata(ctx context.Context, vcName, vm string) (*vcenter.Metadata, error)
	ApplyMetadata(ctx context.Context, vcName, vm string, md *vcenter.Metadata) error
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

// bus is what the worker needs of the NATS side.
type bus interface {
	RunWorker(ctx context.Context, slots int, h events.JobHandler) error
	PublishEvent(ctx context.Context, e events.Event) error
}

// Records keeps one execution record per job; Claim must let exactly one caller start.
type Records interface {
	// Load returns the record of a job, or ok=false when the job never started.
	Load(ctx context.Context, jobID string) (rec Record, ok bool, err error)
	// Save stores the record (creating it if needed).
	Save(ctx context.Context, rec Record) error
}

// Record is what the worker remembers of a job between deliveries.
type Record struct {
	JobID    string
	State    string // preparing | running | succeeded | failed | cancelled
	SourceVC string // the vCenter the task runs on
	Worker   string
	Attempts int
	TaskRef  string
	Error    string
	// Slots are the scheduling slots the job's running relocation holds.
	Slots []string
	// CancelRequested is set (by the bot) when someone cancels the job while it runs.
	CancelRequested bool
	CancelledBy     string
	// Move is saved with the task: the planned placement and what the VM leaves behind.
	Move *events.JobMove
	// Final is the outcome event, saved with the final state, re-sent as it was.
	Final     *events.Event
	UpdatedAt time.Time
}

// Locker hands out per-VM leases.
type Locker interface {
	// Lock takes the lease on key for owner; it fails with an error wrapping ErrBusy when
	// another owner holds it. The returned renew keeps it, release gives it back.
	Lock(ctx context.Context, key, owner string) (renew func(context.Context) error, release func(context.Context) error, err error)
}

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
	Name        string        // worker identity in records, leases and events
	Slots       int           // concurrent jobs (default 4)
	MaxAttempts int           // tries for retryable faults before failing (default 3)
	RetryDelay  time.Duration // minimum gap before a retry (informational; the bus decides)
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
	vc      relocator
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
	return &Worker{cfg: cfg, vc: vc, bus: b, records: records, locks: locks, sched: sched,
		log: logger.With("component", "worker", "worker", cfg.Name), m: newMetrics(reg), now: time.Now, plans: newPlanCache()}
}

// Run takes jobs until ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("worker started", "slots", w.cfg.Slots)
	return w.bus.RunWorker(ctx, w.cfg.Slots, w.Handle)
}

// Handle runs one job delivery. It is exported so tests and the bus runner share it.
func (w *Worker) Handle(ctx context.Context, j events.Job, d events.Delivery) (err error) {
	log := w.log.With("job_id", j.ID, "request_id", j.RequestID, "vm", j.VM, "src_vc", j.SourceVC, "dst_vc", j.TargetVC)
	defer func() {
		if p := recover(); p != nil {
			log.Error("job handler panic", "panic", p, "stack", string(debug.Stack()))
			err = w.afterPanic(ctx, j, p, log)
		}
	}()

	// Nothing is read or locked for a job whose approval does not verify: a forged job must
	// not even hold up the real one.
	grant, err := checkJob(w.cfg.Trust, j)
	if err != nil {
		return w.refuse(ctx, j, nil, nil, err, log)
	}

	rec, seen, err := w.records.Load(ctx, j.ID)
	if err != nil {
		return fmt.Errorf("load job record %s: %w", j.ID, events.ErrRetry)
	}
	if seen && rec.State == "cancelled" {
		log.Info("job was cancelled; nothing to run", "by", rec.CancelledBy)
		return w.announceFinal(ctx, j, rec)
	}
	if seen && rec.State == stateWaiting && rec.CancelRequested {
		// Cancelled while it waited for a slot: nothing ever ran.
		w.plans.done(j.ID)
		return w.cancelled(ctx, j, rec, log)
	}
	if seen && (rec.State == "succeeded" || rec.State == "failed") {
		// Finished before: the final event may not have reached the bus if the previous
		// worker died right after recording it, so send it again (same id: stored once).
		log.Info("job already finished, re-announcing", "state", rec.State)
		return w.announceFinal(ctx, j, rec)
	}

	// The lease is the job's, not the worker's: one worker runs several jobs at once, and
	// two jobs for the same VM from the same vCenter (two requests for it) must not both
	// run.
	// A redelivery of the same job to a worker of the same name takes it back at once.
	renew, release, err := w.locks.Lock(ctx, leaseKey(j), w.cfg.Name+"/"+j.ID)
	if errors.Is(err, ErrBusy) {
		log.Info("vm lease held by another job, retrying later")
		return fmt.Errorf("%w: %w", err, events.ErrRetry)
	}
	if err != nil {
		return fmt.Errorf("lease for %s: %w: %w", j.VM, err, events.ErrRetry)
	}
	defer func() {
		// The lease must go even when ctx is cancelled (shutdown), or the next worker
		// would wait a whole lease TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			log.Warn("release lease", "err", err)
		}
	}()

	if !seen || rec.State == "" || rec.State == stateWaiting {
		if wait, err := w.outsideWindow(ctx, j, log); wait {
			return err
		}
	}

	// A previous delivery that got this far (its worker died, or vCenter stopped
	// answering) must never lead to a second relocation started blindly: follow the
	// recorded task, or see whether the VM already arrived.
	resuming := seen && (rec.State == "running" || rec.State == "preparing")
	if !resuming {
		rec = Record{JobID: j.ID, State: "preparing", SourceVC: j.SourceVC, Attempts: rec.Attempts}
		// Checked before the job's record claims it: a refused job leaves nothing behind.
		if err := w.admitted(ctx, j, grant, rec, log); err != nil {
			return ackRefused(err)
		}
	}
	rec.Attempts++
	rec.Worker, rec.UpdatedAt = w.cfg.Name, w.now()
	if err := w.records.Save(ctx, rec); errors.Is(err, ErrCancelled) {
		return w.announceFinal(ctx, j, Record{JobID: j.ID, State: "cancelled", Error: "cancelled before it started"})
	} else if err != nil {
		return fmt.Errorf("save job record: %w: %w", err, events.ErrRetry)
	}
	if resuming {
		return w.resume(ctx, j, grant, d, rec, renew, log)
	}
	return w.run(ctx, j, grant, d, rec, renew, log)
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
	ierr := &vcenter.Fault{VM: j.VM, Kind: "InternalError",
		Message: fmt.Sprintf("xvmbot failed internally while moving %s, %d times", j.VM, rec.Attempts),
		Hint: fmt.Sprintf("check where %s is in %s and %s; the worker's log has the details (job_id=%s): report them",
			j.VM, j.SourceVC, j.TargetVC, j.ID)}
	var origin *move.Origin
	if rec.TaskRef != "" && rec.Move != nil {
		origin = rec.Move.Origin // the task may have moved it: undo can take it back
	}
	return w.fail(ctx, j, rec, ierr, origin, 0, log)
}

// resume continues a job a previous delivery started.
func (w *Worker) resume(ctx context.Context, j events.Job, g *approvals.Grant, d events.Delivery, rec Record, renew func(context.Context) error, log *slog.Logger) error {
	start := w.now()
	if rec.TaskRef != "" {
		log.Info("re-attaching to the vCenter task of an interrupted delivery", "task", rec.TaskRef, "attempt", rec.Attempts)
		w.publish(ctx, log, w.event(j, events.EventStarted, fmt.Sprintf("%s: following task %s after a restart", j.VM, rec.TaskRef), 0))
		var claim Claim = noClaim{}
		if w.sched != nil && len(rec.Slots) > 0 {
			if c, err := w.sched.Hold(ctx, j.ID, rec.Slots); err != nil {
				log.Warn("could not hold the running move's slots again", "err", err)
			} else {
				claim = c
			}
		}
		defer w.release(ctx, claim, log)
		w.m.inFlight.Inc()
		stop := w.keepAlive(ctx, log, d, renew, claim.Renew, w.cancelWatch(j, log))
		res, err := w.vc.Watch(ctx, rec.SourceVC, rec.TaskRef, j.VM, w.onProgress(ctx, j, d, renew, log))
		stop()
		w.m.inFlight.Dec()
		var f *vcenter.Fault
		if err != nil && errors.As(err, &f) && f.Kind == "ManagedObjectNotFound" {
			// vCenter forgot the task (restart, task history purged): fall through to
			// checking where the VM is.
			log.Warn("recorded task is gone from vCenter", "task", rec.TaskRef)
		} else {
			var done success
			if err == nil {
				done, err = w.afterMove(ctx, j, rec.Move, log)
			}
			return w.settle(ctx, j, rec, res, done, err, w.now().Sub(start), log)
		}
	}
	arrived, err := w.arrived(ctx, j)
	if err != nil {
		return w.finish(ctx, j, rec, nil, fmt.Errorf("check where %s is: %w", j.VM, err), w.now().Sub(start), log)
	}
	if arrived {
		log.Info("vm already arrived in target after an interrupted delivery")
		done, err := w.afterMove(ctx, j, rec.Move, log)
		return w.settle(ctx, j, rec, &vcenter.Result{VM: j.VM, TaskRef: rec.TaskRef}, done, err, w.now().Sub(start), log)
	}
	// Nothing runs: a new relocation is started only if the approval still holds.
	if err := w.admitted(ctx, j, g, rec, log); err != nil {
		return ackRefused(err)
	}
	rec.State, rec.TaskRef, rec.Move, rec.Worker, rec.UpdatedAt = "preparing", "", nil, w.cfg.Name, w.now()
	if err := w.records.Save(ctx, rec); err != nil {
		return fmt.Errorf("save job record: %w: %w", err, events.ErrRetry)
	}
	return w.run(ctx, j, g, d, rec, renew, log)
}

// run starts a new relocation of the job's VM and follows it to its end. Every way to it
// has admitted the job first (admitted).
func (w *Worker) run(ctx context.Context, j events.Job, g *approvals.Grant, d events.Delivery, rec Record, renew func(context.Context) error, log *slog.Logger) error {
	start := w.now()
	w.m.inFlight.Inc()
	defer w.m.inFlight.Dec()

	// Where the VM is now is what /xvm undo will ask to go back to; and a cross-vCenter
	// relocation leaves tags and custom attributes behind: both are read while the move
	// is planned and its slots taken, so that they are ready when the slots are (a job
	// that goes back to the queue to wait reads them again next time), and the metadata
	// is copied after the move.
	before := w.readBefore(ctx, j, log)
	defer before() // every way out waits for the reads
	wp, ok := w.plans.waiting(j.ID, w.now(), w.cfg.PlanReuse)
	if !ok {
		plan, err := w.planFor(ctx, j)
		if err == nil && plan.BlockedFor(j.VM) {
			err = blockedError(plan, j.VM)
		}
		if err != nil {
			return w.finish(ctx, j, rec, nil, err, w.now().Sub(start), log)
		}
		if err := checkObjects(g, plan, j.VM); err != nil {
			return w.refuse(ctx, j, g, &rec, err, log)
		}
		wp = w.candidates(j, plan, log)
	}
	plan, claim, err := w.claimAny(ctx, j, wp)
	if errors.Is(err, ErrBusy) {
		plan, claim, err = w.holdForSlots(ctx, j, wp, renew, log)
	}
	if errors.Is(err, errScheduler) && ctx.Err() == nil {
		// The slots live in NATS, which may be electing a new leader: nothing started,
		// so this is a wait, not a failure of the move.
		log.Warn("could not reach the scheduler's slots; trying again", "err", err)
		err = fmt.Errorf("%w: %w", err, ErrBusy)
	}
	if errors.Is(err, ErrBusy) {
		// Waiting for a free host or datastore is not an attempt, and nothing started:
		// the next delivery starts afresh (no need to look for a running task) with the
		// plans made now, while they are fresh.
		w.plans.wait(j.ID, wp, w.now(), w.cfg.PlanReuse)
		rec.Attempts--
		rec.State = stateWaiting
		if serr := w.records.Save(ctx, rec); serr != nil {
			log.Warn("save job record", "err", serr)
		}
		log.Debug("waiting for a free slot", "err", err)
		return events.RetryAfter(fmt.Errorf("%s waits: %w", j.VM, err), w.cfg.WaitDelay)
	}
	w.plans.done(j.ID)
	if err != nil {
		return w.finish(ctx, j, rec, nil, err, w.now().Sub(start), log)
	}
	if plan != wp.plans[0] {
		log.Debug("moved to another host of the cluster: the planned one was full", "planned", wp.plans[0].Host, "host", plan.Host)
	}
	releaseSlots := sync.OnceFunc(func() { w.release(ctx, claim, log) })
	defer releaseSlots()
	rec.Slots = claim.Keys()
	if cur, ok, err := w.records.Load(ctx, j.ID); err == nil && ok && cur.CancelRequested {
		return w.cancelled(ctx, j, cur, log)
	}
	// Said once the move has its slots: a job that waits for a free host is not started.
	w.publish(ctx, log, w.event(j, events.EventStarted, fmt.Sprintf("%s: started (attempt %d)", j.VM, rec.Attempts), 0))
	stop := w.keepAlive(ctx, log, d, renew, claim.Renew, w.cancelWatch(j, log))
	defer stop()
	origin, meta, metaErr := before()
	move := plannedMove(plan, j.VM, origin, meta, metaErr)
	taskRef, err := w.vc.Start(ctx, plan, j.VM)
	if err != nil {
		return w.finish(ctx, j, rec, nil, err, w.now().Sub(start), log)
	}
	// From here on a relocation runs in vCenter whatever happens to this process: record
	// the task so whoever gets the job next follows it instead of starting another, and
	// what it needs to finish the job as this worker would.
	rec.State, rec.TaskRef, rec.Move, rec.UpdatedAt = "running", taskRef, move, w.now()
	w.saveInsisting(ctx, rec, log)
	log.Info("relocation started", "task", taskRef)
	res, err := w.vc.Watch(ctx, j.SourceVC, taskRef, j.VM, w.onProgress(ctx, j, d, renew, log))
	if err == nil {
		// The task is over: its host and datastore can take the next move while this one
		// is verified and its metadata copied. (A lost watch keeps them: the task may run.)
		stop()
		releaseSlots()
	}
	var done success
	if err == nil {
		done, err = w.afterMove(ctx, j, move, log)
	}
	return w.settle(ctx, j, rec, res, done, err, w.now().Sub(start), log)
}

// saveInsisting stores the record of a started relocation. Without it a redelivery would
// not know the task, so a failed write is tried again for a while before it is given up
// (the next delivery then finds the move by where the VM is).
func (w *Worker) saveInsisting(ctx context.Context, rec Record, log *slog.Logger) {
	for attempt := 1; ; attempt++ {
		err := w.records.Save(ctx, rec)
		if err == nil || ctx.Err() != nil {
			return
		}
		if attempt == 10 {
			log.Error("could not record the running task", "task", rec.TaskRef, "err", err)
			return
		}
		log.Warn("record the running task; trying again", "task", rec.TaskRef, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

// plannedMove is what the job record keeps of a move as it starts.
func plannedMove(plan *vcenter.Plan, vm string, origin *vcenter.Where, md *vcenter.Metadata, mdErr error) *events.JobMove {
	mv := &events.JobMove{Host: plan.Host, Pool: plan.Pool, Datastore: plan.Datastore, Folder: plan.Folder,
		Disks: slices.Clone(plan.Spec.Disks)}
	for _, v := range plan.VMs {
		if v.Name == vm {
			for _, nic := range v.NICs {
				mv.NICs = append(mv.NICs, events.PlannedNIC{Label: nic.Label, Target: nic.Target})
			}
		}
	}
	if origin != nil {
		o := origin.Origin()
		mv.Origin, mv.OriginNICs = &o, origin.Networks
	}
	switch {
	case mdErr != nil:
		mv.MetadataError = oneLine(mdErr)
	case md != nil:
		mv.Attributes = md.Attributes
		for _, t := range md.Tags {
			mv.Tags = append(mv.Tags, events.Tag{Category: t.Category, Name: t.Name})
		}
	}
	return mv
}

// afterMove finishes a move whose task succeeded, on whichever worker saw it end: it
// verifies the placement, copies the tags and custom attributes, and returns where the
// VM was, for undo. mv is nil only when the worker that started the move stopped before
// it could record it.
func (w *Worker) afterMove(ctx context.Context, j events.Job, mv *events.JobMove, log *slog.Logger) (success, error) {
	if mv == nil {
		log.Warn("the move's plan was not recorded; placement not verified, tags not copied, no undo")
		return success{note: "its placement was not verified and its tags and custom attributes were not copied " +
			"(the worker that started the move stopped before recording it): check them in " + j.TargetVC}, nil
	}
	var done success
	var unverified string
	var err error
	if done.origin, unverified, err = w.verify(ctx, j, mv, log); err != nil {
		return done, err // the origin too: the VM moved, undo can take it back
	}
	var notes []string
	for _, n := range []string{unverified, w.copyMetadata(ctx, j, mv, log)} {
		if n != "" {
			notes = append(notes, n)
		}
	}
	done.note = strings.Join(notes, "; ")
	return done, nil
}

// success is what a move that this worker watched to its end adds to the succeeded event.
type success struct {
	origin *move.Origin // where the VM was, for /xvm undo
	note   string       // a warning (tags not copied)
}

// copyMetadata applies the source's tags and custom attributes, as recorded when the
// move started, to the moved VM. A failure does not fail the job: the VM runs where it was
// approved to; it becomes a warning on the succeeded job.
func (w *Worker) copyMetadata(ctx context.Context, j events.Job, mv *events.JobMove, log *slog.Logger) string {
	if mv.MetadataError != "" {
		return "tags and custom attributes not copied: they could not be read before the move: " + mv.MetadataError
	}
	md := &vcenter.Metadata{Attributes: mv.Attributes}
	for _, t := range mv.Tags {
		md.Tags = append(md.Tags, vcenter.Tag{Category: t.Category, Name: t.Name})
	}
	err := w.vc.ApplyMetadata(ctx, j.TargetVC, j.VM, md)
	if err == nil || ctx.Err() != nil {
		return ""
	}
	log.Warn("tags and custom attributes not copied", "err", err)
	return "tags and custom attributes not copied: " + oneLine(err)
}

// verify checks that the VM is where the request said, and returns where it was, for undo. A
// relocation whose task succeeded but left the VM elsewhere is reported as a failure: the
// people who approved one placement must learn that another one happened.
//
// If where the VM is now cannot be read, the move is not failed (vCenter said it
// succeeded), but note says what was not done.
func (w *Worker) verify(ctx context.Context, j events.Job, mv *events.JobMove, log *slog.Logger) (origin *move.Origin, note string, err error) {
	after, err := w.vc.Where(ctx, j.TargetVC, j.VM)
	if err != nil {
		log.Warn("could not verify the placement after the move", "err", err)
		return nil, fmt.Sprintf("its placement could not be read to verify it (%s), so /xvm undo is not offered: check it in %s",
			oneLine(err), j.TargetVC), nil
	}
	var off []string
	want := func(what, got, exp string) {
		if exp != "" && exp != "/" && got != strings.Trim(exp, "/") {
			off = append(off, fmt.Sprintf("%s is %q, not %q", what, got, exp))
		}
	}
	want("host", after.Host, mv.Host)
	want("resource pool", after.Pool, mv.Pool)
	want("datastore", after.Datastore, mv.Datastore)
	want("folder", after.Folder, mv.Folder)
	for _, d := range mv.Disks {
		i := slices.IndexFunc(after.Disks, func(w move.Disk) bool { return w.Disk == d.Disk })
		if d.Datastore != "" && i >= 0 {
			want(fmt.Sprintf("Hard disk %d's datastore", d.Disk), after.Disks[i].Datastore, d.Datastore)
		}
	}
	for i, nic := range mv.NICs {
		if i < len(after.Networks) && nic.Target != "" && after.Networks[i] != nic.Target {
			off = append(off, fmt.Sprintf("%s is on %q, not %q", nic.Label, after.Networks[i], nic.Target))
		}
	}
	if mv.Origin != nil {
		o := mv.Origin.Clone()
		o.Networks = move.NetworksBack(after.Networks, mv.OriginNICs)
		origin = &o
	}
	if len(off) > 0 {
		return origin, "", &vcenter.Fault{VCenter: j.TargetVC, VM: j.VM, Step: stepVerify, Kind: "PlacementMismatch",
			Message: fmt.Sprintf("%s moved to %s, but not as approved: %s", j.VM, j.TargetVC, strings.Join(off, "; ")),
			Hint:    fmt.Sprintf("check %s in %s; /xvm undo %s asks for the way back", j.VM, j.TargetVC, j.ID)}
	}
	return origin, "", nil
}

// outsideWindow holds a job that may not start yet because its target vCenter's change
// window is closed; it says so once in the thread and hands the job back until the window
// opens (checking again at least every five minutes, so a config change takes effect).
func (w *Worker) outsideWindow(ctx context.Context, j events.Job, log *slog.Logger) (bool, error) {
	ws := w.cfg.Windows[j.TargetVC]
	now := w.now()
	next := approvals.NextStart(ws, now)
	if !next.After(now) {
		return false, nil
	}
	log.Info("target change window closed; job waits", "opens_at", next)
	e := w.event(j, events.EventQueued, fmt.Sprintf("%s waits for %s's change window, which opens %s", j.VM, j.TargetVC,
		next.Format("Mon 2 Jan 15:04 MST")), 0)
	e.ID = fmt.Sprintf("%s.window.%d", j.ID, next.Unix()) // said once per window
	w.publish(ctx, log, e)
	return true, events.RetryAfter(fmt.Errorf("%s: change window of %s opens %s", j.VM, j.TargetVC, next.Format(time.RFC3339)),
		min(next.Sub(now), 5*time.Minute))
}

// cancelWatch returns a check, run on the keep-alive timer, that cancels the job's vCenter
// task once someone has asked for it (the bot sets CancelRequested on the job record).
func (w *Worker) cancelWatch(j events.Job, log *slog.Logger) func(context.Context) error {
	asked := false
	return func(ctx context.Context) error {
		if asked {
			return nil
		}
		cur, ok, err := w.records.Load(ctx, j.ID)
		if err != nil || !ok || !cur.CancelRequested || cur.TaskRef == "" {
			return err
		}
		log.Info("cancelling the vCenter task on request", "task", cur.TaskRef, "by", cur.CancelledBy)
		err = w.vc.Cancel(ctx, cur.SourceVC, cur.TaskRef)
		switch {
		case err == nil:
			asked = true
		case unreachable(err):
			log.Warn("could not reach vCenter to cancel the task; asking again", "task", cur.TaskRef, "err", err)
		default:
			// vCenter cancels a relocation only while it can roll it back: past that, the
			// move finishes. Whoever cancelled must hear that it will.
			asked = true
			log.Warn("vCenter refused to cancel the task; it will finish", "task", cur.TaskRef, "err", err)
			why := "vCenter refused"
			var f *vcenter.Fault
			switch {
			case errors.As(err, &f) && f.Kind == "InvalidState":
				why = "the VM is already switching over to " + j.TargetVC
			case errors.As(err, &f):
				why = "vCenter answered " + f.Kind
			}
			w.publish(ctx, log, w.event(j, events.EventProgress, fmt.Sprintf(
				"%s: vCenter could not cancel task %s (%s); the move will finish", j.VM, cur.TaskRef, why), 0))
		}
		return nil
	}
}

// unreachable reports whether err says vCenter did not answer at all (as opposed to an
// answer that refused).
func unreachable(err error) bool {
	var f *vcenter.Fault
	return errors.As(err, &f) && (f.Kind == vcenter.KindUnreachable || f.Kind == vcenter.KindCanceled)
}

// kindRequestCanceled is the fault of a task vCenter ended because someone cancelled it.
const kindRequestCanceled = "RequestCanceled"

// Steps of a failure the worker itself detects, next to vcenter's Step constants.
const (
	stepPreflight = "pre-flight"
	stepVerify    = "verify"
)

// cancelledByVCenter reports whether err is a task that vCenter ended because of a cancel.
func cancelledByVCenter(err error) bool {
	var f *vcenter.Fault
	return errors.As(err, &f) && f.Kind == kindRequestCanceled
}

// cancelled records and announces a job that stopped because someone cancelled it.
func (w *Worker) cancelled(ctx context.Context, j events.Job, rec Record, log *slog.Logger) error {
	rec.State, rec.UpdatedAt = "cancelled", w.now()
	if rec.CancelledBy != "" {
		rec.Error = "cancelled by " + rec.CancelledBy
	}
	e := w.event(j, events.EventCancelled, rec.Error, 0)
	rec.Final = &e
	if err := w.records.Save(ctx, rec); err != nil && !errors.Is(err, ErrCancelled) {
		log.Error("save cancelled job record", "err", err)
	}
	w.m.jobs.WithLabelValues(j.Direction, "cancelled").Inc()
	log.Info("job cancelled", "by", rec.CancelledBy, "task", rec.TaskRef)
	return w.publishFinal(ctx, log, e)
}

// holdForSlots waits up to HoldFor for a full host or datastore to free up, and takes
// the slots when one does. Moves end all the time in a wave: this worker's own releases
// wake it at once, other workers' are seen by looking again every WaitDelay; going back
// to the queue instead would leave a freed slot idle until some job's retry came round.
func (w *Worker) holdForSlots(ctx context.Context, j events.Job, wp *waitingPlans, renew func(context.Context) error, log *slog.Logger) (*vcenter.Plan, Claim, error) {
	deadline := time.After(w.cfg.HoldFor)
	renewed := w.now()
	for {
		if w.now().Sub(renewed) >= w.cfg.RenewEvery {
			// The VM's lease must outlast the wait, as it outlasts a running move.
			if err := renew(ctx); err != nil {
				log.Warn("renew vm lease while waiting for a slot", "err", err)
			}
			renewed = w.now()
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-deadline:
			return nil, nil, fmt.Errorf("still full after %s: %w", w.cfg.HoldFor, ErrBusy)
		case <-w.freed.wait():
		case <-time.After(w.cfg.WaitDelay):
		}
		plan, claim, err := w.claimAny(ctx, j, wp)
		if !errors.Is(err, ErrBusy) {
			return plan, claim, err
		}
	}
}

// readBefore reads, in the background, where the VM is and its tags and custom
// attributes; the returned func waits for both (it may be called more than once).
func (w *Worker) readBefore(ctx context.Context, j events.Job, log *slog.Logger) func() (*vcenter.Where, *vcenter.Metadata, error) {
	var (
		origin  *vcenter.Where
		meta    *vcenter.Metadata
		metaErr error
		reading sync.WaitGroup
	)
	reading.Go(func() {
		var err error
		if origin, err = w.vc.Where(ctx, j.SourceVC, j.VM); err != nil && ctx.Err() == nil {
			log.Warn("could not record the original placement; undo will not be offered", "err", err)
		}
	})
	reading.Go(func() {
		if meta, metaErr = w.vc.ReadMetadata(ctx, j.SourceVC, j.VM); metaErr != nil && ctx.Err() == nil {
			log.Warn("could not read tags and custom attributes; they will not be copied", "err", metaErr)
		}
	})
	return func() (*vcenter.Where, *vcenter.Metadata, error) {
		reading.Wait()
		return origin, meta, metaErr
	}
}

// claimAny takes the slots of the first candidate plan whose host and datastore have
// room; it fails with an error wrapping ErrBusy when none has. Footprints are read once
// per candidate and kept with the waiting plans.
func (w *Worker) claimAny(ctx context.Context, j events.Job, wp *waitingPlans) (*vcenter.Plan, Claim, error) {
	if w.sched == nil {
		return wp.plans[0], noClaim{}, nil
	}
	err := fmt.Errorf("no plan to try: %w", ErrBusy)
	for i, p := range wp.plans {
		if wp.fps[i] == nil {
			fp, ferr := w.vc.Footprint(ctx, p, j.VM)
			if ferr != nil {
				return nil, nil, ferr
			}
			wp.fps[i] = &fp
		}
		var c Claim
		c, err = w.sched.Acquire(ctx, j.ID, *wp.fps[i])
		if err == nil {
			return p, c, nil
		}
		if !errors.Is(err, ErrBusy) {
			return nil, nil, fmt.Errorf("%w: %w", errScheduler, err)
		}
	}
	return nil, nil, err
}

// release gives a claim's slots back, even during shutdown.
func (w *Worker) release(ctx context.Context, c Claim, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := c.Release(rctx); err != nil {
		log.Warn("release slots", "err", err)
	}
	w.freed.fire()
}

// noClaim is the claim of a worker without limits.
type noClaim struct{}

func (noClaim) Renew(context.Context) error   { return nil }
func (noClaim) Release(context.Context) error { return nil }
func (noClaim) Keys() []string                { return nil }

// keepAlive renews the VM lease and the slots on a timer while a relocation runs: a task
// can sit at one percentage for minutes, and progress alone would let them lapse. The
// returned stop waits for the renewer to end.
func (w *Worker) keepAlive(ctx context.Context, log *slog.Logger, d events.Delivery, renews ...func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.RenewEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = d.InProgress()
				for _, r := range renews {
					if err := r(ctx); err != nil && ctx.Err() == nil {
						log.Warn("renew lease or slots", "err", err)
					}
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func (w *Worker) onProgress(ctx context.Context, j events.Job, d events.Delivery, renew func(context.Context) error, log *slog.Logger) vcenter.ProgressFunc {
	last := -1
	return func(pct int) {
		if pct == last {
			return
		}
		last = pct
		_ = d.InProgress()
		if err := renew(ctx); err != nil {
			log.Warn("renew vm lease", "err", err)
		}
		w.publish(ctx, log, w.event(j, events.EventProgress, "", pct))
	}
}

// finish settles a job after an attempt: success, a retry later, or a reported failure.
func (w *Worker) finish(ctx context.Context, j events.Job, rec Record, res *vcenter.Result, err error, dur time.Duration, log *slog.Logger) error {
	return w.settle(ctx, j, rec, res, success{}, err, dur, log)
}

// settle is finish with what a watched move adds to its succeeded event.
func (w *Worker) settle(ctx context.Context, j events.Job, rec Record, res *vcenter.Result, done success, err error, dur time.Duration, log *slog.Logger) error {
	if ctx.Err() != nil {
		// Shutting down: leave the job unacknowledged and the record as it is so the next
		// worker follows the task (or re-checks where the VM is) instead of starting over.
		log.Info("worker stopping mid-job; the job will be redelivered", "task", rec.TaskRef)
		return ctx.Err()
	}
	if err != nil {
		// Cancelled means vCenter stopped the task because someone asked: a move that
		// failed for another reason while a cancel was pending failed, and says why.
		if cur, ok, lerr := w.records.Load(ctx, j.ID); lerr == nil && ok && cur.CancelRequested &&
			(rec.TaskRef == "" || cancelledByVCenter(err)) {
			cur.TaskRef = rec.TaskRef
			return w.cancelled(ctx, j, cur, log)
		}
		return w.fail(ctx, j, rec, err, done.origin, dur, log)
	}
	if res.TaskRef != "" {
		rec.TaskRef = res.TaskRef
	}
	e := w.event(j, events.EventSucceeded, fmt.Sprintf("%s now runs in %s", j.VM, j.TargetVC), 100)
	e.Duration, e.TaskRef, e.Origin, e.Warning = dur.Seconds(), rec.TaskRef, done.origin, done.note
	rec.State, rec.Error, rec.Final, rec.UpdatedAt = "succeeded", "", &e, w.now()
	if err := w.records.Save(ctx, rec); err != nil {
		log.Error("save succeeded job record", "err", err)
	}
	w.m.jobs.WithLabelValues(j.Direction, "succeeded").Inc()
	w.m.duration.WithLabelValues(j.Direction).Observe(dur.Seconds())
	log.Info("vm moved", "duration", dur.Round(time.Millisecond).String(), "task", rec.TaskRef)
	return w.publishFinal(ctx, log, e)
}

// fail reports a failed attempt: a retry later, or a failure. origin is set when the VM
// moved although the job failed (not as approved): undo can take it back.
func (w *Worker) fail(ctx context.Context, j events.Job, rec Record, err error, origin *move.Origin, dur time.Duration, log *slog.Logger) error {
	var f *vcenter.Fault
	kind, msg, hint, step := "Error", err.Error(), "", ""
	if errors.As(err, &f) {
		kind, msg, hint, step = f.Kind, f.Message, f.Hint, f.Step
	}
	var tpe *vcenter.ThumbprintError
	if errors.As(err, &tpe) {
		kind, msg = "ThumbprintMismatch", tpe.Error()
		hint = fmt.Sprintf("if %s's certificate was replaced on purpose, update vcenters[%s].thumbprint in the worker's config", tpe.VCenter, tpe.VCenter)
	}
	if rec.TaskRef != "" && f != nil && f.Step == vcenter.StepWatch && vcenter.IsRetryable(err) {
		// The task was started and only watching it failed (vCenter unreachable): its
		// outcome is unknown, not failed. Keep following it, however long the outage,
		// without spending the job's attempts.
		rec.Attempts = max(rec.Attempts-1, 0)
		if serr := w.records.Save(ctx, rec); serr != nil {
			log.Warn("save job record", "err", serr)
		}
		log.Warn("lost sight of the running task; will follow it again", "task", rec.TaskRef, "err", err)
		w.publish(ctx, log, w.event(j, events.EventProgress, fmt.Sprintf("%s: %s — the move goes on in vCenter; following task %s again",
			j.VM, msg, rec.TaskRef), 0))
		return events.RetryAfter(fmt.Errorf("%s: %w", j.VM, err), watchRetryDelay)
	}
	if vcenter.IsRetryable(err) && rec.Attempts < w.cfg.MaxAttempts {
		if rec.TaskRef != "" && f != nil && f.Step == vcenter.StepRelocate {
			// The task itself ended in a fault worth retrying (a network copy that broke
			// off, a host that stopped answering): vCenter rolled it back. The next try
			// is a new relocation, after checking where the VM is, not another look at
			// the failed task.
			rec.State, rec.TaskRef, rec.Slots, rec.Move, rec.UpdatedAt = "preparing", "", nil, nil, w.now()
			if serr := w.records.Save(ctx, rec); serr != nil {
				return fmt.Errorf("save job record: %w: %w", serr, events.ErrRetry)
			}
		}
		log.Warn("retryable fault, will retry", "fault", kind, "attempt", rec.Attempts, "err", err)
		w.publish(ctx, log, w.event(j, events.EventProgress, fmt.Sprintf("%s: %s — retrying (attempt %d of %d)", j.VM, msg, rec.Attempts, w.cfg.MaxAttempts), 0))
		return fmt.Errorf("%s: %w: %w", j.VM, err, events.ErrRetry)
	}
	if hint == "" {
		hint = fmt.Sprintf("the worker's log has the details (job_id=%s); once the cause is fixed, ask for the move again", j.ID)
	}
	e := w.event(j, events.EventFailed, msg, 0)
	e.Step, e.Fault, e.Error, e.Hint, e.Duration, e.Origin = stepWords(step, rec.TaskRef), kind, msg, hint, dur.Seconds(), origin
	rec.State, rec.Error, rec.Final, rec.UpdatedAt = "failed", msg, &e, w.now()
	if serr := w.records.Save(ctx, rec); serr != nil {
		log.Error("save failed job record", "err", serr)
	}
	w.m.jobs.WithLabelValues(j.Direction, "failed").Inc()
	w.m.duration.WithLabelValues(j.Direction).Observe(dur.Seconds())
	log.Error("vm move failed", "fault", kind, "step", e.Step, "attempts", rec.Attempts, "err", err)
	if perr := w.publishFinal(ctx, log, e); perr != nil {
		return perr
	}
	return fmt.Errorf("move %s: %w", j.VM, err)
}

// stepWords says in words where a move failed, from a fault's step.
func stepWords(step, taskRef string) string {
	switch step {
	case vcenter.StepLogin:
		return "logging in to vCenter"
	case vcenter.StepResolve:
		return "planning the move"
	case stepPreflight:
		return "pre-flight checks at start"
	case vcenter.StepRelocate:
		if taskRef != "" {
			return "relocation task " + taskRef
		}
		return "starting the relocation"
	case vcenter.StepWatch:
		return "following the relocation task"
	case stepVerify:
		return "verifying the placement after the move"
	}
	return "running the job"
}

// arrived reports whether the VM is in the target vCenter and no longer in the source.
func (w *Worker) arrived(ctx context.Context, j events.Job) (bool, error) {
	inTarget, err := w.vc.Locate(ctx, j.TargetVC, j.VM)
	if err != nil || !inTarget {
		return false, err
	}
	inSource, err := w.vc.Locate(ctx, j.SourceVC, j.VM)
	return !inSource, err
}

func (w *Worker) announceFinal(ctx context.Context, j events.Job, rec Record) error {
	if rec.Final != nil {
		// As first published, with its origin, warning, step and hint.
		if err := w.bus.PublishEvent(ctx, *rec.Final); err != nil {
			return fmt.Errorf("publish %s event: %w: %w", rec.Final.Type, err, events.ErrRetry)
		}
		return nil
	}
	var e events.Event
	switch rec.State {
	case "succeeded":
		e = w.event(j, events.EventSucceeded, fmt.Sprintf("%s now runs in %s", j.VM, j.TargetVC), 100)
		e.TaskRef = rec.TaskRef
	case "cancelled":
		msg := rec.Error
		if msg == "" {
			msg = "cancelled"
			if rec.CancelledBy != "" {
				msg = "cancelled by " + rec.CancelledBy
			}
		}
		e = w.event(j, events.EventCancelled, msg, 0)
	default:
		e = w.event(j, events.EventFailed, rec.Error, 0)
		e.Error = rec.Error
	}
	if err := w.bus.PublishEvent(ctx, e); err != nil {
		return fmt.Errorf("publish %s event: %w: %w", e.Type, err, events.ErrRetry)
	}
	return nil
}

func (w *Worker) event(j events.Job, t events.EventType, msg string, pct int) events.Event {
	id := j.ID + "." + string(t)
	if t == events.EventProgress || t == events.EventStarted {
		// Progress and start events may repeat across attempts; final ones are unique per job.
		id = fmt.Sprintf("%s.%s.%d.%d", j.ID, t, pct, w.now().UnixNano())
	}
	return events.Event{ID: id, Type: t, RequestID: j.RequestID, JobID: j.ID, VM: j.VM, Direction: j.Direction,
		SourceVC: j.SourceVC, TargetVC: j.TargetVC, Progress: pct, Message: msg, Worker: w.cfg.Name, At: w.now()}
}

func (w *Worker) publish(ctx context.Context, log *slog.Logger, e events.Event) {
	if err := w.bus.PublishEvent(ctx, e); err != nil {
		log.Warn("publish event", "type", e.Type, "err", err)
	}
}

// publishFinal insists: the final event is what tells people the outcome. If it still
// cannot be published, the job is handed back: its record holds the outcome, and the
// next delivery publishes it again (announceFinal) without running anything.
func (w *Worker) publishFinal(ctx context.Context, log *slog.Logger, e events.Event) error {
	ctx = context.WithoutCancel(ctx)
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.bus.PublishEvent(pctx, e)
		cancel()
		if err == nil {
			return nil
		}
		if attempt == 5 {
			log.Error("final event not published; it will be re-announced on redelivery", "type", e.Type, "err", err)
			return fmt.Errorf("publish %s event: %w: %w", e.Type, err, events.ErrRetry)
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

func leaseKey(j events.Job) string { return j.SourceVC + "." + j.VM }

// MoveSpec is what the planner resolves for job j: its VM, from and to its vCenters, placed
// as the job says.
func MoveSpec(j events.Job) vcenter.MoveSpec {
	return vcenter.MoveSpec{VMs: []string{j.VM}, Source: j.SourceVC, Target: j.TargetVC, Placement: j.Placement.Clone()}
}

// blockedError explains why pre-flight at start time refused the move of vm.
func blockedError(p *vcenter.Plan, vm string) error {
	for _, f := range p.Findings {
		if f.Severity == vcenter.Blocker && (f.VM == "" || f.VM == vm) {
			return &vcenter.Fault{VCenter: p.Source.Name, VM: f.VM, Step: stepPreflight, Kind: "PreflightBlocked",
				Message: f.Message, Hint: f.Hint}
		}
	}
	return errors.New("pre-flight blocked the move")
}

// oneLine is an error's text on one line, as a Slack message line shows it.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
