package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// An UndoRef is stored as the text records have always held, and records written before
// it was typed read back the same.
func TestUndoRefIsStoredAsText(t *testing.T) {
	at := time.Unix(1764000000, 0)
	tests := []struct {
		stored string
		ref    UndoRef
	}{
		{"", UndoRef{}},
		{"xvm-k3m9q2", UndoRef{Request: "xvm-k3m9q2"}},
		{"reserved:U0ALICE@1764000000", UndoRef{By: "U0ALICE", At: at}},
	}
	for _, tt := range tests {
		j := Job{ID: "xvm-a-01", UndoneBy: tt.ref}
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if tt.stored == "" && strings.Contains(string(b), "undone_by") {
			t.Errorf("nothing to undo is written as %s", b)
		}
		if tt.stored != "" && !strings.Contains(string(b), `"undone_by":"`+tt.stored+`"`) {
			t.Errorf("%+v is written as %s, want %q", tt.ref, b, tt.stored)
		}
		var old Job
		if err := json.Unmarshal([]byte(`{"id":"xvm-a-01","undone_by":"`+tt.stored+`"}`), &old); err != nil {
			t.Fatal(err)
		}
		if !old.UndoneBy.same(tt.ref) || old.UndoneBy.Reserved() != (tt.ref.By != "") || !old.UndoneBy.At.Equal(tt.ref.At) {
			t.Errorf("%q reads as %+v, want %+v", tt.stored, old.UndoneBy, tt.ref)
		}
	}
	// A reservation whose time cannot be read has lapsed; the record still reads.
	var bad Job
	if err := json.Unmarshal([]byte(`{"undone_by":"reserved:U0ALICE@soon"}`), &bad); err != nil || !bad.UndoneBy.Reserved() || !bad.UndoneBy.At.IsZero() {
		t.Fatalf("a garbled reservation: %v %+v", err, bad.UndoneBy)
	}
}

func TestUndoable(t *testing.T) {
	o := &move.Origin{VCenter: "vc-east"}
	tests := []struct {
		job  Job
		want error
	}{
		{Job{ID: "j", State: StateSucceeded, Origin: o}, nil},
		{Job{ID: "j", State: StateFailed, Origin: o}, nil}, // moved, but not as approved
		{Job{ID: "j", State: StateFailed}, ErrNotMoved},
		{Job{ID: "j", State: StateRunning}, ErrNotMoved},
		{Job{ID: "j", State: StateSucceeded}, ErrNoOrigin},
	}
	for _, tt := range tests {
		if err := tt.job.Undoable(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s job with origin %v: %v, want %v", tt.job.State, tt.job.Origin != nil, err, tt.want)
		}
	}
}

func TestRequestIDOf(t *testing.T) {
	for id, want := range map[string]string{"xvm-k3m9q2-01": "xvm-k3m9q2", "xvm-k3m9q2": "xvm-k3m9q2", "nonsense": "nonsense", JobID("xvm-ab", 11): "xvm-ab"} {
		if got := RequestIDOf(id); got != want {
			t.Errorf("RequestIDOf(%q) = %q, want %q", id, got, want)
		}
	}
}

// moved is a succeeded one-VM request with an origin, as a finished move leaves it.
func moved(t *testing.T, s *Service) (*Request, string) {
	t.Helper()
	ctx := context.Background()
	r := submit(t, s, "U0REQ", "web-01")
	if _, _, err := s.Approve(ctx, r.ID, "U0BOSS"); err != nil {
		t.Fatal(err)
	}
	job := r.Jobs[0].ID
	if _, _, _, err := s.ApplyReport(ctx, r.ID, Report{Job: job, State: StateSucceeded, Origin: &move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "east", Folder: "apps"}}}); err != nil {
		t.Fatal(err)
	}
	return r, job
}

// A move has one way back at a time: a reservation holds it while the undo is planned, the
// undo request once stored, and either lets go when it can no longer take the VM back.
func TestOneWayBackAtATime(t *testing.T) {
	ctx := context.Background()
	s, c := newService(t, Policy{Approvers: []string{"U0BOSS"}})
	r, job := moved(t, s)

	mine, err := s.ReserveUndo(ctx, r.ID, job, "U0REQ")
	if err != nil || !mine.Reserved() || mine.By != "U0REQ" {
		t.Fatalf("first reservation: %v %+v", err, mine)
	}
	_, err = s.ReserveUndo(ctx, r.ID, job, "U0BOSS")
	var taken *UndoTakenError
	if !errors.As(err, &taken) || !taken.By.Reserved() || taken.By.By != "U0REQ" {
		t.Fatalf("second reservation while the first is planned: %v", err)
	}

	// The planner stopped: past UndoReservationFor the reservation has lapsed.
	c.t = c.t.Add(UndoReservationFor)
	again, err := s.ReserveUndo(ctx, r.ID, job, "U0BOSS")
	if err != nil || again.By != "U0BOSS" {
		t.Fatalf("reservation after the first lapsed: %v %+v", err, again)
	}
	// The first planner's release does not free another's reservation.
	if err := s.ReleaseUndo(ctx, r.ID, job, mine); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, r.ID); !got.Jobs[0].UndoneBy.same(again) {
		t.Fatalf("a stale release freed %+v", got.Jobs[0].UndoneBy)
	}

	// The undo request, once stored, holds the way back.
	done, _ := s.Get(ctx, r.ID)
	undo := identified(&Request{Direction: Migrate, VMs: []string{"web-01"}, SourceVC: "vc-west", TargetVC: "vc-east", Requester: "U0BOSS",
		Placement: done.Jobs[0].Origin.Placement, UndoOf: job})
	if undo.Placement.Cluster != "east" || undo.Placement.Folder != "apps" {
		t.Fatalf("the way back goes to %+v", undo.Placement)
	}
	if err := s.Submit(ctx, undo); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, r.ID); got.Jobs[0].UndoneBy.Request != undo.ID {
		t.Fatalf("job's way back held by %+v, want %s", got.Jobs[0].UndoneBy, undo.ID)
	}
	c.t = c.t.Add(time.Hour) // a request does not lapse with time
	if _, err := s.ReserveUndo(ctx, r.ID, job, "U0REQ"); !errors.As(err, &taken) || taken.By.Request != undo.ID {
		t.Fatalf("reservation while the undo request is pending: %v", err)
	}

	// Rejected, the undo request no longer holds it.
	if _, err := s.Reject(ctx, undo.ID, "U0BOSS", "not now"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReserveUndo(ctx, r.ID, job, "U0REQ"); err != nil {
		t.Fatalf("reservation after the undo was rejected: %v", err)
	}
}

func TestNoWayBackOfWhatDidNotMove(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Policy{Approvers: []string{"U0BOSS"}})
	r := submit(t, s, "U0REQ", "web-01")
	if _, err := s.ReserveUndo(ctx, r.ID, r.Jobs[0].ID, "U0REQ"); !errors.Is(err, ErrNotMoved) {
		t.Fatalf("undo of a pending job: %v", err)
	}
	if got, _ := s.Get(ctx, r.ID); !got.Jobs[0].UndoneBy.IsZero() {
		t.Fatalf("a refused undo reserved %+v", got.Jobs[0].UndoneBy)
	}
	if _, err := s.ReserveUndo(ctx, r.ID, "xvm-none-01", "U0REQ"); err == nil {
		t.Fatal("undo of a job the request does not have was reserved")
	}
}

// The way back of a whole request reserves, in one write, every moved job whose way back
// is free; the undo request that names the request holds those of its VMs.
func TestWayBackOfAWholeRequest(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Policy{Approvers: []string{"U0BOSS"}})
	r := submit(t, s, "U0REQ", "web-01", "web-02", "web-03", "web-04")
	if _, _, err := s.Approve(ctx, r.ID, "U0BOSS"); err != nil {
		t.Fatal(err)
	}
	east := &move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "east"}}
	for i, st := range []State{StateSucceeded, StateSucceeded, StateSucceeded, StateFailed} {
		rep := Report{Job: r.Jobs[i].ID, State: st, Error: "no room"}
		if st == StateSucceeded {
			rep.Origin = east
		}
		if _, _, _, err := s.ApplyReport(ctx, r.ID, rep); err != nil {
			t.Fatal(err)
		}
	}
	// web-03's way back is asked for on its own already.
	if _, err := s.ReserveUndo(ctx, r.ID, r.Jobs[2].ID, "U0BOSS"); err != nil {
		t.Fatal(err)
	}
	mine, reserved, taken, err := s.ReserveRequestUndo(ctx, r.ID, "U0REQ")
	if err != nil || !slices.Equal(reserved, []string{r.Jobs[0].ID, r.Jobs[1].ID}) || len(taken) != 1 || taken[0].VM != "web-03" {
		t.Fatalf("reserved %v, taken %+v, err %v; want web-01 and web-02 reserved, web-03 taken, web-04 (not moved) left out", reserved, taken, err)
	}
	if !mine.Reserved() {
		t.Fatalf("reservation %+v", mine)
	}
	undo := identified(&Request{Direction: Migrate, VMs: []string{"web-01", "web-02"}, SourceVC: "vc-west", TargetVC: "vc-east",
		Requester: "U0REQ", Placement: east.Placement, UndoOf: r.ID})
	if err := s.Submit(ctx, undo); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, r.ID)
	for i, want := range []string{undo.ID, undo.ID, "", ""} {
		if h := got.Jobs[i].UndoneBy.Request; h != want {
			t.Errorf("%s's way back held by %q, want %q", got.Jobs[i].VM, h, want)
		}
	}
	// Nothing left to reserve: none reserved, nothing written.
	if _, reserved, taken, err := s.ReserveRequestUndo(ctx, r.ID, "U0BOSS"); err != nil || len(reserved) != 0 || len(taken) != 3 {
		t.Fatalf("second undo of the request: reserved %v, taken %d, %v", reserved, len(taken), err)
	}
}
