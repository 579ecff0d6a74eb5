package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// The answer to RelocateVM_Task is lost after vCenter started the move: the job follows
// the relocation vCenter runs, records its task, and succeeds in one attempt; the VM is
// moved once (without it, every retry was refused with TaskInProgress and the job
// reported failed while the move went on).
func TestLostRelocationAnswerIsFollowed(t *testing.T) {
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
	r := newRig(t)
	j := r.job(t, "web-02")
	if _, err := r.lab.VC("vc-east").LoseNextRelocationAnswer(j.VM); err != nil {
		t.Fatal(err)
	}
	if err := r.worker("w1", 2).Handle(r.ctx, j, delivery{1}); err != nil {
		t.Fatalf("delivery: %v, want the move followed to its end", err)
	}
	r.arrivedOnce(t, j.VM)
	rec, _, err := NATSRecords{Jobs: r.bus.Jobs()}.Load(r.ctx, j.ID)
	if err != nil || rec.State != events.JobSucceeded || rec.TaskRef == "" || rec.Attempts != 1 {
		t.Fatalf("record %+v (%v), want succeeded in one attempt with the followed task", rec, err)
	}
}

// RunningRelocation is the VM's task that has not finished, as vCenter lists it among
// the VM's recent tasks.
func (f *fakeVC) RunningRelocation(_ context.Context, _, vm string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ref, t := range f.tasks {
		if t.vm == vm && !t.finished {
			return ref, nil
		}
	}
	return "", nil
}

// unansweredStarts is a vCenter whose first start of each VM begins the relocation and
// loses its answer, while the VM's recent tasks cannot be read either (the outage goes
// on a little): Start fails as unanswered, and the move runs.
type unansweredStarts struct {
	*fakeVC
	mu   sync.Mutex
	lost map[string]bool
}

func (u *unansweredStarts) Start(ctx context.Context, p *vcenter.Plan, vm string) (string, error) {
	ref, err := u.fakeVC.Start(ctx, p, vm)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil || u.lost[vm] {
		return ref, err
	}
	u.lost[vm] = true
	return "", &vcenter.Fault{VCenter: "vc-east", VM: vm, Step: vcenter.StepRelocate, Kind: vcenter.KindUnreachable, Retryable: true,
		Message: "vc-east is unreachable", Err: fmt.Errorf("%w: %w", vcenter.ErrStartUnanswered, io.EOF)}
}

// A start that went unanswered, and whose relocation could not be found at once, is
// looked for by the next delivery: it follows the running task instead of starting
// another (which vCenter would refuse with TaskInProgress until the attempts ran out),
// and the job succeeds with the VM moved once.
func TestUnansweredStartIsFollowedByTheNextDelivery(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		vc := &unansweredStarts{fakeVC: wd.vc, lost: map[string]bool{}}
		w := New(Config{Name: "w1", Trust: wd.keys, Requests: NATSRequests{Store: wd.requests}, MaxAttempts: 2}, vc, wd.rec, wd.records, wd.locks, nil,
			slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
		j := wd.job("web-01", 1)
		if err := w.Handle(t.Context(), j, delivery{1}); !errors.Is(err, events.ErrRetry) {
			t.Fatalf("first delivery: %v, want a retry", err)
		}
		if rec := wd.records.get(j.ID); !rec.StartUnanswered || rec.TaskRef != "" || rec.Move == nil {
			t.Fatalf("record after the unanswered start %+v, want it marked, with the planned move", rec)
		}
		if err := w.Handle(t.Context(), j, delivery{2}); err != nil {
			t.Fatalf("second delivery: %v", err)
		}
		wd.movedOnce("web-01")
		if n := wd.vc.taskCount(); n != 1 {
			t.Errorf("%d relocations started, want 1", n)
		}
		if rec := wd.records.get(j.ID); rec.State != events.JobSucceeded || rec.TaskRef != "task-1" || rec.StartUnanswered {
			t.Errorf("record %+v, want succeeded following task-1", rec)
		}
	})
}
