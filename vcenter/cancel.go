package vcenter

import (
	"context"
	"crypto/x509"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Cancel asks vCenter vcName to cancel a running task, as the vSphere Client's "Cancel"
// on a recent task does. vCenter cancels a relocation only while it can still roll it
// back; a task past that point finishes, and Cancel returns the vCenter's refusal.
func (m *Manager) Cancel(ctx context.Context, vcName, taskRef string) error {
	return m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		t := object.NewTask(c, types.ManagedObjectReference{Type: "Task", Value: taskRef})
		if err := t.Cancel(ctx); err != nil {
			return m.scrub(classify(err, vcName, "", "", StepWatch))
		}
		return nil
	})
}
