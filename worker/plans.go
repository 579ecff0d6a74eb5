package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// Requests reads request records. Admission returns what admitting one job of a request
// needs, as stored (an error wrapping approvals.ErrNotFound when there is no request); VMs
// lists the VMs of a request whose moves have not started, which a worker plans together,
// once, instead of one pre-flight per job.
type Requests interface {
	Admission(ctx context.Context, requestID, jobID string) (approvals.Admission, error)
	VMs(ctx context.Context, requestID string) ([]string, error)
}

// waitingPlans are the candidate plans of a job, the planned host first and then the
// other hosts of the cluster that qualify, with the footprint of each once read.
type waitingPlans struct {
	plans []*vcenter.Plan
	fps   []*vcenter.Footprint
}

// resolvedAt is when the plan (and so each candidate) was made.
func (wp *waitingPlans) resolvedAt() time.Time { return wp.plans[0].ResolvedAt }

// planCache keeps pre-flight results on the worker that made them, for at most the
// worker's PlanReuse:
//   - by request: the jobs of one request share one plan of all its remaining VMs, made
//     by whichever of them starts first (one resolution of 200 VMs costs about what two
//     resolutions of one VM cost);
//   - by job: the candidates of a job that waits for a slot, for its next delivery.
//
// A job that arrives after that time, or at another worker, is planned again.
type planCache struct {
	flight singleflight.Group

	mu        sync.Mutex
	byRequest map[string]*vcenter.Plan
	byJob     map[string]*waitingPlans
}

func newPlanCache() planCache {
	return planCache{byRequest: map[string]*vcenter.Plan{}, byJob: map[string]*waitingPlans{}}
}

// waiting returns the candidates kept for a job that waited, while they are fresh.
func (c *planCache) waiting(jobID string, now time.Time, reuse time.Duration) (*waitingPlans, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wp, ok := c.byJob[jobID]
	if !ok || now.Sub(wp.resolvedAt()) >= reuse {
		delete(c.byJob, jobID)
		return nil, false
	}
	return wp, true
}

// wait keeps a waiting job's candidates, and forgets whatever is too old to be used
// again (jobs another worker finished, cancelled ones, requests that ended).
func (c *planCache) wait(jobID string, wp *waitingPlans, now time.Time, reuse time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, old := range c.byJob {
		if now.Sub(old.resolvedAt()) >= reuse {
			delete(c.byJob, id)
		}
	}
	c.pruneRequestsLocked(now, reuse)
	c.byJob[jobID] = wp
}

// pruneRequestsLocked forgets the request plans older than reuse; c.mu is held.
func (c *planCache) pruneRequestsLocked(now time.Time, reuse time.Duration) {
	for key, p := range c.byRequest {
		if now.Sub(p.ResolvedAt) >= reuse {
			delete(c.byRequest, key)
		}
	}
}

// done forgets a job's candidates: it got its slots, or it ended.
func (c *planCache) done(jobID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byJob, jobID)
}

func (c *planCache) request(key, vm string, now time.Time, reuse time.Duration) (*vcenter.Plan, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.byRequest[key]
	if !ok || now.Sub(p.ResolvedAt) >= reuse || !slices.ContainsFunc(p.VMs, func(v vcenter.VM) bool { return v.Name == vm }) {
		return nil, false
	}
	return p, true
}

// keepRequest keeps a request's plan, and forgets the plans of other requests that are
// older than reuse (a worker that never sees a job wait must not keep every plan it made).
func (c *planCache) keepRequest(key string, p *vcenter.Plan, now time.Time, reuse time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneRequestsLocked(now, reuse)
	c.byRequest[key] = p
}

// size is how many plans are kept, for tests.
func (c *planCache) size() (requests, jobs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byRequest), len(c.byJob)
}

// planFor returns the pre-flight of job j: the plan of its request's remaining VMs made
// at most PlanReuse ago on this worker (or, in one process, by the bot), else the
// approved placement rechecked (recheck), else a new plan. Concurrent jobs of one request
// wait for a single resolution.
func (w *Worker) planFor(ctx context.Context, j events.Job, g *approvals.Grant, read *admissionRead, log *slog.Logger) (*vcenter.Plan, error) {
	spec := MoveSpec(j)
	resolved := g != nil && g.VM.Resolved != nil
	key := requestKey(j, spec)
	if p, ok := w.plans.request(key, j.VM, w.now(), w.cfg.PlanReuse); ok {
		return p, nil
	}
	v, err, _ := w.plans.flight.Do(key, func() (any, error) {
		if p, ok := w.plans.request(key, j.VM, w.now(), w.cfg.PlanReuse); ok {
			return p, nil // planned by the job just before this one
		}
		if vms, ok := read.notStarted(j.ID); ok && slices.Contains(vms, j.VM) {
			spec.VMs = vms
		} else if w.cfg.Requests != nil {
			vms, err := w.cfg.Requests.VMs(ctx, j.RequestID)
			if err != nil {
				w.log.Warn("could not list the request's VMs; planning this one alone", "request_id", j.RequestID, "err", err)
			} else if slices.Contains(vms, j.VM) {
				spec.VMs = vms
			}
		}
		// In one process the bot planned this very spec when the request was made: if
		// that was less than PlanReuse ago, it is this job's pre-flight.
		p, ok := w.plan.RecentPlan(spec, w.cfg.PlanReuse)
		if !ok && resolved {
			return (*vcenter.Plan)(nil), nil // each job rechecks its own approved placement
		}
		if !ok {
			var err error
			p, err = w.plan.Plan(ctx, spec)
			if err != nil && len(spec.VMs) > 1 && ctx.Err() == nil {
				// Other VMs of the request are moving meanwhile: one that left the source
				// between listing and reading fails the whole read (ManagedObjectNotFound).
				// Whatever it was, it must not fail this job: plan this VM alone.
				w.log.Info("planning the request's VMs together failed; planning this one alone",
					"request_id", j.RequestID, "vm", j.VM, "err", err)
				spec.VMs = []string{j.VM}
				return w.plan.Plan(ctx, spec)
			}
			if err != nil {
				return nil, err
			}
		}
		w.plans.keepRequest(key, p, w.now(), w.cfg.PlanReuse)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	p := v.(*vcenter.Plan)
	if p == nil {
		return w.recheck(ctx, j, g, log)
	}
	if !slices.ContainsFunc(p.VMs, func(v vcenter.VM) bool { return v.Name == j.VM }) && !p.BlockedFor(j.VM) {
		// Planned by another job of the request a moment ago without this VM (the request
		// changed in between): plan this one on its own.
		spec.VMs = []string{j.VM}
		return w.plan.Plan(ctx, spec)
	}
	return p, nil
}

// requestKey is the key of the plan of j's request in the worker's plan cache.
func requestKey(j events.Job, spec vcenter.MoveSpec) string {
	return fmt.Sprintf("%s|%s|%s|%+v", j.RequestID, spec.Source, spec.Target, spec.Placement)
}

// holdsPlan says, without reading vCenter or NATS, whether job j may start on a plan this
// process made a moment ago (planFor's, the waiting job's, or the bot's) rather than on a
// recheck of its approved placement.
func (w *Worker) holdsPlan(j events.Job) bool {
	now, reuse := w.now(), w.cfg.PlanReuse
	if _, ok := w.plans.waiting(j.ID, now, reuse); ok {
		return true
	}
	spec := MoveSpec(j)
	if _, ok := w.plans.request(requestKey(j, spec), j.VM, now, reuse); ok {
		return true
	}
	return w.plan.PlannedRecently(spec, j.VM, reuse)
}

// earlyRecheck is the recheck of a job's approved placement, started as soon as the job's
// grant verified so that its vCenter reads overlap the reads and writes of admission (the
// request, the VM's lease, the job's record). Its plan is used only by a delivery that
// admission then let run under that very grant (jobRun.early); a job refused, put back, or
// outside its change window drops it unused.
type earlyRecheck struct {
	done   chan struct{}
	plan   *vcenter.Plan
	err    error
	cancel context.CancelFunc
}

// recheckEarly starts the recheck of job j's approved placement under grant g, in the
// background, when the grant carries one, the target's change window is open and this
// process holds no fresh plan of the move (a recheck would then read vCenter for
// nothing); nil otherwise. Whoever starts it stops it (stop).
func (w *Worker) recheckEarly(ctx context.Context, j events.Job, g *approvals.Grant) *earlyRecheck {
	if g == nil || g.VM.Resolved == nil || w.holdsPlan(j) {
		return nil
	}
	if now := w.now(); approvals.NextStart(w.cfg.Windows[j.TargetVC], now).After(now) {
		return nil // the job goes back to wait for its window (outsideWindow)
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &earlyRecheck{done: make(chan struct{}), cancel: cancel}
	vm, r := g.VM.VM, g.VM.Resolved
	go func() {
		defer close(e.done)
		e.plan, e.err = w.plan.Recheck(ctx, MoveSpec(j), vm, r)
	}()
	return e
}

// result waits for the recheck.
func (e *earlyRecheck) result() (*vcenter.Plan, error) {
	<-e.done
	return e.plan, e.err
}

// stop ends the recheck if it still runs, and waits for it (nil e included).
func (e *earlyRecheck) stop() {
	if e == nil {
		return
	}
	e.cancel()
	<-e.done
}

// The results of a recheck, as xvm_worker_rechecks_total counts them.
const (
	recheckUsed    = "used"
	recheckChanged = "changed"
	recheckFailed  = "failed"
)

// recheck is the plan of job j from the placement its grant carries, checked against the
// vCenters as they are now (vcenter.Manager.Recheck): a few reads where a plan from
// names takes dozens. When anything changed since the approval, the placement cannot be
// read, or the grant carries none, j's VM is planned from names, as if there were none.
func (w *Worker) recheck(ctx context.Context, j events.Job, g *approvals.Grant, log *slog.Logger) (*vcenter.Plan, error) {
	spec := MoveSpec(j)
	if g == nil || g.VM.Resolved == nil {
		return w.plan.Plan(ctx, spec)
	}
	p, err := w.plan.Recheck(ctx, spec, g.VM.VM, g.VM.Resolved)
	return w.rechecked(ctx, j, p, err, log)
}

// rechecked is the plan of job j from the recheck of its approved placement that
// returned p and err: p itself, or a plan from names when the recheck found something
// changed or could not read the vCenters.
func (w *Worker) rechecked(ctx context.Context, j events.Job, p *vcenter.Plan, err error, log *slog.Logger) (*vcenter.Plan, error) {
	spec := MoveSpec(j)
	if err == nil {
		w.m.rechecks.WithLabelValues(recheckUsed).Inc()
		return p, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	result := recheckChanged
	if !errors.Is(err, vcenter.ErrChanged) {
		result = recheckFailed
	}
	w.m.rechecks.WithLabelValues(result).Inc()
	log.Info("the approved placement cannot be used as it is; planning the move from names", "result", result, "err", err)
	return w.plan.Plan(ctx, spec)
}

// candidates are the plans a job may start on: the planned host, then, when the request
// named a cluster rather than a host, the other hosts of it that qualify.
func (w *Worker) candidates(j events.Job, plan *vcenter.Plan, log *slog.Logger) *waitingPlans {
	wp := &waitingPlans{plans: []*vcenter.Plan{plan}}
	if j.Host == "" {
		for _, h := range plan.OtherHosts {
			q, err := plan.OnHost(h)
			if err != nil {
				log.Warn("could not plan onto another host", "host", h, "err", err)
				continue
			}
			wp.plans = append(wp.plans, q)
		}
	}
	wp.fps = make([]*vcenter.Footprint, len(wp.plans))
	return wp
}

// candidatePlans are the plans the job may start on: kept from its last delivery if it
// waited for a slot a moment ago, or made now. When there are none, the job is settled
// (planning failed, pre-flight blocked it, or the VM is not the approved one) and result
// is what the handler returns.
func (jr *jobRun) candidatePlans(ctx context.Context) (wp *waitingPlans, result error) {
	w, j := jr.w, jr.j
	if wp, ok := w.plans.waiting(j.ID, w.now(), w.cfg.PlanReuse); ok {
		return wp, nil
	}
	var (
		plan *vcenter.Plan
		err  error
	)
	if jr.early != nil {
		// Admitted under the grant whose placement was being rechecked meanwhile.
		p, rerr := jr.early.result()
		plan, err = w.rechecked(ctx, j, p, rerr, jr.log)
	} else {
		plan, err = w.planFor(ctx, j, jr.g, jr.read, jr.log)
	}
	if err == nil && plan.BlockedFor(j.VM) {
		err = blockedError(plan, j.VM)
	}
	if err != nil {
		return nil, jr.finish(ctx, err)
	}
	if err := checkObjects(jr.g, plan, j.VM); err != nil {
		return nil, jr.refuse(ctx, err)
	}
	return w.candidates(j, plan, jr.log), nil
}

// blockedError explains why pre-flight at start time refused the move of vm.
func blockedError(p *vcenter.Plan, vm string) error {
	for _, f := range p.Findings {
		if f.Severity == vcenter.Blocker && (f.VM == "" || f.VM == vm) {
			return &vcenter.Fault{VCenter: p.Source.Name, VM: f.VM, Step: stepPreflight, Kind: vcenter.KindPreflightBlocked,
				Message: f.Message, Hint: f.Hint}
		}
	}
	return errors.New("pre-flight blocked the move")
}
