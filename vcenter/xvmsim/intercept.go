package xvmsim

import (
	"context"
	"fmt"
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
	if m.Name == "CheckRelocate_Task" && ctx.Session != nil {
		if req, ok := m.Body.(*types.CheckRelocate_Task); ok && req.Spec.Service != nil {
			m.This = types.ManagedObjectReference{Type: checkerType, Value: checkerValue}
			return &checker{Self: m.This, vc: v}, nil
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
		body.Fault_ = simulator.Fault("another task is in progress", &types.TaskInProgress{Task: req.This})
		return body
	}
	started := false
	defer func() {
		if !started {
			v.endRelocation(req.This)
		}
	}()

	task := simulator.CreateTask(vm, "relocateVm", nil)
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
	started = v.lab.goRelocation(func(stop context.Context) {
		defer v.endRelocation(req.This)
		progress := func(p int32) {
			ctx.Map.AtomicUpdate(ctx, task, []types.PropertyChange{{Name: "info.progress", Val: p}})
		}
		cancelled := func() (c bool) {
			ctx.Map.WithLock(ctx, task, func() { c = task.Info.Cancelled })
			return c
		}
		finish(v.relocate(stop, began, progress, cancelled, req.This, req.Spec))
	})
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

// relocatingCount is how many emulated relocations of this VC are still running.
func (v *VC) relocatingCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.relocating)
}
