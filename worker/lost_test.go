package worker

import (
	"testing"

	"github.com/xvmbot/xvmbot/events"
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
