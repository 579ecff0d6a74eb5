package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

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
			w := New(Config{Name: "w1", Slots: 1, MaxAttempts: 3}, &metaProbe{relocator: r.mgr, md: want, applyErr: tc.applyErr},
				r.rec, NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
				slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err := w.Handle(r.ctx, job("web-02"), delivery{1}); err != nil {
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
				if !reflect.DeepEqual(got, want) || strings.Contains(f[0].Message, "not copied") {
					t.Fatalf("vc-west has %+v (message %q), want %+v", got, f[0].Message, want)
				}
				return
			}
			if !strings.Contains(f[0].Message, "web-02 now runs in vc-west; tags not copied: vAPI unavailable") {
				t.Fatalf("succeeded message %q does not carry the warning", f[0].Message)
			}
		})
	}
}
