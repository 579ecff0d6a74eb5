package approvals

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

type staticGroups map[string][]string

func (g staticGroups) Members(_ context.Context, id string) ([]string, error) {
	m, ok := g[id]
	if !ok {
		return nil, errors.New("no such group")
	}
	return m, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T, p Policy) (*Service, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	s := NewService(NewMemoryStore(), p, staticGroups{"S0OPS": {"U0GROUPIE"}}, slog.New(slog.NewTextHandler(io.Discard, nil))).
		WithClock(c.now).WithSigner(testSigner(t, 1))
	return s, c
}

// identified gives r's review what pre-flight records of the objects it moves: both
// vCenters' instance UUIDs and each VM's managed object id.
func identified(r *Request) *Request {
	r.Review.Source.InstanceUUID, r.Review.Target.InstanceUUID = "uuid-east", "uuid-west"
	for i, vm := range r.VMs {
		r.Review.VMs = append(r.Review.VMs, ReviewVM{VM: move.VM{Name: vm, Ref: fmt.Sprintf("vm-%d", 40+i)}})
	}
	return r
}

func submit(t *testing.T, s *Service, requester string, vms ...string) *Request {
	t.Helper()
	r := identified(&Request{Direction: Migrate, VMs: vms, SourceVC: "vc-east", TargetVC: "vc-west", Requester: requester, Channel: "C1"})
	if err := s.Submit(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestApprovePolicy(t *testing.T) {
	policy := Policy{Approvers: []string{"U0BOSS", "U0REQ", "S0OPS"}, Quorum: 1, ExpireAfter: time.Hour}
	tests := []struct {
		name      string
		policy    Policy
		clicker   string
		advance   time.Duration
		blocker   bool // the request's review holds a blocker
		wantErr   error
		wantWon   bool
		wantState State
	}{
		{name: "listed approver", policy: policy, clicker: "U0BOSS", wantWon: true, wantState: StateApproved},
		{name: "member of approver group", policy: policy, clicker: "U0GROUPIE", wantWon: true, wantState: StateApproved},
		{name: "stranger", policy: policy, clicker: "U0RANDOM", wantErr: ErrNotApprover, wantState: StatePending},
		{name: "self approval refused", policy: policy, clicker: "U0REQ", wantErr: ErrSelfApproval, wantState: StatePending},
		{name: "self approval allowed by config", policy: Policy{Approvers: policy.Approvers, AllowSelfApproval: true}, clicker: "U0REQ", wantWon: true, wantState: StateApproved},
		{name: "expired", policy: policy, clicker: "U0BOSS", advance: 2 * time.Hour, wantErr: ErrExpired, wantState: StateExpired},
		{name: "pre-flight blocker", policy: policy, clicker: "U0BOSS", blocker: true, wantErr: ErrBlocked, wantState: StatePending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newService(t, tt.policy)
			r := identified(&Request{Direction: Migrate, VMs: []string{"web-01", "web-02"}, SourceVC: "vc-east", TargetVC: "vc-west", Requester: "U0REQ", Channel: "C1"})
			if tt.blocker {
				r.Review.Findings = []Finding{{Severity: SeverityOK, Message: "web-01 is powered on"}, {Severity: SeverityBlocker, VM: "web-02", Message: "web-02 has a USB device"}}
			}
			if err := s.Submit(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			c.t = c.t.Add(tt.advance)
			got, won, err := s.Approve(context.Background(), r.ID, tt.clicker)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if won != tt.wantWon {
				t.Fatalf("won = %v, want %v", won, tt.wantWon)
			}
			stored, _ := s.Get(context.Background(), r.ID)
			if stored.State != tt.wantState {
				t.Fatalf("stored state = %s, want %s", stored.State, tt.wantState)
			}
			if tt.wantWon && (got.State != StateApproved || len(got.Jobs) != 2 || got.Jobs[1].State != StateQueued) {
				t.Fatalf("approved record = %+v", got)
			}
		})
	}
}

func TestQuorumNeedsDistinctApprovers(t *testing.T) {
	s, _ := newService(t, Policy{Approvers: []string{"U0A", "U0B"}, Quorum: 2})
	r := submit(t, s, "U0REQ", "db-01")
	ctx := context.Background()
	if _, won, err := s.Approve(ctx, r.ID, "U0A"); err != nil || won {
		t.Fatalf("first approval: won=%v err=%v", won, err)
	}
	if _, won, err := s.Approve(ctx, r.ID, "U0A"); !errors.Is(err, ErrAlreadyCounted) || won {
		t.Fatalf("same approver twice: won=%v err=%v", won, err)
	}
	got, won, err := s.Approve(ctx, r.ID, "U0B")
	if err != nil || !won {
		t.Fatalf("second approver: won=%v err=%v", won, err)
	}
	if got.State != StateApproved || len(got.Approvers()) != 2 {
		t.Fatalf("state %s approvers %v", got.State, got.Approvers())
	}
	if _, won, err := s.Approve(ctx, r.ID, "U0B"); !errors.Is(err, ErrAlreadyDecided) || won {
		t.Fatalf("click after approval: won=%v err=%v", won, err)
	}
}

func TestConcurrentApprovalsHaveOneWinner(t *testing.T) {
	approvers := []string{}
	for i := range 100 {
		approvers = append(approvers, "U"+string(rune('A'+i%26))+string(rune('A'+i/26)))
	}
	s, _ := newService(t, Policy{Approvers: approvers, Quorum: 1})
	r := submit(t, s, "U0REQ", "web-01")
	var winners atomic.Int32
	var wg sync.WaitGroup
	for _, a := range approvers {
		wg.Go(func() {
			_, won, err := s.Approve(context.Background(), r.ID, a)
			if won {
				winners.Add(1)
			}
			if err != nil && !errors.Is(err, ErrAlreadyDecided) {
				t.Errorf("approve by %s: %v", a, err)
			}
		})
	}
	wg.Wait()
	if winners.Load() != 1 {
		t.Fatalf("%d clicks won, want exactly 1", winners.Load())
	}
}

func TestRejectAndCancel(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Policy{Approvers: []string{"U0BOSS"}})
	r := submit(t, s, "U0REQ", "web-01")
	if _, err := s.Reject(ctx, r.ID, "U0RANDOM", "no"); !errors.Is(err, ErrNotApprover) {
		t.Fatalf("stranger reject: %v", err)
	}
	got, err := s.Reject(ctx, r.ID, "U0BOSS", "change freeze")
	if err != nil || got.State != StateRejected || got.Rejection.Reason != "change freeze" {
		t.Fatalf("reject: %v %+v", err, got)
	}
	if _, won, err := s.Approve(ctx, r.ID, "U0BOSS"); !errors.Is(err, ErrAlreadyDecided) || won {
		t.Fatalf("approve after reject: won=%v err=%v", won, err)
	}

	r2 := submit(t, s, "U0REQ", "web-02")
	if _, err := s.Cancel(ctx, r2.ID, "U0RANDOM", ""); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("stranger cancel: %v", err)
	}
	got, err = s.Cancel(ctx, r2.ID, "U0REQ", "wrong VM")
	if err != nil || got.State != StateCancelled || got.Jobs[0].State != StateCancelled {
		t.Fatalf("requester cancel: %v %+v", err, got)
	}
}

func TestJobsSettleTheRequest(t *testing.T) {
	ctx := context.Background()
	s, c := newService(t, Policy{Approvers: []string{"U0BOSS"}})
	r := submit(t, s, "U0REQ", "web-01", "web-02")
	if _, _, err := s.Approve(ctx, r.ID, "U0BOSS"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		job      int
		state    State
		progress int
		want     State
	}{
		{0, StateRunning, 40, StateRunning},
		{0, StateSucceeded, 0, StateRunning},
		{1, StateFailed, 0, StateFailed},
	}
	for _, st := range steps {
		got, _, _, err := s.ApplyReport(ctx, r.ID, Report{Job: r.Jobs[st.job].ID, State: st.state, Progress: st.progress, Error: "boom"})
		if err != nil {
			t.Fatal(err)
		}
		if got.State != st.want {
			t.Fatalf("after job %d %s: request %s, want %s", st.job, st.state, got.State, st.want)
		}
	}
	got, _ := s.Get(ctx, r.ID)
	// A late, redelivered progress report must not resurrect a finished job.
	changed, err := got.ApplyReport(Report{Job: got.Jobs[0].ID, State: StateRunning, Progress: 50}, c.t)
	if err != nil || changed || got.Jobs[0].State != StateSucceeded {
		t.Fatalf("late event changed a finished job: changed=%v err=%v", changed, err)
	}
	if got.Progress() != 100 {
		t.Fatalf("progress of a finished request = %d", got.Progress())
	}
}

func TestExpireDue(t *testing.T) {
	ctx := context.Background()
	s, c := newService(t, Policy{Approvers: []string{"U0BOSS"}, ExpireAfter: time.Hour})
	old := submit(t, s, "U0REQ", "web-01")
	c.t = c.t.Add(30 * time.Minute)
	fresh := submit(t, s, "U0REQ", "web-02")
	c.t = c.t.Add(45 * time.Minute)
	got, err := s.ExpireDue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != old.ID || got[0].State != StateExpired {
		t.Fatalf("expired %+v, want only %s", got, old.ID)
	}
	if f, _ := s.Get(ctx, fresh.ID); f.State != StatePending {
		t.Fatalf("fresh request is %s", f.State)
	}
}

func TestRequestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewRequestID()
		if seen[id] || len(id) != len("xvm-")+8 {
			t.Fatalf("bad or duplicate id %q", id)
		}
		seen[id] = true
	}
	if JobID("xvm-abc", 0) != "xvm-abc-01" {
		t.Fatal(JobID("xvm-abc", 0))
	}
}

func TestQuorumByTargetVCenter(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Policy{Approvers: []string{"U0A", "U0B"}, Quorum: 1, QuorumByVCenter: map[string]int{"vc-west": 2}})
	toWest := submit(t, s, "U0REQ", "db-01") // submit targets vc-west
	if toWest.Quorum != 2 {
		t.Fatalf("quorum into vc-west = %d, want 2", toWest.Quorum)
	}
	toEast := &Request{Direction: Import, VMs: []string{"db-02"}, SourceVC: "vc-west", TargetVC: "vc-east", Requester: "U0REQ"}
	if err := s.Submit(ctx, toEast); err != nil {
		t.Fatal(err)
	}
	if toEast.Quorum != 1 {
		t.Fatalf("quorum into vc-east = %d, want the global 1", toEast.Quorum)
	}
	if _, won, err := s.Approve(ctx, toWest.ID, "U0A"); err != nil || won {
		t.Fatalf("one approval of two: won=%v err=%v", won, err)
	}
	if _, won, err := s.Approve(ctx, toWest.ID, "U0B"); err != nil || !won {
		t.Fatalf("second approval: won=%v err=%v", won, err)
	}
}

func TestMayRejectChangesNothing(t *testing.T) {
	ctx := context.Background()
	s, c := newService(t, Policy{Approvers: []string{"U0BOSS"}, ExpireAfter: time.Hour})
	r := submit(t, s, "U0REQ", "web-01")
	if _, err := s.MayReject(ctx, r.ID, "U0RANDOM"); !errors.Is(err, ErrNotApprover) {
		t.Fatalf("stranger: %v", err)
	}
	if _, err := s.MayReject(ctx, r.ID, "U0BOSS"); err != nil {
		t.Fatalf("approver: %v", err)
	}
	if got, _ := s.Get(ctx, r.ID); got.State != StatePending || got.Rejection != nil {
		t.Fatalf("MayReject changed the record: %+v", got)
	}
	c.t = c.t.Add(2 * time.Hour)
	if _, err := s.MayReject(ctx, r.ID, "U0BOSS"); !errors.Is(err, ErrExpired) {
		t.Fatalf("after expiry: %v", err)
	}
}

// A job the request's cancel marked cancelled while it was (unknown to the record)
// already moving reports success later: the success is kept, so the counts and undo know
// the VM moved; a late failure or progress does not reopen a cancelled job.
func TestSuccessOutranksARequestCancelMark(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	r := &Request{ID: "xvm-c1", State: StateQueued, Requester: "U0REQ",
		Jobs: []Job{{ID: "j1", VM: "web-01", State: StateQueued}, {ID: "j2", VM: "web-02", State: StateQueued}}}
	if err := r.Cancel(Policy{}, "U0REQ", "", nil, now); err != nil {
		t.Fatal(err)
	}
	for _, late := range []State{StateRunning, StateFailed} {
		if changed, err := r.ApplyReport(Report{Job: "j2", State: late, Progress: 50, Error: "boom"}, now); changed || err != nil {
			t.Fatalf("%s after cancel: changed=%v err=%v", late, changed, err)
		}
	}
	changed, err := r.ApplyReport(Report{Job: "j1", State: StateSucceeded, Progress: 100}, now)
	if err != nil || !changed || r.Job("j1").State != StateSucceeded || r.Counts()[StateSucceeded] != 1 {
		t.Fatalf("success after cancel: changed=%v err=%v job %+v", changed, err, r.Job("j1"))
	}
	if r.State != StateCancelled || r.Job("j2").State != StateCancelled {
		t.Fatalf("request %s, j2 %s: want the request still cancelled", r.State, r.Job("j2").State)
	}
	if changed, _ := r.ApplyReport(Report{Job: "j1", State: StateSucceeded, Progress: 100}, now); changed {
		t.Fatal("the same success applied twice")
	}
}
