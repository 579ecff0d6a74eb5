package approvals

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Defaults of a GroupCache.
const (
	// DefaultGroupFresh is how long a group's members are used without asking again: a
	// burst of clicks costs one lookup.
	DefaultGroupFresh = time.Minute
	// DefaultGroupMaxStale is how long a group's last known members may still be used
	// while the source does not answer.
	DefaultGroupMaxStale = 10 * time.Minute
)

// GroupCache remembers the members of approver groups, so that a burst of clicks costs
// one lookup, and bounds how long a list is used once its source stops answering. A
// person removed from an approver group must not go on approving for as long as Slack is
// unreachable: past maxStale the cache answers with an error, and the Service then
// refuses everyone who is not an approver by name.
type GroupCache struct {
	src      GroupMembers
	fresh    time.Duration
	maxStale time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu    sync.Mutex
	known map[string]knownGroup
}

type knownGroup struct {
	members []string
	at      time.Time // when the source last answered
}

var _ GroupMembers = (*GroupCache)(nil)

// NewGroupCache returns a cache over src. A group's members are asked for again once they
// are older than fresh (0: DefaultGroupFresh); if src then fails, the last list is used,
// with a warning, until it is maxStale old (0: never past fresh). logger may be nil.
func NewGroupCache(src GroupMembers, fresh, maxStale time.Duration, logger *slog.Logger) *GroupCache {
	if fresh <= 0 {
		fresh = DefaultGroupFresh
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &GroupCache{src: src, fresh: fresh, maxStale: max(maxStale, 0), now: time.Now,
		log: logger.With("component", "approvals"), known: map[string]knownGroup{}}
}

// WithClock replaces the clock (tests of staleness).
func (c *GroupCache) WithClock(now func() time.Time) *GroupCache { c.now = now; return c }

// Members returns the members of group id: from the cache while fresh, else from the
// source; if the source fails, the last list while it is younger than maxStale, else an
// error that says how old the last list is.
func (c *GroupCache) Members(ctx context.Context, id string) ([]string, error) {
	c.mu.Lock()
	k, ok := c.known[id]
	c.mu.Unlock()
	now := c.now()
	if ok && now.Sub(k.at) < c.fresh {
		return slices.Clone(k.members), nil
	}
	m, err := c.src.Members(ctx, id)
	if err == nil {
		c.mu.Lock()
		c.known[id] = knownGroup{members: slices.Clone(m), at: now}
		c.mu.Unlock()
		return m, nil
	}
	if !ok {
		return nil, fmt.Errorf("members of %s never known: %w", id, err)
	}
	age := now.Sub(k.at)
	if age < c.maxStale {
		c.log.Warn("approver group members could not be refreshed: using the last known list",
			"group", id, "age", age.Round(time.Second), "max_stale", c.maxStale, "err", err)
		return slices.Clone(k.members), nil
	}
	return nil, fmt.Errorf("members of %s last known %s ago, longer than the %s allowed: %w",
		id, age.Round(time.Second), c.maxStale, err)
}
