package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Fixed times, so golden files never change by themselves.
var (
	fxT0  = time.Date(2025, 3, 14, 14, 0, 0, 0, time.UTC) // the request is made
	fxNow = fxT0.Add(time.Minute)                         // the page is rendered
)

const fxThumbprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:9F"

func fxAt(d time.Duration) time.Time { return fxT0.Add(d) }

// pendingMigrate is a resolved one-VM migrate request waiting for its one approval.
func fxPendingMigrate() *approvals.Request {
	return &approvals.Request{
		ID: "xvm-k3m9q2", Direction: approvals.Migrate, VMs: []string{"web-01"},
		SourceVC: "vc-east", TargetVC: "vc-west",
		Placement: move.Placement{
			Cluster: "prod-01", Datastore: "ssd-01", DiskFormat: "thin", Folder: "migrated/web apps",
			Networks: []move.Network{{Source: "VM Network", Target: "app-pg"}},
		},
		Review: approvals.Review{
			Source: approvals.VCenterRef{Name: "vc-east", Version: "8.0.2", Thumbprint: fxThumbprint,
				InstanceUUID: "5f3e1a2b-0c4d-4e6f-8a9b-1c2d3e4f5a6b", UIURL: "https://vc-east.example.com/ui/"},
			Target: approvals.VCenterRef{Name: "vc-west", Version: "8.0.3", Thumbprint: fxThumbprint},
			Placement: move.Placement{Cluster: "prod-01", Host: "esx-12.west.local", Pool: "Resources", Datastore: "ssd-01", DiskFormat: "thin",
				Folder:   "/West/vm/migrated/web apps",
				Networks: []move.Network{{Source: "VM Network", Target: "app-pg"}}},
			VMs:      []approvals.ReviewVM{{VM: move.VM{Name: "web-01", Ref: "vm-42"}, PowerState: "poweredOn", CPUs: 2, MemoryMB: 4096, DiskGB: 40, NICs: 1}},
			Findings: []approvals.Finding{{Severity: approvals.SeverityOK, VM: "web-01", Message: "vMotion compatible with the target cluster"}},
		},
		Requester: "U0REQ", Channel: "C0OPS", MessageTS: "1741960800.000100",
		AskedOf: []string{"S0VMADM", "U0APP1"}, Notify: approvals.NotifyMention,
		State: approvals.StatePending, Quorum: 1, CreatedAt: fxT0, ExpiresAt: fxAt(4 * time.Hour),
	}
}

// pendingImport is an import not resolved yet: only what was asked is known.
func fxPendingImport() *approvals.Request {
	return &approvals.Request{
		ID: "xvm-p7d2aa", Direction: approvals.Import, VMs: []string{"db-01", "db_02_old"},
		SourceVC: "vc-east", TargetVC: "vc-west",
		Placement: move.Placement{Host: "esx-03", Pool: "databases", DiskFormat: "eager", Priority: "high",
			Networks: []move.Network{{Target: "db-pg"}}},
		Requester: "U0REQ", State: approvals.StatePending, Quorum: 1, CreatedAt: fxT0, ExpiresAt: fxAt(4 * time.Hour),
	}
}

// pendingWarning waits for its second approval and carries a warning.
func fxPendingWarning() *approvals.Request {
	r := fxPendingMigrate()
	r.Quorum = 2
	r.Approvals = []approvals.Decision{{User: "U0APP1", At: fxAt(30 * time.Second)}}
	r.Review.Findings = append(r.Review.Findings, approvals.Finding{
		Severity: approvals.SeverityWarning, VM: "web-01", Message: "has 2 snapshots",
		Hint: "consolidate or delete snapshots before moving to shorten the move",
	})
	return r
}

// approved is pendingMigrate with three VMs, approved by two people.
func fxApproved() *approvals.Request {
	r := fxPendingMigrate()
	r.VMs = []string{"web-01", "web-02", "web-03"}
	r.Review.VMs = []approvals.ReviewVM{
		{VM: move.VM{Name: "web-01", Ref: "vm-42"}, PowerState: "poweredOn", CPUs: 2, MemoryMB: 4096, DiskGB: 40},
		{VM: move.VM{Name: "web-02", Ref: "vm-43"}, PowerState: "poweredOn", CPUs: 2, MemoryMB: 4096, DiskGB: 40},
		{VM: move.VM{Name: "web-03", Ref: "vm-44"}, PowerState: "poweredOff", CPUs: 4, MemoryMB: 512, DiskGB: 120.5},
	}
	r.Quorum = 2
	r.Approvals = []approvals.Decision{{User: "U0APP1", At: fxAt(2 * time.Minute)}, {User: "U0APP2", At: fxAt(3 * time.Minute)}}
	r.DecidedAt = fxAt(3 * time.Minute)
	r.State = approvals.StateRunning
	r.Jobs = []approvals.Job{
		{ID: "xvm-k3m9q2-01", VM: "web-01", State: approvals.StateSucceeded, Progress: 100, StartedAt: fxAt(4 * time.Minute), EndedAt: fxAt(9*time.Minute + 2*time.Second)},
		{ID: "xvm-k3m9q2-02", VM: "web-02", State: approvals.StateRunning, Progress: 40, StartedAt: fxAt(4 * time.Minute), Task: "task-1207"},
		{ID: "xvm-k3m9q2-03", VM: "web-03", State: approvals.StateQueued},
	}
	return r
}

func fxSucceeded() *approvals.Request {
	r := fxApproved()
	for i := range r.Jobs {
		r.Jobs[i].State, r.Jobs[i].Progress = approvals.StateSucceeded, 100
		r.Jobs[i].StartedAt, r.Jobs[i].EndedAt = fxAt(time.Duration(4+i)*time.Minute), fxAt(time.Duration(9+i)*time.Minute)
	}
	r.State, r.EndedAt = approvals.StateSucceeded, fxAt(15*time.Minute+30*time.Second)
	return r
}

func fxFailed() *approvals.Request {
	r := fxSucceeded()
	r.Jobs[1].State, r.Jobs[1].Progress = approvals.StateFailed, 63
	r.Jobs[1].Error = "the target datastore ssd-01 ran out of space"
	r.State = approvals.StateFailed
	return r
}

// withSubmittedJobs gives r the jobs approvals.Service.Submit gives every request: one per
// VM, never queued. A rejected or expired request keeps them.
func withSubmittedJobs(r *approvals.Request) *approvals.Request {
	r.Jobs = nil
	for i, vm := range r.VMs {
		r.Jobs = append(r.Jobs, approvals.Job{ID: approvals.JobID(r.ID, i), VM: vm})
	}
	return r
}

// connectionLost is fxFailed where vCenter stopped answering: plain words in Error, the
// transport's own in Detail.
func fxConnectionLost() *approvals.Request {
	r := fxFailed()
	j := &r.Jobs[1]
	j.Error = "vCenter vc-east stopped answering during the move"
	j.Fault = "relocation task task-12 · Unreachable"
	j.Hint = "check the network path and that the vCenter is up on TCP 443"
	j.Detail = `vCenter vc-east stopped answering during the move: Post "https://vc-east.example.com/sdk": EOF`
	return r
}

func fxRejected() *approvals.Request {
	r := withSubmittedJobs(fxPendingMigrate())
	r.State, r.DecidedAt, r.EndedAt = approvals.StateRejected, fxAt(20*time.Minute), fxAt(20*time.Minute)
	r.Rejection = &approvals.Decision{User: "U0APP1", At: fxAt(20 * time.Minute), Reason: "change freeze until Monday <see #ops>"}
	return r
}

func fxExpired() *approvals.Request {
	r := withSubmittedJobs(fxPendingWarning())
	r.State, r.EndedAt = approvals.StateExpired, r.ExpiresAt
	return r
}

func fxCancelled() *approvals.Request {
	r := fxApproved()
	r.Jobs[1].State, r.Jobs[1].EndedAt = approvals.StateCancelled, fxAt(10*time.Minute)
	r.Jobs[2].State, r.Jobs[2].EndedAt = approvals.StateCancelled, fxAt(10*time.Minute)
	r.State, r.EndedAt = approvals.StateCancelled, fxAt(10*time.Minute)
	r.Cancellation = &approvals.Decision{User: "U0REQ", At: fxAt(10 * time.Minute), Reason: "wrong cluster"}
	return r
}

func fxBlocked() *approvals.Request {
	r := fxPendingMigrate()
	r.Review.Findings = append(r.Review.Findings, approvals.Finding{
		Severity: approvals.SeverityBlocker, VM: "web-01", Message: "has a CD-ROM backed by a host device",
		Hint: "disconnect the device and ask again",
	})
	return r
}

// large is a 300-VM request with a finding per VM and a few warnings.
func fxLarge() *approvals.Request {
	r := fxPendingMigrate()
	r.ID = "xvm-big300"
	r.VMs, r.Review.VMs, r.Review.Findings = nil, nil, nil
	for i := range 300 {
		name := fmt.Sprintf("app-server-with-a-rather-long-name-%03d", i+1)
		r.VMs = append(r.VMs, name)
		r.Review.VMs = append(r.Review.VMs, approvals.ReviewVM{VM: move.VM{Name: name}, PowerState: "poweredOn", CPUs: 4, MemoryMB: 16384, DiskGB: 250})
		r.Review.Findings = append(r.Review.Findings, approvals.Finding{Severity: approvals.SeverityOK, VM: name, Message: "vMotion compatible"})
		if i%10 == 0 {
			r.Review.Findings = append(r.Review.Findings, approvals.Finding{Severity: approvals.SeverityWarning, VM: name,
				Message: "has a snapshot chain of depth 3", Hint: "consolidate snapshots before moving to shorten the move"})
		}
	}
	for i := range 40 {
		r.Review.Networks = append(r.Review.Networks, move.Network{Source: fmt.Sprintf("vlan-%03d", i), Target: fmt.Sprintf("pg-vlan-%03d", i)})
	}
	return r
}

func fxLargeRunning() *approvals.Request {
	r := fxLarge()
	r.State, r.Approvals, r.DecidedAt = approvals.StateRunning, []approvals.Decision{{User: "U0APP1", At: fxAt(2 * time.Minute)}}, fxAt(2*time.Minute)
	for i, vm := range r.VMs {
		j := approvals.Job{ID: approvals.JobID(r.ID, i), VM: vm, State: approvals.StateFailed, Error: "the target host esx-12.west.local lost its connection during the move", StartedAt: fxAt(3 * time.Minute), EndedAt: fxAt(20 * time.Minute)}
		r.Jobs = append(r.Jobs, j)
	}
	r.State, r.EndedAt = approvals.StateFailed, fxAt(45*time.Minute)
	return r
}

type goldenMessage struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	withJob := func(r *approvals.Request, i int) (*approvals.Request, *approvals.Job) { return r, &r.Jobs[i] }
	cases := []struct {
		name   string
		render func() (string, []slack.Block)
	}{
		{"request_pending_migrate", func() (string, []slack.Block) { return RenderRequest(fxPendingMigrate(), fxNow) }},
		{"request_pending_import", func() (string, []slack.Block) { return RenderRequest(fxPendingImport(), fxNow) }},
		{"request_pending_warning_quorum", func() (string, []slack.Block) { return RenderRequest(fxPendingWarning(), fxNow) }},
		{"request_pending_blocked", func() (string, []slack.Block) { return RenderRequest(fxBlocked(), fxNow) }},
		{"request_running", func() (string, []slack.Block) { return RenderRequest(fxApproved(), fxNow) }},
		{"request_succeeded", func() (string, []slack.Block) { return RenderRequest(fxSucceeded(), fxNow) }},
		{"request_failed", func() (string, []slack.Block) { return RenderRequest(fxFailed(), fxNow) }},
		{"request_rejected", func() (string, []slack.Block) { return RenderRequest(fxRejected(), fxNow) }},
		{"request_expired", func() (string, []slack.Block) { return RenderRequest(fxExpired(), fxNow) }},
		{"request_cancelled", func() (string, []slack.Block) { return RenderRequest(fxCancelled(), fxNow) }},
		{"request_300_vms", func() (string, []slack.Block) { return RenderRequest(fxLarge(), fxNow) }},
		{"request_pending_notify_none", func() (string, []slack.Block) {
			r := fxPendingWarning()
			r.Notify = approvals.NotifyNone
			return RenderRequest(r, fxNow)
		}},
		{"reminder", func() (string, []slack.Block) { return RenderReminder(fxPendingWarning()) }},
		// With notify dm the channel message and each approver's DM are this message, and
		// the reminder posted in both: they say how approvers were asked, mentioning nobody.
		{"request_pending_notify_dm", func() (string, []slack.Block) {
			r := fxPendingWarning()
			r.Notify = approvals.NotifyDM
			return RenderRequest(r, fxNow)
		}},
		{"reminder_notify_dm", func() (string, []slack.Block) {
			r := fxPendingWarning()
			r.Notify = approvals.NotifyDM
			return RenderReminder(r)
		}},
		{"job_progress_running", func() (string, []slack.Block) { return RenderJobProgress(withJob(fxApproved(), 1)) }},
		{"job_progress_succeeded", func() (string, []slack.Block) { return RenderJobProgress(withJob(fxApproved(), 0)) }},
		{"job_progress_queued", func() (string, []slack.Block) { return RenderJobProgress(withJob(fxApproved(), 2)) }},
		{"job_failure", func() (string, []slack.Block) {
			r, j := withJob(fxFailed(), 1)
			return RenderJobFailure(r, j, "relocate: InsufficientDisk", "check that the datastores are accessible and have free space")
		}},
		{"table_running", func() (string, []slack.Block) { return RenderTable(fxWave(), fxAt(10*time.Minute)) }},
		{"table_ended", func() (string, []slack.Block) { return RenderTable(fxWaveEnded(), fxAt(30*time.Minute)) }},
		{"job_progress_failed", func() (string, []slack.Block) { return RenderJobProgress(withJob(fxConnectionLost(), 1)) }},
		{"job_failure_connection_lost", func() (string, []slack.Block) {
			r, j := withJob(fxConnectionLost(), 1)
			return RenderJobFailure(r, j, j.Fault, j.Hint)
		}},
		{"job_status_connection_lost", func() (string, []slack.Block) { return RenderJobFault(withJob(fxConnectionLost(), 1)) }},
		{"final_succeeded", func() (string, []slack.Block) { return RenderFinal(fxSucceeded()) }},
		{"final_failed", func() (string, []slack.Block) { return RenderFinal(fxFailed()) }},
		{"final_rejected", func() (string, []slack.Block) { return RenderFinal(fxRejected()) }},
		{"final_expired", func() (string, []slack.Block) { return RenderFinal(fxExpired()) }},
		{"final_cancelled", func() (string, []slack.Block) { return RenderFinal(fxCancelled()) }},
		{"final_300_failed", func() (string, []slack.Block) { return RenderFinal(fxLargeRunning()) }},
		{"error_usage", func() (string, []slack.Block) {
			_, err := ParseCommand("migrate web-01 to vc-west dsk=thin")
			ue := err.(*UsageError)
			return RenderError(ue.Problem, ue.Usage)
		}},
		{"help_all", func() (string, []slack.Block) { return RenderHelp("") }},
		{"help_migrate", func() (string, []slack.Block) { return RenderHelp("migrate") }},
		{"error_plain", func() (string, []slack.Block) { return RenderError("request xvm-zzzzzz not found", "") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text, blocks := tc.render()
			if text == "" {
				t.Error("empty fallback text")
			}
			checkSlackLimits(t, blocks)
			got, err := json.MarshalIndent(goldenMessage{Text: text, Blocks: blocks}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", tc.name+".json")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./bot -run Render -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendering (run go test ./bot -run Render -update and review the diff):\n%s", path, got)
			}
			// What is goldenMessage must be what Slack accepts back.
			var back slack.Blocks
			if err := json.Unmarshal(mustMarshal(t, blocks), &back); err != nil || len(back.BlockSet) != len(blocks) {
				t.Errorf("blocks do not round-trip through slack.Blocks: %v", err)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkSlackLimits asserts Slack's Block Kit limits (docs/slack-facts.md S1, S2) and returns the characters used.
func checkSlackLimits(t *testing.T, blocks []slack.Block) int {
	t.Helper()
	if len(blocks) > 50 {
		t.Errorf("%d blocks, Slack allows 50", len(blocks))
	}
	total := 0
	count := func(what string, o *slack.TextBlockObject, limit int) {
		if o == nil {
			return
		}
		n := utf8.RuneCountInString(o.Text)
		total += n
		if n > limit {
			t.Errorf("%s has %d chars, Slack allows %d", what, n, limit)
		}
		if n == 0 {
			t.Errorf("%s is empty", what)
		}
	}
	for i, b := range blocks {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			count(fmt.Sprintf("block %d header", i), b.Text, 150)
		case *slack.SectionBlock:
			count(fmt.Sprintf("block %d section text", i), b.Text, 3000)
			if len(b.Fields) > 10 {
				t.Errorf("block %d has %d fields, Slack allows 10", i, len(b.Fields))
			}
			for k, f := range b.Fields {
				count(fmt.Sprintf("block %d field %d", i, k), f, 2000)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if o, ok := e.(*slack.TextBlockObject); ok {
					count(fmt.Sprintf("block %d context", i), o, 3000)
				}
			}
		case *slack.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				btn := e.(*slack.ButtonBlockElement)
				count(fmt.Sprintf("block %d button", i), btn.Text, 75)
				if len(btn.Value) > 2000 || len(btn.ActionID) > 255 {
					t.Errorf("button %s value/action_id too long", btn.ActionID)
				}
			}
		}
	}
	if total >= 12000 {
		t.Errorf("%d chars across blocks; Slack rejects messages near 13k (msg_blocks_too_long)", total)
	}
	return total
}

// buttons returns the action IDs of the buttons, each checked to carry the request ID.
func buttonActions(t *testing.T, r *approvals.Request, blocks []slack.Block) []string {
	t.Helper()
	var ids []string
	for _, b := range blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				btn := e.(*slack.ButtonBlockElement)
				if btn.Value != r.ID {
					t.Errorf("button %s carries %q, want the request ID %q", btn.ActionID, btn.Value, r.ID)
				}
				ids = append(ids, btn.ActionID)
			}
		}
	}
	return ids
}

func TestRenderRequestButtons(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		r    *approvals.Request
		want []string
	}{
		{"pending offers approve and reject", fxPendingMigrate(), []string{ActionApprove, ActionReject}},
		{"partly approved still offers both", fxPendingWarning(), []string{ActionApprove, ActionReject}},
		{"blocked cannot be approved", fxBlocked(), []string{ActionReject}},
		{"running can be cancelled", fxApproved(), []string{ActionCancel}},
		{"succeeded has no buttons", fxSucceeded(), nil},
		{"failed offers a retry of its failed VMs", fxFailed(), []string{ActionRetry}},
		{"failed and retried has no buttons", func() *approvals.Request {
			r := fxFailed()
			r.RetriedBy = approvals.UndoRef{Request: "xvm-again1"}
			return r
		}(), nil},
		{"failed VMs that moved elsewhere are not retried", func() *approvals.Request {
			r := fxFailed()
			r.Jobs[1].Origin = &move.Origin{VCenter: "vc-east"}
			return r
		}(), nil},
		{"rejected has no buttons", fxRejected(), nil},
		{"expired has no buttons", fxExpired(), nil},
		{"cancelled has no buttons", fxCancelled(), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, blocks := RenderRequest(tc.r, fxNow)
			if got := buttonActions(t, tc.r, blocks); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("buttons %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRenderRequestReads checks what a person reads on the request message.
func TestRenderRequestReads(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		r    *approvals.Request
		want []string
	}{
		{"review page", fxPendingMigrate(), []string{
			"Cross vCenter migrate request xvm-k3m9q2", "<@U0REQ>", "vc-east", "vCenter 8.0.2", "AB:CD:EF…EF:9F",
			"prod-01 (cluster)", "esx-12.west.local (host)", "Resources", "ssd-01 · Thin provision", "/West/vm/migrated/web apps",
			"VM Network → app-pg", "<" + fxWeb01URL + "|web-01> · powered on · 2 vCPU · 4 GB memory · 40 GB disk", "✅",
			"0 of 1 approval", "Approvers: <!subteam^S0VMADM>, <@U0APP1> · 1 needed", "Expires <!date^1741975200^{date_short_pretty} at {time}|2025-03-14 18:00 UTC>"}},
		{"import before resolution", fxPendingImport(), []string{
			"Cross vCenter import request xvm-p7d2aa", "esx-03 (host)", "databases", "Thick provision eager zeroed",
			"all NICs → db-pg", "`db_02_old`", "high priority"}},
		{"quorum and warning", fxPendingWarning(), []string{"1 of 2 approvals: <@U0APP1>", "⚠️ `web-01`: has 2 snapshots — _consolidate"}},
		{"running", fxApproved(), []string{"✅ *Approved* by <@U0APP1>, <@U0APP2>, <!date^1741960980^{date_short_pretty} at {time}|2025-03-14 14:03 UTC>",
			"1 queued · 1 running · 1 succeeded · 0 failed", "▓▓▓▓░░░░░░ 46%"}},
		{"succeeded", fxSucceeded(), []string{"*Succeeded*", "0 queued · 0 running · 3 succeeded · 0 failed", "▓▓▓▓▓▓▓▓▓▓ 100%", "Took 12m 30s"}},
		{"rejected", fxRejected(), []string{"❌ *Rejected* by <@U0APP1>, <!date^1741962000^{date_short_pretty} at {time}|2025-03-14 14:20 UTC>: change freeze until Monday &lt;see #ops&gt;"}},
		{"expired", fxExpired(), []string{"⌛ *Expired* <!date^1741975200^{date_short_pretty} at {time}|2025-03-14 18:00 UTC> with 1 of 2 approvals"}},
		{"cancelled", fxCancelled(), []string{"🚫 *Cancelled* by <@U0REQ>, <!date^1741961400^{date_short_pretty} at {time}|2025-03-14 14:10 UTC>: wrong cluster", "2 cancelled"}},
		{"blocked", fxBlocked(), []string{"⛔ *Blocked by pre-flight checks*", "⛔ `web-01`: has a CD-ROM backed by a host device — _disconnect the device and ask again_"}},
		{"300 vms", fxLarge(), []string{"*Virtual machines (300)*", "…and 280 more", "Total: 1200 vCPU · 4.7 TB memory · 73.2 TB disk",
			"✅ 300 checks passed", "…and 20 more findings"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, blocks := RenderRequest(tc.r, fxNow)
			all := string(mustMarshal(t, blocks))
			for _, w := range tc.want {
				if !strings.Contains(all, strings.Trim(string(mustMarshal(t, w)), `"`)) {
					t.Errorf("the message does not read %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestRenderRequest300VMsFitsSlack(t *testing.T) {
	t.Parallel()
	for _, r := range []*approvals.Request{fxLarge(), fxLargeRunning()} {
		_, blocks := RenderRequest(r, fxNow)
		if n := checkSlackLimits(t, blocks); n >= 12000 {
			t.Errorf("%d chars", n)
		}
		_, blocks = RenderFinal(r)
		checkSlackLimits(t, blocks)
	}
}

func TestRenderFinal(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		r    *approvals.Request
		want []string
	}{
		{"succeeded", fxSucceeded(), []string{"<@U0REQ>", "all 3 VMs moved to vc-west", "✅ `web-01` moved in 5m 0s", "12m 30s from approval to end"}},
		{"failed lists failures first", fxFailed(), []string{"<@U0REQ>", "2 of 3 VMs moved to vc-west, 1 failed",
			"❌ *1 VM failed* — why, and what to check, in its reply above: `web-02`\n✅ `web-01`"}},
		{"rejected", fxRejected(), []string{"was rejected by <@U0APP1> (“change freeze until Monday &lt;see #ops&gt;”)"}},
		{"cancelled", fxCancelled(), []string{"was cancelled by <@U0REQ>", "1 of 3 VMs moved", "🚫 `web-02` cancelled"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text, blocks := RenderFinal(tc.r)
			if !strings.Contains(text, "<@U0REQ>") {
				t.Errorf("fallback text %q does not mention the requester", text)
			}
			all := string(mustMarshal(t, blocks))
			for _, w := range tc.want {
				if !strings.Contains(all, strings.Trim(string(mustMarshal(t, w)), `"`)) {
					t.Errorf("the reply does not read %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestRenderJobProgress(t *testing.T) {
	t.Parallel()
	r := fxApproved()
	text, blocks := RenderJobProgress(r, &r.Jobs[1])
	all := string(mustMarshal(t, blocks))
	for _, w := range []string{"|web-02> · vc-east → vc-west", "🔄 *Running*", "▓▓▓▓░░░░░░ 40%", "Job xvm-k3m9q2-02", "started <!date^1741961040^{date_short_pretty} at {time}|2025-03-14 14:04 UTC>"} {
		if !strings.Contains(all, strings.Trim(string(mustMarshal(t, w)), `"`)) {
			t.Errorf("progress does not read %q:\n%s", w, all)
		}
	}
	if text != "web-02: Running 40% (vc-east → vc-west)" {
		t.Errorf("text = %q", text)
	}
}

func TestRenderJobFailure(t *testing.T) {
	t.Parallel()
	r := fxFailed()
	text, blocks := RenderJobFailure(r, &r.Jobs[1], "relocate: InsufficientDisk", "free space on ssd-01")
	all := string(mustMarshal(t, blocks))
	for _, w := range []string{"|web-02\\u003e failed to move", "*What happened*\\nthe target datastore ssd-01 ran out of space",
		"`relocate: InsufficientDisk`", "*What to check*\\nfree space on ssd-01", "/xvm status xvm-k3m9q2-02"} {
		if !strings.Contains(all, w) {
			t.Errorf("failure does not read %q:\n%s", w, all)
		}
	}
	if !strings.Contains(text, "web-02") || !strings.Contains(text, "ran out of space") {
		t.Errorf("text = %q", text)
	}
}

func TestRenderError(t *testing.T) {
	t.Parallel()
	text, blocks := RenderError(`unknown option "a<b"`, "/xvm migrate <vm> to <vcenter>")
	if len(blocks) != 2 {
		t.Fatalf("%d blocks, want problem and usage", len(blocks))
	}
	all := string(mustMarshal(t, blocks))
	for _, w := range []string{`⚠️ unknown option \"a\u0026lt;b\"`, "```/xvm migrate \\u0026lt;vm\\u0026gt; to \\u0026lt;vcenter\\u0026gt;```"} {
		if !strings.Contains(all, w) {
			t.Errorf("error does not read %q:\n%s", w, all)
		}
	}
	if text != `unknown option "a&lt;b"` {
		t.Errorf("text = %q", text)
	}
	if _, blocks := RenderError("oops", ""); len(blocks) != 1 {
		t.Errorf("no usage: %d blocks, want 1", len(blocks))
	}
}

func TestProgressBar(t *testing.T) {
	t.Parallel()
	for pct, want := range map[int]string{
		-5: "░░░░░░░░░░ 0%", 0: "░░░░░░░░░░ 0%", 9: "░░░░░░░░░░ 9%", 10: "▓░░░░░░░░░ 10%",
		50: "▓▓▓▓▓░░░░░ 50%", 99: "▓▓▓▓▓▓▓▓▓░ 99%", 100: "▓▓▓▓▓▓▓▓▓▓ 100%", 250: "▓▓▓▓▓▓▓▓▓▓ 100%",
	} {
		if got := ProgressBar(pct); got != want {
			t.Errorf("ProgressBar(%d) = %q, want %q", pct, got, want)
		}
	}
}

func TestDiskFormatName(t *testing.T) {
	t.Parallel()
	for in, want := range map[move.DiskFormat]string{
		"": "Same format as source", "same": "Same format as source", "thin": "Thin provision",
		"thick": "Thick provision lazy zeroed", "EAGER": "Thick provision eager zeroed",
	} {
		if got := DiskFormatName(in); got != want {
			t.Errorf("DiskFormatName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A NIC kept on a portgroup of the same name because no mapping was given is marked in
// the review's Networks, however many VMs (the OK finding saying so is folded away in a
// big request); a mapping someone typed is not.
func TestSameNamePortgroupIsMarkedInTheReview(t *testing.T) {
	t.Parallel()
	r := &approvals.Request{ID: "xvm-n1", Direction: approvals.Migrate, SourceVC: "vc-east", TargetVC: "vc-west", State: approvals.StatePending,
		Requester: "U1", Review: approvals.Review{Placement: move.Placement{Networks: []move.Network{
			{Source: "VM Network", Target: "VM Network"}, {Source: "east-app-pg", Target: "app-pg"}}}},
		Placement: move.Placement{Networks: []move.Network{{Source: "east-app-pg", Target: "app-pg"}}}}
	_, blocks := RenderRequest(r, time.Now())
	all := string(mustMarshal(t, blocks))
	if !strings.Contains(all, "VM Network → VM Network _(same name, no mapping given)_") || strings.Contains(all, "app-pg _(same name") {
		t.Fatalf("networks field:\n%s", all)
	}
	r.Placement.Networks = append(r.Placement.Networks, move.Network{Source: "VM Network", Target: "VM Network"})
	if _, blocks := RenderRequest(r, time.Now()); strings.Contains(string(mustMarshal(t, blocks)), "same name") {
		t.Fatal("a typed mapping is marked as if nobody chose it")
	}
}

// A request into a cluster says which host its moves start on and which others take
// them when that one is busy: jobs of a wave spread over them.
func TestReviewNamesTheHostsAWaveSpreadsOver(t *testing.T) {
	t.Parallel()
	r := &approvals.Request{ID: "xvm-h1", Direction: approvals.Migrate, SourceVC: "vc-east", TargetVC: "vc-west", State: approvals.StatePending,
		Requester: "U1", Review: approvals.Review{Placement: move.Placement{Cluster: "west-prod", Host: "esx-w3"}, OtherHosts: []string{"esx-w1", "esx-w2"}}}
	_, blocks := RenderRequest(r, time.Now())
	if all := string(mustMarshal(t, blocks)); !strings.Contains(all, "west-prod (cluster) / esx-w3 (host; when it is busy, also esx-w1, esx-w2)") {
		t.Fatalf("compute resource field:\n%s", all)
	}
}
