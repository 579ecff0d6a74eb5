package worker

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/worker/workertest"
)

// Every field of a job that says what to move, where, or who approved it is covered by
// its grant: a job captured from the bus and changed in any one of them is refused. A
// field added to events.Job later is covered too, or this test names it.
func TestEveryJobFieldIsSigned(t *testing.T) {
	t.Parallel()
	signer, keys := workertest.Key(1)
	g := approvals.Grant{
		Terms: approvals.Terms{RequestID: "xvm-r1", Direction: approvals.Migrate,
			Source: move.VCenter{Name: "vc-east", UUID: "u1"}, Target: move.VCenter{Name: "vc-west", UUID: "u2"},
			Placement: move.Placement{Cluster: "c", Host: "h", Pool: "p", Datastore: "d", Folder: "f",
				Networks: []move.Network{{Source: "a", Target: "b"}}, DiskFormat: move.Thin, Priority: move.PriorityHigh,
				Disks: []move.Disk{{Disk: 2, Datastore: "d2", DiskFormat: move.Eager}}},
			RequestedBy: "U0ALICE", Approvers: []string{"U0BOB"}, Quorum: 1,
			ApprovedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)},
		VM: approvals.ApprovedVM{Job: "xvm-r1-01", VM: move.VM{Name: "web-01", Ref: "vm-40"}},
	}
	a := &approvals.Approval{Terms: g.Terms, VMs: []approvals.ApprovedVM{g.VM}}
	seals, err := signer.Grants(a)
	if err != nil {
		t.Fatal(err)
	}
	sealJSON, _ := json.Marshal(seals[0])
	signed := grantedJob(&g)
	signed.V, signed.QueuedAt, signed.Approval = events.SchemaVersion, time.Now(), sealJSON
	if _, err := checkJob(keys, signed); err != nil {
		t.Fatalf("the job as the bot queues it: %v", err)
	}
	v := reflect.ValueOf(&signed).Elem()
	for _, f := range reflect.VisibleFields(v.Type()) {
		if unsignedFields[f.Name] || f.Anonymous {
			continue // the embedded placement's own fields are visited one by one
		}
		t.Run(f.Name, func(t *testing.T) {
			forged := signed
			fv := reflect.ValueOf(&forged).Elem().FieldByIndex(f.Index)
			switch fv.Kind() {
			case reflect.String:
				fv.SetString(fv.String() + "-forged")
			case reflect.Slice:
				// One more element of the same kind: another portgroup, disk or approver.
				fv.Set(reflect.Append(reflect.MakeSlice(fv.Type(), 0, fv.Len()+1), reflect.Indirect(reflect.New(fv.Type().Elem()))))
			default:
				t.Fatalf("field %s of kind %s: teach this test to change it", f.Name, fv.Kind())
			}
			if _, err := checkJob(keys, forged); approvals.ReasonOf(err) != approvals.ReasonMismatch {
				t.Fatalf("a job with %s changed: %v, want a refusal for mismatch", f.Name, err)
			}
		})
	}
}

// A VM renamed, and another VM given its name, between approval and run: the job is
// bound to the approved object, so the VM now called web-01 is not moved.
func TestVMReplacedAfterApprovalIsNotMoved(t *testing.T) {
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
	r := newRig(t)
	j := r.job(t, "web-01")
	east := r.lab.VC("vc-east")
	if err := east.RenameVM(r.ctx, "web-01", "web-01-retired"); err != nil {
		t.Fatal(err)
	}
	if err := east.RenameVM(r.ctx, "web-02", "web-01"); err != nil {
		t.Fatal(err)
	}
	w := r.worker("w1", 3)
	if err := w.Handle(r.ctx, j, delivery{1}); err != nil {
		t.Fatalf("Handle = %v, want the job acknowledged", err)
	}
	if n := east.XVMRelocations(); n != 0 {
		t.Fatalf("%d relocations: another VM than the approved one moved", n)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Fault != "NotTheApprovedVM" || !strings.Contains(f[0].Error, "renamed or replaced") {
		t.Fatalf("final events %+v", f)
	}
	if refusedCount(t, w, approvals.ReasonVMIdentity) != 1 {
		t.Fatal("not counted as refused for the VM's identity")
	}
}

// The VMs a job's request still has to move are taken from what its admission read (the
// head's tally and the job's chunk of VMs), as Requests.VMs would list them, and only
// when that chunk holds them all.
func TestNotStartedFromAdmission(t *testing.T) {
	t.Parallel()
	id := "xvm-r9"
	jobs := []approvals.Job{{ID: approvals.JobID(id, 0), State: approvals.StateQueued},
		{ID: approvals.JobID(id, 1), State: approvals.StateRunning}, {ID: approvals.JobID(id, 2), State: approvals.StateQueued}}
	chunk := []approvals.ApprovedVM{{VM: move.VM{Name: "web-01"}}, {VM: move.VM{Name: "web-02"}}, {VM: move.VM{Name: "web-03"}}}
	read := func(h *approvals.Request, c []approvals.ApprovedVM) *admissionRead {
		a := &admissionRead{done: make(chan struct{}), adm: approvals.Admission{Request: h, Chunk: c}}
		close(a.done)
		return a
	}
	head := &approvals.Request{ID: id, Tally: approvals.TallyOf(jobs)}
	if vms, ok := read(head, chunk).notStarted(jobs[0].ID); !ok || !reflect.DeepEqual(vms, []string{"web-01", "web-03"}) {
		t.Errorf("from the head and its chunk: %v %v, want web-01 and web-03", vms, ok)
	}
	if _, ok := read(head, chunk[:2]).notStarted(jobs[0].ID); ok {
		t.Error("a VM outside the chunk read was listed from it")
	}
	if _, ok := read(&approvals.Request{ID: id, Jobs: jobs}, nil).notStarted(jobs[0].ID); ok {
		t.Error("a request stored whole (no tally) was listed from admission")
	}
	var none *admissionRead
	if _, ok := none.notStarted(jobs[0].ID); ok {
		t.Error("listed without a read")
	}
}
