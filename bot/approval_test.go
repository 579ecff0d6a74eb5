package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
)

// The jobs of an approved request each carry a grant, signed for that job and VM alone,
// that says what the job says: the VM by name and object id, both vCenters by instance
// UUID, the placement, and who approved it.
func TestApprovedJobsCarryTheirSignedGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01,web-02 to vc-west datastore=ds-gold disk=thin")
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	jobs := e.jobs.published()
	if len(jobs) != 2 {
		t.Fatalf("%d jobs", len(jobs))
	}
	_, keys := approvaltest.Key(1)
	for i, j := range jobs {
		g := grantOf(t, j)
		wantVM := []string{"web-01", "web-02"}[i]
		if g.VM != (approvals.ApprovedVM{Job: j.ID, VM: move.VM{Name: wantVM, Ref: "vm-" + wantVM}}) || j.VM != wantVM ||
			g.Source != (move.VCenter{Name: "vc-east", UUID: "uuid-vc-east"}) || g.Target.UUID != "uuid-vc-west" ||
			g.Placement.Datastore != "ds-gold" || j.Datastore != "ds-gold" || g.Placement.DiskFormat != "thin" ||
			len(g.Approvers) != 1 || g.Approvers[0] != approver || j.ApprovedBy[0] != approver || g.RequestedBy != requester {
			t.Fatalf("job %+v\ngrant %+v", j, g)
		}
	}
	stored := e.get(r.ID)
	if _, err := keys.OpenApproval(stored); err != nil {
		t.Fatalf("the stored record's approval: %v", err)
	}
}

// Someone who can write the request store sets a pending request to approved, with an
// approver's name: the re-publish loop queues nothing, the thread says why once, the
// message does not show the approval, and the metric counts it.
func TestRecordEditedToApprovedQueuesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01 to vc-west")
	e.forge(r.ID, func(r *approvals.Request) {
		r.State, r.DecidedAt = approvals.StateApproved, time.Now().Add(-time.Minute)
		r.Approvals = []approvals.Decision{{User: approver, At: time.Now().Add(-time.Minute)}}
	})
	e.bot.now = func() time.Time { return time.Now().Add(republishAfter + time.Second) }
	e.bot.republishApproved(t.Context())
	e.bot.republishApproved(t.Context())
	if n := len(e.jobs.published()); n != 0 {
		t.Fatalf("%d jobs published for a record nobody approved", n)
	}
	var notices []string
	for _, m := range e.slack.Thread(msg.TS) {
		if strings.Contains(m.Words(), "no approval xvmbot can verify") {
			notices = append(notices, m.Words())
		}
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "nothing was queued") {
		t.Fatalf("thread notices %q, want one saying nothing was queued", notices)
	}
	if v := counterValue(e.bot.m.approvals.WithLabelValues(decisionUnverified)); v != 1 {
		t.Fatalf("xvm_approvals_total{decision=unverified} = %v, want 1", v)
	}
	e.bot.refreshParent(t.Context(), e.get(r.ID))
	parent := e.message(msg.TS).Words()
	if strings.Contains(parent, "Approved") || !strings.Contains(parent, "Approval not verified") {
		t.Fatalf("parent message shows:\n%s", parent)
	}
	e.command(requester, "status "+r.ID)
	e.settle()
	eph := e.ephemeralsTo(requester)
	if len(eph) == 0 || !strings.Contains(eph[len(eph)-1].Words(), "Approval not verified") || strings.Contains(eph[len(eph)-1].Words(), "Approved") {
		t.Fatalf("/xvm status shows %+v", eph)
	}
}

// A worker's refusal of a job naming a request is said in its thread, once per VM and
// reason however many arrive; the request's record is not changed by it.
func TestRefusedJobIsSaidInTheThread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01 to vc-west")
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	before := e.get(r.ID)
	for i := range 3 {
		ev := events.Event{ID: "ev" + string(rune('a'+i)), Type: events.EventRefused, RequestID: r.ID, JobID: r.Jobs[0].ID,
			VM: "web-01", Fault: string(approvals.ReasonMismatch), Error: "the job says other than its signed approval: vm is \"web-01\"",
			Hint: "nobody approved this job through xvmbot", Worker: "w1", At: time.Now()}
		if err := e.bot.HandleEvent(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	var refusals []string
	for _, m := range e.slack.Thread(msg.TS) {
		if strings.Contains(m.Words(), "refused a job") {
			refusals = append(refusals, m.Words())
		}
	}
	if len(refusals) != 1 || !strings.Contains(refusals[0], "Nothing was moved") || !strings.Contains(refusals[0], "Nobody approved this job") {
		t.Fatalf("thread refusals %q", refusals)
	}
	if after := e.get(r.ID); after.State != before.State || after.Jobs[0].State != before.Jobs[0].State {
		t.Fatalf("record changed by a refusal: %s/%s → %s/%s", before.State, before.Jobs[0].State, after.State, after.Jobs[0].State)
	}
	// A refusal naming no known request is logged, and posts nothing.
	n := len(e.slack.Public())
	if err := e.bot.HandleEvent(t.Context(), events.Event{ID: "evz", Type: events.EventRefused, RequestID: "xvm-nosuch", JobID: "xvm-nosuch-01",
		VM: "web-09", Fault: "unsigned", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if len(e.slack.Public()) != n {
		t.Fatal("a refusal for an unknown request was posted")
	}
}

// grantOf opens the signed grant job j carries with the test signer's keys
// (approvaltest.Key(1)), failing the test if it does not open.
func grantOf(t *testing.T, j events.Job) *approvals.Grant {
	t.Helper()
	_, keys := approvaltest.Key(1)
	var seal approvals.Seal
	if err := json.Unmarshal(j.Approval, &seal); err != nil {
		t.Fatalf("job %s: %v", j.ID, err)
	}
	g, err := keys.OpenGrant(&seal)
	if err != nil {
		t.Fatalf("job %s: its grant does not open: %v", j.ID, err)
	}
	return g
}
