package xvmsim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// maintainerType and maintainerValue, like the relocator's, name no object: the
// intercept points EnterMaintenanceMode_Task and ExitMaintenanceMode_Task at a maintainer.
const (
	maintainerType  = "XvmsimMaintainer"
	maintainerValue = "xvmsim-maintainer"
)

// maintainer puts hosts in and out of maintenance mode as vCenter does: the change of
// runtime.inMaintenanceMode reaches the property collector's change feed (the
// HostSystem.runtime property is reported changed, https://developer.broadcom.com/xapis/vsphere-web-services-api/latest/vim.HostSystem.html).
// The stock simulator sets the field without telling the collector, so a client that
// follows the feed (an inventory mirror) would never see the host go into maintenance.
type maintainer struct {
	Self types.ManagedObjectReference
}

func (m *maintainer) Reference() types.ManagedObjectReference { return m.Self }

// EnterMaintenanceModeTask is found by the simulator's reflection-based dispatch.
func (m *maintainer) EnterMaintenanceModeTask(ctx *simulator.Context, req *types.EnterMaintenanceMode_Task) soap.HasFault {
	body := &methods.EnterMaintenanceMode_TaskBody{}
	ref, fault := m.set(ctx, req.This, true)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	body.Res = &types.EnterMaintenanceMode_TaskResponse{Returnval: ref}
	return body
}

// ExitMaintenanceModeTask is found by the simulator's reflection-based dispatch.
func (m *maintainer) ExitMaintenanceModeTask(ctx *simulator.Context, req *types.ExitMaintenanceMode_Task) soap.HasFault {
	body := &methods.ExitMaintenanceMode_TaskBody{}
	ref, fault := m.set(ctx, req.This, false)
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	body.Res = &types.ExitMaintenanceMode_TaskResponse{Returnval: ref}
	return body
}

// set runs a task that puts the host in or out of maintenance mode.
func (m *maintainer) set(ctx *simulator.Context, ref types.ManagedObjectReference, on bool) (types.ManagedObjectReference, *soap.Fault) {
	host, ok := ctx.Map.Get(ref).(*simulator.HostSystem)
	if !ok {
		return types.ManagedObjectReference{}, simulator.Fault("managed object not found: "+ref.Value, &types.ManagedObjectNotFound{Obj: ref})
	}
	name := "exitMaintenanceMode"
	if on {
		name = "enterMaintenanceMode"
	}
	task := simulator.CreateTask(host, name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		ctx.Update(host, []types.PropertyChange{{Name: "runtime.inMaintenanceMode", Val: on}})
		return nil, nil
	})
	return task.Run(ctx), nil
}

var _ mo.Reference = (*maintainer)(nil)
