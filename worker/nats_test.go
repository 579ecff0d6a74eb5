package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// The NATS side of the worker (store.go) on an embedded NATS, without a lab.

// newBus starts an embedded NATS and returns a bus on it.
func newBus(t *testing.T) (context.Context, *events.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, startBus(t, ctx, events.BusConfig{})
}

// startBus starts an embedded NATS for the test and returns a bus of cfg on it.
func startBus(t *testing.T, ctx context.Context, cfg events.BusConfig) *events.Bus {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := events.StartEmbedded(ctx, events.EmbeddedConfig{DataDir: filepath.Join(t.TempDir(), "nats")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := events.NewBus(ctx, nc, cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

// The job records in NATS keep what the worker's state machine relies on: the first
// save claims the job, a cancel request survives the worker's writes, and a job the
// bot cancelled before it started cannot be claimed.
func TestNATSRecordsClaimAndKeepCancels(t *testing.T) {
	t.Parallel()
	ctx, bus := newBus(t)
	recs := NATSRecords{Jobs: bus.Jobs()}
	rec := events.JobRecord{JobID: "xvm-r1-01", State: events.JobPreparing, Worker: "w1", Attempts: 1, SourceVC: "vc-east"}
	if err := recs.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Jobs().Create(ctx, &events.JobRecord{JobID: rec.JobID, State: events.JobPreparing, Worker: "w2"}); !errors.Is(err, events.ErrJobClaimed) {
		t.Fatalf("a second claim: %v, want it refused", err)
	}
	if state, err := bus.Jobs().RequestCancel(ctx, rec.JobID, "U0BOB"); err != nil || state != events.JobRunning {
		t.Fatalf("RequestCancel = %s, %v", state, err)
	}
	rec.State, rec.TaskRef = events.JobRunning, "task-7" // written from what the worker read before the cancel
	if err := recs.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, ok, err := recs.Load(ctx, rec.JobID)
	if err != nil || !ok || !got.CancelRequested || got.CancelledBy != "U0BOB" || got.State != events.JobRunning ||
		got.TaskRef != "task-7" || got.StartedAt.IsZero() {
		t.Fatalf("record %+v (%v), want the task and the cancel request both kept", got, err)
	}

	if state, err := bus.Jobs().RequestCancel(ctx, "xvm-r1-02", "U0ALICE"); err != nil || state != events.JobCancelled {
		t.Fatalf("RequestCancel before start = %s, %v", state, err)
	}
	err = recs.Save(ctx, events.JobRecord{JobID: "xvm-r1-02", State: events.JobPreparing, Worker: "w1", Attempts: 1})
	if !errors.Is(err, ErrCancelled) {
		t.Fatalf("claiming a job cancelled before it started: %v, want ErrCancelled", err)
	}
	if got, _, _ := recs.Load(ctx, "xvm-r1-02"); got.State != events.JobCancelled {
		t.Fatalf("record %+v, want it still cancelled", got)
	}
}

// A job that had no record when its delivery loaded it is claimed with one create; if the
// bot cancelled it in between, the claim still finds the cancel and nothing starts.
func TestFirstClaimCreatesAndStillSeesACancel(t *testing.T) {
	t.Parallel()
	ctx, bus := newBus(t)
	recs := NATSRecords{Jobs: bus.Jobs()}
	w := &Worker{records: recs}
	fresh := &jobRun{w: w, rec: events.JobRecord{JobID: "xvm-r2-01", State: events.JobPreparing, Worker: "w1", Attempts: 1}}
	if err := fresh.claim(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := recs.Load(ctx, "xvm-r2-01"); !ok || got.Worker != "w1" || got.StartedAt.IsZero() {
		t.Fatalf("record %+v, want it claimed by w1 with its start", got)
	}

	if _, err := bus.Jobs().RequestCancel(ctx, "xvm-r2-02", "U0ALICE"); err != nil {
		t.Fatal(err)
	}
	late := &jobRun{w: w, rec: events.JobRecord{JobID: "xvm-r2-02", State: events.JobPreparing, Worker: "w1", Attempts: 1}}
	if err := late.claim(ctx, false); !errors.Is(err, ErrCancelled) {
		t.Fatalf("claiming a job cancelled after it was loaded: %v, want ErrCancelled", err)
	}
	if got, _, _ := recs.Load(ctx, "xvm-r2-02"); got.State != events.JobCancelled {
		t.Fatalf("record %+v, want it still cancelled", got)
	}
}

// A disk placed apart occupies its datastore like the VM's own: the per-datastore limit
// counts moves writing there.
func TestDiskPlacedApartTakesItsDatastoresSlot(t *testing.T) {
	t.Parallel()
	ctx, bus := newBus(t)
	s := NATSSlots{Slots: bus.Slots(), Limits: Limits{PerDatastore: 1}}
	apart := vcenter.Footprint{TargetVCenter: "vc-west", TargetDatastore: "vc-west/ds-1", TargetDiskDatastores: []string{"vc-west/ds-2"}}
	c, err := s.Acquire(ctx, "job-1", apart)
	if err != nil {
		t.Fatal(err)
	}
	onlyDS2 := vcenter.Footprint{TargetVCenter: "vc-west", TargetDatastore: "vc-west/ds-2"}
	if _, err := s.Acquire(ctx, "job-2", onlyDS2); !errors.Is(err, ErrBusy) {
		t.Fatalf("second move onto ds-2: err = %v, want busy", err)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, "job-2", onlyDS2); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// The per-vCenter limit counts moves across every host and datastore of a vCenter.
func TestPerVCenterLimitRefusesTheMoveBeyondIt(t *testing.T) {
	t.Parallel()
	ctx, bus := newBus(t)
	s := NATSSlots{Slots: bus.Slots(), Limits: Limits{PerHost: 10, PerDatastore: 10, PerVCenter: 2}}
	fp := func(i int) vcenter.Footprint {
		return vcenter.Footprint{SourceVCenter: "vc-east", TargetVCenter: "vc-west",
			SourceHost: fmt.Sprintf("vc-east/host-%d", i), TargetHost: fmt.Sprintf("vc-west/host-%d", i),
			SourceDatastores: []string{fmt.Sprintf("vc-east/ds-%d", i)}, TargetDatastore: fmt.Sprintf("vc-west/ds-%d", i)}
	}
	var claims []Claim
	for i := range 2 {
		c, err := s.Acquire(ctx, fmt.Sprintf("job-%d", i), fp(i))
		if err != nil {
			t.Fatalf("move %d: %v", i, err)
		}
		claims = append(claims, c)
	}
	if _, err := s.Acquire(ctx, "job-2", fp(2)); !errors.Is(err, ErrBusy) {
		t.Fatalf("third move on other hosts and datastores: err = %v, want busy (vCenter limit 2)", err)
	}
	if err := claims[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, "job-2", fp(2)); err != nil {
		t.Fatalf("after one ended: %v", err)
	}
}

// The VMs a job plans together with are the request's jobs that have not started: ended
// ones are gone, and running ones already take their space in the target (counting them
// again in the space check could block every job still to come).
func TestRequestVMsLeavesOutStartedMoves(t *testing.T) {
	t.Parallel()
	ctx, bus := newBus(t)
	req := &approvals.Request{ID: "xvm-vms00001", Direction: approvals.Migrate, SourceVC: "vc-east", TargetVC: "vc-west",
		State: approvals.StateRunning, CreatedAt: time.Now(), VMs: []string{"a", "b", "c", "d", "e"},
		Jobs: []approvals.Job{{ID: "j1", VM: "a", State: approvals.StateSucceeded}, {ID: "j2", VM: "b", State: approvals.StateRunning},
			{ID: "j3", VM: "c", State: approvals.StateQueued}, {ID: "j4", VM: "d", State: approvals.StateFailed},
			{ID: "j5", VM: "e", State: approvals.StateQueued}}}
	if _, err := bus.Requests().Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	got, err := NATSRequests{Store: bus.Requests()}.VMs(ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "c,e" {
		t.Fatalf("VMs = %v, want the two not started (c, e)", got)
	}
}
