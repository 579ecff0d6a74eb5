package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// BenchmarkRequestStoreGetSmall reads a request of one VM, as the approval of a move of
// one VM does before it writes the request's head.
//
//	go test -run '^$' -bench RequestStoreGetSmall ./events
func BenchmarkRequestStoreGetSmall(b *testing.B) {
	tb := newTestBus(b, BusConfig{})
	ctx := testCtx(b, time.Minute)
	s := tb.Requests()
	r := bigRequest("xvm-small", 1)
	if _, err := s.Create(ctx, r); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := s.Get(ctx, r.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// A request of a few VMs is read key by key rather than by a watch, and reads the same:
// its chunks, its jobs, and a job written before the request's head noted it (a job's
// report writes the job, then the head).
func TestSmallRequestReadsAsAWatchReadsIt(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 10*time.Second)
	s := tb.Requests()
	r := bigRequest("xvm-few", 3)
	r.Jobs[1] = r.UnreportedJob(1, r.VMs[1])
	r.Jobs[2] = r.UnreportedJob(2, r.VMs[2])
	if _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	j := r.UnreportedJob(2, r.VMs[2])
	j.State, j.Progress, j.Error = approvals.StateFailed, 10, "vc-west: insufficient resources"
	if _, err := s.UpdateJob(ctx, r.ID, 2, &j); err != nil {
		t.Fatal(err)
	}
	got, rev, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, wantRev, err := s.assemble(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if rev != wantRev || string(a) != string(b) {
		t.Errorf("read key by key at revision %d:\n%s\nby a watch at revision %d:\n%s", rev, a, wantRev, b)
	}
	if got.Jobs[2].State != approvals.StateFailed || got.Jobs[0].State != approvals.StateRunning || len(got.Review.Findings) != 3 {
		t.Errorf("jobs %+v, %d findings: want job 3 failed as written, job 1 running, 3 findings", got.Jobs, len(got.Review.Findings))
	}
}
