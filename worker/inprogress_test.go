package worker

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// busyVMs is a vCenter that refuses to start a relocation of a VM while another one of it
// runs, with TaskInProgress, as vCenter does.
type busyVMs struct{ *fakeVC }

func (b busyVMs) Start(ctx context.Context, p *vcenter.Plan, vm string) (string, error) {
	if ref, _ := b.RunningRelocation(ctx, p.Source.Name, vm); ref != "" {
		return "", &vcenter.Fault{VCenter: p.Source.Name, VM: vm, Step: vcenter.StepRelocate, Kind: vcenter.KindTaskInProgress,
			Retryable: true, Message: "the VM is busy with another task"}
	}
	return b.fakeVC.Start(ctx, p, vm)
}

// A worker killed after vCenter started its relocation and before the task was recorded
// leaves a job that looks never started. The next worker's start is refused with
// TaskInProgress while that move runs: it follows the running relocation instead of
// failing the job (the chaos test of cmd/xvmbot, TestFaultWaveTwentyKills, saw the job
// end failed while its VM moved), and the VM moves once.
func TestStartRefusedAsInProgressFollowsTheRunningRelocation(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		vc := busyVMs{wd.vc}
		w := New(Config{Name: "w2", Trust: wd.keys, Requests: NATSRequests{Store: wd.requests}, MaxAttempts: 1}, vc, wd.rec, wd.records, wd.locks, nil,
			slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
		j := wd.job("web-01", 1)
		plan, err := wd.vc.Plan(t.Context(), vcenter.MoveSpec{VMs: []string{j.VM}, Source: j.SourceVC, Target: j.TargetVC, Placement: j.Placement.Clone()})
		if err != nil {
			t.Fatal(err)
		}
		// The first worker's start, which vCenter ran and nobody recorded.
		first, err := wd.vc.Start(t.Context(), plan, j.VM)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatalf("delivery after the lost record: %v", err)
		}
		wd.movedOnce("web-01")
		if n := wd.vc.taskCount(); n != 1 {
			t.Errorf("%d relocations started, want 1", n)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobSucceeded || rec.TaskRef != first {
			t.Errorf("record %+v, want succeeded following %s", rec, first)
		}
	})
}
