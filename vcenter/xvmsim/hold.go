package xvmsim

import (
	"context"
	"slices"
	"sync"
)

// A hold stops one relocation at a chosen point until the test that set it lets it go:
// a test that must act while a move is under way (watch a percentage between 0 and 100,
// cancel it during the copy or after the switch-over, close the lab) waits for that
// moment instead of making every step of the task last long enough to hit it.

// SwitchedOver is the point HoldRelocation names by 100: the VM has left the source and
// runs in the target, and the task has not ended yet (it still reports 90).
const SwitchedOver int32 = 100

// hold is one point where a relocation stops.
type hold struct {
	pct     int32
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

// HoldRelocation makes the next cross-vCenter relocation of vm (by name) from this
// vCenter stop once it is at pct, one of the percentages the task reports (10, 25, 50,
// 75, 90) or SwitchedOver, and stay there until release is called. reached is closed
// when the relocation stops there; a watcher of the task then sees pct (or 90 at
// SwitchedOver) for as long as the hold lasts. A cancel is taken while held and acted
// on once released, as at any step; Close aborts a held relocation. The hold is used
// once; release drops a hold not reached yet, and does nothing when called again.
func (v *VC) HoldRelocation(vm string, pct int32) (reached <-chan struct{}, release func()) {
	h := &hold{pct: pct, reached: make(chan struct{}), release: make(chan struct{})}
	v.mu.Lock()
	if v.holds == nil {
		v.holds = map[string][]*hold{}
	}
	v.holds[vm] = append(v.holds[vm], h)
	v.mu.Unlock()
	return h.reached, func() {
		h.once.Do(func() {
			v.mu.Lock()
			v.holds[vm] = slices.DeleteFunc(v.holds[vm], func(c *hold) bool { return c == h })
			v.mu.Unlock()
			close(h.release)
		})
	}
}

// holdAt stops the relocation of vm while a hold is set for it at pct, until the hold
// is released or ctx ends.
func (v *VC) holdAt(ctx context.Context, vm string, pct int32) {
	v.mu.Lock()
	var h *hold
	if i := slices.IndexFunc(v.holds[vm], func(c *hold) bool { return c.pct == pct }); i >= 0 {
		h = v.holds[vm][i]
		v.holds[vm] = slices.Delete(v.holds[vm], i, i+1)
	}
	v.mu.Unlock()
	if h == nil {
		return
	}
	close(h.reached)
	select {
	case <-h.release:
	case <-ctx.Done():
	}
}
