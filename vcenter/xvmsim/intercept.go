package xvmsim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// relocatorType and relocatorValue name no object in any registry: pointing a request's This at
// it makes the simulator dispatch to the object our Handler returns, while
// the request body still names the VM and session checks still apply.
const (
	relocatorType  = "XvmsimRelocator"
	relocatorValue = "xvmsim-relocator"
)

// intercept is the registry Handler of every VC; the simulator calls it for
// every SOAP request before authentication and object lookup.
func (v *VC) intercept(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	v.requests.Add(1)
	if req, ok := m.Body.(*types.Login); ok && (req.UserName != v.Username || req.Password != v.Password) {
		v.refusedLogins.Add(1) // the simulator's session manager refuses it with InvalidLogin
	}
	if m.Name == "CheckRelocate_Task" && ctx.Session != nil {
		if req, ok := m.Body.(*types.CheckRelocate_Task); ok && req.Spec.Service != nil {
			m.This = types.ManagedObjectReference{Type: checkerType, Value: checkerValue}
			return &checker{Self: m.This, vc: v}, nil
		}
		return nil, nil
	}
	if m.Name == "CancelTask" && ctx.Session != nil {
		if req, ok := m.Body.(*types.CancelTask); ok {
			if mv := v.move(req.This.Value); mv != nil {
				m.This = types.ManagedObjectReference{Type: cancellerType, Value: cancellerValue}
				return &canceller{Self: m.This, move: mv}, nil
			}
		}
		return nil, nil
	}
	if ctx.Session != nil {
		switch req := m.Body.(type) {
		case *types.WaitForUpdatesEx:
			if follows(ctx, req.This) {
				ctx.Map.AddHandler(v.feeder)
				m.This = v.feeder.Self
				return v.feeder, nil
			}
		case *types.CancelWaitForUpdates:
			if follows(ctx, req.This) {
				m.This = v.feeder.Self
				return v.feeder, nil
			}
		case *types.DestroyPropertyCollector:
			v.feeder.forget(req.This)
		}
	}
	if (m.Name == "EnterMaintenanceMode_Task" || m.Name == "ExitMaintenanceMode_Task") && ctx.Session != nil {
		m.This = types.ManagedObjectReference{Type: maintainerType, Value: maintainerValue}
		return &maintainer{Self: m.This}, nil
	}
	if m.Name == "ReconfigVM_Task" && ctx.Session != nil {
		if req, ok := m.Body.(*types.ReconfigVM_Task); ok {
			v.policies.reconfigured(req.This, req.Spec) // the simulator ignores policies
		}
		return nil, nil
	}
	if m.Name != "RelocateVM_Task" || ctx.Session == nil {
		return nil, nil
	}
	req, ok := m.Body.(*types.RelocateVM_Task)
	if !ok {
		return nil, nil
	}
	if req.Spec.Service == nil {
		// The stock relocate type-asserts whatever the MoRefs resolve to and
		// panics the whole process on an unknown one.
		return nil, checkLocalRefs(ctx.Map, req.Spec)
	}
	m.This = types.ManagedObjectReference{Type: relocatorType, Value: relocatorValue}
	return &relocator{Self: m.This, vc: v}, nil
}

func checkLocalRefs(reg *simulator.Registry, spec types.VirtualMachineRelocateSpec) types.BaseMethodFault {
	type want struct {
		ref  *types.ManagedObjectReference
		kind string
		prop string
	}
	wants := []want{
		{spec.Host, "HostSystem", "host"},
		{spec.Pool, "ResourcePool", "pool"},
		{spec.Datastore, "Datastore", "datastore"},
		{spec.Folder, "Folder", "folder"},
	}
	for i := range spec.Disk {
		wants = append(wants, want{&spec.Disk[i].Datastore, "Datastore", fmt.Sprintf("disk[%d].datastore", i)})
	}
	for _, w := range wants {
		if w.ref == nil {
			continue
		}
		if w.ref.Type != w.kind {
			return &types.InvalidArgument{InvalidProperty: w.prop}
		}
		if reg.Get(*w.ref) == nil {
			return &types.ManagedObjectNotFound{Obj: *w.ref}
		}
	}
	return nil
}

// relocator receives cross-vCenter RelocateVM_Task calls in place of the VM.
type relocator struct {
	Self types.ManagedObjectReference
	vc   *VC
}

func (r *relocator) Reference() types.ManagedObjectReference { return r.Self }

// RelocateVMTask is found by the simulator's reflection-based dispatch.
func (r *relocator) RelocateVMTask(ctx *simulator.Context, req *types.RelocateVM_Task) soap.HasFault {
	body := &methods.RelocateVM_TaskBody{}
	vm, ok := ctx.Map.Get(req.This).(*simulator.VirtualMachine)
	if !ok {
		body.Fault_ = simulator.Fault(fmt.Sprintf("managed object not found: %s", req.This), &types.ManagedObjectNotFound{Obj: req.This})
		return body
	}
	v := r.vc
	if !v.beginRelocation(req.This) {
		// vCenter refuses a second migration of a VM that is being migrated.
		body.Fault_ = simulator.Fault("another task is in progress", &types.TaskInProgress{Task: runningRelocation(ctx, vm)})
		return body
	}
	started := false
	defer func() {
		if !started {
			v.endRelocation(req.This)
		}
	}()

	task := simulator.CreateTask(vm, "relocateVm", nil)
	asVCenterNamesIt(task)
	ctx.Map.Put(task) // assigns task.Self
	began := time.Now()
	ctx.Map.AtomicUpdate(ctx, task, []types.PropertyChange{
		{Name: "info.key", Val: task.Self.Value},
		{Name: "info.task", Val: task.Self},
		{Name: "info.startTime", Val: began},
		{Name: "info.state", Val: types.TaskInfoStateRunning},
	})

	// The simulator's own Task.Run would hold the VM's lock for the whole
	// run, blocking every reader of the VM; vCenter lets readers through.
	finish := func(res types.ManagedObjectReference, fault *types.LocalizedMethodFault) {
		changes := []types.PropertyChange{
			{Name: "info.completeTime", Val: time.Now()},
		}
		if fault != nil {
			changes = append(changes,
				types.PropertyChange{Name: "info.state", Val: types.TaskInfoStateError},
				types.PropertyChange{Name: "info.error", Val: fault},
			)
		} else {
			changes = append(changes,
				types.PropertyChange{Name: "info.progress", Val: int32(100)},
				types.PropertyChange{Name: "info.state", Val: types.TaskInfoStateSuccess},
				types.PropertyChange{Name: "info.result", Val: res},
			)
		}
		ctx.Map.AtomicUpdate(ctx, task, changes)
	}
	// A relocation is cancelable until the VM leaves the source; vCenter says so in the
	// task's info.cancelable.
	ctx.Map.AtomicUpdate(ctx, task, []types.PropertyChange{{Name: "info.cancelable", Val: true}})
	mv := &moveState{mark: func() {
		ctx.Map.AtomicUpdate(ctx, task, []types.PropertyChange{{Name: "info.cancelled", Val: true}})
	}, uncancelable: func() {
		ctx.Map.AtomicUpdate(ctx, task, []types.PropertyChange{{Name: "info.cancelable", Val: false}})
	}}
	v.trackMove(task.Self.Value, mv)
	started = v.lab.goRelocation(func(stop context.Context) {
		defer v.endRelocation(req.This)
		defer v.trackMove(task.Self.Value, nil)
		progress := func(p int32) {
			ctx.Map.AtomicUpdate(ctx, task, []types.PropertyChange{{Name: "info.progress", Val: p}})
		}
		finish(v.relocate(stop, began, progress, mv, req.This, req.Spec))
	})
	if !started {
		v.trackMove(task.Self.Value, nil)
	}
	if !started {
		finish(types.ManagedObjectReference{}, &types.LocalizedMethodFault{Fault: &types.RequestCanceled{}, LocalizedMessage: "the vCenter is shutting down"})
	}

	body.Res = &types.RelocateVM_TaskResponse{Returnval: task.Self}
	return body
}

func (v *VC) beginRelocation(vm types.ManagedObjectReference) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.relocating[vm] {
		return false
	}
	v.relocating[vm] = true
	return true
}

func (v *VC) endRelocation(vm types.ManagedObjectReference) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.relocating, vm)
}

func (v *VC) countRelocation(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.xvmTotal++
	v.xvmByVM[name]++
}

// cancellerType and cancellerValue name no object, like relocatorType: CancelTask of a
// running relocation is dispatched to a canceller instead of the simulator's Task.
const (
	cancellerType  = "XvmsimCanceller"
	cancellerValue = "xvmsim-canceller"
)

// moveState is what CancelTask and a running relocation share. vCenter cancels a
// relocation only while it can still roll it back: once the VM has left the source, the
// task is no longer cancelable (info.cancelable false), finishes, and a cancel is refused
// with NotSupported; a cancel of a task that has ended is refused with InvalidState (the
// simulator's own CancelTask, once the move is no longer tracked). (The simulator's own
// CancelTask would end a running task as cancelled at once, whatever the move did next.)
type moveState struct {
	mu           sync.Mutex
	cancelled    bool
	committed    bool
	mark         func() // sets the task's info.cancelled
	uncancelable func() // clears the task's info.cancelable
}

// cancel asks for the move to stop; it reports false once the move is committed.
func (m *moveState) cancel() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.committed {
		return false
	}
	if !m.cancelled {
		m.cancelled = true
		m.mark()
	}
	return true
}

// isCancelled reports whether a cancel was accepted.
func (m *moveState) isCancelled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cancelled
}

// commit marks the point of no return, unless a cancel came first (then it reports false).
func (m *moveState) commit() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancelled {
		return false
	}
	m.committed = true
	if m.uncancelable != nil {
		m.uncancelable()
	}
	return true
}

func (v *VC) trackMove(task string, mv *moveState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if mv == nil {
		delete(v.moves, task)
		return
	}
	v.moves[task] = mv
}

func (v *VC) move(task string) *moveState {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.moves[task]
}

// canceller receives CancelTask for a running cross-vCenter relocation.
type canceller struct {
	Self types.ManagedObjectReference
	move *moveState
}

func (c *canceller) Reference() types.ManagedObjectReference { return c.Self }

// CancelTask is found by the simulator's reflection-based dispatch.
func (c *canceller) CancelTask(_ *simulator.Context, _ *types.CancelTask) soap.HasFault {
	body := new(methods.CancelTaskBody)
	if !c.move.cancel() {
		body.Fault_ = simulator.Fault("the virtual machine has already left the source; the migration can no longer be cancelled",
			&types.NotSupported{})
		return body
	}
	body.Res = new(types.CancelTaskResponse)
	return body
}
