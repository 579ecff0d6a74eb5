package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/worker/workertest"
)

// The worker's behaviour, job by job, in memory (fakes_test.go) and on synctest's clock.

// bubble runs f in a synctest bubble with a fresh world.
func bubble(t *testing.T, f func(t *testing.T, wd *world)) {
	t.Helper()
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { f(t, newWorld(t)) })
}

// async handles a delivery of j in the background; the channel has its result.
func async(ctx context.Context, w *Worker, j events.Job, attempt uint64) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.Handle(ctx, j, delivery{attempt}) }()
	return done
}

func TestFreshJobMovesTheVMInMemory(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		j := wd.job("web-01", 1)
		if err := wd.worker("w1", Config{}).Handle(t.Context(), j, delivery{1}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
		rec := wd.records.get(j.ID)
		if rec.State != events.JobSucceeded || rec.TaskRef == "" || rec.Attempts != 1 || rec.Worker != "w1" {
			t.Fatalf("job record %+v", rec)
		}
		// The outcome carries where the VM was, for /xvm undo.
		o := wd.rec.final()[0].Origin
		if o == nil || o.VCenter != "vc-east" || o.Cluster != "east-prod" || o.Pool != "apps" || o.Folder != "apps/web" ||
			o.Datastore != "east-ds-01" || o.Host != "esx-e1" || len(o.Networks) != 1 ||
			o.Networks[0] != (move.Network{Source: "app-pg", Target: "east-app-pg"}) {
			t.Fatalf("origin = %+v", o)
		}
		if s := wd.rec.byType(events.EventStarted); len(s) != 1 || !strings.Contains(s[0].Message, "started (attempt 1)") {
			t.Fatalf("started events %+v", s)
		}
	})
}

// A worker died after starting the relocation: the next one follows the same task.
func TestRedeliveryFollowsTheRecordedTaskInMemory(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		j := wd.job("web-02", 1)
		taskRef, err := wd.vc.Start(t.Context(), wd.vc.plan(MoveSpec(j)), j.VM)
		if err != nil {
			t.Fatal(err)
		}
		if err := wd.records.Save(t.Context(), events.JobRecord{JobID: j.ID, State: events.JobRunning, Worker: "dead-worker",
			Attempts: 1, TaskRef: taskRef, SourceVC: "vc-east"}); err != nil {
			t.Fatal(err)
		}
		if err := wd.worker("w2", Config{}).Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-02")
		if n := wd.vc.taskCount(); n != 1 {
			t.Errorf("%d tasks, want only the recorded one", n)
		}
		started := wd.rec.byType(events.EventStarted)
		if len(started) != 1 || !strings.Contains(started[0].Message, taskRef) {
			t.Errorf("started events %+v, want one saying it follows %s", started, taskRef)
		}
		// The record kept no Move: what was not recorded is said, not pretended.
		if f := wd.rec.final()[0]; !strings.Contains(f.Warning, "placement was not verified") || f.Origin != nil {
			t.Errorf("succeeded event %+v, want it to say the placement was not verified", f)
		}
	})
}

// A worker died between asking vCenter to relocate and recording the task, and the move
// finished meanwhile: the next one sees the VM arrived and starts nothing.
func TestRedeliveryAfterTheMoveFinishedStartsNothing(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		j := wd.job("web-03", 1)
		ref, _ := wd.vc.Start(t.Context(), wd.vc.plan(MoveSpec(j)), j.VM)
		if _, err := wd.vc.Watch(t.Context(), "vc-east", ref, j.VM, func(int) {}); err != nil {
			t.Fatal(err)
		}
		if err := wd.records.Save(t.Context(), events.JobRecord{JobID: j.ID, State: events.JobPreparing, Worker: "dead-worker",
			Attempts: 1, SourceVC: "vc-east"}); err != nil {
			t.Fatal(err)
		}
		if err := wd.worker("w2", Config{}).Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-03")
		if n := wd.vc.taskCount(); n != 1 {
			t.Fatalf("%d tasks: the redelivery started another relocation", n)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobSucceeded {
			t.Fatalf("record %+v", rec)
		}
	})
}

// A redelivery whose recorded task vCenter forgot, of a VM that has not moved, starts a
// new relocation only after checking the approval again.
func TestForgottenTaskOfAnUnmovedVMStartsAgain(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		j := wd.job("web-01", 1)
		if err := wd.records.Save(t.Context(), events.JobRecord{JobID: j.ID, State: events.JobRunning, Worker: "dead-worker",
			Attempts: 1, TaskRef: "task-gone", SourceVC: "vc-east"}); err != nil {
			t.Fatal(err)
		}
		if err := wd.worker("w2", Config{}).Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
		if rec := wd.records.get(j.ID); rec.State != events.JobSucceeded || rec.TaskRef != "task-1" || rec.Attempts != 2 {
			t.Fatalf("record %+v, want succeeded with its new task on the second attempt", rec)
		}
	})
}

// Two jobs for the same VM (two requests for web-01) reach the same worker at once: the
// VM's lease belongs to one job, so the other waits for it and never starts a second
// relocation, although both run under the same worker name.
func TestTwoJobsForOneVMOnOneWorker(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.gate = make(chan struct{})
		w := wd.worker("w1", Config{})
		first := wd.job("web-01", 1)
		second := jobFor("web-01")
		second.ID, second.RequestID = "xvm-test0002-01", "xvm-test0002"
		js, err := wd.approver.Approve(t.Context(), second)
		if err != nil {
			t.Fatal(err)
		}
		done := async(t.Context(), w, first, 1)
		synctest.Wait() // the first job's task runs
		if err := w.Handle(t.Context(), js[0], delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("second job: err = %v, want it handed back to wait for the lease", err)
		}
		close(wd.vc.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
		if _, seen, _ := wd.records.Load(t.Context(), js[0].ID); seen {
			t.Errorf("the second job left a record: it got past the lease")
		}
	})
}

// A finished job delivered again re-announces its outcome (same event id) and moves nothing.
func TestFinishedJobIsOnlyReannounced(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		w := wd.worker("w1", Config{})
		j := wd.job("web-01", 1)
		for attempt := uint64(1); attempt <= 2; attempt++ {
			if err := w.Handle(t.Context(), j, delivery{attempt}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // a re-announced event would show a later time
		}
		f := wd.rec.final()
		if len(f) != 2 || f[0].ID != f[1].ID || f[1].Type != events.EventSucceeded {
			t.Fatalf("final events %+v: want the same succeeded event twice (NATS stores it once)", f)
		}
		first, _ := json.Marshal(f[0])
		again, _ := json.Marshal(f[1])
		if string(first) != string(again) || f[1].Origin == nil {
			t.Fatalf("re-announced %+v, want it as first published (origin, task, duration): %+v", f[1], f[0])
		}
		if n := wd.vc.taskCount(); n != 1 {
			t.Fatalf("%d relocations, want 1", n)
		}
	})
}

// While another worker holds the VM's lease, the job waits; nothing runs twice.
func TestLeaseHeldElsewhereWaits(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		j := wd.job("web-01", 1)
		_, release, err := wd.locks.Lock(t.Context(), leaseKey(j), "other-worker")
		if err != nil {
			t.Fatal(err)
		}
		if err := wd.worker("w1", Config{}).Handle(t.Context(), j, delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("err = %v, want a retry", err)
		}
		if n := wd.vc.taskCount(); n != 0 || len(wd.rec.events) != 0 {
			t.Fatalf("ran anyway: %d relocations, events %+v", n, wd.rec.events)
		}
		if err := release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := wd.worker("w1", Config{}).Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
	})
}

// A long move renews the VM's lease and its slots all along: they never lapse to another
// worker, although the move runs for many lease lifetimes.
func TestLongMoveKeepsItsLease(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.gate = make(chan struct{})
		wd.slots = newMemSlots(Limits{PerHost: 1})
		w := wd.worker("w1", Config{RenewEvery: 5 * time.Second})
		j := wd.job("web-01", 1)
		done := async(t.Context(), w, j, 1)
		time.Sleep(10 * wd.locks.ttl)
		synctest.Wait()
		if h := wd.locks.holder(leaseKey(j)); h != "w1/"+j.ID {
			t.Fatalf("after ten lease lifetimes the lease is held by %q", h)
		}
		if _, _, err := wd.locks.Lock(t.Context(), leaseKey(j), "w2/"+j.ID); !errors.Is(err, ErrBusy) {
			t.Fatalf("another worker took the lease of a running move: %v", err)
		}
		if n := wd.slots.count("host/vc-west/esx-w1"); n != 1 {
			t.Fatalf("%d holders of the target host's slot while the move runs, want 1", n)
		}
		close(wd.vc.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
		if h := wd.locks.holder(leaseKey(j)); h != "" {
			t.Fatalf("lease still held by %q after the move", h)
		}
		if n := wd.slots.count("host/vc-west/esx-w1"); n != 0 {
			t.Fatalf("%d holders of the target host's slot after the move", n)
		}
	})
}

// A target that stops answering: retried up to MaxAttempts deliveries, then failed with
// words that say what is wrong; the VM never leaves the source.
func TestUnreachableTargetFailsAfterAttempts(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.planFn = func(vcenter.MoveSpec) (*vcenter.Plan, error) {
			return nil, &vcenter.Fault{VCenter: "vc-west", Step: vcenter.StepLogin, Kind: vcenter.KindUnreachable, Retryable: true,
				Message: "vc-west did not answer", Hint: "check that vc-west is up and reachable from the worker"}
		}
		j := wd.job("web-02", 1)
		w := wd.worker("w1", Config{MaxAttempts: 2})
		if err := w.Handle(t.Context(), j, delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("first attempt: %v, want a retry", err)
		}
		if p := wd.rec.byType(events.EventProgress); len(p) != 1 || !strings.Contains(p[0].Message, "retrying (attempt 1 of 2)") {
			t.Fatalf("progress %+v, want one saying the move is retried", p)
		}
		if err := w.Handle(t.Context(), j, delivery{2}); err == nil || errors.Is(err, events.ErrRetry) {
			t.Fatalf("second attempt: %v, want a permanent failure", err)
		}
		f := wd.rec.final()
		if len(f) != 1 || f[0].Type != events.EventFailed || !strings.Contains(f[0].Error, "vc-west") || f[0].Hint == "" ||
			f[0].Fault != string(vcenter.KindUnreachable) || f[0].Step != "logging in to vCenter" {
			t.Fatalf("final events %+v, want one failure naming vc-west with a hint", f)
		}
		if in := wd.vc.in(j.VM); in != "vc-east" {
			t.Fatalf("%s left vc-east", j.VM)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobFailed || rec.Attempts != 2 || rec.Final == nil {
			t.Fatalf("job record %+v", rec)
		}
	})
}

// A job into a vCenter whose change window is closed waits, says when it will start, and
// moves nothing; once the window is open it runs.
func TestClosedChangeWindowHoldsTheJob(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		opens := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Minute)
		win, err := approvals.ParseWindow(fmt.Sprintf("daily %s-%s", opens.Format("15:04"), opens.Add(time.Hour).Format("15:04")), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		w := wd.worker("w1", Config{Windows: map[string][]approvals.Window{"vc-west": {win}}})
		wd.approver.RunWithin = 24 * time.Hour
		j := wd.job("web-01", 1)
		if err := w.Handle(t.Context(), j, delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("err = %v, want the job handed back", err)
		}
		if n := wd.vc.taskCount(); n != 0 {
			t.Fatalf("%d relocations outside the window", n)
		}
		if len(wd.rec.events) != 1 || wd.rec.events[0].Type != events.EventQueued || !strings.Contains(wd.rec.events[0].Message, "change window") {
			t.Fatalf("events %+v, want one saying the job waits for the change window", wd.rec.events)
		}
		if _, seen, _ := wd.records.Load(t.Context(), j.ID); seen {
			t.Fatalf("waiting for a window counted as an attempt")
		}
		time.Sleep(time.Until(opens) + time.Minute)
		if err := w.Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
	})
}

// A job cancelled before any worker took it is never started, however it is delivered.
func TestJobCancelledBeforeStartNeverRuns(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		j := wd.job("web-01", 1)
		if state := wd.records.requestCancel(j.ID, "U0ALICE"); state != events.JobCancelled {
			t.Fatalf("RequestCancel = %s", state)
		}
		for attempt := uint64(1); attempt <= 2; attempt++ {
			if err := wd.worker("w1", Config{}).Handle(t.Context(), j, delivery{attempt}); err != nil {
				t.Fatal(err)
			}
		}
		if n := wd.vc.taskCount(); n != 0 {
			t.Fatalf("a cancelled job relocated %d VM(s)", n)
		}
		f := wd.rec.final()
		if len(f) != 2 || f[0].Type != events.EventCancelled || f[0].ID != f[1].ID || !strings.Contains(f[0].Message, "U0ALICE") {
			t.Fatalf("final events %+v, want the same cancelled event naming who cancelled", f)
		}
	})
}

// A job cancelled while it waited for a slot ends cancelled at its next delivery, and
// nothing ever ran.
func TestJobCancelledWhileWaitingForASlot(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.slots = newMemSlots(Limits{PerHost: 1})
		busy, _ := wd.slots.Hold(t.Context(), "another-job", []string{"host/vc-west/esx-w1"})
		defer busy.Release(context.Background())
		w := wd.worker("w1", Config{})
		j := wd.job("web-01", 1)
		if err := w.Handle(t.Context(), j, delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("err = %v, want the job to wait", err)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobWaiting || rec.Attempts != 0 {
			t.Fatalf("record %+v, want waiting without spending an attempt", rec)
		}
		if state := wd.records.requestCancel(j.ID, "U0BOB"); state != events.JobRunning {
			t.Fatalf("RequestCancel = %s, want the cancel asked of the worker", state)
		}
		if err := w.Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatal(err)
		}
		if f := wd.rec.final(); len(f) != 1 || f[0].Type != events.EventCancelled || !strings.Contains(f[0].Message, "U0BOB") {
			t.Fatalf("final events %+v", f)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobCancelled || wd.vc.taskCount() != 0 {
			t.Fatalf("record %+v, %d tasks", rec, wd.vc.taskCount())
		}
	})
}

// A task that succeeds but leaves the VM elsewhere than approved is reported as such.
func TestPlacementIsVerifiedAfterTheMove(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.whereFn = func(vc, _ string, w *vcenter.Where) (*vcenter.Where, error) {
			if vc == "vc-west" {
				w.Folder = "lost+found"
			}
			return w, nil
		}
		if err := wd.worker("w1", Config{}).Handle(t.Context(), wd.job("web-01", 1), delivery{1}); err == nil {
			t.Fatal("a misplaced VM was reported as moved")
		}
		f := wd.rec.final()
		if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Fault != "PlacementMismatch" ||
			!strings.Contains(f[0].Error, "lost+found") || !strings.Contains(f[0].Hint, "undo") {
			t.Fatalf("final events %+v", f)
		}
		// The VM did move: the failure carries where it was, so undo can take it back.
		if o := f[0].Origin; o == nil || o.VCenter != "vc-east" || o.Folder != "apps/web" {
			t.Fatalf("origin %+v, want web-01's place in vc-east", o)
		}
		if f[0].Step != "verifying the placement after the move" {
			t.Fatalf("step %q", f[0].Step)
		}
	})
}

// A move whose placement cannot be read back still succeeded (vCenter said so), but the
// succeeded event says it was not verified and undo is not offered, instead of nothing.
func TestUnverifiedMoveSaysSo(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.whereFn = func(vc, _ string, w *vcenter.Where) (*vcenter.Where, error) {
			if vc == "vc-west" {
				return nil, errors.New("vc-west did not answer")
			}
			return w, nil
		}
		if err := wd.worker("w1", Config{}).Handle(t.Context(), wd.job("web-01", 1), delivery{1}); err != nil {
			t.Fatal(err)
		}
		f := wd.rec.final()
		if len(f) != 1 || f[0].Type != events.EventSucceeded || f[0].Origin != nil ||
			!strings.Contains(f[0].Warning, "could not be read to verify it") || !strings.Contains(f[0].Warning, "undo is not offered") {
			t.Fatalf("final events %+v, want a success warning that the placement was not verified", f)
		}
	})
}

// A worker re-attaching to a crashed worker's relocation holds its slots again while the
// task runs (or others would start on top of it), and gives them back after.
func TestRedeliveryHoldsTheSlotsAgain(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.slots = newMemSlots(Limits{PerHost: 2})
		wd.vc.gate = make(chan struct{})
		j := wd.job("web-02", 1)
		taskRef, _ := wd.vc.Start(t.Context(), wd.vc.plan(MoveSpec(j)), j.VM)
		const key = "host/vc-west/some-host"
		if err := wd.records.Save(t.Context(), events.JobRecord{JobID: j.ID, State: events.JobRunning, Worker: "dead-worker",
			Attempts: 1, TaskRef: taskRef, SourceVC: "vc-east", Slots: []string{key}}); err != nil {
			t.Fatal(err)
		}
		done := async(t.Context(), wd.worker("w2", Config{}), j, 2)
		synctest.Wait()
		if n := wd.slots.count(key); n != 1 {
			t.Fatalf("%d holders of %s while the re-attached task runs, want 1", n, key)
		}
		close(wd.vc.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-02")
		if n := wd.slots.count(key); n != 0 {
			t.Fatalf("%d holders left after the move", n)
		}
	})
}

// Cancelling a job while its relocation runs cancels the vCenter task: the move is rolled
// back and the job ends cancelled, not failed.
func TestCancelWhileRunningRollsBackInMemory(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.gate = make(chan struct{})
		defer close(wd.vc.gate)
		w := wd.worker("w1", Config{RenewEvery: 100 * time.Millisecond})
		j := wd.job("web-02", 1)
		done := async(t.Context(), w, j, 1)
		synctest.Wait()
		if rec := wd.records.get(j.ID); rec.State != events.JobRunning || rec.TaskRef == "" {
			t.Fatalf("record %+v, want the task running", rec)
		}
		if state := wd.records.requestCancel(j.ID, "U0BOB"); state != events.JobRunning {
			t.Fatalf("RequestCancel = %s", state)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		f := wd.rec.final()
		if len(f) != 1 || f[0].Type != events.EventCancelled || !strings.Contains(f[0].Message, "U0BOB") {
			t.Fatalf("final events %+v, want one cancelled by U0BOB", f)
		}
		if in := wd.vc.in(j.VM); in != "vc-east" || wd.vc.movesOf(j.VM) != 0 {
			t.Fatalf("%s is in %s after %d moves", j.VM, in, wd.vc.movesOf(j.VM))
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobCancelled {
			t.Fatalf("record %+v", rec)
		}
	})
}

// A cancel that comes once the VM is switching over is refused by vCenter: the person who
// cancelled is told the move will finish, the move finishes, and the job is reported as
// what it is, a success (not "cancelled" for a VM that moved).
func TestCancelTooLateIsSaidAndTheMoveFinishes(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.gate = make(chan struct{})
		wd.vc.cancelFn = func(string) error {
			return &vcenter.Fault{VCenter: "vc-east", Kind: vcenter.KindInvalidState, Message: "the operation is not allowed in the current state"}
		}
		w := wd.worker("w1", Config{RenewEvery: 50 * time.Millisecond})
		j := wd.job("web-02", 1)
		done := async(t.Context(), w, j, 1)
		synctest.Wait()
		wd.records.requestCancel(j.ID, "U0BOB")
		time.Sleep(time.Second) // several keep-alive rounds: the refusal is said once
		synctest.Wait()
		close(wd.vc.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		var said []string
		for _, e := range wd.rec.byType(events.EventProgress) {
			if strings.Contains(e.Message, "could not cancel") {
				said = append(said, e.Message)
			}
		}
		if len(said) != 1 || !strings.Contains(said[0], "will finish") || !strings.Contains(said[0], "switching over to vc-west") {
			t.Errorf("nobody was told once why the cancel was refused: %q", said)
		}
		wd.movedOnce(j.VM)
	})
}

// In one process the bot's plan of a request, made moments before the approval, is the
// job's pre-flight; an older one is not: the job resolves its move again.
func TestJobStartsOnTheRequestsFreshPlan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reuse     time.Duration
		wantPlans int
	}{{"fresh plan reused", time.Minute, 0}, {"stale plan resolved again", time.Nanosecond, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				j := wd.job("web-01", 1)
				wd.vc.recent = wd.vc.plan(MoveSpec(j)) // what the bot did when the request was made
				time.Sleep(time.Millisecond)
				if err := wd.worker("w1", Config{PlanReuse: tc.reuse}).Handle(t.Context(), j, delivery{1}); err != nil {
					t.Fatal(err)
				}
				wd.movedOnce("web-01")
				if wd.vc.plans != tc.wantPlans {
					t.Errorf("the worker made %d pre-flights, want %d", wd.vc.plans, tc.wantPlans)
				}
			})
		})
	}
}

// A request-wide pre-flight that fails because of another VM of the request (one that
// finished moving mid-read) does not fail this job: it is planned alone and moves.
func TestRequestPlanFailureFallsBackToTheJobsVM(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.planFn = func(spec vcenter.MoveSpec) (*vcenter.Plan, error) {
			if len(spec.VMs) > 1 {
				return nil, &vcenter.Fault{VCenter: spec.Source, Step: vcenter.StepResolve, Kind: vcenter.KindManagedObjectNotFound,
					Message: "an object the move refers to no longer exists in " + spec.Source}
			}
			return wd.vc.plan(spec), nil
		}
		w := wd.worker("w1", Config{Requests: fixedVMs{NATSRequests{Store: wd.requests}, []string{"web-01", "web-02", "web-03"}}})
		if err := w.Handle(t.Context(), wd.job("web-01", 1), delivery{1}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
		if wd.vc.plans != 2 {
			t.Errorf("%d pre-flights, want the request's and then the VM's own", wd.vc.plans)
		}
	})
}

// The jobs of one request share one pre-flight on a worker.
func TestJobsOfARequestShareTheirPreflight(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		w := wd.worker("w1", Config{})
		var jobs []events.Job
		for i, vm := range []string{"web-01", "web-02", "web-03"} {
			jobs = append(jobs, wd.job(vm, i+1))
		}
		for _, j := range jobs {
			if err := w.Handle(t.Context(), j, delivery{1}); err != nil {
				t.Fatal(err)
			}
		}
		if wd.vc.plans != 1 {
			t.Fatalf("%d pre-flights for three jobs of one request, want 1", wd.vc.plans)
		}
		for _, vm := range []string{"web-01", "web-02", "web-03"} {
			if wd.vc.movesOf(vm) != 1 {
				t.Errorf("%s moved %d times", vm, wd.vc.movesOf(vm))
			}
		}
	})
}

// A relocation task that fails with a fault worth retrying (its network copy broke off)
// is rolled back by vCenter; the next delivery starts a new relocation instead of looking
// at the failed task again, and the VM moves exactly once.
func TestRetryableTaskFaultStartsANewRelocationInMemory(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		failures := 1
		wd.vc.endFn = func(vm string) error {
			if failures == 0 {
				return nil
			}
			failures--
			return &vcenter.Fault{VCenter: "vc-east", VM: vm, Step: vcenter.StepRelocate, Kind: "NetworkCopyFault", Retryable: true,
				Message: "the network copy to vc-west broke off"}
		}
		w := wd.worker("w1", Config{})
		j := wd.job("web-02", 1)
		if err := w.Handle(t.Context(), j, delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("first delivery: err = %v, want a retry", err)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobPreparing || rec.TaskRef != "" || rec.Attempts != 1 || rec.Move != nil {
			t.Fatalf("record after the failed task %+v, want preparing with no task", rec)
		}
		if !wd.rec.saw(func(e events.Event) bool {
			return e.Type == events.EventProgress && strings.Contains(e.Message, "retrying (attempt 1 of 3)")
		}) {
			t.Errorf("events %+v, want one saying the move is retried", wd.rec.events)
		}
		if err := w.Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatalf("second delivery: %v", err)
		}
		wd.movedOnce(j.VM)
		if rec := wd.records.get(j.ID); rec.State != events.JobSucceeded || rec.Attempts != 2 || rec.TaskRef != "task-2" {
			t.Fatalf("record %+v, want succeeded on the second attempt with its own task", rec)
		}
	})
}

// A task that runs while vCenter stops answering is not failed: the job follows it again
// later, without spending its attempts, however many times that happens.
func TestLostSightOfTheTaskFollowsItAgain(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		lost := 3
		wd.vc.watchFn = func(string) error {
			if lost == 0 {
				return nil
			}
			lost--
			return &vcenter.Fault{VCenter: "vc-east", Step: vcenter.StepWatch, Kind: vcenter.KindUnreachable, Retryable: true,
				Message: "vc-east did not answer"}
		}
		w := wd.worker("w1", Config{MaxAttempts: 2})
		j := wd.job("web-01", 1)
		for attempt := uint64(1); attempt <= 3; attempt++ {
			if err := w.Handle(t.Context(), j, delivery{attempt}); !errors.Is(err, events.ErrRetry) {
				t.Fatalf("delivery %d: err = %v, want the task followed again later", attempt, err)
			}
			if rec := wd.records.get(j.ID); rec.State != events.JobRunning || rec.TaskRef != "task-1" || rec.Attempts != 0 {
				t.Fatalf("record %+v, want running task-1 with no attempt spent", rec)
			}
		}
		if err := w.Handle(t.Context(), j, delivery{4}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
		if n := wd.vc.taskCount(); n != 1 {
			t.Fatalf("%d tasks, want the one followed all along", n)
		}
	})
}

// A relocation task that fails with a fault no retry can mend fails the job at once, and
// the failure names the step (the task, by its reference), the fault, and what to check.
func TestPermanentTaskFaultFailsAtOnceNamingTheStep(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.endFn = func(vm string) error {
			return &vcenter.Fault{VCenter: "vc-east", VM: vm, Step: vcenter.StepRelocate, Kind: "DisallowedMigrationDeviceAttached",
				Message: vm + " has a device attached that prevents migration", Hint: "disconnect its CD-ROM"}
		}
		j := wd.job("web-03", 1)
		err := wd.worker("w1", Config{}).Handle(t.Context(), j, delivery{1})
		if err == nil || errors.Is(err, events.ErrRetry) {
			t.Fatalf("err = %v, want a permanent failure", err)
		}
		f := wd.rec.final()
		rec := wd.records.get(j.ID)
		if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Step != "relocation task "+rec.TaskRef || rec.TaskRef == "" ||
			f[0].Fault != "DisallowedMigrationDeviceAttached" || f[0].Hint != "disconnect its CD-ROM" || f[0].Error == "" {
			t.Fatalf("failure %+v, want the task step, the fault, what happened and what to check", f)
		}
		if rec.Attempts != 1 || rec.State != events.JobFailed || rec.Final == nil || rec.Final.Step != f[0].Step {
			t.Fatalf("record %+v, want failed after one attempt, keeping the failure as published", rec)
		}
		if in := wd.vc.in(j.VM); in != "vc-east" {
			t.Fatalf("%s left vc-east", j.VM)
		}
	})
}

// A job whose handling panics before anything started is tried again, and after its
// attempts it is reported failed (with what to check) instead of vanishing: nobody is
// left waiting for an outcome that would never come.
func TestPanickingJobIsRetriedThenReported(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.planFn = func(vcenter.MoveSpec) (*vcenter.Plan, error) { panic("index out of range") }
		w := wd.worker("w1", Config{MaxAttempts: 2})
		j := wd.job("web-01", 1)
		if err := w.Handle(t.Context(), j, delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("first panic: err = %v, want a retry", err)
		}
		if len(wd.rec.final()) != 0 {
			t.Fatalf("reported after one attempt: %+v", wd.rec.final())
		}
		if err := w.Handle(t.Context(), j, delivery{2}); err == nil || errors.Is(err, events.ErrRetry) {
			t.Fatalf("second panic: err = %v, want the job failed", err)
		}
		f := wd.rec.final()
		if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Fault != "InternalError" || !strings.Contains(f[0].Hint, "job_id="+j.ID) {
			t.Fatalf("final events %+v, want one InternalError failure", f)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobFailed {
			t.Fatalf("record %+v", rec)
		}
		if h := wd.locks.holder(leaseKey(j)); h != "" {
			t.Fatalf("the lease is still held by %s after the panic", h)
		}
	})
}

// Pre-flight runs again when the job starts: a target that stopped fitting between
// approval and start fails the job with the finding that says so and what to do, and
// nothing is relocated.
func TestStartTimePreflightFailsAJobWhoseTargetStoppedFittingInMemory(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.planFn = func(spec vcenter.MoveSpec) (*vcenter.Plan, error) {
			p := wd.vc.plan(spec)
			p.Findings = []vcenter.Finding{{Severity: vcenter.Blocker, Message: "datastore ds-gold is not accessible",
				Hint: "pick another datastore"}}
			return p, nil
		}
		j := wd.job("web-01", 1)
		err := wd.worker("w1", Config{}).Handle(t.Context(), j, delivery{1})
		if err == nil || errors.Is(err, events.ErrRetry) {
			t.Fatalf("err = %v, want the job failed", err)
		}
		if n := wd.vc.taskCount(); n != 0 {
			t.Fatalf("%d relocations despite the blocker", n)
		}
		f := wd.rec.final()
		if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Fault != "PreflightBlocked" ||
			!strings.Contains(f[0].Error, "ds-gold is not accessible") || f[0].Hint == "" || f[0].Step != "pre-flight checks at start" {
			t.Fatalf("final events %+v, want a pre-flight failure naming ds-gold", f)
		}
	})
}

// A job whose host is full waits in the worker for HoldFor and takes the slot as soon as
// this worker's other move gives it back; one that still finds it full after HoldFor
// goes back to the queue, waiting (not an attempt), and runs on a later delivery.
func TestFullHostMakesTheJobWait(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.slots = newMemSlots(Limits{PerHost: 1})
		wd.vc.gate = make(chan struct{})
		w := wd.worker("w1", Config{HoldFor: 2 * time.Second, WaitDelay: 500 * time.Millisecond})
		first, second, third := wd.job("web-01", 1), wd.job("web-02", 2), wd.job("web-03", 3)
		done1 := async(t.Context(), w, first, 1)
		synctest.Wait()

		// Still full after HoldFor: back to the queue.
		start := time.Now()
		if err := w.Handle(t.Context(), second, delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("second job: err = %v, want it to wait", err)
		}
		if waited := time.Since(start); waited != 2*time.Second {
			t.Fatalf("waited %s in the worker, want HoldFor", waited)
		}
		if rec := wd.records.get(second.ID); rec.State != events.JobWaiting || rec.Attempts != 0 || rec.TaskRef != "" {
			t.Fatalf("second job's record %+v, want waiting with no attempt spent", rec)
		}
		if len(wd.rec.byType(events.EventStarted)) != 1 {
			t.Fatalf("a waiting job was said to have started: %+v", wd.rec.byType(events.EventStarted))
		}

		// Freed by this worker's own move: taken at once, within HoldFor.
		done3 := async(t.Context(), w, third, 1)
		synctest.Wait()
		close(wd.vc.gate)
		if err := <-done1; err != nil {
			t.Fatal(err)
		}
		if err := <-done3; err != nil {
			t.Fatalf("third job: %v, want it to take the freed slot", err)
		}
		if err := w.Handle(t.Context(), second, delivery{2}); err != nil {
			t.Fatalf("second job, redelivered: %v", err)
		}
		for _, vm := range []string{"web-01", "web-02", "web-03"} {
			if wd.vc.movesOf(vm) != 1 {
				t.Errorf("%s moved %d times", vm, wd.vc.movesOf(vm))
			}
		}
		if p := wd.slots.peak["host/vc-west/esx-w1"]; p != 1 {
			t.Errorf("the target host ran %d moves at once, limit 1", p)
		}
		if rec := wd.records.get(second.ID); rec.State != events.JobSucceeded || rec.Attempts != 1 {
			t.Errorf("second job's record %+v, want succeeded on its first attempt", rec)
		}
	})
}

// The record of a started task is written even when the store fails for a while: without
// it a redelivery would not know the task.
func TestStartedTaskIsRecordedDespiteAFlakyStore(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.gate = make(chan struct{})
		w := wd.worker("w1", Config{})
		j := wd.job("web-01", 1)
		wd.vc.started = make(chan string, 1)
		wd.records.failTaskSaves = 4
		done := async(t.Context(), w, j, 1)
		ref := <-wd.vc.started
		time.Sleep(5 * time.Second) // the store's failures and the worker's pauses between tries
		synctest.Wait()
		if rec := wd.records.get(j.ID); rec.State != events.JobRunning || rec.TaskRef != ref {
			t.Fatalf("record %+v, want the running task %s", rec, ref)
		}
		close(wd.vc.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wd.movedOnce("web-01")
	})
}

// flakyBus fails the first publishes of final events.
type flakyBus struct {
	*recorder
	failures int
}

func (b *flakyBus) PublishEvent(ctx context.Context, e events.Event) error {
	b.mu.Lock()
	fail := e.Type.Final() && b.failures > 0
	if fail {
		b.failures--
	}
	b.mu.Unlock()
	if fail {
		return errors.New("nats: timeout")
	}
	return b.recorder.PublishEvent(ctx, e)
}

// The final event is what tells people the outcome: it is published again until it
// goes through; if it never does, the job is handed back and its next delivery says it,
// without moving anything again.
func TestFinalEventInsists(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
		wantErr  bool
	}{{"published on a later try", 4, false}, {"handed back after five", 5, true}} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				b := &flakyBus{recorder: wd.rec, failures: tc.failures}
				w := wd.worker("w1", Config{})
				w.bus = b
				j := wd.job("web-01", 1)
				err := w.Handle(t.Context(), j, delivery{1})
				if tc.wantErr != errors.Is(err, events.ErrRetry) {
					t.Fatalf("err = %v", err)
				}
				if tc.wantErr {
					if err := w.Handle(t.Context(), j, delivery{2}); err != nil {
						t.Fatal(err)
					}
				}
				wd.movedOnce("web-01")
			})
		})
	}
}

// metaWorld is a world whose web-02 has tags and custom attributes in vc-east.
func metaWorld(wd *world) *vcenter.Metadata {
	md := &vcenter.Metadata{Tags: []vcenter.Tag{{Category: "app", Name: "shop"}}, Attributes: map[string]string{"owner": "team-web"}}
	wd.vc.md["vc-east/web-02"] = md
	return md
}

func TestMetadataCopiedByWorker(t *testing.T) {
	for _, tc := range []struct {
		name     string
		applyErr error
	}{{"copied", nil}, {"apply fails", errors.New("vAPI unavailable")}} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				want := metaWorld(wd)
				wd.vc.applyErr = tc.applyErr
				if err := wd.worker("w1", Config{}).Handle(t.Context(), wd.job("web-02", 1), delivery{1}); err != nil {
					t.Fatalf("Handle: %v", err)
				}
				wd.movedOnce("web-02")
				f := wd.rec.final()
				got, _ := wd.vc.ReadMetadata(t.Context(), "vc-west", "web-02")
				if tc.applyErr == nil {
					if !reflect.DeepEqual(got, want) || f[0].Warning != "" {
						t.Fatalf("vc-west has %+v (warning %q), want %+v", got, f[0].Warning, want)
					}
					return
				}
				if f[0].Message != "web-02 now runs in vc-west" || !strings.Contains(f[0].Warning, "tags and custom attributes not copied: vAPI unavailable") {
					t.Fatalf("succeeded event says %q, warning %q: want the warning on its own", f[0].Message, f[0].Warning)
				}
			})
		})
	}
}

// The worker that started a move is killed while vCenter runs the task; the worker that
// takes the job over follows the task to its end and then does everything the first
// would have: it copies the tags and custom attributes (read from the source before the
// move, so only the job record still has them), verifies the placement, and reports the
// origin for undo.
func TestTakenOverMoveCopiesTagsAndOffersUndoInMemory(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		want := metaWorld(wd)
		wd.vc.gate = make(chan struct{})
		j := wd.job("web-02", 1)
		killed, kill := context.WithCancel(t.Context())
		done := async(killed, wd.worker("w1", Config{}), j, 1)
		synctest.Wait()
		kill()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("killed worker: %v", err)
		}
		rec := wd.records.get(j.ID)
		if rec.State != events.JobRunning || rec.TaskRef == "" || rec.Move == nil || len(rec.Move.Tags) != 1 {
			t.Fatalf("record left by the killed worker %+v, want running with its task and move", rec)
		}
		delete(wd.vc.md, "vc-east/web-02") // gone with the source copy
		close(wd.vc.gate)
		if err := wd.worker("w2", Config{}).Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatal(err)
		}
		wd.movedOnce(j.VM)
		if got, _ := wd.vc.ReadMetadata(t.Context(), "vc-west", j.VM); !reflect.DeepEqual(got, want) {
			t.Errorf("vc-west has %+v, want the source's %+v", got, want)
		}
		if o := wd.rec.final()[0].Origin; o == nil || o.VCenter != "vc-east" || o.Folder != "apps/web" || len(o.Networks) != 1 {
			t.Errorf("origin %+v, want where web-02 was, for undo", o)
		}
	})
}

// refusedCount reads a worker's xvm_jobs_refused_total for reason.
func refusedCount(t *testing.T, w *Worker, reason approvals.RefusalReason) float64 {
	t.Helper()
	var m dto.Metric
	if err := w.m.refused.WithLabelValues(string(reason)).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Jobs nobody approved through the bot, whatever their shape, move nothing: each is
// acknowledged (Handle returns nil, so it is not redelivered), counted by its reason and
// reported for the request it names.
func TestJobsNobodyApprovedMoveNothing(t *testing.T) {
	tests := []struct {
		name string
		job  func(t *testing.T, wd *world) events.Job
		want approvals.RefusalReason
	}{
		{"hand-made, unsigned", func(t *testing.T, wd *world) events.Job {
			j := jobFor("web-01")
			j.RequestedBy, j.ApprovedBy = "U0MALLORY", []string{"U0MALLORY"}
			return j
		}, approvals.ReasonUnsigned},
		{"signed by a key the worker does not trust", func(t *testing.T, wd *world) events.Job {
			other, _ := workertest.Key(2)
			a := &workertest.Approver{Store: wd.requests, Signer: other, Inventory: fakeInventory}
			js, err := a.Approve(t.Context(), jobFor("web-01"))
			if err != nil {
				t.Fatal(err)
			}
			return js[0]
		}, approvals.ReasonUntrustedKey},
		{"captured and edited to another VM", func(t *testing.T, wd *world) events.Job {
			j := wd.job("web-01", 1)
			j.VM = "web-02"
			return j
		}, approvals.ReasonMismatch},
		{"captured and edited to another datastore", func(t *testing.T, wd *world) events.Job {
			j := wd.job("web-01", 1)
			j.Datastore = "ds-bronze"
			return j
		}, approvals.ReasonMismatch},
		{"its signed approval altered", func(t *testing.T, wd *world) events.Job {
			j := wd.job("web-01", 1)
			var s approvals.Seal
			if err := json.Unmarshal(j.Approval, &s); err != nil {
				t.Fatal(err)
			}
			s.Payload = []byte(strings.ReplaceAll(string(s.Payload), `"web-01"`, `"web-02"`))
			j.Approval, _ = json.Marshal(s)
			j.VM = "web-02"
			return j
		}, approvals.ReasonBadSignature},
		{"signed, for a request that does not exist", func(t *testing.T, wd *world) events.Job {
			signer, _ := workertest.Key(1) // the trusted key, but the record is kept elsewhere
			a := &workertest.Approver{Store: approvals.NewMemoryStore(), Signer: signer, Inventory: fakeInventory}
			js, err := a.Approve(t.Context(), jobFor("web-01"))
			if err != nil {
				t.Fatal(err)
			}
			return js[0]
		}, approvals.ReasonNoRequest},
		{"signed, for a request cancelled since", func(t *testing.T, wd *world) events.Job {
			j := wd.job("web-01", 1)
			rec, rev, err := wd.requests.Get(t.Context(), j.RequestID)
			if err != nil {
				t.Fatal(err)
			}
			rec.State = approvals.StateCancelled
			if _, err := wd.requests.Update(t.Context(), rec, rev); err != nil {
				t.Fatal(err)
			}
			return j
		}, approvals.ReasonRequestState},
		{"signed, but the record was rewritten without it", func(t *testing.T, wd *world) events.Job {
			j := wd.job("web-01", 1)
			rec, rev, err := wd.requests.Get(t.Context(), j.RequestID)
			if err != nil {
				t.Fatal(err)
			}
			rec.Approval = nil
			if _, err := wd.requests.Update(t.Context(), rec, rev); err != nil {
				t.Fatal(err)
			}
			return j
		}, approvals.ReasonUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				w := wd.worker("w1", Config{})
				j := tt.job(t, wd)
				if err := w.Handle(t.Context(), j, delivery{1}); err != nil {
					t.Fatalf("Handle = %v; a refused job is acknowledged, not handed back", err)
				}
				if n := wd.vc.taskCount(); n != 0 {
					t.Fatalf("%d relocations", n)
				}
				if got := refusedCount(t, w, tt.want); got != 1 {
					t.Fatalf("xvm_jobs_refused_total{reason=%q} = %v, want 1", tt.want, got)
				}
				var refusals []events.Event
				for _, e := range wd.rec.events {
					if e.Type == events.EventRefused {
						refusals = append(refusals, e)
					} else {
						t.Errorf("event %s %q besides the refusal", e.Type, e.Message)
					}
				}
				if len(refusals) != 1 || refusals[0].Fault != string(tt.want) || refusals[0].RequestID != j.RequestID ||
					refusals[0].Error == "" || refusals[0].Hint == "" {
					t.Fatalf("refusal events %+v", refusals)
				}
				if _, seen, _ := wd.records.Load(t.Context(), j.ID); seen && tt.want != approvals.ReasonRequestState {
					t.Errorf("a refused job left a job record")
				}
			})
		})
	}
}

// An approval lets its jobs start for RunWithin; a job of a live request that would start
// later (a change window that never opened, a queue that never drained) fails, so that its
// request ends and its thread says why, and moves nothing.
func TestExpiredApprovalFailsTheJobAndMovesNothing(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.approver.RunWithin = time.Hour
		j := wd.job("web-01", 1)
		time.Sleep(2 * time.Hour)
		w := wd.worker("w1", Config{})
		if err := w.Handle(t.Context(), j, delivery{1}); err != nil {
			t.Fatalf("Handle = %v, want the job acknowledged", err)
		}
		if n := wd.vc.taskCount(); n != 0 {
			t.Fatalf("%d relocations", n)
		}
		f := wd.rec.final()
		if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Fault != "ApprovalExpired" || !strings.Contains(f[0].Hint, "again") {
			t.Fatalf("final events %+v, want one failure ApprovalExpired", f)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobFailed {
			t.Fatalf("record %+v, want failed", rec)
		}
		if refusedCount(t, w, approvals.ReasonExpired) != 1 {
			t.Fatal("not counted as refused for expiry")
		}
	})
}

// A VM renamed, and another VM given its name, between approval and run: the job is
// bound to the approved object, so the VM now called web-01 is not moved.
func TestVMReplacedAfterApprovalIsNotMovedInMemory(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		j := wd.job("web-01", 1)
		wd.vc.refs["web-01"] = "vm-2" // web-02, renamed web-01
		w := wd.worker("w1", Config{})
		if err := w.Handle(t.Context(), j, delivery{1}); err != nil {
			t.Fatalf("Handle = %v, want the job acknowledged", err)
		}
		if n := wd.vc.taskCount(); n != 0 {
			t.Fatalf("%d relocations: another VM than the approved one moved", n)
		}
		f := wd.rec.final()
		if len(f) != 1 || f[0].Fault != "NotTheApprovedVM" || !strings.Contains(f[0].Error, "renamed or replaced") {
			t.Fatalf("final events %+v", f)
		}
		if refusedCount(t, w, approvals.ReasonVMIdentity) != 1 {
			t.Fatal("not counted as refused for the VM's identity")
		}
	})
}

// A wave of 200 VMs in two requests, shared by two workers with 4 slots each, under
// limits of 2 moves per host, 3 per datastore and 5 per vCenter: observed while the
// tasks run, no resource ever runs more than its limit across both workers; every VM
// moves exactly once; and the jobs of a request share their pre-flight.
func TestWaveRespectsLimitsAcrossWorkersInMemory(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		wd.vc.taskTime = 300 * time.Millisecond
		limits := Limits{PerHost: 2, PerDatastore: 3, PerVCenter: 5}
		wd.slots = newMemSlots(limits)
		var jobs []events.Job
		for r, ds := range []string{"ds-gold", "ds-silver"} {
			var req []events.Job
			for i := 1 + r; i <= waveSize; i += 2 {
				vm := fmt.Sprintf("bulk-%04d", i)
				wd.vc.add(vm, fmt.Sprintf("esx-e%d", i%3+1), fmt.Sprintf("vm-%d", 1000+i))
				req = append(req, events.Job{V: 1, ID: fmt.Sprintf("xvm-wave%04d-%03d", r+1, i), RequestID: fmt.Sprintf("xvm-wave%04d", r+1), Direction: "migrate", VM: vm, SourceVC: "vc-east", TargetVC: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: ds, Networks: []move.Network{{Target: "app-pg"}}}})
			}
			signed, err := wd.approver.Approve(t.Context(), req...)
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, signed...)
		}
		var queued []events.Job // interleaved, as two requests approved a moment apart reach the queue
		for i := range jobs {
			queued = append(queued, jobs[(i%2)*(len(jobs)/2)+i/2])
		}
		b := newMemBus(wd.rec, queued)
		obs := &concurrency{relocator: wd.vc, fps: map[string]vcenter.Footprint{}, now: map[string]int{}, peak: map[string]int{}}
		ctx, stop := context.WithCancel(t.Context())
		var running []<-chan error
		for _, name := range []string{"w1", "w2"} {
			w := New(Config{Name: name, Slots: 4, WaitDelay: 50 * time.Millisecond, Trust: wd.keys,
				Requests: NATSRequests{Store: wd.requests}}, obs, b, wd.records, wd.locks, wd.slots, wd.worker(name, Config{}).log,
				prometheus.NewRegistry())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			running = append(running, done)
		}
		deadline := time.Now().Add(time.Hour)
		for len(wd.rec.final()) < waveSize {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d jobs ended in an hour", len(wd.rec.final()), waveSize)
			}
			time.Sleep(time.Second)
		}
		stop()
		for _, done := range running {
			<-done
		}
		for i := 1; i <= waveSize; i++ {
			if got := wd.vc.movesOf(fmt.Sprintf("bulk-%04d", i)); got != 1 {
				t.Errorf("bulk-%04d moved %d times", i, got)
			}
		}
		for _, f := range wd.rec.final() {
			if f.Type != events.EventSucceeded {
				t.Errorf("job %s ended %s: %s", f.JobID, f.Type, f.Message)
			}
		}
		kinds := map[string]int{"host": limits.PerHost, "datastore": limits.PerDatastore, "vcenter": limits.PerVCenter}
		for k, p := range obs.peak {
			kind, _, _ := strings.Cut(k, "/")
			if p > kinds[kind] {
				t.Errorf("%s ran %d moves at once, limit %d", k, p, kinds[kind])
			}
		}
		if obs.max < 2 {
			t.Errorf("never more than %d move at once: the limits serialised the wave", obs.max)
		}
		if obs.plans >= waveSize/4 {
			t.Errorf("%d pre-flights for %d VMs of two requests: the jobs did not share them", obs.plans, waveSize)
		}
		t.Logf("wave of %d moved in %s (synctest clock); peak concurrency %d; %d pre-flights", waveSize,
			time.Since(deadline.Add(-time.Hour)), obs.max, obs.plans)
	})
}

// DRS may move a VM right after it arrives. When the request named a cluster, another host
// of that cluster is as approved; a host outside it is said as a warning with the facts,
// never as a failed move (docs/vsphere-behaviours.md).
func TestDRSMovesAfterArrivalAreNotFailures(t *testing.T) {
	for _, tt := range []struct {
		name, cluster, host string
		warning             []string // "" none
	}{
		{"another host of the cluster", "west-prod", "esx-w2", nil},
		{"a host of another cluster", "west-other", "esx-o1", []string{"esx-o1", "west-other", "esx-w1", "west-prod"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				wd.vc.whereFn = func(vc, _ string, w *vcenter.Where) (*vcenter.Where, error) {
					if vc == "vc-west" {
						w.Cluster, w.Host = tt.cluster, tt.host
					}
					return w, nil
				}
				if err := wd.worker("w1", Config{}).Handle(t.Context(), wd.job("web-01", 1), delivery{1}); err != nil {
					t.Fatalf("a VM that DRS moved was reported as failed: %v", err)
				}
				f := wd.rec.final()
				if len(f) != 1 || f[0].Type != events.EventSucceeded {
					t.Fatalf("final events %+v, want one success", f)
				}
				checkWarning(t, f[0].Warning, tt.warning)
			})
		})
	}
}

// checkWarning checks that a succeeded move's warning says each of want, and that there is
// none when want is empty: the VM is where it was approved to be.
func checkWarning(t *testing.T, warning string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(warning, w) {
			t.Errorf("warning %q does not say %q", warning, w)
		}
	}
	if len(want) == 0 && warning != "" {
		t.Errorf("warning %q for a VM where it was approved to be", warning)
	}
}

// Storage DRS balances the datastores of a datastore cluster as DRS balances hosts: when the
// request named a datastore cluster, another datastore of it after the move is as approved,
// and one outside it is a warning with the facts. A request that named one datastore
// approved that datastore: the VM's files elsewhere are a failed move.
func TestStorageDRSMovesAfterArrivalAreNotFailures(t *testing.T) {
	for _, tt := range []struct {
		name, asked, got, pod string
		warning               []string // nil: none
		failed                bool
	}{
		{name: "another datastore of the datastore cluster", asked: "gold-pod", got: "ds-gold-2", pod: "gold-pod"},
		{name: "a datastore outside the datastore cluster", asked: "gold-pod", got: "ds-bronze",
			warning: []string{"web-01's datastore is ds-bronze", "not in datastore cluster gold-pod", "on ds-gold", "Storage DRS"}},
		{name: "a datastore of another datastore cluster", asked: "gold-pod", got: "ds-tin", pod: "tin-pod",
			warning: []string{"ds-tin (datastore cluster tin-pod)", "not in datastore cluster gold-pod"}},
		{name: "another datastore than the one named", asked: "ds-gold", got: "ds-gold-2", pod: "gold-pod", failed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				wd.vc.planFn = func(spec vcenter.MoveSpec) (*vcenter.Plan, error) {
					p := wd.vc.plan(spec)
					p.Datastore = "ds-gold" // the datastore the plan chose (of the cluster, if one was named)
					return p, nil
				}
				wd.vc.whereFn = func(vc, _ string, w *vcenter.Where) (*vcenter.Where, error) {
					if vc == "vc-west" {
						w.Datastore, w.Datastores = tt.got, []string{tt.got}
						if tt.pod != "" {
							w.DatastoreClusters = map[string]string{tt.got: tt.pod}
						}
					}
					return w, nil
				}
				j := jobFor("web-01")
				j.Datastore = tt.asked
				js, err := wd.approver.Approve(t.Context(), j)
				if err != nil {
					t.Fatal(err)
				}
				_ = wd.worker("w1", Config{}).Handle(t.Context(), js[0], delivery{1})
				f := wd.rec.final()
				if len(f) != 1 {
					t.Fatalf("final events %+v, want one", f)
				}
				if tt.failed {
					if f[0].Type != events.EventFailed || !strings.Contains(f[0].Error, "not as approved") {
						t.Errorf("final %s %q, want a failure: the VM is not on the datastore the request named", f[0].Type, f[0].Error)
					}
					return
				}
				if f[0].Type != events.EventSucceeded {
					t.Fatalf("final %s %q, want a success: Storage DRS moved the VM", f[0].Type, f[0].Error)
				}
				checkWarning(t, f[0].Warning, tt.warning)
			})
		})
	}
}

// A worker killed while it prepared a job leaves its delivery unsettled and the VM's lease
// held. Started again under the same name, it frees the lease and hands the delivery back
// at once, so the job need not wait out the ack wait and the lease TTL: another worker
// takes it straight away. What other workers hold, even one whose name starts alike, is
// left alone.
func TestRestartedWorkerTakesBackWhatItsPreviousRunLeft(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		ctx := t.Context()
		j := wd.job("web-01", 1)
		if _, _, err := wd.locks.Lock(ctx, leaseKey(j), "w1/"+j.ID); err != nil {
			t.Fatal(err)
		}
		if err := wd.records.Save(ctx, events.JobRecord{JobID: j.ID, RequestID: j.RequestID, VM: j.VM, SourceVC: j.SourceVC,
			State: events.JobPreparing, Worker: "w1", Delivery: "$JS.ACK.jobs.workers.killed", Attempts: 1}); err != nil {
			t.Fatal(err)
		}
		other := wd.job("db-01", 2)
		if _, _, err := wd.locks.Lock(ctx, leaseKey(other), "w10/"+other.ID); err != nil {
			t.Fatal(err)
		}

		if err := wd.worker("w1", Config{}).Run(ctx); err != nil { // the recorder's RunWorker returns at once
			t.Fatal(err)
		}
		if got := wd.rec.handedBack(); !slices.Equal(got, []string{"$JS.ACK.jobs.workers.killed"}) {
			t.Errorf("handed back %q, want the killed run's delivery only", got)
		}
		if h := wd.locks.holder(leaseKey(other)); h != "w10/"+other.ID {
			t.Errorf("w10's lease is held by %q: another worker's lease was taken", h)
		}
		// The delivery comes again, to whichever worker: the lease is free for it.
		if err := wd.worker("w2", Config{}).Handle(ctx, j, delivery{2}); err != nil {
			t.Fatalf("the job handed back did not run at once: %v", err)
		}
		wd.movedOnce("web-01")
	})
}

// A move that asked for a storage policy is checked for it afterwards, like its datastore:
// the VM's own files, and each disk (its own policy where it asked for one). A policy
// vCenter did not apply is a move not as approved; a reading the policy service did not
// give ("") proves nothing either way.
func TestStoragePolicyIsCheckedAfterTheMove(t *testing.T) {
	for _, tt := range []struct {
		name             string
		vm, disk1, disk2 string // the policies read after the move
		fault            string // "" the move succeeds
	}{
		{name: "as asked", vm: "gold-policy", disk1: "gold-policy", disk2: "silver-policy"},
		{name: "not read", vm: "", disk1: "", disk2: ""},
		{name: "the VM's files under another policy", vm: "Datastore Default", disk1: "gold-policy", disk2: "silver-policy",
			fault: `the storage policy is "Datastore Default", not "gold-policy"`},
		{name: "a disk without its own policy", vm: "gold-policy", disk1: "silver-policy", disk2: "silver-policy",
			fault: `Hard disk 1's storage policy is "silver-policy", not "gold-policy"`},
		{name: "a disk with its own policy", vm: "gold-policy", disk1: "gold-policy", disk2: "gold-policy",
			fault: `Hard disk 2's storage policy is "gold-policy", not "silver-policy"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T, wd *world) {
				wd.vc.whereFn = func(vc, _ string, w *vcenter.Where) (*vcenter.Where, error) {
					if vc == "vc-west" {
						w.Policy = tt.vm
						w.Disks = []move.Disk{{Disk: 1, Datastore: w.Datastore, Policy: tt.disk1}, {Disk: 2, Datastore: w.Datastore, Policy: tt.disk2}}
					}
					return w, nil
				}
				j := jobFor("web-01")
				j.Policy = "gold-policy"
				j.Disks = []move.Disk{{Disk: 2, Policy: "silver-policy"}}
				js, err := wd.approver.Approve(t.Context(), j)
				if err != nil {
					t.Fatal(err)
				}
				_ = wd.worker("w1", Config{}).Handle(t.Context(), js[0], delivery{1})
				f := wd.rec.final()
				if len(f) != 1 {
					t.Fatalf("final events %+v, want one", f)
				}
				if tt.fault == "" {
					if f[0].Type != events.EventSucceeded {
						t.Errorf("final %s %q, want a success", f[0].Type, f[0].Error)
					}
					return
				}
				if f[0].Type != events.EventFailed || !strings.Contains(f[0].Error, tt.fault) {
					t.Errorf("final %s %q, want a failure saying %q", f[0].Type, f[0].Error, tt.fault)
				}
			})
		})
	}
}
