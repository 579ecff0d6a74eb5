package approvals

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/xvmbot/xvmbot/move"
)

// A retry asks again only for the VMs that failed without moving, one retry at a time,
// and the retry request, once stored, holds it until it can no longer move them.
func TestRetryOfTheFailedVMs(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Policy{Approvers: []string{"U0BOSS"}})
	r := submit(t, s, "U0REQ", "web-01", "web-02", "web-03")
	if _, err := s.ReserveRetry(ctx, r.ID, "U0BOSS"); !errors.Is(err, ErrNothingToRetry) {
		t.Fatalf("retry of a pending request: %v", err)
	}
	if _, _, err := s.Approve(ctx, r.ID, "U0BOSS"); err != nil {
		t.Fatal(err)
	}
	for i, rep := range []Report{
		{State: StateSucceeded, Origin: &move.Origin{VCenter: "vc-east"}},
		{State: StateFailed, Error: "no room"},
		{State: StateFailed, Error: "landed elsewhere", Origin: &move.Origin{VCenter: "vc-east"}},
	} {
		rep.Job = r.Jobs[i].ID
		if _, _, _, err := s.ApplyReport(ctx, r.ID, rep); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.Get(ctx, r.ID)
	if vms := got.RetryVMs(); !slices.Equal(vms, []string{"web-02"}) {
		t.Fatalf("retry asks for %v, want only the VM that failed without moving", vms)
	}
	mine, err := s.ReserveRetry(ctx, r.ID, "U0BOSS")
	if err != nil {
		t.Fatal(err)
	}
	var taken *RetryTakenError
	if _, err := s.ReserveRetry(ctx, r.ID, "U0REQ"); !errors.As(err, &taken) || !taken.By.Reserved() {
		t.Fatalf("a second retry while the first is planned: %v", err)
	}
	retry := identified(&Request{Direction: Migrate, VMs: got.RetryVMs(), SourceVC: "vc-east", TargetVC: "vc-west", Requester: "U0BOSS", RetryOf: r.ID})
	if err := s.Submit(ctx, retry); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, r.ID); got.RetriedBy.Request != retry.ID {
		t.Fatalf("the request's retry is held by %+v, want %s", got.RetriedBy, retry.ID)
	}
	if err := s.ReleaseRetry(ctx, r.ID, mine); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, r.ID); got.RetriedBy.Request != retry.ID {
		t.Fatalf("a stale release freed the retry request's hold: %+v", got.RetriedBy)
	}
	// Rejected, the retry no longer holds: another may be asked.
	if _, err := s.Reject(ctx, retry.ID, "U0BOSS", "not now"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReserveRetry(ctx, r.ID, "U0REQ"); err != nil {
		t.Fatalf("retry after the first retry was rejected: %v", err)
	}
}
