package bot

import (
	"encoding/json"
	"errors"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"net/http"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/vcenter"
)

// ackText is what the user reads from an ack body.
func ackText(t *testing.T, d delivery) string {
	t.Helper()
	if d.status != http.StatusOK {
		t.Fatalf("status %d: %s", d.status, d.body)
	}
	var a struct {
		ResponseType string          `json:"response_type"`
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(d.body), &a); err != nil {
		t.Fatalf("ack %q: %v", d.body, err)
	}
	if a.ResponseType != "ephemeral" {
		t.Fatalf("ack is %q, want ephemeral", a.ResponseType)
	}
	return a.Text + "\n" + string(a.Blocks)
}

func TestCommandsAnsweredInTheAck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		channel []string
		want    []string
		outcome string
		verb    string
	}{
		{name: "malformed", text: "migrate web-01 to vc-west dsk=thin", want: []string{"dsk", "/xvm migrate"}, outcome: outcomeUsageError, verb: "migrate"},
		{name: "unknown verb", text: "teleport web-01", want: []string{"teleport"}, outcome: outcomeUsageError, verb: "unknown"},
		{name: "unknown vcenter", text: "migrate web-01 to vc-mars", want: []string{"vc-mars", "vc-east (home)", "vc-west"}, outcome: outcomeUnknownVCenter, verb: "migrate"},
		{name: "same vcenter", text: "migrate web-01 from vc-west to vc-west", want: []string{"both"}, outcome: outcomeUsageError, verb: "migrate"},
		{name: "wrong channel", text: "migrate web-01 to vc-west", channel: []string{"C0OTHER"}, want: []string{"<#C0OTHER>"}, outcome: outcomeRefused, verb: "migrate"},
		{name: "help", text: "help", want: []string{"/xvm migrate"}, outcome: outcomeOK, verb: "help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.Channels = tt.channel })
			got := ackText(t, e.command(requester, tt.text))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply lacks %q:\n%s", w, got)
				}
			}
			e.settle()
			if n := len(e.requests()); n != 0 {
				t.Fatalf("%d requests stored", n)
			}
			if len(e.planner.specs) != 0 {
				t.Fatalf("planner called: %+v", e.planner.specs)
			}
			if v := counterValue(e.bot.m.commands.WithLabelValues(tt.verb, tt.outcome)); v != 1 {
				t.Fatalf("xvm_commands_total{command=%q,outcome=%q} = %v", tt.verb, tt.outcome, v)
			}
		})
	}
}

func TestImportDefaultsToHomeAsTarget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.submit(`import "db 01" from vc-west`)
	if r.SourceVC != "vc-west" || r.TargetVC != "vc-east" || r.Direction != "import" || r.VMs[0] != "db 01" {
		t.Fatalf("import request %+v", r)
	}
}

func TestPreflightOnlyAnswersPrivately(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		text     string
		findings []vcenter.Finding
		planErr  error
		want     string
		outcome  string
	}{
		{name: "blocked plan", text: "migrate web-01 to vc-west",
			findings: []vcenter.Finding{{Severity: vcenter.Blocker, VM: "web-01", Message: "portgroup pg-dmz has no match in vc-west", Hint: "add network=pg-dmz:pg-west"}},
			want:     "pg-dmz", outcome: outcomeBlocked},
		{name: "check", text: "check migrate web-01 to vc-west", want: "web-01", outcome: outcomeChecked},
		{name: "vcenter down", text: "migrate web-01 to vc-west", planErr: errors.New("vc-west: connection refused"), want: "connection refused", outcome: outcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.planner.findings, e.planner.err = tt.findings, tt.planErr
			if d := e.command(requester, tt.text); d.status != http.StatusOK {
				t.Fatalf("status %d", d.status)
			}
			e.settle()
			if n := len(e.requests()); n != 0 {
				t.Fatalf("%d requests stored", n)
			}
			if n := len(e.slack.Public()); n != 0 {
				t.Fatalf("%d channel messages posted", n)
			}
			eph := e.ephemeralsTo(requester)
			if len(eph) != 1 {
				t.Fatalf("%d ephemeral replies, want 1", len(eph))
			}
			if !strings.Contains(eph[0].Words(), tt.want) {
				t.Fatalf("reply lacks %q:\n%s", tt.want, eph[0].Words())
			}
			if a := eph[0].ActionIDs(); len(a) != 0 {
				t.Fatalf("a review offers buttons %v", a)
			}
			if v := counterValue(e.bot.m.commands.WithLabelValues(verbLabel(strings.Fields(tt.text)[0]), tt.outcome)); v != 1 {
				t.Fatalf("outcome %s not counted", tt.outcome)
			}
		})
	}
}

func TestStatusListAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.submit("migrate web-01 to vc-west")

	for _, text := range []string{"status " + r.ID + "-01", "list", "cancel " + r.ID} {
		e.command(stranger, text)
		e.settle() // one at a time: the answers are checked in order
	}
	eph := e.ephemeralsTo(stranger)
	if len(eph) != 4 {
		t.Fatalf("%d replies to the stranger, want 4 (the request and its job, the list, the cancel)", len(eph))
	}
	if !strings.Contains(eph[0].Words(), r.ID) || !strings.Contains(eph[1].Words(), "Job "+r.ID+"-01") || !strings.Contains(eph[2].Words(), r.ID) {
		t.Fatalf("status/list do not show %s:\n%s\n%s\n%s", r.ID, eph[0].Words(), eph[1].Words(), eph[2].Words())
	}
	if !strings.Contains(eph[3].Words(), "Only the requester or an approver") {
		t.Fatalf("stranger's cancel answer:\n%s", eph[3].Words())
	}
	if got := e.get(r.ID).State; got != "pending" {
		t.Fatalf("stranger cancelled: %s", got)
	}

	e.command(requester, "cancel "+r.ID)
	e.settle()
	if got := e.get(r.ID).State; got != "cancelled" {
		t.Fatalf("requester's cancel: %s", got)
	}
	if a := e.message(r.MessageTS).ActionIDs(); len(a) != 0 {
		t.Fatalf("cancelled request still has buttons %v", a)
	}
}

// /xvm status of a failed job says where and why it failed and what to check, as the
// failure in the thread did.
func TestStatusOfAFailedJobExplainsIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.approved("migrate web-01 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	fail := event(r, 0, events.EventFailed, 0)
	fail.Message, fail.Fault, fail.Step, fail.Hint = "the copy broke off", "NetworkCopyFault", "relocation task task-9", "check the vMotion network"
	e.handle(fail)
	e.command(requester, "status "+r.Jobs[0].ID)
	e.settle()
	eph := e.ephemeralsTo(requester)
	w := eph[len(eph)-1].Words()
	for _, want := range []string{"the copy broke off", "relocation task task-9 · NetworkCopyFault", "check the vMotion network"} {
		if !strings.Contains(w, want) {
			t.Errorf("status of the failed job does not say %q:\n%s", want, w)
		}
	}
}

func TestEphemeralFallsBackToResponseURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.commandIn(notInChannel, requester, "status xvm-nosuch")
	e.settle()
	eph := e.ephemeralsTo(requester)
	if len(eph) != 1 || !strings.Contains(eph[0].Words(), "no request xvm-nosuch") {
		t.Fatalf("answer through response_url: %+v", eph)
	}
	if e.slack.Calls("response_url") != 1 {
		t.Fatal("response_url not used")
	}
}

// Two /xvm undo of the same move at once ask for one way back: the job is checked and
// reserved in one write, so the second is refused whichever runs first.
func TestTwoUndosAtOnceAskForOneWayBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.approved("migrate web-01 to vc-west")
	e.handle(event(r, 0, events.EventStarted, 0))
	done := event(r, 0, events.EventSucceeded, 100)
	done.Origin = &move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "east-prod", Datastore: "east-ds-01", Folder: "apps/web"}}
	e.handle(done)
	job := r.Jobs[0].ID
	before := len(e.requests())
	e.command(requester, "undo "+job)
	e.command(approver, "undo "+job)
	e.settle()
	var undos []*approvals.Request
	for _, q := range e.requests()[before:] {
		if q.UndoOf == job {
			undos = append(undos, q)
		}
	}
	if len(undos) != 1 {
		t.Fatalf("%d undo requests for %s, want 1", len(undos), job)
	}
	if got := e.get(r.ID).Jobs[0].UndoneBy; got.Request != undos[0].ID {
		t.Fatalf("job's UndoneBy %q, want %s", got, undos[0].ID)
	}
	refused := 0
	for _, u := range []string{requester, approver} {
		for _, m := range e.ephemeralsTo(u) {
			if w := m.Words(); strings.Contains(w, "being asked for right now") || strings.Contains(w, "already asks for the way back") {
				refused++
			}
		}
	}
	if refused != 1 {
		t.Fatalf("%d refusals, want 1", refused)
	}
}
