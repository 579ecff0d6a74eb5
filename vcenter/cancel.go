package vcenter

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Cancel asks vCenter vcName to cancel a running task, as the vSphere Client's "Cancel"
// on a recent task does. vCenter cancels a relocation only while it can still roll it
// back. When it will not, Cancel says why in a *Fault of one of three kinds, read from
// the task itself (docs/vsphere-behaviours.md): KindTaskEnded (the task had already
// ended; CancelTask answers InvalidState), KindTaskCancelled (someone cancelled it
// already) or KindNotCancelable (vCenter marks it not cancelable, as a relocation past
// its switch-over; CancelTask answers NotSupported).
func (m *Manager) Cancel(ctx context.Context, vcName, taskRef string) error {
	return m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		ref := types.ManagedObjectReference{Type: "Task", Value: taskRef}
		why := func() error {
			var t mo.Task
			if err := property.DefaultCollector(c).RetrieveOne(ctx, ref, []string{"info"}, &t); err != nil {
				return m.scrub(classify(err, vcName, "", "", StepWatch))
			}
			return cancelRefusal(vcName, taskRef, t.Info)
		}
		if err := why(); err != nil {
			return err
		}
		err := object.NewTask(c, ref).Cancel(ctx)
		if err == nil {
			return nil
		}
		cerr := m.scrub(classify(err, vcName, "", "", StepWatch))
		var f *Fault
		if errors.As(cerr, &f) && (f.Kind == KindInvalidState || f.Kind == KindNotSupported) {
			// The task changed between the read and the cancel: read it again.
			if r := why(); r != nil {
				return r
			}
			if f.Kind == KindNotSupported {
				return notCancelable(vcName, taskRef)
			}
		}
		return cerr
	})
}

// cancelRefusal says why a task in state info cannot be cancelled, or nil if it can.
func cancelRefusal(vc, taskRef string, info types.TaskInfo) error {
	switch {
	case info.Cancelled:
		return &Fault{VCenter: vc, Step: StepWatch, Kind: KindTaskCancelled,
			Message: fmt.Sprintf("task %s was already cancelled", taskRef), Hint: "nothing to do: vCenter rolls the move back"}
	case info.State == types.TaskInfoStateSuccess || info.State == types.TaskInfoStateError:
		return &Fault{VCenter: vc, Step: StepWatch, Kind: KindTaskEnded,
			Message: fmt.Sprintf("task %s had already ended (%s)", taskRef, info.State), Hint: "the job reports how it ended"}
	case !info.Cancelable:
		return notCancelable(vc, taskRef)
	}
	return nil
}

func notCancelable(vc, taskRef string) error {
	return &Fault{VCenter: vc, Step: StepWatch, Kind: KindNotCancelable,
		Message: fmt.Sprintf("vCenter no longer lets task %s be cancelled: the VM is switching over", taskRef),
		Hint:    "the move finishes; ask for an undo afterwards if it is not wanted"}
}
