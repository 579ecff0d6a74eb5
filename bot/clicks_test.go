package bot

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
)

func TestApproveQueuesOneJobPerVM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01,web-02,web-03 to vc-west cluster=cl-west")

	if d := e.click(approver, msg.TS, ActionApprove, r.ID); d.status != http.StatusOK || d.body != "" {
		t.Fatalf("click ack %d %q", d.status, d.body)
	}
	e.settle()
	jobs := e.jobs.published()
	if len(jobs) != 3 {
		t.Fatalf("%d jobs published, want 3", len(jobs))
	}
	for i, j := range jobs {
		want := events.Job{V: events.SchemaVersion, ID: approvals.JobID(r.ID, i), RequestID: r.ID, Direction: "migrate",
			VM: r.VMs[i], SourceVC: "vc-east", TargetVC: "vc-west", Placement: move.Placement{Cluster: "cl-west"}, RequestedBy: requester}
		if j.ID != want.ID || j.RequestID != want.RequestID || j.VM != want.VM || j.SourceVC != want.SourceVC || j.TargetVC != want.TargetVC ||
			j.Cluster != want.Cluster || j.RequestedBy != want.RequestedBy || j.Direction != want.Direction || j.V != want.V ||
			!slices.Equal(j.ApprovedBy, []string{approver}) || j.QueuedAt.IsZero() {
			t.Fatalf("job %d = %+v", i, j)
		}
	}
	if got := e.get(r.ID); got.State != approvals.StateQueued {
		t.Fatalf("request is %s, want queued", got.State)
	}
	parent := e.message(msg.TS)
	if a := parent.ActionIDs(); slices.Contains(a, ActionApprove) || slices.Contains(a, ActionReject) {
		t.Fatalf("approved request still offers %v", a)
	}
	if parent.Edits == 0 || !strings.Contains(parent.Words(), approver) {
		t.Fatalf("parent not updated with the approver:\n%s", parent.Words())
	}
	if v := counterValue(e.bot.m.approvals.WithLabelValues(decisionApproved)); v != 1 {
		t.Fatalf("approved decisions counted %v", v)
	}
}

func TestRefusedClicks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		before   []string // approvals clicked first (by approver)
		clicker  string
		action   string
		want     string
		decision string
		state    approvals.State
		jobs     int
	}{
		{name: "second approve after approval", before: []string{approver}, clicker: "U0A01", action: ActionApprove,
			want: "already approved by <@" + approver + ">", decision: decisionDuplicate, state: approvals.StateQueued, jobs: 1},
		{name: "non-approver", clicker: stranger, action: ActionApprove, want: "not an approver", decision: decisionDenied, state: approvals.StatePending},
		{name: "requester approving own", clicker: requester, action: ActionApprove, want: "cannot approve it yourself", decision: decisionDenied, state: approvals.StatePending},
		{name: "non-approver rejecting", clicker: stranger, action: ActionReject, want: "not an approver", decision: decisionDenied, state: approvals.StatePending},
		{name: "reject after approval", before: []string{approver}, clicker: "U0A02", action: ActionReject,
			want: "already approved", decision: decisionDuplicate, state: approvals.StateQueued, jobs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r, msg := e.submit("migrate web-01 to vc-west")
			for _, u := range tt.before {
				e.click(u, msg.TS, ActionApprove, r.ID)
				e.settle()
			}
			e.click(tt.clicker, msg.TS, tt.action, r.ID)
			e.settle()
			eph := e.ephemeralsTo(tt.clicker)
			if len(eph) != 1 || !strings.Contains(eph[0].Words(), tt.want) {
				t.Fatalf("answer to %s = %+v, want it to say %q", tt.clicker, eph, tt.want)
			}
			if got := e.get(r.ID).State; got != tt.state {
				t.Fatalf("request is %s, want %s", got, tt.state)
			}
			if n := len(e.jobs.published()); n != tt.jobs {
				t.Fatalf("%d jobs published, want %d", n, tt.jobs)
			}
			if v := counterValue(e.bot.m.approvals.WithLabelValues(tt.decision)); v != 1 {
				t.Fatalf("decision %s counted %v", tt.decision, v)
			}
		})
	}
}

func TestRejectSaysByWhom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01 to vc-west")
	e.click(approver, msg.TS, ActionReject, r.ID)
	e.settle()
	if got := e.get(r.ID); got.State != approvals.StateRejected || got.Rejection.User != approver {
		t.Fatalf("request %s rejection %+v", got.State, got.Rejection)
	}
	parent := e.message(msg.TS)
	words := strings.ToLower(parent.Words())
	if !strings.Contains(words, "reject") || !strings.Contains(parent.Words(), approver) {
		t.Fatalf("parent does not say who rejected:\n%s", parent.Words())
	}
	if a := parent.ActionIDs(); len(a) != 0 {
		t.Fatalf("rejected request still offers %v", a)
	}
	if n := len(e.jobs.published()); n != 0 {
		t.Fatalf("%d jobs published for a rejected request", n)
	}
	// An approve after the rejection changes nothing.
	e.click("U0A03", msg.TS, ActionApprove, r.ID)
	e.settle()
	if eph := e.ephemeralsTo("U0A03"); len(eph) != 1 || !strings.Contains(eph[0].Words(), "already rejected by <@"+approver+">") {
		t.Fatalf("late approver told %+v", eph)
	}
	if n := len(e.jobs.published()); n != 0 {
		t.Fatalf("%d jobs published after a rejection", n)
	}
}

func TestConcurrentApprovalsQueueOneSetOfJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01,web-02 to vc-west")
	var wg sync.WaitGroup
	for i := range 50 {
		user := fmt.Sprintf("U0A%02d", i)
		wg.Go(func() {
			if d := e.click(user, msg.TS, ActionApprove, r.ID); d.status != http.StatusOK {
				t.Errorf("click by %s: %d", user, d.status)
			}
		})
	}
	wg.Wait()
	e.settle()
	if n := len(e.jobs.published()); n != 2 {
		t.Fatalf("%d jobs published by 50 concurrent approvals, want 2", n)
	}
	got := e.get(r.ID)
	if got.State != approvals.StateQueued || len(got.Approvals) != 1 {
		t.Fatalf("request %s with %d approvals", got.State, len(got.Approvals))
	}
	if v := counterValue(e.bot.m.approvals.WithLabelValues(decisionDuplicate)); v != 49 {
		t.Fatalf("%v duplicate clicks counted, want 49", v)
	}
}

func TestQuorumShowsApprovalsSoFar(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *Config, p *approvals.Policy) { p.Quorum = 2 })
	r, msg := e.submit("migrate web-01 to vc-west")
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	parent := e.message(msg.TS)
	if n := len(e.jobs.published()); n != 0 || parent.Edits != 1 || !strings.Contains(parent.Words(), approver) ||
		!slices.Contains(parent.ActionIDs(), ActionApprove) {
		t.Fatalf("after 1 of 2 approvals: %d jobs, %d edits, buttons %v:\n%s", n, parent.Edits, parent.ActionIDs(), parent.Words())
	}
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	if eph := e.ephemeralsTo(approver); len(eph) != 1 || !strings.Contains(eph[0].Words(), "already counted (1 of 2)") {
		t.Fatalf("same approver twice told %+v", eph)
	}
	e.click("U0A07", msg.TS, ActionApprove, r.ID)
	e.settle()
	if n := len(e.jobs.published()); n != 1 {
		t.Fatalf("%d jobs after quorum, want 1", n)
	}
}

func TestFailedPublishIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01,web-02 to vc-west")
	e.jobs.fail = 1
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	if got := e.get(r.ID).State; got != approvals.StateApproved {
		t.Fatalf("request is %s after a failed publish, want approved", got)
	}
	// The re-publish loop's pass, with the clock past republishAfter.
	e.bot.now = func() time.Time { return time.Now().Add(republishAfter + time.Second) }
	e.bot.republishApproved(t.Context())
	if got := e.get(r.ID).State; got != approvals.StateQueued {
		t.Fatalf("request is %s after re-publish, want queued", got)
	}
	ids := map[string]bool{}
	for _, j := range e.jobs.published() {
		ids[j.ID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("jobs published %v, want both", ids)
	}
}

func TestExpirySweepRemovesButtons(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01 to vc-west")
	e.svc.WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	e.bot.sweepExpired(t.Context())
	if got := e.get(r.ID).State; got != approvals.StateExpired {
		t.Fatalf("request is %s, want expired", got)
	}
	if a := e.message(msg.TS).ActionIDs(); len(a) != 0 {
		t.Fatalf("expired request still offers %v", a)
	}
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	if eph := e.ephemeralsTo(approver); len(eph) != 1 || !strings.Contains(eph[0].Words(), "expired") {
		t.Fatalf("approver of an expired request told %+v", eph)
	}
	if n := len(e.jobs.published()); n != 0 {
		t.Fatalf("%d jobs for an expired request", n)
	}
}
