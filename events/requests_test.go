package events

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
)

func TestRequestStoreErrors(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 10*time.Second)
	s := tb.Requests()

	r := &approvals.Request{ID: "xvm-aaaaa", Requester: "U1", State: approvals.StatePending, CreatedAt: time.Now()}
	rev, err := s.Create(ctx, r)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"create twice", func() error { _, err := s.Create(ctx, r); return err }, approvals.ErrExists},
		{"get missing", func() error { _, _, err := s.Get(ctx, "xvm-zzzzz"); return err }, approvals.ErrNotFound},
		{"get unusable id", func() error { _, _, err := s.Get(ctx, "two words"); return err }, approvals.ErrNotFound},
		{"update stale revision", func() error { _, err := s.Update(ctx, r, rev+10); return err }, approvals.ErrConflict},
		{"update missing", func() error {
			_, err := s.Update(ctx, &approvals.Request{ID: "xvm-nope1"}, 1)
			return err
		}, approvals.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	got, gotRev, err := s.Get(ctx, r.ID)
	if err != nil || gotRev != rev || got.Requester != "U1" {
		t.Fatalf("Get = %+v, %d, %v; want the created record at revision %d", got, gotRev, err, rev)
	}
}

func TestRequestStoreConcurrentUpdateOneWins(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 15*time.Second)
	s := tb.Requests()
	if _, err := s.Create(ctx, &approvals.Request{ID: "xvm-click", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	// 20 approvers click at once: all read the same revision, one write must win.
	const clickers = 20
	r0, rev0, err := s.Get(ctx, "xvm-click")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clickers)
	start := make(chan struct{})
	for i := range clickers {
		wg.Go(func() {
			r := *r0
			r.Requester = string(rune('A' + i))
			<-start
			_, err := s.Update(ctx, &r, rev0)
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	var won, conflicts int
	for err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, approvals.ErrConflict):
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 || conflicts != clickers-1 {
		t.Fatalf("won %d, conflicts %d; want exactly 1 and %d", won, conflicts, clickers-1)
	}
}

func TestRequestStoreListAndServiceUse(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 10*time.Second)
	s := tb.Requests()

	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("List on empty bucket = %v, %v; want empty, nil", got, err)
	}
	base := time.Now()
	for i, id := range []string{"xvm-third", "xvm-first", "xvm-secnd"} {
		offset := map[int]time.Duration{0: 2, 1: 0, 2: 1}[i] * time.Minute
		if _, err := s.Create(ctx, &approvals.Request{ID: id, CreatedAt: base.Add(offset)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if want := []string{"xvm-first", "xvm-secnd", "xvm-third"}; len(ids) != 3 || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
		t.Fatalf("List order = %v, want %v (oldest first)", ids, want)
	}
}

func TestRequestSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testCtx(t, 20*time.Second)

	open := func() (*Embedded, *Bus) {
		e, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir}, testLogger(t))
		if err != nil {
			t.Fatalf("StartEmbedded: %v", err)
		}
		nc, err := e.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		b, err := NewBus(ctx, nc, BusConfig{}, testLogger(t), nil)
		if err != nil {
			t.Fatalf("NewBus: %v", err)
		}
		return e, b
	}

	e1, b1 := open()
	r := &approvals.Request{ID: "xvm-kept1", Requester: "U42", Approvals: []approvals.Decision{{User: "U7", At: time.Now()}}, CreatedAt: time.Now()}
	rev, err := b1.Requests().Create(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.PublishJob(ctx, Job{ID: "job-kept", VM: "web-01"}); err != nil {
		t.Fatal(err)
	}
	e1.Shutdown()

	e2, b2 := open()
	defer e2.Shutdown()
	got, gotRev, err := b2.Requests().Get(ctx, "xvm-kept1")
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	if gotRev != rev || got.Requester != "U42" || len(got.Approvals) != 1 {
		t.Fatalf("after restart got %+v at revision %d, want requester U42, 1 approval, revision %d", got, gotRev, rev)
	}
	eventually(ctx, t, "the job queued before the restart", func() bool {
		n, err := b2.QueuedJobs(ctx)
		return err == nil && n == 1
	})
	// CAS still works across the restart.
	if _, err := b2.Requests().Update(ctx, got, gotRev); err != nil {
		t.Fatalf("Update after restart: %v", err)
	}
}

func TestJobRecordsClaimOnce(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 15*time.Second)
	jr := tb.Jobs()

	// Two deliveries of one job racing (a stale worker and the new one): one claim wins.
	const racers = 20
	var wg sync.WaitGroup
	results := make(chan error, racers)
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			_, err := jr.Create(ctx, &JobRecord{JobID: "job-7", State: JobRunning, Worker: string(rune('a' + i)), Attempts: 1})
			results <- err
		})
	}
	close(start)
	wg.Wait()
	close(results)
	var won int
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrJobClaimed):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d workers claimed the job, want exactly 1", won)
	}

	rec, rev, err := jr.Get(ctx, "job-7")
	if err != nil || rec.State != JobRunning || rec.UpdatedAt.IsZero() {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
	rec.TaskRef, rec.State = "task-1234", JobSucceeded
	if _, err := jr.Update(ctx, rec, rev); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := jr.Update(ctx, rec, rev); !errors.Is(err, ErrJobConflict) {
		t.Fatalf("Update at old revision: err = %v, want ErrJobConflict", err)
	}
	if _, _, err := jr.Get(ctx, "job-none"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrJobNotFound", err)
	}
	got, _, _ := jr.Get(ctx, "job-7")
	if got.TaskRef != "task-1234" || !got.State.Terminal() {
		t.Fatalf("record after update = %+v", got)
	}
}

// bigRequest is a request of n VMs, each job with an origin, as a wave leaves it.
func bigRequest(id string, n int) *approvals.Request {
	r := &approvals.Request{ID: id, Requester: "U1", State: approvals.StateRunning, CreatedAt: time.Now(),
		SourceVC: "vc-east", TargetVC: "vc-west"}
	for i := range n {
		vm := fmt.Sprintf("bulk-%04d", i+1)
		r.VMs = append(r.VMs, vm)
		r.Review.Findings = append(r.Review.Findings, approvals.Finding{Severity: approvals.SeverityOK, VM: vm,
			Message: "NIC 1 of " + vm + " stays on a portgroup named app-pg in vc-west (no mapping given)"})
		r.Jobs = append(r.Jobs, approvals.Job{ID: approvals.JobID(id, i), VM: vm, State: approvals.StateRunning, Progress: 50,
			StartedAt: time.Now(), ThreadTS: "1764000000.000100",
			Origin: &move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "east-prod", Host: "esx-e1.lab", Pool: "Resources",
				Datastore: "east-ds-02", Folder: "/", Networks: []move.Network{{Source: "app-pg", Target: "east-app-pg"}}}}})
	}
	return r
}

// Reads are served from a record decoded once per revision: every read is a copy of its
// own, and a write by another process (another store on the same bucket) is seen at once.
func TestRequestStoreDecodesOncePerRevision(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 10*time.Second)
	s := tb.Requests()
	other := &RequestStore{kv: s.kv}
	r := bigRequest("xvm-cache", 20)
	if _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Jobs[1].VM = "changed after the write"

	a, _, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Jobs[1].VM != "bulk-0002" {
		t.Fatalf("a change to the written record after the write shows in a read: %q", a.Jobs[1].VM)
	}
	a.Jobs[0].State, a.Jobs[0].Origin.Host, a.Review.Findings[0].Message = approvals.StateFailed, "changed", "changed"
	b, revB, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Jobs[0].State != approvals.StateRunning || b.Jobs[0].Origin.Host != "esx-e1.lab" || b.Review.Findings[0].Message == "changed" {
		t.Fatalf("a change to one read shows in the next: %+v", b.Jobs[0])
	}

	w, wrev, err := other.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.Jobs[0].State = approvals.StateSucceeded
	if _, err := other.Update(ctx, w, wrev); err != nil {
		t.Fatal(err)
	}
	c, revC, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if revC == revB || c.Jobs[0].State != approvals.StateSucceeded {
		t.Fatalf("another process's write not seen: revision %d (was %d), job %s", revC, revB, c.Jobs[0].State)
	}
}

// BenchmarkRequestStoreGet reads a 200-VM request record (about 100 KB of JSON): as the
// store does, from the record decoded once per revision, and decoding it on every read.
//
//	go test -run '^$' -bench RequestStoreGet ./events
func BenchmarkRequestStoreGet(b *testing.B) {
	tb := newTestBus(b, BusConfig{})
	ctx := testCtx(b, time.Minute)
	s := tb.Requests()
	r := bigRequest("xvm-bench", 200)
	if _, err := s.Create(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.Run("decoded once", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.Get(ctx, r.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoded each read", func(b *testing.B) {
		for b.Loop() {
			var got approvals.Request
			if _, err := kvGet(ctx, s.kv, r.ID, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
