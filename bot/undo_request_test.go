package bot

import (
	"slices"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
)

// /xvm undo <request> asks for the way back of every VM the request moved, as new
// requests that need approval: one per placement the VMs came from. A VM that did not
// move is left alone, and a second undo of the request finds nothing left to ask.
func TestUndoOfAWholeRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.approved("migrate app-1,app-2,app-3,app-4,app-5 to vc-west")
	a := move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "east-prod", Host: "esx-1", Datastore: "ds-1", Folder: "apps"}}
	b := move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "east-prod", Host: "esx-2", Datastore: "ds-1", Folder: "apps"}}
	for i, o := range []*move.Origin{&a, &a, &a, &b} {
		e.handle(event(r, i, events.EventStarted, 0))
		done := event(r, i, events.EventSucceeded, 100)
		done.Origin = o
		e.handle(done)
	}
	e.handle(failedEvent(r, 4, "InsufficientDisk", "no room", "free some space"))
	before := len(e.requests())

	e.command(approver, "undo "+r.ID)
	e.settle()
	var undos []*approvals.Request
	for _, q := range e.requests() {
		if q.UndoOf == r.ID {
			undos = append(undos, q)
		}
	}
	if len(undos) != 2 || len(e.requests()) != before+2 {
		t.Fatalf("%d undo requests, want 2 (one per origin)", len(undos))
	}
	slices.SortFunc(undos, func(x, y *approvals.Request) int { return len(y.VMs) - len(x.VMs) })
	for i, want := range []struct {
		vms  []string
		host string
	}{{[]string{"app-1", "app-2", "app-3"}, "esx-1"}, {[]string{"app-4"}, "esx-2"}} {
		u := undos[i]
		if !slices.Equal(u.VMs, want.vms) || u.Placement.Host != want.host || u.SourceVC != "vc-west" || u.TargetVC != "vc-east" ||
			u.State != approvals.StatePending || u.Requester != approver {
			t.Errorf("undo request %d: %v to %s (%s → %s), %s by %s; want %v to %s, pending, by the one who asked",
				i, u.VMs, u.Placement.Host, u.SourceVC, u.TargetVC, u.State, u.Requester, want.vms, want.host)
		}
		if msg := e.message(u.MessageTS); !strings.Contains(msg.Words(), "the way back of request "+r.ID) || !slices.Contains(msg.ActionIDs(), ActionApprove) {
			t.Errorf("undo request %s's message does not say what it undoes or offers no approval:\n%s", u.ID, msg.Words())
		}
	}
	got := e.get(r.ID)
	for i, j := range got.Jobs {
		want := ""
		switch i {
		case 0, 1, 2:
			want = undos[0].ID
		case 3:
			want = undos[1].ID
		}
		if j.UndoneBy.Request != want {
			t.Errorf("%s's way back is held by %q, want %q", j.VM, j.UndoneBy, want)
		}
	}
	said := ""
	for _, m := range e.ephemeralsTo(approver) {
		said += m.Words() + "\n"
	}
	if !strings.Contains(said, "way back of 4 VMs of "+r.ID+" in 2 requests") {
		t.Errorf("the person who asked is not told what was asked:\n%s", said)
	}

	// Asked again: every way back is held, nothing new is asked.
	e.command(requester, "undo "+r.ID)
	e.settle()
	if n := len(e.requests()); n != before+2 {
		t.Fatalf("a second undo of the request asked %d more requests", n-before-2)
	}
	said = ""
	for _, m := range e.ephemeralsTo(requester) {
		said += e.slack.Plain(m) + "\n"
	}
	if strings.Count(said, "already asks for the way back") != 4 {
		t.Errorf("the second undo does not say each VM's way back is asked for already:\n%s", said)
	}
}
