package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/events"
)

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// /healthz says the process lives; /readyz says what is degraded: a vCenter that stops
// answering is reported but does not make the process unready (the bot keeps answering).
func TestHealthAndReadiness(t *testing.T) {
	h := newHarness(t)
	base := "http://" + h.sys.Addr()
	if code := getJSON(t, base+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	var ready struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	if code := getJSON(t, base+"/readyz", &ready); code != http.StatusOK || !ready.Ready {
		t.Fatalf("/readyz = %d %+v", code, ready)
	}
	for _, c := range []string{"nats", "vcenter:vc-east", "vcenter:vc-west", "slack"} {
		if ready.Checks[c] != "ok" {
			t.Errorf("check %s = %q, want ok", c, ready.Checks[c])
		}
	}
	h.lab.VC("vc-west").SetDown(true)
	defer h.lab.VC("vc-west").SetDown(false)
	if code := getJSON(t, base+"/readyz", &ready); code != http.StatusOK || !ready.Ready {
		t.Fatalf("/readyz with vc-west down = %d %+v; a vCenter outage must not take the bot out of rotation", code, ready)
	}
	if !strings.HasPrefix(ready.Checks["vcenter:vc-west"], "degraded") {
		t.Errorf("vc-west outage not reported: %+v", ready.Checks)
	}
}

// lockedBuffer collects logs written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A whole flow — a move, a failure with a wrong password, debug logs on — with known
// secrets: none of them may appear in logs, Slack messages, metrics, or NATS messages.
func TestSecretsNeverLeak(t *testing.T) {
	h := newHarnessRole(t, roleBot, func(c *Config) { c.NATS.Listen = "127.0.0.1:-1" })
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wcfg := h.config(h.asWorker)
	wsys, err := newSystem(h.ctx, wcfg, roleWorker, logger)
	if err != nil {
		t.Fatal(err)
	}
	h.runSystem(wsys)

	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, "succeeded")

	// Collect every place a secret could surface.
	var everything strings.Builder
	everything.WriteString(logs.String())
	for _, m := range h.ws.Messages() {
		everything.WriteString(m.Text)
		everything.Write(m.Blocks)
	}
	for _, sys := range []*system{h.sys, wsys} {
		resp, err := http.Get("http://" + sys.Addr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		everything.Write(b)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	stored := dumpStream(ctx, t, h, events.StreamEvents)
	if !strings.Contains(stored, "succeeded") {
		t.Fatalf("the events stream dump holds no succeeded event; the check proves nothing")
	}
	everything.WriteString(stored)
	everything.WriteString(dumpStream(ctx, t, h, events.StreamJobs))
	recs, err := h.sys.svc.Store().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		b, _ := json.Marshal(r)
		everything.Write(b)
	}

	secrets := map[string]string{"slack bot token": "xoxb-test-token", "slack signing secret": h.signing}
	for _, vc := range h.lab.VCs() {
		secrets[vc.Name+" password"] = vc.Password
	}
	for what, s := range secrets {
		if strings.Contains(everything.String(), s) {
			t.Errorf("the %s appears in logs, Slack, metrics or NATS", what)
		}
	}
	if !strings.Contains(logs.String(), "vm moved") {
		t.Fatalf("the worker's logs were not captured; the check above proves nothing")
	}
}

// dumpStream returns every message still stored in a stream, read by sequence number as
// an operator with the nats CLI would.
func dumpStream(ctx context.Context, t *testing.T, h *harness, stream string) string {
	t.Helper()
	nc, err := h.sys.embedded.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // removed (acknowledged work-queue message)
		}
		out.Write(m.Data)
	}
	return out.String()
}

// An approved request cancelled while its jobs wait in the queue: no worker ever starts
// them, and the thread says they were cancelled.
func TestCancelledQueuedJobsNeverRun(t *testing.T) {
	h := newHarnessRole(t, roleBot, func(c *Config) { c.NATS.Listen = "127.0.0.1:-1" })
	msg := h.request(uReq, "migrate web-01,web-02 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	h.click(uBoss, msg, "xvm_approve")
	h.await("the approval", func() bool {
		return strings.Contains(h.ws.Plain(h.parent(msg.TS)), "*Queued*")
	})
	n := len(h.ws.Ephemerals(uReq))
	if _, err := h.ws.Command(h.ctx, uReq, chan1, "cancel "+h.requestID(msg)); err != nil {
		t.Fatal(err)
	}
	h.awaitEphemeral(uReq, n, "cancelled")

	// Only now does a worker come up.
	wcfg := h.config(h.asWorker)
	wsys, err := newSystem(h.ctx, wcfg, roleWorker, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h.runSystem(wsys)
	h.await("both jobs to report cancelled", func() bool {
		r, err := h.sys.svc.Get(h.ctx, h.requestID(msg))
		return err == nil && r.Counts()["cancelled"] == 2
	})
	if n := h.lab.VC("vc-east").XVMRelocations(); n != 0 {
		t.Fatalf("%d cancelled moves ran", n)
	}
	for _, vm := range []string{"web-01", "web-02"} {
		if _, err := h.lab.VC("vc-east").FindVM(h.ctx, vm); err != nil {
			t.Errorf("%s left vc-east: %v", vm, err)
		}
	}
	if q := h.jobsPublished(); q != 0 {
		t.Errorf("%d jobs still queued", q)
	}
}

// A target vCenter with a closed change window: the review says when moves will start;
// once approved, the job waits in the queue and its thread message says what for.
func TestChangeWindowIsShownAndHeld(t *testing.T) {
	opens := time.Now().UTC().Add(3 * time.Hour)
	spec := fmt.Sprintf("daily %s-%s", opens.Format("15:04"), opens.Add(time.Hour).Format("15:04"))
	h := newHarness(t, func(c *Config) {
		for i := range c.VCenters {
			if c.VCenters[i].Name == "vc-west" {
				c.VCenters[i].Windows = []string{spec}
			}
		}
	})
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	if review := h.ws.Plain(msg); !strings.Contains(review, spec) || !strings.Contains(review, "wait until") {
		t.Fatalf("the review does not say when the move will start:\n%s", review)
	}
	h.click(uBoss, msg, "xvm_approve")
	h.await("the job to say it waits for the window", func() bool {
		for _, m := range h.ws.Thread(msg.TS) {
			if strings.Contains(h.ws.Plain(m), "change window") {
				return true
			}
		}
		return false
	})
	if n := h.lab.VC("vc-east").XVMRelocations(); n != 0 {
		t.Fatalf("%d moves ran outside the window", n)
	}
}

// /xvm undo asks for the way back as a new request that needs approval, and once approved
// the VM returns to exactly where it was.
func TestUndoBringsTheVMBack(t *testing.T) {
	h := newHarness(t)
	east := h.lab.VC("vc-east")
	before, err := east.FindVM(h.ctx, "web-01")
	if err != nil {
		t.Fatal(err)
	}
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold folder=migrated/web network=app-pg disk=thin")
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, "succeeded")

	job := h.requestID(msg) + "-01"
	back := h.request(uReq, "undo "+job)
	review := h.ws.Plain(back)
	for _, want := range []string{"vc-west", "vc-east", "east-prod", "apps", "east-ds-01", "apps/web", "east-app-pg", "the way back of job " + job} {
		if !strings.Contains(review, want) {
			t.Errorf("the undo request does not show %q:\n%s", want, review)
		}
	}
	// A second undo of the same move, while the first is pending, is refused: one way back.
	n := len(h.ws.Ephemerals(uBoss))
	h.command(uBoss, "undo "+job)
	h.awaitEphemeral(uBoss, n, h.requestID(back)+" already asks for the way back of web-01")
	h.click(uBoss, back, "xvm_approve")
	h.awaitEnd(back.TS, "succeeded")
	got, err := east.FindVM(h.ctx, "web-01")
	if err != nil {
		t.Fatalf("web-01 not back in vc-east: %v", err)
	}
	if got.Folder != before.Folder || got.Pool != before.Pool || got.Cluster != before.Cluster ||
		got.Datastores[0] != before.Datastores[0] || got.NICs[0].Network != before.NICs[0].Network ||
		got.NICs[0].MAC != before.NICs[0].MAC || got.Disks[0].Thin != before.Disks[0].Thin {
		t.Errorf("after undo %+v\nbefore     %+v", got, before)
	}
}

// The wizard's "Configure per disk", typed: db-01's Hard disk 2 goes to its own datastore
// in its own format. The review says so, the move does it, and undo brings each disk back
// where and as it was (db-01's disks differ: the first thick, the second thin).
func TestPerDiskPlacementAndItsUndo(t *testing.T) {
	h := newHarness(t)
	east, west := h.lab.VC("vc-east"), h.lab.VC("vc-west")
	before, err := east.FindVM(h.ctx, "db-01")
	if err != nil {
		t.Fatal(err)
	}
	msg := h.request(uReq, "migrate db-01 to vc-west cluster=west-prod datastore=ds-gold folder=migrated/db "+
		"network=east-app-pg:db-pg,\"VM Network\":\"VM Network\" disk=eager disk2=ds-silver:thin")
	if review := h.ws.Plain(msg); !strings.Contains(review, "Hard disk 2: ds-silver") {
		t.Fatalf("the review does not show Hard disk 2's placement:\n%s", review)
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, "succeeded")
	moved, err := west.FindVM(h.ctx, "db-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(moved.Disks) != 2 ||
		moved.Disks[0] != (xvmsim.DiskInfo{Datastore: "ds-gold", EagerScrub: true, CapacityKB: before.Disks[0].CapacityKB}) ||
		moved.Disks[1] != (xvmsim.DiskInfo{Datastore: "ds-silver", Thin: true, CapacityKB: before.Disks[1].CapacityKB}) {
		t.Fatalf("db-01's disks in vc-west: %+v", moved.Disks)
	}

	back := h.request(uReq, "undo "+h.requestID(msg)+"-01")
	h.click(uBoss, back, "xvm_approve")
	h.awaitEnd(back.TS, "succeeded")
	got, err := east.FindVM(h.ctx, "db-01")
	if err != nil {
		t.Fatalf("db-01 not back in vc-east: %v", err)
	}
	for i := range before.Disks {
		if got.Disks[i] != before.Disks[i] {
			t.Errorf("after undo, disk %d is %+v; before the move it was %+v", i, got.Disks[i], before.Disks[i])
		}
	}
}

// Requests waiting for approval are visible to Prometheus, so an alert can fire before
// they expire.
func TestPendingApprovalsAreMeasured(t *testing.T) {
	h := newHarness(t)
	h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	if !h.metric(h.sys, "xvm_requests_pending_approval 1") {
		t.Fatal("/metrics does not count the request waiting for approval")
	}
}
