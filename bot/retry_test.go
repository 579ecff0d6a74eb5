package bot

import (
	"slices"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// failedRequest is a 3-VM request that ended with web-02 failed, and its message ts.
func (e *env) failedRequest() (*approvals.Request, string) {
	e.t.Helper()
	r, parentTS := e.approved("migrate web-01,web-02,web-03 to vc-west cluster=west-prod datastore=ds-9")
	for i := range r.Jobs {
		e.handle(event(r, i, events.EventStarted, 0))
	}
	e.handle(event(r, 0, events.EventSucceeded, 100))
	e.handle(failedEvent(r, 1, "NetworkCopyFault", "the vMotion network went down", "check the vMotion vmknics"))
	e.handle(event(r, 2, events.EventSucceeded, 100))
	if got := e.get(r.ID); got.State != approvals.StateFailed {
		e.t.Fatalf("request is %s, want failed", got.State)
	}
	return e.get(r.ID), parentTS
}

// An approver's click on "Retry failed VMs" asks again for the VM that failed, to the same
// place, as a new request that needs approval; the request's message then stops offering
// the retry and names the new request.
func TestRetryFailedVMsByAnApprover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, parentTS := e.failedRequest()
	if got := e.message(parentTS).ActionIDs(); !slices.Equal(got, []string{ActionRetry}) {
		t.Fatalf("a request that ended with a failure offers %v, want the retry", got)
	}
	before := len(e.requests())
	e.click(approver, parentTS, ActionRetry, r.ID)
	e.settle()
	var retries []*approvals.Request
	for _, q := range e.requests() {
		if q.RetryOf == r.ID {
			retries = append(retries, q)
		}
	}
	if len(retries) != 1 || len(e.requests()) != before+1 {
		t.Fatalf("%d retry requests, want 1", len(retries))
	}
	q := retries[0]
	if !slices.Equal(q.VMs, []string{"web-02"}) || q.Placement.Cluster != "west-prod" || q.Placement.Datastore != "ds-9" ||
		q.SourceVC != r.SourceVC || q.TargetVC != r.TargetVC || q.Direction != r.Direction {
		t.Fatalf("the retry asks %v to %s/%s (%s → %s, %s), want web-02 as the request asked", q.VMs, q.Placement.Cluster,
			q.Placement.Datastore, q.SourceVC, q.TargetVC, q.Direction)
	}
	if q.State != approvals.StatePending || q.Requester != approver || len(e.jobs.published()) != 3 {
		t.Fatalf("the retry is %s by %s with %d jobs published; want pending, asked by the approver, nothing queued",
			q.State, q.Requester, len(e.jobs.published()))
	}
	if msg := e.message(q.MessageTS); !strings.Contains(msg.Words(), "retry of the failed VMs of request "+r.ID) ||
		!slices.Contains(msg.ActionIDs(), ActionApprove) {
		t.Fatalf("the retry's message does not say what it retries or offers no approval:\n%s", msg.Words())
	}
	parent := e.message(parentTS)
	if len(parent.ActionIDs()) != 0 || !strings.Contains(parent.Words(), "asked again in request "+q.ID) {
		t.Fatalf("the request still offers %v, or does not name its retry:\n%s", parent.ActionIDs(), parent.Words())
	}

	// Clicked again (an older copy of the message): nothing more is asked.
	e.click(requester, parentTS, ActionRetry, r.ID)
	e.settle()
	if n := len(e.requests()); n != before+1 {
		t.Fatalf("a second click asked %d more requests", n-before-1)
	}
	said := ""
	for _, m := range e.ephemeralsTo(requester) {
		said += e.slack.Plain(m)
	}
	if !strings.Contains(said, q.ID+" already asks again for the failed VMs") {
		t.Fatalf("the second click is not told:\n%s", said)
	}
}

// Anyone but an approver is refused: nothing is asked, and they are told why.
func TestRetryFailedVMsRefusedToOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, parentTS := e.failedRequest()
	before := len(e.requests())
	e.click(stranger, parentTS, ActionRetry, r.ID)
	e.settle()
	if n := len(e.requests()); n != before {
		t.Fatalf("a stranger's click asked %d requests", n-before)
	}
	said := ""
	for _, m := range e.ephemeralsTo(stranger) {
		said += e.slack.Plain(m)
	}
	if !strings.Contains(said, "not an approver") {
		t.Fatalf("the stranger is not told why:\n%s", said)
	}
	if got := e.get(r.ID).RetriedBy; !got.IsZero() {
		t.Fatalf("a refused click reserved the retry: %+v", got)
	}
	if got := e.message(parentTS).ActionIDs(); !slices.Equal(got, []string{ActionRetry}) {
		t.Fatalf("after a refused click the request offers %v", got)
	}
}
