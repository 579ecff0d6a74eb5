package worker

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

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// resolvedOnto is a resolution of any VM onto host, as a review keeps it.
func resolvedOnto(host string) func(context.Context, events.Job) (*move.Resolved, error) {
	return func(context.Context, events.Job) (*move.Resolved, error) {
		return &move.Resolved{PowerState: "poweredOn", Host: move.Object{Type: "HostSystem", Value: "host-2", Name: host},
			Pool: move.Object{Type: "ResourcePool", Value: "resgroup-1"}, Datastore: move.Object{Type: "Datastore", Value: "datastore-1"},
			Folder: move.Object{Type: "Folder", Value: "group-v1"}}, nil
	}
}

func rechecks(w *Worker, result string) float64 {
	var m dto.Metric
	if err := w.m.rechecks.WithLabelValues(result).Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// A job whose approval carries its VM's resolved placement, on a worker that has no
// fresh plan of it (another process, or a late approval), starts on that placement after
// rechecking it, without planning from names; when the recheck finds something changed,
// or cannot read the vCenters, the VM is planned from names and still moves once. An
// approval from before placements were kept plans as before.
func TestApprovedPlacementIsRecheckedNotPlannedAgain(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		resolved              bool
		recheck               error
		wantPlans, wantChecks int
		wantHost, wantCounted string
	}{
		{name: "unchanged", resolved: true, wantChecks: 1, wantHost: "esx-w2", wantCounted: recheckUsed},
		{name: "changed", resolved: true, recheck: fmt.Errorf("host esx-w2 is in maintenance mode: %w", vcenter.ErrChanged),
			wantPlans: 1, wantChecks: 1, wantHost: "esx-w1", wantCounted: recheckChanged},
		{name: "unreadable", resolved: true, recheck: errors.New("vc-west: connection refused"),
			wantPlans: 1, wantChecks: 1, wantHost: "esx-w1", wantCounted: recheckFailed},
		{name: "approved before placements were kept", wantPlans: 1, wantHost: "esx-w1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				if tc.resolved {
					wd.approver.Resolve = resolvedOnto("esx-w2")
				}
				wd.vc.recheckFn = func(*move.Resolved) error { return tc.recheck }
				w := wd.worker("w1", Config{PlanReuse: time.Nanosecond})
				j := wd.job("web-01", 1)
				if err := w.Handle(t.Context(), j, delivery{1}); err != nil {
					t.Fatal(err)
				}
				wd.movedOnce("web-01")
				if wd.vc.plans != tc.wantPlans || wd.vc.rechecks != tc.wantChecks {
					t.Errorf("%d plans from names and %d rechecks, want %d and %d", wd.vc.plans, wd.vc.rechecks, tc.wantPlans, tc.wantChecks)
				}
				rec, ok, err := wd.records.Load(t.Context(), j.ID)
				if err != nil || !ok || rec.Move == nil || rec.Move.Host != tc.wantHost {
					t.Errorf("the move's record %+v (%v): want it started on %s", rec.Move, err, tc.wantHost)
				}
				for _, r := range []string{recheckUsed, recheckChanged, recheckFailed} {
					want := 0.0
					if r == tc.wantCounted {
						want = 1
					}
					if got := rechecks(w, r); got != want {
						t.Errorf("xvm_worker_rechecks_total{result=%q} = %v, want %v", r, got, want)
					}
				}
			})
		})
	}
}

// countingPlans is a vCenter Manager that counts the plans made from names.
type countingPlans struct {
	*vcenter.Manager
	plans atomic.Int32
}

func (c *countingPlans) Plan(ctx context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error) {
	c.plans.Add(1)
	return c.Manager.Plan(ctx, spec)
}

// On simulated vCenters: the job of a request the bot planned (its review keeps the
// placement it resolved) moves, on a worker that cannot reuse that plan, to the approved
// host and datastore with no plan made from names.
func TestApprovedPlacementMovesWithoutAPlanLab(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	planned := map[string]*vcenter.Plan{}
	r.approver.Resolve = func(ctx context.Context, j events.Job) (*move.Resolved, error) {
		p := r.plan(t, j)
		planned[j.VM] = p
		return p.Resolved(j.VM), nil
	}
	j := r.job(t, "web-02")
	vc := &countingPlans{Manager: r.mgr}
	w := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 1, PlanReuse: time.Nanosecond}), vc, r.rec,
		NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	time.Sleep(time.Millisecond) // the bot's plan is older than PlanReuse
	if err := w.Handle(r.ctx, j, delivery{1}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-02")
	if n := vc.plans.Load(); n != 0 {
		t.Errorf("the worker planned from names %d times", n)
	}
	if rechecks(w, recheckUsed) != 1 {
		t.Errorf("the approved placement was not used: %v used, %v changed, %v failed",
			rechecks(w, recheckUsed), rechecks(w, recheckChanged), rechecks(w, recheckFailed))
	}
	at, err := r.lab.VC("vc-west").FindVM(r.ctx, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if p := planned["web-02"]; at.Host != p.Host || len(at.Disks) == 0 || at.Disks[0].Datastore != p.Datastore || !at.Disks[0].Thin {
		t.Errorf("web-02 is on %s, disks %+v; approved %s, thin on %s", at.Host, at.Disks, p.Host, p.Datastore)
	}
}

// admissionAfterRecheck is the request store of a worker whose reads for admission wait,
// for at most a second of the bubble's clock, for the recheck of the job's approved
// placement to have begun: overlapped says whether it had.
type admissionAfterRecheck struct {
	NATSRequests
	rechecking chan struct{}
	overlapped *atomic.Bool
}

func (a admissionAfterRecheck) Admission(ctx context.Context, requestID, jobID string) (approvals.Admission, error) {
	select {
	case <-a.rechecking:
		a.overlapped.Store(true)
	case <-time.After(time.Second):
	}
	return a.NATSRequests.Admission(ctx, requestID, jobID)
}

// On a worker with no fresh plan of the move, the approved placement is rechecked while
// the job is admitted, not after: the recheck's vCenter reads overlap admission's reads
// and writes. Its plan is used only when admission lets the job run under the grant it
// rechecked: a job whose request was cancelled meanwhile is refused and moves nothing,
// and the recheck is dropped, not counted as used. Where this process planned the move a
// moment ago (the bot, in one process), no recheck reads vCenter for nothing.
func TestApprovedPlacementIsRecheckedWhileTheJobIsAdmitted(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cancelled      bool // the request was cancelled after the job was queued
		botPlanned     bool // this process planned the move a moment ago
		windowClosed   bool // vc-west's change window opens in two hours
		wantOverlapped bool
		wantChecks     int
		wantUsed       float64
	}{
		{name: "admitted", wantOverlapped: true, wantChecks: 1, wantUsed: 1},
		{name: "refused by admission", cancelled: true, wantOverlapped: true, wantChecks: 1},
		{name: "planned a moment ago in this process", botPlanned: true},
		{name: "outside the target's change window", windowClosed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				wd.approver.Resolve = resolvedOnto("esx-w2")
				rechecking := make(chan struct{})
				var once sync.Once
				wd.vc.recheckFn = func(*move.Resolved) error {
					once.Do(func() { close(rechecking) })
					return nil
				}
				var overlapped atomic.Bool
				reuse := time.Nanosecond
				if tc.botPlanned {
					reuse = time.Minute
				}
				var windows map[string][]approvals.Window
				if tc.windowClosed {
					opens := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Minute)
					win, err := approvals.ParseWindow(fmt.Sprintf("daily %s-%s", opens.Format("15:04"), opens.Add(time.Hour).Format("15:04")), time.UTC)
					if err != nil {
						t.Fatal(err)
					}
					windows = map[string][]approvals.Window{"vc-west": {win}}
				}
				w := wd.worker("w1", Config{PlanReuse: reuse, Windows: windows,
					Requests: admissionAfterRecheck{NATSRequests{Store: wd.requests}, rechecking, &overlapped}})
				j := wd.job("web-01", 1)
				if tc.botPlanned {
					wd.vc.recent = wd.vc.plan(MoveSpec(j))
				}
				if tc.cancelled {
					rec, rev, err := wd.requests.Get(t.Context(), j.RequestID)
					if err != nil {
						t.Fatal(err)
					}
					rec.State = approvals.StateCancelled
					if _, err := wd.requests.Update(t.Context(), rec, rev); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(time.Millisecond)
				err := w.Handle(t.Context(), j, delivery{1})
				if tc.windowClosed {
					if !errors.Is(err, events.ErrRetry) || wd.vc.rechecks != 0 || wd.vc.taskCount() != 0 {
						t.Errorf("Handle = %v after %d rechecks and %d relocations; want the job handed back to wait, nothing read",
							err, wd.vc.rechecks, wd.vc.taskCount())
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if overlapped.Load() != tc.wantOverlapped {
					t.Errorf("recheck under way while admission read the request: %v, want %v", overlapped.Load(), tc.wantOverlapped)
				}
				if wd.vc.rechecks != tc.wantChecks || wd.vc.plans != 0 {
					t.Errorf("%d rechecks and %d plans from names, want %d and 0", wd.vc.rechecks, wd.vc.plans, tc.wantChecks)
				}
				if got := rechecks(w, recheckUsed); got != tc.wantUsed {
					t.Errorf("xvm_worker_rechecks_total{result=%q} = %v, want %v", recheckUsed, got, tc.wantUsed)
				}
				if tc.cancelled {
					if n := wd.vc.taskCount(); n != 0 {
						t.Errorf("%d relocations of a job its request's cancel refused", n)
					}
					if got := refusedCount(t, w, approvals.ReasonRequestState); got != 1 {
						t.Errorf("xvm_jobs_refused_total{reason=%q} = %v, want 1", approvals.ReasonRequestState, got)
					}
					return
				}
				wd.movedOnce("web-01")
				want := "esx-w2" // the approved host, rechecked
				if tc.botPlanned {
					want = "esx-w1" // the bot's plan
				}
				if rec, ok, err := wd.records.Load(t.Context(), j.ID); err != nil || !ok || rec.Move == nil || rec.Move.Host != want {
					t.Errorf("the move's record %+v (%v): want it started on %s", rec.Move, err, want)
				}
			})
		})
	}
}
