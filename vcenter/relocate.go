package vcenter

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Relocate moves one VM of a plan to the plan's target vCenter: it calls
// RelocateVM_Task on the SOURCE vCenter with a ServiceLocator for the target
// (an import is the same call, with the remote vCenter as source), then
// watches the task, calling progress (may be nil) as the percentage moves.
//
// A plan that crossed a process boundary has lost its resolved references;
// Relocate then resolves the plan's spec again for this VM and refuses to
// start if that finds blockers. Every failure is a *Fault (or a
// *ThumbprintError); IsRetryable tells a worker whether to try again.
func (m *Manager) Relocate(ctx context.Context, p *Plan, vm string, progress ProgressFunc) (*Result, error) {
	start := time.Now()
	taskRef, err := m.Start(ctx, p, vm)
	if err != nil {
		return nil, err
	}
	res, err := m.watch(ctx, p.Spec.Source, p.Spec.Target, taskRef, vm, progress)
	if res != nil {
		res.Duration = time.Since(start)
	}
	return res, err
}

// Start submits the relocation of one VM of a plan and returns the source
// vCenter's task reference (e.g. "task-123") without waiting: a worker
// records it so that, should it crash, its successor can Watch the same
// task instead of starting a second move.
func (m *Manager) Start(ctx context.Context, p *Plan, vm string) (string, error) {
	spec := p.Spec
	log := m.log.With("vm", vm, "src_vc", spec.Source, "dst_vc", spec.Target)
	fail := func(step string, err error) (string, error) {
		err = m.scrub(classify(err, spec.Source, spec.Target, vm, step))
		log.Warn("relocation not started", "step", step, "err", err)
		if step != StepResolve {
			m.metrics.taskResults.WithLabelValues(spec.Source, metricResult(err)).Inc()
		}
		return "", err
	}

	pl, vp, err := m.resolved(ctx, p, vm)
	if err != nil {
		return fail(StepResolve, err)
	}
	m.refs.expectIn(spec.Target, vm, pl.Folder)

	dst, err := m.conn(spec.Target)
	if err != nil {
		return fail(StepResolve, err)
	}
	// The locator carries what xvmbot itself verified of the target: its
	// instance UUID and the certificate that matched the pinned thumbprint.
	var loc *types.ServiceLocator
	err = m.withSession(ctx, spec.Target, func(c *vim25.Client, peer *x509.Certificate) error {
		loc = serviceLocator(dst.cfg, dst.url, c.ServiceContent.About.InstanceUuid, peer)
		return nil
	})
	if err != nil {
		return fail(StepLogin, err)
	}
	rspec := buildRelocateSpec(*pl, vp, spec.DiskFormat, loc)

	var task *object.Task
	err = m.withSession(ctx, spec.Source, func(c *vim25.Client, _ *x509.Certificate) error {
		var err error
		task, err = object.NewVirtualMachine(c, vp.ref).Relocate(ctx, rspec, movePriority(spec.Priority))
		return err
	})
	if unanswered(ctx, err) {
		// vCenter may have started the move: follow it if it runs, rather than fail
		// and have every retry refused with TaskInProgress while it goes on.
		ref, ferr := m.runningRelocation(ctx, spec.Source, vp.ref)
		if ferr == nil && ref != "" {
			log.Warn("the answer to the relocation was lost; following the relocation vCenter runs for the VM", "task", ref, "err", err)
			return ref, nil
		}
		if ferr != nil {
			log.Warn("the answer to the relocation was lost, and the VM's recent tasks could not be read", "err", ferr)
		}
		err = fmt.Errorf("%w: %w", ErrStartUnanswered, err)
	}
	if err != nil {
		return fail(StepRelocate, err)
	}
	ref := task.Reference().Value
	log.Info("relocation started", "task", ref, "host", p.Host, "datastore", p.Datastore, "folder", p.Folder)
	return ref, nil
}

// planFresh is how long resolved references are trusted. Approval can take
// hours; by then hosts may be in maintenance or load may have shifted, so an
// older plan is resolved again from its spec before anything is started.
const planFresh = 10 * time.Minute

// resolved returns the placement and VM plan of vm, resolving the spec again
// when the plan does not carry them.
func (m *Manager) resolved(ctx context.Context, p *Plan, vm string) (*placement, *vmPlan, error) {
	if blocker := blockerFor(p.Findings, vm); blocker != nil {
		return nil, nil, blockedFault(p.Spec, vm, blocker)
	}
	if p.placement != nil && p.vms[vm] != nil && time.Since(p.ResolvedAt) < planFresh {
		return p.placement, p.vms[vm], nil
	}
	if !requested(p.Spec.VMs, vm) {
		return nil, nil, &Fault{VCenter: p.Spec.Source, VM: vm, Step: StepResolve, Kind: KindBlocked,
			Message: fmt.Sprintf("%s is not part of this plan", vm), Hint: "plan the VM first", Err: ErrNotFound}
	}
	spec := p.Spec
	spec.VMs = []string{vm}
	fresh, err := m.Plan(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	if blocker := blockerFor(fresh.Findings, vm); blocker != nil {
		return nil, nil, blockedFault(spec, vm, blocker)
	}
	if fresh.placement == nil || fresh.vms[vm] == nil {
		return nil, nil, blockedFault(spec, vm, &Finding{Message: "the plan could not be resolved"})
	}
	return fresh.placement, fresh.vms[vm], nil
}

func blockerFor(fs []Finding, vm string) *Finding {
	for i, f := range fs {
		if f.Severity == Blocker && (f.VM == "" || f.VM == vm) {
			return &fs[i]
		}
	}
	return nil
}

func blockedFault(spec MoveSpec, vm string, f *Finding) *Fault {
	hint := f.Hint
	if hint == "" {
		hint = faultTexts[KindBlocked].hint("", "")
	}
	return &Fault{VCenter: spec.Source, VM: vm, Step: StepResolve, Kind: KindBlocked, Message: f.Message, Hint: hint}
}

// Watch follows a relocation task on vCenter vcName until it ends, calling
// progress (may be nil) whenever the percentage changes. vm is used for logs
// and faults only. It returns when the task succeeds or fails, or when ctx
// ends; in the last case the task goes on in vCenter and the Fault says so.
func (m *Manager) Watch(ctx context.Context, vcName, taskRef, vm string, progress ProgressFunc) (*Result, error) {
	return m.watch(ctx, vcName, "", taskRef, vm, progress)
}

// watch is Watch knowing the target's name, for plain-words faults.
func (m *Manager) watch(ctx context.Context, vcName, dst, taskRef, vm string, progress ProgressFunc) (*Result, error) {
	start := time.Now()
	log := m.log.With("vm", vm, "src_vc", vcName, "task", taskRef)
	ref := types.ManagedObjectReference{Type: "Task", Value: taskRef}
	var info *types.TaskInfo
	err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		var err error
		info, err = waitTask(ctx, c, ref, progress)
		return err
	})
	res := &Result{VM: vm, TaskRef: taskRef}
	if err == nil && info != nil && info.State == types.TaskInfoStateError && info.Error != nil {
		err = taskError{info.Error}
		// The task itself failed: this is the relocation's verdict.
		err = m.scrub(classify(err, vcName, dst, vm, StepRelocate))
	} else if err != nil {
		err = m.scrub(classify(err, vcName, dst, vm, StepWatch))
	}
	var f *Fault
	if info != nil && info.StartTime != nil && info.CompleteTime != nil {
		res.Duration = info.CompleteTime.Sub(*info.StartTime)
	} else {
		res.Duration = time.Since(start)
	}
	if !errors.As(err, &f) || f.Kind != KindCanceled {
		m.metrics.taskResults.WithLabelValues(vcName, metricResult(err)).Inc()
		m.metrics.taskSeconds.WithLabelValues(vcName).Observe(res.Duration.Seconds())
	}
	if err != nil {
		log.Warn("relocation failed", "err", err, "retryable", IsRetryable(err))
		return res, err
	}
	log.Info("relocation succeeded", "duration", res.Duration)
	return res, nil
}

// waitTask follows a task by polling its info (RetrieveProperties) until it ends and
// reports progress changes. Polling rather than WaitForUpdates: it is what vCenter's own
// clients commonly do at these rates, a watch survives a session re-login unchanged, and
// vcsim's WaitForUpdates reads task fields without the task's lock (a data race against
// any simulator that moves progress along), while RetrieveProperties takes it.
//
// The polls follow the task's pace: once its progress has moved, the next look is at half
// the time the task would still need at that pace, or, once it is past that, at half the
// time it is late (always within pollMin and pollMax). Its end is seen soon after it comes
// without looking often while it is far off, and a task stuck short of its end is looked
// at less and less often. One whose progress has not moved yet backs off from pollMin.
func waitTask(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference, progress ProgressFunc) (*types.TaskInfo, error) {
	pc := property.DefaultCollector(c)
	last := -1
	var delay time.Duration
	var pace taskPace
	for {
		var t mo.Task
		if err := pc.RetrieveOne(ctx, ref, []string{"info"}, &t); err != nil {
			return nil, err
		}
		info := t.Info
		switch info.State {
		case types.TaskInfoStateSuccess, types.TaskInfoStateError:
			if progress != nil && info.State == types.TaskInfoStateSuccess && last != 100 {
				progress(100)
			}
			return &info, nil
		}
		now := time.Now()
		if pct := int(info.Progress); pct != last {
			if progress != nil && pct > 0 {
				progress(pct)
			}
			last = pct
		}
		delay = pace.next(now, int(info.Progress), delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// taskPace estimates when a task will end from how fast its progress has moved since it
// was first looked at (on this side's clock: vCenter's may differ).
type taskPace struct {
	firstAt           time.Time
	firstPct, lastPct int
	endAt             time.Time // zero until the progress has moved
}

// next returns the delay before the next look at a task at pct now, given the last delay.
// The estimate changes only when the progress does.
func (p *taskPace) next(now time.Time, pct int, delay time.Duration) time.Duration {
	switch {
	case p.firstAt.IsZero():
		p.firstAt, p.firstPct, p.lastPct = now, pct, pct
		return pollMin
	case pct != p.lastPct && pct > p.firstPct && pct < 100:
		took := now.Sub(p.firstAt)
		p.endAt = now.Add(took * time.Duration(100-pct) / time.Duration(pct-p.firstPct))
		p.lastPct = pct
	}
	switch left := p.endAt.Sub(now); {
	case p.endAt.IsZero():
		return min(delay*2, pollMax)
	case left > 0:
		return min(max(left/2, pollMin), pollMax)
	default:
		// Late: the longer it has been, the less likely the very next moment is the end.
		return min(max(-left/2, pollMin), pollMax)
	}
}

// Task polling bounds: quick at first (short tasks, tests), then at most once a second.
const (
	pollMin = 25 * time.Millisecond
	pollMax = time.Second
)

// taskError carries a task's LocalizedMethodFault through classify.
type taskError struct{ *types.LocalizedMethodFault }

func (e taskError) Error() string { return e.LocalizedMessage }

// Fault returns the vSphere fault, for classify.
func (e taskError) Fault() types.BaseMethodFault { return e.LocalizedMethodFault.Fault }
