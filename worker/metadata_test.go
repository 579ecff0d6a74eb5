package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// metaProbe hands the worker fixed source metadata (the rig's VMs have none) and can make
// applying it fail.
type metaProbe struct {
	relocator
	md       *vcenter.Metadata
	applyErr error
}

func (p *metaProbe) ReadMetadata(context.Context, string, string) (*vcenter.Metadata, error) {
	return p.md, nil
}

func (p *metaProbe) ApplyMetadata(ctx context.Context, vc, vm string, md *vcenter.Metadata) error {
	if p.applyErr != nil {
		return p.applyErr
	}
	return p.relocator.ApplyMetadata(ctx, vc, vm, md)
}

func TestMetadataCopiedByWorker(t *testing.T) {
	want := &vcenter.Metadata{Tags: []vcenter.Tag{{Category: "app", Name: "shop"}},
		Attributes: map[string]string{"owner": "team-web"}}
	for _, tc := range []struct {
		name     string
		applyErr error
	}{{"copied", nil}, {"apply fails", errors.New("vAPI unavailable")}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			w := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 3}), &metaProbe{relocator: r.mgr, md: want, applyErr: tc.applyErr},
				r.rec, NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
				slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err := w.Handle(r.ctx, r.job(t, "web-02"), delivery{1}); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			f := r.rec.final()
			if len(f) != 1 || f[0].Type != events.EventSucceeded {
				t.Fatalf("final events %+v, want one succeeded", f)
			}
			got, err := r.mgr.ReadMetadata(r.ctx, "vc-west", "web-02")
			if err != nil {
				t.Fatal(err)
			}
			if tc.applyErr == nil {
				if !reflect.DeepEqual(got, want) || f[0].Warning != "" {
					t.Fatalf("vc-west has %+v (message %q), want %+v", got, f[0].Message, want)
				}
				return
			}
			if f[0].Message != "web-02 now runs in vc-west" || !strings.Contains(f[0].Warning, "tags and custom attributes not copied: vAPI unavailable") {
				t.Fatalf("succeeded event says %q, warning %q: want the warning on its own", f[0].Message, f[0].Warning)
			}
		})
	}
}

// The worker that started a move is killed while vCenter runs the task; the worker that
// takes the job over follows the task to its end and then does everything the first
// would have: it copies the tags and custom attributes (read from the source before the
// move, which is gone now, so only the job record still has them), verifies the
// placement, and reports the origin for undo.
func TestTakenOverMoveCopiesTagsAndOffersUndo(t *testing.T) {
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
