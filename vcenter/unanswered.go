package vcenter

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"slices"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// An unanswered start: RelocateVM_Task reached vCenter, vCenter started the relocation,
// and the connection broke before the task's reference came back. A client sees a
// transport error, not a fault, and cannot tell this apart from a request that never
// arrived. Starting again is refused with TaskInProgress for as long as the move runs,
// so a blind retry spends every attempt and reports a failure while the VM moves. The
// running relocation is found instead among the VM's recent tasks (see
// docs/vsphere-behaviours.md) and followed.

// ErrStartUnanswered is wrapped by the Fault of a start whose answer was lost and whose
// relocation Start could not find running: vCenter may have started it all the same. A
// caller that tries again asks RunningRelocation first.
var ErrStartUnanswered = errors.New("the relocation may have started: vCenter's answer was lost")

// RunningRelocation returns the task of the relocation vCenter vcName runs (queued or
// running) for the VM named vm, or "" when there is none (or no single VM of that name).
// A worker asks before it starts again a relocation whose start went unanswered.
func (m *Manager) RunningRelocation(ctx context.Context, vcName, vm string) (string, error) {
	var refs map[string][]types.ManagedObjectReference
	err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		var err error
		refs, err = findVMsByName(ctx, c, []string{vm})
		return err
	})
	if err == nil && len(refs[vm]) == 1 {
		var ref string
		if ref, err = m.runningRelocation(ctx, vcName, refs[vm][0]); err == nil {
			return ref, nil
		}
	}
	if err != nil {
		return "", m.scrub(classify(err, vcName, "", vm, StepResolve))
	}
	return "", nil
}

// relocateTaskID is the descriptionId vCenter gives the task of a RelocateVM_Task.
const relocateTaskID = "VirtualMachine.relocate"

// unanswered reports whether err, from a RelocateVM_Task call, leaves it unknown whether
// vCenter started the relocation: a transport error (no answer, or half of one) rather
// than a fault vCenter answered with, while ctx still runs.
func unanswered(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || soap.IsSoapFault(err) || soap.IsVimFault(err) {
		return false
	}
	var f *Fault
	if errors.As(err, &f) {
		return false // a session that could not be had: nothing was sent
	}
	return isNetError(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// runningRelocation returns the reference of the relocation task vCenter vcName runs
// (queued or running) for the VM vm, or "" when there is none.
func (m *Manager) runningRelocation(ctx context.Context, vcName string, vm types.ManagedObjectReference) (string, error) {
	var found string
	err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		pc := property.DefaultCollector(c)
		var v mo.VirtualMachine
		if err := pc.RetrieveOne(ctx, vm, []string{"recentTask"}, &v); err != nil {
			return err
		}
		// The newest first; tasks that ended a while ago may be gone already.
		for _, ref := range slices.Backward(v.RecentTask) {
			var t mo.Task
			if err := pc.RetrieveOne(ctx, ref, []string{"info"}, &t); err != nil {
				if fault.Is(err, &types.ManagedObjectNotFound{}) {
					continue
				}
				return err
			}
			if isRunningRelocationOf(t.Info, vm) {
				found = ref.Value
				return nil
			}
		}
		return nil
	})
	return found, err
}

// isRunningRelocationOf reports whether info is a relocation of vm that has not ended.
func isRunningRelocationOf(info types.TaskInfo, vm types.ManagedObjectReference) bool {
	return info.DescriptionId == relocateTaskID && info.Entity != nil && *info.Entity == vm &&
		(info.State == types.TaskInfoStateQueued || info.State == types.TaskInfoStateRunning)
}
