package events

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// queuedRequest submits, approves and queues a request of n VMs on svc.
func queuedRequest(t *testing.T, ctx context.Context, svc *approvals.Service, n int) *approvals.Request {
	t.Helper()
	r := scaleRequest(n)
	if err := svc.Submit(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, won, err := svc.Approve(ctx, r.ID, "U0BOSS"); err != nil || !won {
		t.Fatalf("approve: won=%v, %v", won, err)
	}
	if _, err := svc.MarkQueued(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	return r
}

func report(t *testing.T, ctx context.Context, svc *approvals.Service, id string, i int, s approvals.State) {
	t.Helper()
	if _, _, _, err := svc.ApplyReport(ctx, id, approvals.Report{Job: approvals.JobID(id, i), State: s, Started: s == approvals.StateRunning}); err != nil {
		t.Fatalf("report job %d %s: %v", i+1, s, err)
	}
}

func jobStates(r *approvals.Request) string {
	var out []string
	for _, j := range r.Jobs {
		out = append(out, string(j.State))
	}
	return strings.Join(out, " ")
}

// A record stored whole by the previous version (one value, jobs inside) still reads,
// takes its jobs' reports and ends, and stays whole.
func TestRequestStoredWholeStillWorks(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)
	s := tb.Requests()
	svc, _ := signingService(t, s)
	old := &approvals.Request{ID: "xvm-old01", State: approvals.StateQueued, Requester: "U0REQ", Quorum: 1,
		VMs: []string{"web-01", "web-02"}, CreatedAt: time.Now()}
	for i, vm := range old.VMs {
		old.Jobs = append(old.Jobs, approvals.Job{ID: approvals.JobID(old.ID, i), VM: vm, State: approvals.StateQueued})
	}
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.kv.Create(ctx, old.ID, data); err != nil {
		t.Fatal(err)
	}
	for i := range old.Jobs {
		report(t, ctx, svc, old.ID, i, approvals.StateRunning)
		report(t, ctx, svc, old.ID, i, approvals.StateSucceeded)
	}
	got, err := svc.Get(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bad := approvals.CheckOutcome(got, approvals.StateSucceeded); bad != "" || !got.FinalReplyDue {
		t.Fatalf("the old record did not end succeeded with its final reply due: %s", bad)
	}
	keys, err := kvKeys(ctx, s.kv)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.kv.Get(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.Contains(string(e.Value()), `"jobs":[`) || strings.Contains(string(e.Value()), `"parts"`) {
		t.Fatalf("the old record was not kept whole: keys %v, value %.300s", keys, e.Value())
	}
}

// A job's end whose own write was stored but whose request's was not (the bot stopped in
// between) ends the request when the event is delivered again.
func TestRedeliveredEndCompletesTheRequest(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)
	s := tb.Requests()
	svc, _ := signingService(t, s)
	r := queuedRequest(t, ctx, svc, 3)
	for i := range 3 {
		report(t, ctx, svc, r.ID, i, approvals.StateRunning)
	}
	report(t, ctx, svc, r.ID, 0, approvals.StateSucceeded)
	report(t, ctx, svc, r.ID, 1, approvals.StateFailed)

	// The last job's end, stored on the job only.
	end := approvals.Report{Job: approvals.JobID(r.ID, 2), State: approvals.StateSucceeded}
	h, _, err := s.Head(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(ctx, h, 2)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := j.ApplyReport(end, time.Now()); err != nil || !changed {
		t.Fatalf("apply to the job: %v, %v", changed, err)
	}
	if _, err := s.UpdateJob(ctx, r.ID, 2, j); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.Get(ctx, r.ID); got.State != approvals.StateRunning || got.Jobs[2].State != approvals.StateSucceeded {
		t.Fatalf("before the redelivery: request %s, job 3 %s; want running, succeeded", got.State, got.Jobs[2].State)
	}

	got, job, before, err := svc.ApplyReport(ctx, r.ID, end)
	if err != nil {
		t.Fatalf("redelivered end: %v", err)
	}
	if got.State != approvals.StateFailed || before != approvals.StateRunning || !got.FinalReplyDue || job.State != approvals.StateSucceeded {
		t.Fatalf("after the redelivery: request %s (before %s, final reply due %v), job %s; want failed, running, true, succeeded",
			got.State, before, got.FinalReplyDue, job.State)
	}
	if _, _, _, err := svc.ApplyReport(ctx, r.ID, end); !errors.Is(err, approvals.ErrUnchanged) {
		t.Fatalf("a third delivery: %v, want ErrUnchanged", err)
	}
}

// Cancelling a request while it runs (a whole-request change) cancels the jobs that have
// not started and leaves the others as their reports left them; a later report of a
// running job still lands.
func TestCancelWhileRunningKeepsStartedJobs(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)
	s := tb.Requests()
	svc, _ := signingService(t, s)
	r := queuedRequest(t, ctx, svc, 4)
	report(t, ctx, svc, r.ID, 0, approvals.StateRunning)
	report(t, ctx, svc, r.ID, 1, approvals.StateRunning)
	report(t, ctx, svc, r.ID, 1, approvals.StateSucceeded)
	if _, err := svc.Cancel(ctx, r.ID, "U0REQ", "change freeze"); err != nil {
		t.Fatal(err)
	}
	report(t, ctx, svc, r.ID, 0, approvals.StateSucceeded)
	got, err := svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != approvals.StateCancelled || jobStates(got) != "succeeded succeeded cancelled cancelled" {
		t.Fatalf("request %s, jobs %s; want cancelled, succeeded succeeded cancelled cancelled", got.State, jobStates(got))
	}
}

// A whole-request write keeps what a job's own write stored after the whole request was
// read: it writes only the jobs its caller changed.
func TestWholeUpdateKeepsLaterJobWrites(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)
	s := tb.Requests()
	svc, _ := signingService(t, s)
	r := queuedRequest(t, ctx, svc, 2)
	report(t, ctx, svc, r.ID, 0, approvals.StateRunning)

	read, rev, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.RecordJobMessage(ctx, r.ID, approvals.JobID(r.ID, 0), "1764000000.000200"); err != nil {
		t.Fatal(err)
	}
	read.MessageTS = "1764000000.000100"
	if _, err := s.Update(ctx, read, rev); err != nil {
		t.Fatalf("update of the request as read before the job's write: %v", err)
	}
	got, err := svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.MessageTS != "1764000000.000100" || got.Jobs[0].ThreadTS != "1764000000.000200" || got.Jobs[0].State != approvals.StateRunning {
		t.Fatalf("message %q, job 1 message %q and state %s; want both messages and running", got.MessageTS, got.Jobs[0].ThreadTS, got.Jobs[0].State)
	}
}

// List returns each request once, whole, however many keys it is kept in; ListHeads
// returns each once, without its jobs.
func TestListReturnsWholeRequests(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)
	s := tb.Requests()
	svc, _ := signingService(t, s)
	a := queuedRequest(t, ctx, svc, 3)
	report(t, ctx, svc, a.ID, 1, approvals.StateRunning)
	b := scaleRequest(2)
	if err := svc.Submit(ctx, b); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Fatalf("listed %d requests, want %s and %s", len(all), a.ID, b.ID)
	}
	if jobStates(all[0]) != "queued running queued" || len(all[0].Review.VMs) != 3 || len(all[1].Jobs) != 2 {
		t.Fatalf("listed requests are not whole: jobs %q, %d review VMs; %d jobs", jobStates(all[0]), len(all[0].Review.VMs), len(all[1].Jobs))
	}
	heads, err := s.ListHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || heads[0].ID != a.ID || heads[0].State != approvals.StateRunning || heads[0].Jobs != nil || heads[0].Tally.Jobs != 3 ||
		heads[1].ID != b.ID || heads[1].State != approvals.StatePending {
		t.Fatalf("heads listed: %d, first %+v", len(heads), heads[0])
	}
}

// What a request's chunks hold (its VMs, review and findings) is written once: a whole
// write that changes it is refused, and nothing of it is stored.
func TestChunksAreWrittenOnce(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)
	s := tb.Requests()
	svc, _ := signingService(t, s)
	r := scaleRequest(3)
	if err := svc.Submit(ctx, r); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(r *approvals.Request){
		"a finding reworded": func(r *approvals.Request) { r.Review.Findings[1].Message = "reworded" },
		"a finding added":    func(r *approvals.Request) { r.Review.Findings = append(r.Review.Findings, r.Review.Findings[0]) },
		"a VM's object":      func(r *approvals.Request) { r.Review.VMs[2].Ref = "vm-other" },
	} {
		got, rev, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		change(got)
		got.MessageTS = "1764000000.000100"
		if _, err := s.Update(ctx, got, rev); !errors.Is(err, ErrPartsFixed) {
			t.Fatalf("%s: update %v, want ErrPartsFixed", name, err)
		}
	}
	got, err := svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.MessageTS != "" || got.Review.Findings[1].Message != r.Review.Findings[1].Message || len(got.Review.Findings) != 3 || got.Review.VMs[2].Ref != r.Review.VMs[2].Ref {
		t.Fatalf("a refused update left something stored: %+v", got.Review)
	}
}

// A whole read of a request that is being written (a wave's job events rewrite its head
// and its jobs all the time) finds the request and every job it says has started: the
// watch it reads with can end before it delivered some key, and what is missing is read
// directly. Before, such a read now and then answered "request not found".
func TestWholeReadOfARequestBeingWritten(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 2*time.Minute)
	svc, _ := signingService(t, tb.Requests())
	const n = 600
	r := queuedRequest(t, ctx, svc, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if ctx.Err() != nil {
				return
			}
			_, _, _, _ = svc.ApplyReport(ctx, r.ID, approvals.Report{Job: approvals.JobID(r.ID, i), State: approvals.StateRunning, Started: true})
			_, _, _, _ = svc.ApplyReport(ctx, r.ID, approvals.Report{Job: approvals.JobID(r.ID, i), State: approvals.StateSucceeded})
		}
	}()
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		got, _, err := tb.Requests().Get(ctx, r.ID)
		if err != nil {
			t.Fatalf("read %d of the request while its jobs are written: %v", reads+1, err)
		}
		for i, j := range got.Jobs {
			if got.Tally.Started.Has(i) && (j.State == approvals.StateQueued || j.State == approvals.StatePending) {
				t.Fatalf("read %d: job %d has started by the head's tally but reads %s", reads+1, i+1, j.State)
			}
		}
	}
	t.Logf("%d whole reads while %d jobs started and ended", reads, n)
}
