package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

func TestChangeWindowsSayWhenMovesStart(t *testing.T) {
	t.Parallel()
	w, err := approvals.ParseWindow("sat 22:00-sun 04:00", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	cw := changeWindows{"vc-west": {w}}
	open := time.Date(2026, 11, 28, 23, 0, 0, 0, time.UTC) // a Saturday night
	closed := open.Add(24 * time.Hour)
	if _, ok := cw.finding("vc-east", open); ok {
		t.Fatal("a vCenter without windows has a window finding")
	}
	f, ok := cw.finding("vc-west", open)
	if !ok || f.Severity != approvals.SeverityOK || !strings.Contains(f.Message, "open now") {
		t.Fatalf("inside the window: %+v", f)
	}
	later, _ := cw.finding("vc-west", closed)
	if later.Severity != approvals.SeverityWarning || !strings.Contains(later.Message, "wait until Sat 5 Dec 22:00") {
		t.Fatalf("outside the window: %+v", later)
	}

	r := &approvals.Request{State: approvals.StatePending, TargetVC: "vc-west", Review: approvals.Review{Findings: []approvals.Finding{f}}}
	if got := cw.current(r, closed); got.Review.Findings[0] != later || r.Review.Findings[0] != f {
		t.Fatalf("a pending request after the window closed reads %+v (record %+v)", got.Review.Findings[0], r.Review.Findings[0])
	}
	r.State = approvals.StateRunning
	if got := cw.current(r, closed); got != r {
		t.Fatal("a request whose moves started was rewritten")
	}
}
