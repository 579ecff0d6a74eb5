package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
	"io"
	"log/slog"
	"net/http"
	"os"
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

// readyz reads sys's /readyz.
func (h *harness) readyz(sys *system.System) (int, system.ReadyReport) {
	h.t.Helper()
	var rep system.ReadyReport
	code := getJSON(h.t, "http://"+sys.OpsAddr()+"/readyz", &rep)
	return code, rep
}

// awaitReadyz waits until sys's /readyz satisfies cond and returns that answer.
func (h *harness) awaitReadyz(sys *system.System, what string, cond func(code int, rep system.ReadyReport) bool) system.ReadyReport {
	h.t.Helper()
	var rep system.ReadyReport
	h.await("/readyz: "+what, func() bool {
		var code int
		code, rep = h.readyz(sys)
		return cond(code, rep)
	})
	return rep
}

// checked is a readiness condition: every check has answered at least once.
func checked(_ int, rep system.ReadyReport) bool {
	for _, c := range rep.Checks {
		if strings.HasPrefix(c, "pending") {
			return false
		}
	}
	return len(rep.Checks) > 0
}

// /healthz says the process lives; /readyz says what is degraded: a vCenter that stops
// answering is reported but does not make the process unready (the bot keeps answering),
// and each check says how old its state is.
func TestHealthAndReadiness(t *testing.T) {
	h := newHarnessWith(t, system.RoleServe, []system.Option{system.WithReadyEvery(100 * time.Millisecond)})
	base := "http://" + h.sys.OpsAddr()
	if code := getJSON(t, base+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	ready := h.awaitReadyz(h.sys, "every check answered", checked)
	if code, _ := h.readyz(h.sys); code != http.StatusOK || !ready.Ready {
		t.Fatalf("/readyz = %d %+v", code, ready)
	}
	for _, c := range []string{"nats", "vcenter:vc-east", "vcenter:vc-west", "slack"} {
		if ready.Checks[c] != "ok" {
			t.Errorf("check %s = %q, want ok", c, ready.Checks[c])
		}
		if age, ok := ready.AgeSeconds[c]; !ok || age < 0 {
			t.Errorf("check %s has no age (%v, %v): %+v", c, age, ok, ready)
		}
	}
	h.lab.VC("vc-west").SetDown(true)
	defer h.lab.VC("vc-west").SetDown(false)
	ready = h.awaitReadyz(h.sys, "vc-west degraded", func(_ int, rep system.ReadyReport) bool {
		return strings.HasPrefix(rep.Checks["vcenter:vc-west"], "degraded")
	})
	if code, _ := h.readyz(h.sys); code != http.StatusOK || !ready.Ready {
		t.Fatalf("/readyz with vc-west down = %d %+v; a vCenter outage must not take the bot out of rotation", code, ready)
	}
}

// /readyz answers from the state the background refresher keeps: however often it is
// asked, it sends no request to any vCenter.
func TestReadyzDoesNotReachVCenters(t *testing.T) {
	h := newHarnessWith(t, system.RoleServe, []system.Option{system.WithReadyEvery(time.Hour)}) // one round only
	h.awaitReadyz(h.sys, "every check answered", checked)
	east, west := h.lab.VC("vc-east"), h.lab.VC("vc-west")
	e0, w0 := east.Requests(), west.Requests()
	for range 25 {
		if code, rep := h.readyz(h.sys); code != http.StatusOK || rep.Checks["vcenter:vc-west"] != "ok" {
			t.Fatalf("/readyz = %d %+v", code, rep)
		}
	}
	if e, w := east.Requests()-e0, west.Requests()-w0; e != 0 || w != 0 {
		t.Errorf("25 /readyz calls sent %d requests to vc-east and %d to vc-west, want none", e, w)
	}
}

// http.ops_listen serves /metrics, /healthz and /readyz and nothing else; http.listen
// serves Slack's endpoints and nothing else, and is opened only by a bot in http mode.
func TestOpsListenerIsSeparate(t *testing.T) {
	h := newHarnessRole(t, system.RoleBot, func(c *config.Config) { c.NATS.Listen = "127.0.0.1:-1" })
	slackBase, opsBase := "http://"+h.sys.SlackAddr(), "http://"+h.sys.OpsAddr()
	if h.sys.SlackAddr() == "" || h.sys.SlackAddr() == h.sys.OpsAddr() {
		t.Fatalf("slack listener %q, ops listener %q: want two addresses", h.sys.SlackAddr(), h.sys.OpsAddr())
	}
	status := func(method, url string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(h.ctx, method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if code := status(http.MethodGet, slackBase+path); code != http.StatusNotFound {
			t.Errorf("GET %s on http.listen = %d, want 404", path, code)
		}
	}
	if code := status(http.MethodGet, opsBase+"/metrics"); code != http.StatusOK {
		t.Errorf("GET /metrics on http.ops_listen = %d, want 200", code)
	}
	if !h.metric(h.sys, `xvm_vcenter_login_refused{vcenter="vc-west"} 0`) {
		t.Errorf("/metrics on http.ops_listen lacks xvm_vcenter_login_refused for vc-west")
	}
	for _, path := range []string{"/slack/commands", "/slack/interactions", "/slack/options"} {
		if code := status(http.MethodPost, opsBase+path); code != http.StatusNotFound {
			t.Errorf("POST %s on http.ops_listen = %d, want 404", path, code)
		}
	}
	// A signed command still reaches the bot on http.listen.
	n := len(h.ws.Ephemerals(uReq))
	if rep, err := h.ws.Command(h.ctx, uReq, chan1, "help"); err != nil || rep.Status != http.StatusOK {
		t.Fatalf("/xvm help on http.listen: %v %+v", err, rep)
	}
	h.awaitEphemeral(uReq, n, "migrate")

	// A worker and a bot in socket mode open no Slack listener, only their ops one.
	for _, c := range []struct {
		name string
		role system.Role
		opt  harnessOpt
	}{
		{"worker", system.RoleWorker, h.asWorker},
		{"socket-mode bot", system.RoleBot, func(c *config.Config) {
			h.asBot(c)
			socketMode(c)
		}},
	} {
		sys, err := system.New(h.ctx, h.config(c.opt), c.role, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		h.runSystem(sys)
		if sys.SlackAddr() != "" {
			t.Errorf("%s listens for Slack on %s", c.name, sys.SlackAddr())
		}
		if code := getJSON(t, "http://"+sys.OpsAddr()+"/healthz", nil); code != http.StatusOK {
			t.Errorf("%s: /healthz on http.ops_listen = %d", c.name, code)
		}
	}
}

// A vCenter that refuses the service account's password is tried once, not once per
// /readyz call or command: vCenter SSO would lock the account after a few. /readyz,
// /xvm vcenters, a pre-flight against it and xvm_vcenter_up all say so.
func TestRefusedPasswordIsNotRetried(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.VCenters[1].Password = "not-the-password" })
	west := h.lab.VC("vc-west")
	ready := h.awaitReadyz(h.sys, "vc-west refused", func(_ int, rep system.ReadyReport) bool {
		return strings.Contains(rep.Checks["vcenter:vc-west"], "refused")
	})
	if c := ready.Checks["vcenter:vc-west"]; !strings.HasPrefix(c, "degraded") || !strings.Contains(c, "does not log in again before") {
		t.Errorf("/readyz for vc-west = %q, want degraded, saying when xvmbot tries again", c)
	}
	if !ready.Ready || ready.Checks["vcenter:vc-east"] != "ok" {
		t.Errorf("/readyz = %+v; a refused vCenter must not take the bot out of rotation", ready)
	}
	for range 30 {
		h.readyz(h.sys)
	}
	for range 3 {
		n := len(h.ws.Ephemerals(uReq))
		if _, err := h.ws.Command(h.ctx, uReq, chan1, "vcenters"); err != nil {
			t.Fatal(err)
		}
		if got := h.awaitEphemeral(uReq, n, "vc-west"); !strings.Contains(got, "login refused") {
			t.Errorf("/xvm vcenters does not say vc-west refused the login:\n%s", got)
		}
		n = len(h.ws.Ephemerals(uReq))
		if _, err := h.ws.Command(h.ctx, uReq, chan1, "migrate web-01 to vc-west"); err != nil {
			t.Fatal(err)
		}
		h.awaitEphemeral(uReq, n, "refused the service account's credentials")
	}
	if got := west.RefusedLogins(); got != 1 {
		t.Errorf("vc-west saw %d logins with the wrong password over 30 /readyz calls and 6 commands, want 1", got)
	}
	for _, line := range []string{`xvm_vcenter_up{vcenter="vc-west"} 0`, `xvm_vcenter_login_refused{vcenter="vc-west"} 1`,
		`xvm_vcenter_login_refused{vcenter="vc-east"} 0`} {
		if !h.metric(h.sys, line) {
			t.Errorf("/metrics lacks %s", line)
		}
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
	h := newHarnessRole(t, system.RoleBot, func(c *config.Config) { c.NATS.Listen = "127.0.0.1:-1" })
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wcfg := h.config(h.asWorker)
	wsys, err := system.New(h.ctx, wcfg, system.RoleWorker, logger)
	if err != nil {
		t.Fatal(err)
	}
	h.runSystem(wsys)

	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)

	// Collect every place a secret could surface.
	var everything strings.Builder
	everything.WriteString(logs.String())
	for _, m := range h.ws.Messages() {
		everything.WriteString(m.Text)
		everything.Write(m.Blocks)
	}
	for _, sys := range []*system.System{h.sys, wsys} {
		resp, err := http.Get("http://" + sys.OpsAddr() + "/metrics")
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
	recs, err := h.sys.Approvals().Store().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		b, _ := json.Marshal(r)
		everything.Write(b)
	}

	seed, err := os.ReadFile(h.keyFile)
	if err != nil || len(seed) < 50 {
		t.Fatalf("approval signing key %s: %v", h.keyFile, err)
	}
	secrets := map[string]string{"slack bot token": "xoxb-test-token", "slack signing secret": h.signing,
		"approval signing key": strings.TrimSpace(string(seed))}
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
	nc, err := h.sys.Embedded().Connect()
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
	h := newHarnessRole(t, system.RoleBot, func(c *config.Config) { c.NATS.Listen = "127.0.0.1:-1" })
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
	wsys, err := system.New(h.ctx, wcfg, system.RoleWorker, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h.runSystem(wsys)
	h.await("both jobs to report cancelled", func() bool {
		r, err := h.sys.Approvals().Get(h.ctx, h.requestID(msg))
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
	h := newHarness(t, func(c *config.Config) {
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
	h.awaitEnd(msg.TS, approvals.StateSucceeded)

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
	h.awaitEnd(back.TS, approvals.StateSucceeded)
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
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
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
	h.awaitEnd(back.TS, approvals.StateSucceeded)
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
