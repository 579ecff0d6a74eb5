package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// metaProbe hands the worker fixed source metadata (the rig's VMs have none).
type metaProbe struct {
	relocator
	md *vcenter.Metadata
}

func (p *metaProbe) ReadMetadata(context.Context, string, string) (*vcenter.Metadata, error) {
	return p.md, nil
}

// The worker that started a move is killed while vCenter runs the task; the worker that
// takes the job over follows the task to its end and then does everything the first
// would have: it copies the tags and custom attributes (read from the source before the
// move, which is gone now, so only the job record still has them), verifies the
// placement, and reports the origin for undo.
func TestTakenOverMoveCopiesTagsAndOffersUndo(t *testing.T) {
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
	want := &vcenter.Metadata{Tags: []vcenter.Tag{{Category: "app", Name: "shop"}},
		Attributes: map[string]string{"owner": "team-web"}}
	r := newRig(t)
	first := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 3}), &metaProbe{relocator: r.mgr, md: want},
		r.rec, NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	j := r.job(t, "web-02")
	killed, kill := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- first.Handle(killed, j, delivery{1}) }()
	for !r.rec.saw(func(e events.Event) bool { return e.Type == events.EventProgress && e.Progress >= 25 }) {
		select {
		case err := <-done:
			t.Fatalf("the first worker ended (%v) before the task got going", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	kill()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("killed worker: %v", err)
	}
	rec, _, _ := NATSRecords{Jobs: r.bus.Jobs()}.Load(r.ctx, j.ID)
	if rec.State != events.JobRunning || rec.TaskRef == "" || rec.Move == nil || len(rec.Move.Tags) != 1 {
		t.Fatalf("record left by the killed worker %+v, want running with its task and move", rec)
	}
	if err := r.worker("w2", 3).Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, j.VM)
	got, err := r.mgr.ReadMetadata(r.ctx, "vc-west", j.VM)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vc-west has %+v, want the source's %+v", got, want)
	}
	f := r.rec.final()
	if o := f[0].Origin; o == nil || o.VCenter != "vc-east" || o.Folder != "apps/web" || len(o.Networks) != 1 {
		t.Errorf("origin %+v, want where web-02 was, for undo", o)
	}
}
