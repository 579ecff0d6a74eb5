package events

import (
	"errors"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// A change of a request's head alone (an approval, a message's timestamp, a state) made on
// a whole read is one write, the head's compare-and-swap, with no read of the head before
// it: a click's approval waits for every round trip to NATS. The compare-and-swap still
// refuses a head written by someone else since the read, and a changed job is still
// written.
func TestHeadChangeIsOneWrite(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 10*time.Second)
	s := tb.Requests()
	r := bigRequest("xvm-onewrite", 3)
	r.State = approvals.StatePending
	for i := range r.Jobs {
		r.Jobs[i] = r.UnreportedJob(i, r.VMs[i])
	}
	if _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, rev, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}

	got.MessageTS = "1764000000.000200"
	sent := tb.nc.Stats().OutMsgs
	newRev, err := s.Update(ctx, got, rev)
	if err != nil {
		t.Fatal(err)
	}
	if n := tb.nc.Stats().OutMsgs - sent; n != 1 {
		t.Errorf("a head change sent %d messages to NATS, want 1 (the write)", n)
	}
	stored, storedRev, err := s.Get(ctx, r.ID)
	if err != nil || storedRev != newRev || stored.MessageTS != got.MessageTS {
		t.Fatalf("stored %q at %d (%v), want %q at %d", stored.MessageTS, storedRev, err, got.MessageTS, newRev)
	}

	// A write made on the older read is refused: the head moved on.
	stale := *got
	stale.Requester = "U2"
	if _, err := s.Update(ctx, &stale, rev); !errors.Is(err, approvals.ErrConflict) {
		t.Fatalf("update on a stale read: %v, want ErrConflict", err)
	}

	// A job changed on the read is written with the head, as before.
	stored.Jobs[1].State, stored.Jobs[1].Error = approvals.StateFailed, "vc-west: insufficient resources"
	if _, err := s.Update(ctx, stored, storedRev); err != nil {
		t.Fatal(err)
	}
	again, _, err := s.Get(ctx, r.ID)
	if err != nil || again.Jobs[1].State != approvals.StateFailed || again.Requester != "U1" {
		t.Fatalf("after a job's change: job 2 %s, requester %s (%v); want failed, U1", again.Jobs[1].State, again.Requester, err)
	}
}
