package xvmsim

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// createOverAPI creates a VM with CreateVM_Task and waits for its task, as an
// administrator's script would.
func (b *vmBuilder) createOverAPI(ctx context.Context, folder *object.Folder, spec types.VirtualMachineConfigSpec, poolRef, hostRef types.ManagedObjectReference) (types.ManagedObjectReference, error) {
	task, err := folder.CreateVM(ctx, spec, object.NewResourcePool(b.c, poolRef), object.NewHostSystem(b.c, hostRef))
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	return info.Result.(types.ManagedObjectReference), nil
}

// createInRegistry creates a bulk VM by calling the simulator's own CreateVM_Task
// method on the folder, as the simulator's API layer does for a request: the same
// task, files, events and back-references (host, datastores, pool, folder) as over the
// API, without encoding the request and its task's updates as XML and back. That is
// most of a VM's cost over the API, and the reason a 20,000-VM lab took minutes.
//
// The simulator works on its own copy of a request; here it gets the spec itself, so
// the one network backing the builder shares between cards is copied for each.
func (b *vmBuilder) createInRegistry(ctx context.Context, spec types.VirtualMachineConfigSpec, folderRef, poolRef, hostRef types.ManagedObjectReference) (types.ManagedObjectReference, error) {
	for _, ch := range spec.DeviceChange {
		d := ch.GetVirtualDeviceConfigSpec().Device.GetVirtualDevice()
		if _, nic := ch.GetVirtualDeviceConfigSpec().Device.(types.BaseVirtualEthernetCard); nic && d.Backing != nil {
			d.Backing = shallowCopy(d.Backing)
		}
	}
	reg := b.vc.model.Map()
	sctx := simulator.NewContext()
	sctx.Context, sctx.Map = ctx, reg
	folder, ok := reg.Get(folderRef).(*simulator.Folder)
	if !ok {
		return types.ManagedObjectReference{}, fmt.Errorf("folder %s: %w", folderRef.Value, ErrNotFound)
	}
	req := &types.CreateVM_Task{This: folderRef, Config: spec, Pool: poolRef, Host: &hostRef}
	var res *methods.CreateVM_TaskBody
	// As the simulator's dispatch does: the method runs holding its object's lock.
	reg.WithLock(sctx, folder, func() { res, _ = folder.CreateVMTask(sctx, req).(*methods.CreateVM_TaskBody) })
	if res == nil || res.Res == nil {
		why := "no task"
		if res != nil && res.Fault() != nil {
			why = res.Fault().String
		}
		return types.ManagedObjectReference{}, fmt.Errorf("create vm %s: %s", spec.Name, why)
	}
	task, ok := reg.Get(res.Res.Returnval).(*simulator.Task)
	if !ok {
		return types.ManagedObjectReference{}, fmt.Errorf("create vm %s: task %s: %w", spec.Name, res.Res.Returnval.Value, ErrNotFound)
	}
	// A context of its own to read the task: the task's goroutine holds the folder's
	// lock on behalf of sctx.
	own := simulator.NewContext()
	own.Map = reg
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		var info types.TaskInfo
		reg.WithLock(own, task, func() { info = task.Info })
		switch info.State {
		case types.TaskInfoStateSuccess:
			return info.Result.(types.ManagedObjectReference), nil
		case types.TaskInfoStateError:
			why := "no reason given"
			if info.Error != nil {
				why = info.Error.LocalizedMessage
			}
			return types.ManagedObjectReference{}, fmt.Errorf("create vm %s: %s", spec.Name, why)
		}
		select {
		case <-ctx.Done():
			return types.ManagedObjectReference{}, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// shallowCopy returns a copy of the struct v points to.
func shallowCopy[T any](v T) T {
	p := reflect.ValueOf(v)
	c := reflect.New(p.Elem().Type())
	c.Elem().Set(p.Elem())
	return c.Interface().(T)
}
