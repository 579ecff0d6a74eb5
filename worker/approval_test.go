package worker

import (
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/worker/workertest"
)

// Every field of a job that says what to move, where, or who approved it is covered by
// its grant: a job captured from the bus and changed in any one of them is refused. A
// field added to events.Job later is covered too, or this test names it.
func TestEveryJobFieldIsSigned(t *testing.T) {
	signer, keys := workertest.Key(1)
	g := approvals.Grant{
		Terms: approvals.Terms{RequestID: "xvm-r1", Direction: approvals.Migrate,
			Source: approvals.VCenterID{Name: "vc-east", UUID: "u1"}, Target: approvals.VCenterID{Name: "vc-west", UUID: "u2"},
			Placement: move.Placement{Cluster: "c", Host: "h", Pool: "p", Datastore: "d", Folder: "f",
				Networks: []move.Network{{Source: "a", Target: "b"}}, DiskFormat: move.Thin, Priority: move.PriorityHigh,
				Disks: []move.Disk{{Disk: 2, Datastore: "d2", DiskFormat: move.Eager}}},
			RequestedBy: "U0ALICE", Approvers: []string{"U0BOB"}, Quorum: 1,
			ApprovedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)},
		VM: approvals.ApprovedVM{Job: "xvm-r1-01", Name: "web-01", Ref: "vm-40"},
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

// refusedWorker is a worker of the rig whose refusal counter can be read.
func (r *rig) refusedWorker(t *testing.T) (*Worker, func(approvals.RefusalReason) float64) {
	t.Helper()
	w := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 3}), r.mgr, r.rec,
		NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	return w, func(reason approvals.RefusalReason) float64 {
		var m dto.Metric
		if err := w.m.refused.WithLabelValues(string(reason)).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
}

// Jobs nobody approved through the bot, whatever their shape, move nothing: each is
// acknowledged (Handle returns nil, so it is not redelivered), counted by its reason and
// reported for the request it names.
func TestJobsNobodyApprovedMoveNothing(t *testing.T) {
	tests := []struct {
		name string
		job  func(t *testing.T, r *rig) events.Job
		want approvals.RefusalReason
	}{
		{"hand-made, unsigned", func(t *testing.T, r *rig) events.Job {
			j := jobFor("web-01")
			j.RequestedBy, j.ApprovedBy = "U0MALLORY", []string{"U0MALLORY"}
			return j
		}, approvals.ReasonUnsigned},
		{"signed by a key the worker does not trust", func(t *testing.T, r *rig) events.Job {
			other, _ := workertest.Key(2)
			a := &workertest.Approver{Store: r.bus.Requests(), Signer: other, Lab: r.lab}
			js, err := a.Approve(r.ctx, jobFor("web-01"))
			if err != nil {
				t.Fatal(err)
			}
			return js[0]
		}, approvals.ReasonUntrustedKey},
		{"captured and edited to another VM", func(t *testing.T, r *rig) events.Job {
			j := r.job(t, "web-01")
			j.VM = "web-02"
			return j
		}, approvals.ReasonMismatch},
		{"captured and edited to another datastore", func(t *testing.T, r *rig) events.Job {
			j := r.job(t, "web-01")
			j.Datastore = "ds-bronze"
			return j
		}, approvals.ReasonMismatch},
		{"its signed approval altered", func(t *testing.T, r *rig) events.Job {
			j := r.job(t, "web-01")
			var s approvals.Seal
			if err := json.Unmarshal(j.Approval, &s); err != nil {
				t.Fatal(err)
			}
			s.Payload = []byte(strings.Replace(string(s.Payload), `"web-01"`, `"web-02"`, -1))
			j.Approval, _ = json.Marshal(s)
			j.VM = "web-02"
			return j
		}, approvals.ReasonBadSignature},
		{"signed, for a request that does not exist", func(t *testing.T, r *rig) events.Job {
			signer, _ := workertest.Key(1) // the trusted key, but the record is kept elsewhere
			a := &workertest.Approver{Store: approvals.NewMemoryStore(), Signer: signer, Lab: r.lab}
			js, err := a.Approve(r.ctx, jobFor("web-01"))
			if err != nil {
				t.Fatal(err)
			}
			return js[0]
		}, approvals.ReasonNoRequest},
		{"signed, for a request cancelled since", func(t *testing.T, r *rig) events.Job {
			j := r.job(t, "web-01")
			rec, rev, err := r.bus.Requests().Get(r.ctx, j.RequestID)
			if err != nil {
				t.Fatal(err)
			}
			rec.State = approvals.StateCancelled
			if _, err := r.bus.Requests().Update(r.ctx, rec, rev); err != nil {
				t.Fatal(err)
			}
			return j
		}, approvals.ReasonRequestState},
		{"signed, but the record was rewritten without it", func(t *testing.T, r *rig) events.Job {
			j := r.job(t, "web-01")
			rec, rev, err := r.bus.Requests().Get(r.ctx, j.RequestID)
			if err != nil {
				t.Fatal(err)
			}
			rec.Approval = nil
			if _, err := r.bus.Requests().Update(r.ctx, rec, rev); err != nil {
				t.Fatal(err)
			}
			return j
		}, approvals.ReasonUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			w, refused := r.refusedWorker(t)
			j := tt.job(t, r)
			if err := w.Handle(r.ctx, j, delivery{1}); err != nil {
				t.Fatalf("Handle = %v; a refused job is acknowledged, not handed back", err)
			}
			if n := r.lab.VC("vc-east").XVMRelocations(); n != 0 {
				t.Fatalf("%d relocations", n)
			}
			if got := refused(tt.want); got != 1 {
				t.Fatalf("xvm_jobs_refused_total{reason=%q} = %v, want 1", tt.want, got)
			}
			var refusals []events.Event
			for _, e := range r.rec.events {
				if e.Type == events.EventRefused {
					refusals = append(refusals, e)
				} else {
					t.Errorf("event %s %q besides the refusal", e.Type, e.Message)
				}
			}
			if len(refusals) != 1 || refusals[0].Fault != string(tt.want) || refusals[0].RequestID != j.RequestID ||
				refusals[0].Error == "" || refusals[0].Hint == "" {
				t.Fatalf("refusal events %+v", refusals)
			}
			if _, seen, _ := (NATSRecords{Jobs: r.bus.Jobs()}).Load(r.ctx, j.ID); seen && tt.want != approvals.ReasonRequestState {
				t.Errorf("a refused job left a job record")
			}
		})
	}
}

// An approval lets its jobs start for RunWithin; a job of a live request that would start
// later (a change window that never opened, a queue that never drained) fails, so that its
// request ends and its thread says why, and moves nothing.
func TestExpiredApprovalFailsTheJobAndMovesNothing(t *testing.T) {
	r := newRig(t)
	r.approver.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	r.approver.RunWithin = time.Hour
	w, refused := r.refusedWorker(t)
	if err := w.Handle(r.ctx, r.job(t, "web-01"), delivery{1}); err != nil {
		t.Fatalf("Handle = %v, want the job acknowledged", err)
	}
	if n := r.lab.VC("vc-east").XVMRelocations(); n != 0 {
		t.Fatalf("%d relocations", n)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Fault != "ApprovalExpired" || !strings.Contains(f[0].Hint, "again") {
		t.Fatalf("final events %+v, want one failure ApprovalExpired", f)
	}
	if refused(approvals.ReasonExpired) != 1 {
		t.Fatal("not counted as refused for expiry")
	}
}

// A VM renamed, and another VM given its name, between approval and run: the job is
// bound to the approved object, so the VM now called web-01 is not moved.
func TestVMReplacedAfterApprovalIsNotMoved(t *testing.T) {
	r := newRig(t)
	j := r.job(t, "web-01")
	east := r.lab.VC("vc-east")
	if err := east.RenameVM(r.ctx, "web-01", "web-01-retired"); err != nil {
		t.Fatal(err)
	}
	if err := east.RenameVM(r.ctx, "web-02", "web-01"); err != nil {
		t.Fatal(err)
	}
	w, refused := r.refusedWorker(t)
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
	if refused(approvals.ReasonVMIdentity) != 1 {
		t.Fatal("not counted as refused for the VM's identity")
	}
}
