package approvals

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// slackGroups stands in for usergroups.users.list: a list per group, and a switch that
// makes every call fail as when Slack does not answer.
type slackGroups struct {
	mu      sync.Mutex
	members map[string][]string
	down    bool
	calls   int
}

func (g *slackGroups) Members(_ context.Context, id string) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.down {
		return nil, errors.New("slack usergroups.users.list: 503 service unavailable")
	}
	return slices.Clone(g.members[id]), nil
}

func (g *slackGroups) set(id string, members ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members[id] = members
}

func (g *slackGroups) setDown(down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = down
}

func TestGroupCacheBoundsStaleness(t *testing.T) {
	ctx := context.Background()
	src := &slackGroups{members: map[string][]string{"S0OPS": {"U0CAROL", "U0ERIN"}}}
	c := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	cache := NewGroupCache(src, time.Minute, 10*time.Minute, slog.New(slog.NewTextHandler(&logs, nil))).WithClock(c.now)

	if m, err := cache.Members(ctx, "S0OPS"); err != nil || !slices.Equal(m, []string{"U0CAROL", "U0ERIN"}) {
		t.Fatalf("first lookup: %v %v", m, err)
	}
	c.t = c.t.Add(30 * time.Second)
	if _, err := cache.Members(ctx, "S0OPS"); err != nil || src.calls != 1 {
		t.Fatalf("a fresh list was asked for again (%d calls, %v)", src.calls, err)
	}

	// Erin leaves the group while Slack stops answering.
	src.set("S0OPS", "U0CAROL")
	src.setDown(true)
	c.t = c.t.Add(5 * time.Minute)
	m, err := cache.Members(ctx, "S0OPS")
	if err != nil || !slices.Contains(m, "U0ERIN") {
		t.Fatalf("within max stale the last list is not used: %v %v", m, err)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "group=S0OPS") {
		t.Fatalf("serving a stale list logged no warning naming the group:\n%s", l)
	}

	c.t = c.t.Add(5 * time.Minute) // 10m30s after the last answer
	m, err = cache.Members(ctx, "S0OPS")
	if err == nil || m != nil {
		t.Fatalf("a list older than max stale is still used: %v", m)
	}
	if !strings.Contains(err.Error(), "S0OPS") || !strings.Contains(err.Error(), "10m0s") {
		t.Fatalf("error does not say which group and how stale: %v", err)
	}

	src.setDown(false)
	if m, err := cache.Members(ctx, "S0OPS"); err != nil || !slices.Equal(m, []string{"U0CAROL"}) {
		t.Fatalf("once Slack answers again: %v %v", m, err)
	}
}

func TestGroupCacheWithoutStaleness(t *testing.T) {
	src := &slackGroups{members: map[string][]string{"S0OPS": {"U0CAROL"}}}
	c := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	cache := NewGroupCache(src, time.Minute, 0, nil).WithClock(c.now)
	if _, err := cache.Members(context.Background(), "S0OPS"); err != nil {
		t.Fatal(err)
	}
	src.setDown(true)
	c.t = c.t.Add(time.Minute)
	if m, err := cache.Members(context.Background(), "S0OPS"); err == nil {
		t.Fatalf("max stale 0 served a list past its freshness: %v", m)
	}
}

// While an approver group cannot be resolved, approvers listed by name still decide;
// anybody else is refused with ErrGroupUnavailable (they may be in the group, so they
// are not called strangers) and nothing is stored.
func TestUnresolvedGroupFailsClosedForGroupApproversOnly(t *testing.T) {
	ctx := context.Background()
	src := &slackGroups{members: map[string][]string{"S0OPS": {"U0CAROL"}}}
	c := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	cache := NewGroupCache(src, time.Minute, 10*time.Minute, nil).WithClock(c.now)
	s := NewService(NewMemoryStore(), Policy{Approvers: []string{"U0BOSS", "S0OPS"}, Quorum: 1, ExpireAfter: 24 * time.Hour},
		cache, slog.New(slog.DiscardHandler)).WithClock(c.now).WithSigner(testSigner(t, 1))

	first := submit(t, s, "U0REQ", "web-01")
	if _, won, err := s.Approve(ctx, first.ID, "U0CAROL"); err != nil || !won {
		t.Fatalf("group member while Slack answers: won=%v err=%v", won, err)
	}

	src.set("S0OPS")  // Carol is removed from the group…
	src.setDown(true) // …while Slack stops answering.
	c.t = c.t.Add(11 * time.Minute)
	second := submit(t, s, "U0REQ", "web-02")
	for _, user := range []string{"U0CAROL", "U0STRANGER"} {
		if _, won, err := s.Approve(ctx, second.ID, user); !errors.Is(err, ErrGroupUnavailable) || won {
			t.Fatalf("approve by %s with the group unresolved: won=%v err=%v", user, won, err)
		}
		if _, err := s.Reject(ctx, second.ID, user, "no"); !errors.Is(err, ErrGroupUnavailable) {
			t.Fatalf("reject by %s with the group unresolved: %v", user, err)
		}
		if _, err := s.MayReject(ctx, second.ID, user); !errors.Is(err, ErrGroupUnavailable) {
			t.Fatalf("may reject by %s with the group unresolved: %v", user, err)
		}
		if _, err := s.Cancel(ctx, second.ID, user, ""); !errors.Is(err, ErrGroupUnavailable) {
			t.Fatalf("cancel by %s with the group unresolved: %v", user, err)
		}
	}
	if got, _ := s.Get(ctx, second.ID); got.State != StatePending || len(got.Approvals) != 0 {
		t.Fatalf("refused decisions changed the request: %+v", got)
	}
	if ok, err := s.IsApprover(ctx, "U0CAROL"); ok || !errors.Is(err, ErrGroupUnavailable) {
		t.Fatalf("IsApprover with the group unresolved: %v %v", ok, err)
	}
	// Bob, listed by name, still decides.
	if ok, err := s.IsApprover(ctx, "U0BOSS"); !ok || err != nil {
		t.Fatalf("IsApprover of a listed approver: %v %v", ok, err)
	}
	if _, won, err := s.Approve(ctx, second.ID, "U0BOSS"); err != nil || !won {
		t.Fatalf("approver listed by name with the group unresolved: won=%v err=%v", won, err)
	}
}

// A user-group ID presented as the user who clicks is nobody: it matched the group's own
// entry in the approver list before.
func TestOnlyUserIDsDecide(t *testing.T) {
	ctx := context.Background()
	policy := Policy{Approvers: []string{"U0BOSS", "W0GRID", "S0123GRP"}, Quorum: 1}
	for _, user := range []string{"S0123GRP", "", "u0boss", "<@U0BOSS>", "U0BOSS ", "U", "B0BOT", "U0BOSS|x"} {
		t.Run(user, func(t *testing.T) {
			s := NewService(NewMemoryStore(), policy, staticGroups{"S0123GRP": {"U0CAROL"}}, slog.New(slog.DiscardHandler))
			r := submit(t, s, "U0REQ", "web-01")
			if _, won, err := s.Approve(ctx, r.ID, user); !errors.Is(err, ErrNotUser) || won {
				t.Fatalf("approve: won=%v err=%v", won, err)
			}
			if _, err := s.Reject(ctx, r.ID, user, "no"); !errors.Is(err, ErrNotUser) {
				t.Fatalf("reject: %v", err)
			}
			if _, err := s.MayReject(ctx, r.ID, user); !errors.Is(err, ErrNotUser) {
				t.Fatalf("may reject: %v", err)
			}
			if _, err := s.Cancel(ctx, r.ID, user, ""); !errors.Is(err, ErrNotUser) {
				t.Fatalf("cancel: %v", err)
			}
			if got, _ := s.Get(ctx, r.ID); got.State != StatePending || len(got.Approvals) != 0 || got.Rejection != nil {
				t.Fatalf("a refused decision changed the request: %+v", got)
			}
		})
	}
}

func TestIsApprover(t *testing.T) {
	p := Policy{Approvers: []string{"U0BOSS", "W0GRID", "S0123GRP"}}
	members := map[string][]string{"S0123GRP": {"U0CAROL", "S0123GRP"}}
	for user, want := range map[string]bool{
		"U0BOSS": true, "W0GRID": true, "U0CAROL": true,
		"S0123GRP": false, // a group is not its own member, even when the list says so
		"U0DAVE":   false, "": false, "u0boss": false,
	} {
		if got := p.IsApprover(user, members); got != want {
			t.Errorf("IsApprover(%q) = %v, want %v", user, got, want)
		}
	}
}
