package vcenter

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// recentPlans remembers the plans a Manager made in the last minute, by spec. In one
// process (serve, demo) the bot plans a request when it is asked for, and the worker
// that starts the approved request seconds later can start on that plan instead of
// resolving the same spec again; an older plan is never handed out (see RecentPlan).
type recentPlans struct {
	mu    sync.Mutex
	byKey map[string]*Plan
}

const (
	recentKeep = time.Minute // plans older than this are forgotten
	recentMax  = 64          // and at most this many are kept
)

// specKey is the canonical form of a spec, defaults applied as Plan applies them.
func (m *Manager) specKey(s MoveSpec) string { return fmt.Sprintf("%+v", m.withDefaults(s)) }

func (m *Manager) remember(p *Plan) {
	key := m.specKey(p.Spec)
	m.recent.mu.Lock()
	defer m.recent.mu.Unlock()
	if m.recent.byKey == nil {
		m.recent.byKey = map[string]*Plan{}
	}
	var oldest string
	for k, q := range m.recent.byKey {
		if time.Since(q.ResolvedAt) >= recentKeep {
			delete(m.recent.byKey, k)
		} else if oldest == "" || q.ResolvedAt.Before(m.recent.byKey[oldest].ResolvedAt) {
			oldest = k
		}
	}
	if len(m.recent.byKey) >= recentMax {
		delete(m.recent.byKey, oldest)
	}
	m.recent.byKey[key] = p
}

// RecentPlan returns a plan of exactly this spec that this Manager resolved at most
// maxAge ago, for any caller. Plans are shared, not copied: callers must not modify them.
func (m *Manager) RecentPlan(spec MoveSpec, maxAge time.Duration) (*Plan, bool) {
	key := m.specKey(spec)
	m.recent.mu.Lock()
	defer m.recent.mu.Unlock()
	p, ok := m.recent.byKey[key]
	if !ok || time.Since(p.ResolvedAt) >= min(maxAge, recentKeep) {
		return nil, false
	}
	return p, true
}

// PlannedRecently reports whether this Manager resolved, at most maxAge ago, a plan of
// spec's move that includes vm, whatever other VMs it planned with it: a cheap test, with
// no vCenter read, of whether a caller about to start the same move may find a plan to
// reuse rather than read vCenter for it.
func (m *Manager) PlannedRecently(spec MoveSpec, vm string, maxAge time.Duration) bool {
	spec.VMs = nil
	key := m.specKey(spec)
	m.recent.mu.Lock()
	defer m.recent.mu.Unlock()
	for _, p := range m.recent.byKey {
		if time.Since(p.ResolvedAt) >= min(maxAge, recentKeep) || !slices.ContainsFunc(p.VMs, func(v VM) bool { return v.Name == vm }) {
			continue
		}
		s := p.Spec
		s.VMs = nil
		if m.specKey(s) == key {
			return true
		}
	}
	return false
}
