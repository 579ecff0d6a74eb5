//go:build faults

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
)

// These tests play someone who can write to the bus (or to its KV store) but does not
// hold the bot's approval signing key, against real `xvmbot bot` and `xvmbot worker`
// processes on a real NATS server: whatever they send, nothing moves that was not
// approved through the bot, and each attempt is refused, counted and said.

// jobOf is the job for vm that tap saw on the bus.
func jobOf(t *testing.T, tap *busTap[events.Job], vm string) events.Job {
	t.Helper()
	for _, j := range tap.all() {
		if j.VM == vm {
			return j
		}
	}
	t.Fatalf("no job for %s was seen on the bus", vm)
	return events.Job{}
}

// attacker is a plain client of the bus, with whatever access the server gives it.
type attacker struct {
	t  *testing.T
	js jetstream.JetStream
}

func newAttacker(t *testing.T, url string) *attacker {
	t.Helper()
	nc, js, err := dialJS(url, nats.Name("attacker"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return &attacker{t: t, js: js}
}

// publish queues j under a message id of the attacker's choosing (the stream's duplicate
// window would drop a re-sent job under its own id).
func (a *attacker) publish(ctx context.Context, j events.Job, msgID string) {
	a.t.Helper()
	data, err := json.Marshal(j)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.js.Publish(ctx, events.SubjectJobs, data, jetstream.WithMsgID(msgID)); err != nil {
		a.t.Fatalf("publish forged job: %v", err)
	}
}

// record reads a request record from the KV store, as JSON.
func (a *attacker) record(ctx context.Context, id string) (jetstream.KeyValue, map[string]any) {
	a.t.Helper()
	kv, err := a.js.KeyValue(ctx, events.BucketRequests)
	if err != nil {
		a.t.Fatal(err)
	}
	e, err := kv.Get(ctx, id)
	if err != nil {
		a.t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		a.t.Fatal(err)
	}
	return kv, rec
}

// readRequest reads a request record from the KV store.
func (a *attacker) readRequest(ctx context.Context, id string, read func(rec map[string]any)) {
	a.t.Helper()
	_, rec := a.record(ctx, id)
	read(rec)
}

// editRequest rewrites a request record in the KV store.
func (a *attacker) editRequest(ctx context.Context, id string, edit func(rec map[string]any)) {
	a.t.Helper()
	kv, rec := a.record(ctx, id)
	edit(rec)
	b, _ := json.Marshal(rec)
	if _, err := kv.Put(ctx, id, b); err != nil {
		a.t.Fatal(err)
	}
}

// metric reads one sample of a process's /metrics, e.g.
// `xvm_jobs_refused_total{reason="mismatch"}`; -1 if it is not there.
func (p *proc) metric(sample string) float64 {
	p.f.t.Helper()
	resp, err := http.Get("http://" + p.opsAddr() + "/metrics")
	if err != nil {
		p.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// refusals are the refused events of a VM seen on the bus.
func (f *fleet) refusals(vm string) []events.Event {
	var out []events.Event
	for _, e := range f.events.all() {
		if e.Type == events.EventRefused && e.VM == vm {
			out = append(out, e)
		}
	}
	return out
}

func (f *fleet) threadSays(ts, what string) bool {
	for _, m := range f.ws.Thread(ts) {
		if strings.Contains(f.ws.Plain(m), what) {
			return true
		}
	}
	return false
}

func (f *fleet) notMoved(vms ...string) {
	f.t.Helper()
	for _, vm := range vms {
		if n := f.lab.VC("vc-east").XVMRelocationsOf(vm); n != 0 {
			f.t.Errorf("%s was relocated %d times; nobody approved it", vm, n)
		}
	}
}

// approvedWhileNoWorkerRuns starts the bot, has vm's move asked for and approved, and
// waits until its job is on the queue, where no worker takes it yet.
func (f *fleet) approvedWhileNoWorkerRuns(vm string, botMut func(map[string]any)) slacksim.Message {
	f.t.Helper()
	f.bot(botMut)
	msg := f.request(uReq, "migrate "+vm+moveTo)
	f.click(uBoss, msg, "xvm_approve")
	f.poll("the job queued", 20*time.Second, func() bool {
		n, err := natsQueued(f)
		return err == nil && n == 1
	})
	return msg
}

func TestFleetSecurityForgedJobsAndRecordsMoveNothing(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpt{taskDuration: 300 * time.Millisecond, extraVMs: 1})
	tap := tapBus[events.Job](t, f.nats.url(), events.SubjectJobs)
	f.bot(nil)
	w := f.start("worker", "w1", nil)
	mallory := newAttacker(t, f.nats.url())

	// A genuine move: its job is on the bus for anyone listening to copy.
	msg := f.request(uReq, "migrate web-01"+moveTo)
	f.click(uBoss, msg, "xvm_approve")
	f.awaitFinal(msg.TS, approvals.StateSucceeded, 40*time.Second)
	captured := jobOf(t, tap, "web-01")

	// 1. The captured job, edited to move another VM.
	forged := captured
	forged.VM = "web-02"
	mallory.publish(f.ctx, forged, "forged-other-vm")
	// 2. A hand-made job, unsigned, for a request that exists nowhere.
	mallory.publish(f.ctx, events.Job{V: events.SchemaVersion, ID: "xvm-nowhere-01", RequestID: "xvm-nowhere", Direction: "migrate",
		VM: "web-03", SourceVC: "vc-east", TargetVC: "vc-west",
		Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Networks: []move.Network{{Target: "app-pg"}}}, RequestedBy: uReq, ApprovedBy: []string{uBoss}}, "forged-hand-made")
	// 3. The genuine job again, after its request ended.
	mallory.publish(f.ctx, captured, "replayed")

	f.poll("the forged jobs refused", 30*time.Second, func() bool {
		return len(f.refusals("web-02")) > 0 && len(f.refusals("web-03")) > 0
	})
	if r := f.refusals("web-02")[0]; r.Fault != "mismatch" || !strings.Contains(r.Error, "web-02") {
		t.Errorf("refusal of the edited job: %+v", r)
	}
	if r := f.refusals("web-03")[0]; r.Fault != "unsigned" {
		t.Errorf("refusal of the hand-made job: %+v", r)
	}
	f.poll("the edited job's refusal said in the request's thread", 20*time.Second, func() bool {
		return f.threadSays(msg.TS, "refused a job for `web-02`")
	})
	for sample, want := range map[string]float64{
		`xvm_jobs_refused_total{reason="mismatch"}`: 1,
		`xvm_jobs_refused_total{reason="unsigned"}`: 1,
	} {
		if got := w.metric(sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	if !strings.Contains(w.log(), "job refused: nothing moved") {
		t.Errorf("the worker's log does not say it refused the jobs")
	}

	// 4. A pending request set to approved in the KV store, "by" an approver.
	pending := f.request(uReq, "migrate bulk-0001"+moveTo)
	id := f.requestID(pending)
	// (Once the bot has stored where its message is: an edit that overwrote the record
	// before that would only hide the message, not test the approval.)
	f.poll("the request's message stored", 20*time.Second, func() bool {
		var ts string
		mallory.readRequest(f.ctx, id, func(rec map[string]any) { ts, _ = rec["message_ts"].(string) })
		return ts != ""
	})
	mallory.editRequest(f.ctx, id, func(rec map[string]any) {
		rec["state"] = "approved"
		rec["approvals"] = []any{map[string]any{"user": uBoss, "at": time.Now().Add(-time.Minute).UTC()}}
		rec["decided_at"] = time.Now().Add(-time.Minute).UTC()
	})
	f.poll("the bot to refuse to queue the edited record", 40*time.Second, func() bool {
		return f.threadSays(pending.TS, "no approval xvmbot can verify")
	})

	// Whatever the worker does with the replay, the request's one move stays one; nothing
	// else moved.
	time.Sleep(2 * time.Second) // a last chance for anything queued to run, were it accepted
	f.checkMovedOnce("vc-east", "vc-west", "web-01")
	f.notMoved("web-02", "web-03", "bulk-0001")
	if n := finalReplies(f.harness, msg.TS); n != 1 {
		t.Errorf("%d final replies in web-01's thread, want 1", n)
	}
}

// An approval lets its jobs start only for approvals.run_within: a job that could not
// start in time (here its worker was down) fails when a worker takes it, and moves
// nothing.
func TestFleetSecurityApprovalRunsOutBeforeTheJobStarts(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpt{taskDuration: 300 * time.Millisecond})
	short := func(c map[string]any) { c["approvals"].(map[string]any)["run_within"] = "2s" }
	msg := f.approvedWhileNoWorkerRuns("web-02", short)
	time.Sleep(3 * time.Second) // the approval's time to start runs out
	w := f.start("worker", "w1", short)
	f.awaitFinal(msg.TS, approvals.StateFailed, 40*time.Second)
	if !f.threadSays(msg.TS, "ApprovalExpired") {
		t.Errorf("the thread does not say the approval ran out:\n%s", f.transcript())
	}
	if got := w.metric(`xvm_jobs_refused_total{reason="expired"}`); got != 1 {
		t.Errorf("refused for expiry: %v, want 1", got)
	}
	f.notMoved("web-02")
}

// A VM renamed, and another given its name, between the approval and the start: the job
// is bound to the approved object, so the VM now bearing the name is not moved.
func TestFleetSecurityVMReplacedAfterApprovalIsNotMoved(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpt{taskDuration: 300 * time.Millisecond})
	msg := f.approvedWhileNoWorkerRuns("web-02", nil)
	east := f.lab.VC("vc-east")
	if err := east.RenameVM(f.ctx, "web-02", "web-02-retired"); err != nil {
		t.Fatal(err)
	}
	if err := east.RenameVM(f.ctx, "web-03", "web-02"); err != nil {
		t.Fatal(err)
	}
	w := f.start("worker", "w1", nil)
	f.awaitFinal(msg.TS, approvals.StateFailed, 40*time.Second)
	if !f.threadSays(msg.TS, "renamed or replaced") {
		t.Errorf("the thread does not say the VM is not the approved one:\n%s", f.transcript())
	}
	if got := w.metric(`xvm_jobs_refused_total{reason="vm_identity"}`); got != 1 {
		t.Errorf("refused for the VM's identity: %v, want 1", got)
	}
	if n := east.XVMRelocations(); n != 0 {
		t.Errorf("%d relocations; the VM now called web-02 was not approved", n)
	}
}
