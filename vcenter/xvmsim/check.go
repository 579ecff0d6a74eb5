package xvmsim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// checkerType and checkerValue, like the relocator's, name no object: the
// intercept points cross-vCenter CheckRelocate_Task calls at a checker.
const (
	checkerType  = "XvmsimChecker"
	checkerValue = "xvmsim-checker"
)

// checker answers CheckRelocate_Task for cross-vCenter specs. The stock
// simulator's is a stub that always returns one empty result; this one
// reports what the source vCenter can know without touching the target: a
// service locator that vCenter would refuse (URL, credentials, thumbprint,
// instance UUID), a spec missing host, pool or datastore, and the verdicts
// planted on trip-wire VMs through CheckRelocateErrorKey and
// CheckRelocateWarningKey, standing in for CPU and network compatibility
// that only a real vCenter can judge.
type checker struct {
	Self types.ManagedObjectReference
	vc   *VC
}

func (c *checker) Reference() types.ManagedObjectReference { return c.Self }

// CheckRelocateTask is found by the simulator's reflection-based dispatch.
func (c *checker) CheckRelocateTask(ctx *simulator.Context, req *types.CheckRelocate_Task) soap.HasFault {
	body := &methods.CheckRelocate_TaskBody{}
	vm, ok := ctx.Map.Get(req.Vm).(*simulator.VirtualMachine)
	if !ok {
		body.Fault_ = simulator.Fault("managed object not found: "+req.Vm.Value, &types.ManagedObjectNotFound{Obj: req.Vm})
		return body
	}
	result := types.CheckResult{Vm: &req.Vm, Host: req.Spec.Host}
	tgt, lf := c.vc.lab.resolveLocator(req.Spec.Service)
	if lf != nil {
		result.Error = append(result.Error, *lf)
	} else if why := tgt.vc.refusal(req.Spec.Host); why != "" {
		result.Error = append(result.Error, types.LocalizedMethodFault{Fault: &types.MigrationFault{}, LocalizedMessage: why})
	}
	for _, need := range []struct {
		ref  *types.ManagedObjectReference
		prop string
	}{{req.Spec.Host, "host"}, {req.Spec.Pool, "pool"}, {req.Spec.Datastore, "datastore"}} {
		if need.ref == nil {
			result.Error = append(result.Error, *invalidArgument(need.prop, "%s is required for a cross vCenter migration", need.prop))
		}
	}
	ctx.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		for _, o := range vm.Config.ExtraConfig {
			ov := o.GetOptionValue()
			msg, _ := ov.Value.(string)
			switch ov.Key {
			case CheckRelocateErrorKey:
				result.Error = append(result.Error, types.LocalizedMethodFault{Fault: &types.MigrationFault{}, LocalizedMessage: msg})
			case CheckRelocateWarningKey:
				result.Warning = append(result.Warning, types.LocalizedMethodFault{Fault: &types.MigrationFault{}, LocalizedMessage: msg})
			}
		}
	})
	task := simulator.CreateTask(vm, "checkRelocate", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return types.ArrayOfCheckResult{CheckResult: []types.CheckResult{result}}, nil
	})
	body.Res = &types.CheckRelocate_TaskResponse{Returnval: task.Run(ctx)}
	return body
}
