package approvals

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// running is a queued request of two jobs whose first job runs.
func running(t *testing.T) *Request {
	t.Helper()
	r := &Request{ID: "xvm-r1", State: StateQueued, Jobs: []Job{{ID: "j1", VM: "web-01", State: StateQueued}, {ID: "j2", VM: "web-02", State: StateQueued}}}
	if _, err := r.ApplyReport(Report{Job: "j1", State: StateRunning, Started: true, Shown: "m1"}, time.Unix(100, 0)); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestApplyReport(t *testing.T) {
	now := time.Unix(200, 0)
	origin := &move.Origin{VCenter: "vc-east", Placement: move.Placement{Folder: "apps"}}
	tests := []struct {
		name    string
		before  func(r *Request)
		rep     Report
		changed bool
		check   func(t *testing.T, r *Request)
	}{
		{"a start records the job's message and when it started", nil, Report{Job: "j2", State: StateRunning, Started: true, Shown: "m2"}, true,
			func(t *testing.T, r *Request) {
				if j := r.Job("j2"); j.ThreadTS != "m2" || !j.StartedAt.Equal(now) || r.State != StateRunning {
					t.Fatalf("job %+v, request %s", j, r.State)
				}
			}},
		{"a message posted again does not replace the first", nil, Report{Job: "j1", State: StateRunning, Progress: 10, Shown: "m9"}, true,
			func(t *testing.T, r *Request) {
				if j := r.Job("j1"); j.ThreadTS != "m1" || j.Progress != 10 {
					t.Fatalf("job %+v", j)
				}
			}},
		{"the task that moves the VM is kept, and a report without one keeps it", func(r *Request) { r.Jobs[0].Task = "task-7" },
			Report{Job: "j1", State: StateRunning, Progress: 20}, true,
			func(t *testing.T, r *Request) {
				if j := r.Job("j1"); j.Task != "task-7" {
					t.Fatalf("task %q", j.Task)
				}
			}},
		{"a report names the task", nil, Report{Job: "j1", State: StateRunning, Progress: 30, Task: "task-9"}, true,
			func(t *testing.T, r *Request) {
				if j := r.Job("j1"); j.Task != "task-9" {
					t.Fatalf("task %q", j.Task)
				}
			}},
		{"what the worker says while the job runs stays", nil, Report{Job: "j1", State: StateRunning, Note: "retrying"}, true,
			func(t *testing.T, r *Request) {
				if j := r.Job("j1"); j.Note != "retrying" {
					t.Fatalf("note %q", j.Note)
				}
			}},
		{"a later percentage keeps the note", func(r *Request) { r.Jobs[0].Note = "retrying" }, Report{Job: "j1", State: StateRunning, Progress: 50}, true,
			func(t *testing.T, r *Request) {
				if j := r.Job("j1"); j.Note != "retrying" || j.Progress != 50 {
					t.Fatalf("job %+v", j)
				}
			}},
		{"a restart clears the note", func(r *Request) { r.Jobs[0].Note = "retrying" }, Report{Job: "j1", State: StateRunning, Started: true}, true,
			func(t *testing.T, r *Request) {
				if j := r.Job("j1"); j.Note != "" {
					t.Fatalf("note %q", j.Note)
				}
			}},
		{"a failure keeps its fault and hint", nil, Report{Job: "j1", State: StateFailed, Error: "the copy broke off", Fault: "task · NetworkCopyFault", Hint: "check the network"}, true,
			func(t *testing.T, r *Request) {
				if j := r.Job("j1"); j.State != StateFailed || j.Error != "the copy broke off" || j.Fault != "task · NetworkCopyFault" || j.Hint != "check the network" {
					t.Fatalf("job %+v", j)
				}
				if r.FinalReplyDue || r.State != StateRunning {
					t.Fatalf("one job of two ended: request %s, final reply due %v", r.State, r.FinalReplyDue)
				}
			}},
		{"the report that ends the request makes the final reply due", func(r *Request) { r.Jobs[1].State = StateSucceeded },
			Report{Job: "j1", State: StateSucceeded, Warning: "tags not copied", Origin: origin}, true,
			func(t *testing.T, r *Request) {
				j := r.Job("j1")
				if r.State != StateSucceeded || !r.FinalReplyDue || j.Warning != "tags not copied" || j.Origin == nil || j.Origin.Folder != "apps" {
					t.Fatalf("request %s due %v, job %+v", r.State, r.FinalReplyDue, j)
				}
			}},
		{"a redelivered success changes nothing", func(r *Request) { r.Jobs[0].State, r.Jobs[0].Progress = StateSucceeded, 100 },
			Report{Job: "j1", State: StateSucceeded, Warning: "late words"}, false,
			func(t *testing.T, r *Request) {
				if j := r.Job("j1"); j.Warning != "" {
					t.Fatalf("an unchanged report wrote its warning: %+v", j)
				}
			}},
		{"an origin is kept on a job marked cancelled", func(r *Request) { r.Jobs[0].State = StateCancelled },
			Report{Job: "j1", State: StateFailed, Error: "landed elsewhere", Fault: "PlacementMismatch", Origin: origin}, true,
			func(t *testing.T, r *Request) {
				j := r.Job("j1")
				if j.State != StateCancelled || j.Origin == nil || j.Fault != "" {
					t.Fatalf("job %+v: want still cancelled, with the origin and no fault", j)
				}
			}},
		{"a report of an approved request marks it queued", func(r *Request) { r.State, r.Jobs[1].State = StateApproved, StateQueued },
			Report{Job: "j2", State: StateRunning, Started: true}, true,
			func(t *testing.T, r *Request) {
				if r.State != StateRunning {
					t.Fatalf("request %s", r.State)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := running(t)
			if tt.before != nil {
				tt.before(r)
			}
			changed, err := r.ApplyReport(tt.rep, now)
			if err != nil || changed != tt.changed {
				t.Fatalf("changed=%v err=%v, want changed=%v", changed, err, tt.changed)
			}
			tt.check(t, r)
		})
	}
	if _, err := running(t).ApplyReport(Report{Job: "j9", State: StateRunning}, now); err == nil {
		t.Fatal("a report of a job the request does not have was applied")
	}
}

// The Service applies a report in one write, says when a report was applied before, and
// keeps the first message recorded for a request and for each job.
func TestServiceRecordsReportsAndMessages(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Policy{Approvers: []string{"U0BOSS"}})
	r := submit(t, s, "U0REQ", "web-01")
	if _, _, err := s.Approve(ctx, r.ID, "U0BOSS"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RecordMessage(ctx, r.ID, "m1"); err != nil || got.MessageTS != "m1" {
		t.Fatalf("record message: %v %+v", err, got)
	}
	if got, err := s.RecordMessage(ctx, r.ID, "m2"); !errors.Is(err, ErrUnchanged) || got.MessageTS != "m1" {
		t.Fatalf("a second message: err %v, message %q, want the first kept", err, got.MessageTS)
	}
	job := r.Jobs[0].ID
	got, _, before, err := s.ApplyReport(ctx, r.ID, Report{Job: job, State: StateRunning, Started: true, Shown: "t1"})
	if err != nil || before != StateApproved || got.State != StateRunning || got.Job(job).ThreadTS != "t1" {
		t.Fatalf("start: err %v, before %s, after %s, job %+v", err, before, got.State, got.Job(job))
	}
	if _, _, _, err := s.ApplyReport(ctx, r.ID, Report{Job: job, State: StateRunning, Started: true}); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("a redelivered start: %v", err)
	}
	if _, _, err := s.RecordJobMessage(ctx, r.ID, job, "t2"); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("a second job message: %v", err)
	}
	if _, _, _, err := s.ApplyReport(ctx, r.ID, Report{Job: job, State: StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, r.ID); !got.FinalReplyDue || got.State != StateSucceeded {
		t.Fatalf("after the last job: %s, final reply due %v", got.State, got.FinalReplyDue)
	}
	if err := s.FinalReplyPosted(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.FinalReplyPosted(ctx, r.ID); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("final reply posted twice: %v", err)
	}
	if got, _ := s.Get(ctx, r.ID); got.FinalReplyDue {
		t.Fatal("final reply still due after it was posted")
	}
}

func TestServiceMarkQueuedAndNoteJob(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Policy{Approvers: []string{"U0BOSS"}})
	r := submit(t, s, "U0REQ", "web-01")
	if _, err := s.MarkQueued(ctx, r.ID); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("a pending request marked queued: %v", err)
	}
	if _, _, err := s.Approve(ctx, r.ID, "U0BOSS"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MarkQueued(ctx, r.ID); err != nil || got.State != StateQueued {
		t.Fatalf("mark queued: %v %+v", err, got)
	}
	if _, err := s.MarkQueued(ctx, r.ID); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("marked queued twice: %v", err)
	}
	job := r.Jobs[0].ID
	if _, got, err := s.NoteJob(ctx, r.ID, job, "waits for the window"); err != nil || got.Note != "waits for the window" {
		t.Fatalf("note: %v", err)
	}
	if _, _, err := s.NoteJob(ctx, r.ID, job, "waits for the window"); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("the same note twice: %v", err)
	}
	if _, _, err := s.NoteJob(ctx, r.ID, "xvm-none-01", "x"); err == nil || errors.Is(err, ErrUnchanged) {
		t.Fatalf("a note of no job: %v", err)
	}
}
