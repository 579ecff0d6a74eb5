package vcenter

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// When the answer to RelocateVM_Task is lost after vCenter started the move, Start
// follows the relocation vCenter runs instead of failing: the caller gets the running
// task's reference, watching it moves the VM, and the VM is moved once.
func TestStartFollowsTheRelocationWhoseAnswerWasLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	spec := MoveSpec{VMs: []string{"web-03"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{
		Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, p.Findings)
	}
	east := lab.VC("vc-east")
	if _, err := east.LoseNextRelocationAnswer("web-03"); err != nil {
		t.Fatal(err)
	}
	taskRef, err := m.Start(ctx, p, "web-03")
	if err != nil || !strings.HasPrefix(taskRef, "task-") {
		t.Fatalf("Start after a lost answer: %q, %v; want the running task", taskRef, err)
	}
	if _, err := m.Watch(ctx, "vc-east", taskRef, "web-03", nil); err != nil {
		t.Fatalf("Watch %s: %v", taskRef, err)
	}
	if found, err := m.Locate(ctx, "vc-west", "web-03"); !found || err != nil {
		t.Errorf("web-03 not in vc-west after the followed task: %v", err)
	}
	if n := east.XVMRelocationsOf("web-03"); n != 1 {
		t.Errorf("web-03 relocated %d times, want once", n)
	}
}

// Only a transport error leaves the start unknown; a fault is vCenter's answer.
func TestUnanswered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ended, cancel := context.WithCancel(ctx)
	cancel()
	eof := &url.Error{Op: "Post", URL: "https://vc/sdk", Err: io.EOF}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"connection closed before the answer", ctx, eof, true},
		{"half an answer", ctx, io.ErrUnexpectedEOF, true},
		{"connection reset", ctx, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{"a fault", ctx, soap.WrapVimFault(&types.TaskInProgress{}), false},
		{"no session (nothing sent)", ctx, &Fault{Kind: KindUnreachable}, false},
		{"our own context ended", ended, eof, false},
		{"none", ctx, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unanswered(tc.ctx, tc.err); got != tc.want {
				t.Errorf("unanswered(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// RunningRelocation finds the relocation vCenter runs for a VM by its name, and nothing
// once it has ended.
func TestRunningRelocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	spec := MoveSpec{VMs: []string{"web-02"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{
		Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, p.Findings)
	}
	if ref, err := m.RunningRelocation(ctx, "vc-east", "web-02"); ref != "" || err != nil {
		t.Errorf("before any move: %q, %v; want none", ref, err)
	}
	_, release := lab.VC("vc-east").HoldRelocation("web-02", 10)
	defer release()
	taskRef, err := m.Start(ctx, p, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if ref, err := m.RunningRelocation(ctx, "vc-east", "web-02"); ref != taskRef || err != nil {
		t.Errorf("while it runs: %q, %v; want %s", ref, err, taskRef)
	}
	release()
	if _, err := m.Watch(ctx, "vc-east", taskRef, "web-02", nil); err != nil {
		t.Fatal(err)
	}
	if ref, err := m.RunningRelocation(ctx, "vc-east", "web-02"); ref != "" || err != nil {
		t.Errorf("after the move: %q, %v; want none", ref, err)
	}
}
