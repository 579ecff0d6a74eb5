package worker

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// assertWestMetadata checks that vm in vc-west has the tags and custom attributes want.
func assertWestMetadata(t *testing.T, r *rig, vm string, want *vcenter.Metadata) {
	t.Helper()
	got, err := r.mgr.ReadMetadata(r.ctx, "vc-west", vm)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vc-west has %+v, want the source's %+v", got, want)
	}
}

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
	first := r.workerOn("w1", 3, &metaProbe{relocator: r.mgr, md: want})
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
	assertWestMetadata(t, r, j.VM, want)
	f := r.rec.final()
	if o := f[0].Origin; o == nil || o.VCenter != "vc-east" || o.Folder != "apps/web" || len(o.Networks) != 1 {
		t.Errorf("origin %+v, want where web-02 was, for undo", o)
	}
}

// blockingMeta stands for a read of the source's tags that does not answer before the
// worker is killed.
type blockingMeta struct {
	relocator
	reading chan struct{}
}

func (p *blockingMeta) ReadMetadata(ctx context.Context, _, _ string) (*vcenter.Metadata, error) {
	close(p.reading)
	<-ctx.Done()
	return nil, ctx.Err()
}

// A move's task is recorded before its origin and tags are read (they are read while the
// task runs, from the moment vCenter has taken it). A worker killed in between leaves the move marked unread; the worker that
// takes the job over follows the task and reads them from the source while it still runs,
// then copies the tags and offers undo as the first would have.
func TestUnreadOriginAndTagsAreReadByTheNextWorker(t *testing.T) {
	t.Parallel()
	want := &vcenter.Metadata{Tags: []vcenter.Tag{{Category: "app", Name: "shop"}},
		Attributes: map[string]string{"owner": "team-web"}}
	r := newRig(t)
	probe := &blockingMeta{relocator: r.mgr, reading: make(chan struct{})}
	first := r.workerOn("w1", 3, probe)
	j := r.job(t, "web-02")
	killed, kill := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- first.Handle(killed, j, delivery{1}) }()
	select {
	case <-probe.reading:
	case err := <-done:
		t.Fatalf("the first worker ended (%v) before it read the tags", err)
	}
	var rec events.JobRecord
	for rec.TaskRef == "" { // the tags are read while the task is recorded: wait for the record
		var err error
		if rec, _, err = (NATSRecords{Jobs: r.bus.Jobs()}).Load(r.ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("the first worker ended (%v) before it recorded its task", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if rec.Move == nil || !rec.Move.Unread || rec.Move.Host == "" {
		t.Fatalf("record while the tags are read: %+v; want the running task recorded, its move planned and unread", rec)
	}
	kill()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("killed worker: %v", err)
	}

	second := r.workerOn("w2", 3, &metaProbe{relocator: r.mgr, md: want})
	if err := second.Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, j.VM)
	assertWestMetadata(t, r, j.VM, want)
	f := r.rec.final()
	if o := f[0].Origin; o == nil || o.VCenter != "vc-east" || o.Folder != "apps/web" {
		t.Errorf("origin %+v, want where web-02 was, for undo", o)
	}
	if f[0].Warning != "" {
		t.Errorf("warning %q on a move whose origin and tags were read by the second worker", f[0].Warning)
	}
}
