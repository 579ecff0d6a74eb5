package xvmsim

import (
	"context"
	"fmt"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// WaitTask follows a task by polling its info until it ends, calling progress (may be
// nil) on every new percentage, and returns the final info; a task that ended in error
// returns its fault as the error.
//
// Why polling: vcsim's WaitForUpdates reads a task's fields without the task's lock while
// the emulated relocation updates its progress under that lock, which the race detector
// reports; RetrieveProperties takes the object's lock, so polling is race-free.
func WaitTask(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference, progress func(int32)) (*types.TaskInfo, error) {
	return waitTask(ctx, c, ref, progress, 20*time.Millisecond, 200*time.Millisecond)
}

// waitTask is WaitTask with the polling delay's bounds given (it doubles from first up to
// most): the emulation's own short tasks (create, power on, destroy) end within a few
// milliseconds and run inside an exclusive section that every other client of the vCenter
// waits for, so they are polled every millisecond or two.
func waitTask(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference, progress func(int32), first, most time.Duration) (*types.TaskInfo, error) {
	delay := first
	pc := property.DefaultCollector(c)
	last := int32(-1)
	for {
		var t mo.Task
		if err := pc.RetrieveOne(ctx, ref, []string{"info"}, &t); err != nil {
			return nil, err
		}
		if p := t.Info.Progress; progress != nil && p != last && p > 0 {
			last = p
			progress(p)
		}
		switch t.Info.State {
		case types.TaskInfoStateSuccess:
			return &t.Info, nil
		case types.TaskInfoStateError:
			if t.Info.Error != nil {
				return &t.Info, task.Error{LocalizedMethodFault: t.Info.Error, Description: t.Info.Description}
			}
			return &t.Info, fmt.Errorf("task %s failed", ref.Value)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, most)
	}
}
