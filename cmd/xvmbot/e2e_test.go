package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// The end-to-end tests run whole xvmbot processes in-process on real components: embedded
// NATS JetStream on a temp dir, simulated vCenters with cross-vCenter relocation emulated,
// and a local Slack workspace that sends real signed requests or Socket Mode envelopes.

const (
	chan1 = "C0MOVES"
	uReq  = "U0ALICE"
	uBoss = "U0BOB"
	uOps  = "U0CAROL" // approver through the group
	uNope = "U0DAVE"
	gOps  = "S0OPS"
)

type harness struct {
	t       *testing.T
	ctx     context.Context
	lab     *xvmsim.Lab
	ws      *slacksim.Workspace
	sys     *system.System
	signing string
	keyFile string // the approval signing key every bot of the harness signs with
	keyPub  string // its public key, which every worker trusts
}

type harnessOpt func(*config.Config)

func socketMode(c *config.Config) { c.Slack.Mode = "socket"; c.Slack.AppToken = "xapp-test" }

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	return newHarnessRole(t, system.RoleServe, opts...)
}

func newHarnessRole(t *testing.T, r system.Role, opts ...harnessOpt) *harness {
	t.Helper()
	return newHarnessWith(t, r, nil, opts...)
}

// newHarnessWith is newHarnessRole with sysOpts given to system.New, for tests that
// change what no config key sets.
func newHarnessWith(t *testing.T, r system.Role, sysOpts []system.Option, opts ...harnessOpt) *harness {
	t.Helper()
	return newHarnessOn(t, r, 2*time.Minute, []xvmsim.Option{xvmsim.WithTaskDuration(600 * time.Millisecond)}, sysOpts, opts...)
}

// newHarnessOn is newHarnessWith on a lab started with labOpts, for a test that may run
// for up to limit.
func newHarnessOn(t *testing.T, r system.Role, limit time.Duration, labOpts []xvmsim.Option, sysOpts []system.Option, opts ...harnessOpt) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	lab, err := xvmsim.Start(ctx, labOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	ws := slacksim.New()
	t.Cleanup(ws.Close)
	ws.SetGroup(gOps, uOps)
	for id, n := range map[string]string{uReq: "alice", uBoss: "bob", uOps: "carol", uNope: "dave"} {
		ws.AddUser(id, n)
	}
	h := &harness{t: t, ctx: ctx, lab: lab, ws: ws, signing: "test-signing-" + randomHex(8)}
	cfg := h.config(opts...)
	h.sys = h.startWith(cfg, r, sysOpts)
	if cfg.Slack.Mode == "http" {
		ws.UseHTTP("http://"+h.sys.SlackAddr(), h.signing)
	} else {
		ws.UseSocketMode()
	}
	return h
}

func (h *harness) config(opts ...harnessOpt) *config.Config {
	cfg := config.Default()
	cfg.Slack = config.SlackConfig{Mode: "http", BotToken: "xoxb-test-token", SigningSecret: secret.Secret(h.signing),
		APIURL: h.ws.APIURL(), ProgressInterval: 50 * time.Millisecond}
	cfg.HTTP.Listen, cfg.HTTP.OpsListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.NATS.DataDir = filepath.Join(h.t.TempDir(), "nats")
	cfg.NATS.RetryDelay = 100 * time.Millisecond
	cfg.Worker = config.WorkerConfig{Name: "w1", MaxAttempts: 2}
	// alice is an approver too, so that approving her own request is refused for that reason.
	if h.keyFile == "" {
		h.keyFile = filepath.Join(h.t.TempDir(), "approval.nk")
		pub, err := system.WriteSigningKey(h.keyFile)
		if err != nil {
			h.t.Fatal(err)
		}
		h.keyPub = pub
	}
	cfg.Approvals = config.ApprovalsConfig{Approvers: []string{uBoss, gOps, uReq}, Quorum: 1, ExpireAfter: time.Hour,
		RunWithin: approvals.DefaultRunWithin, TrustedKeys: []string{h.keyPub},
		SigningKeyFile: h.keyFile} // (a worker's config never needs it; a bot apart from its workers does)
	for i, vc := range h.lab.VCs() {
		cfg.VCenters = append(cfg.VCenters, config.VCenterConfig{Name: vc.Name, URL: vc.URL.String(), Username: vc.Username,
			Password: secret.Secret(vc.Password), Thumbprint: vc.Thumbprint, Home: i == 0})
	}
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

// asWorker points a config at the harness's listening embedded NATS, with the worker's
// credential the server keeps in its data dir, as a separate worker process would.
func (h *harness) asWorker(c *config.Config) {
	c.NATS.URL = h.sys.Embedded().ClientURL()
	c.NATS.NkeyFile = events.SeedFile(h.sys.Config().NATS.DataDir, events.RoleWorker)
}

// asBot points a config at the harness's embedded NATS with the bot's credential.
func (h *harness) asBot(c *config.Config) {
	c.NATS.URL = h.sys.Embedded().ClientURL()
	c.NATS.NkeyFile = events.SeedFile(h.sys.Config().NATS.DataDir, events.RoleBot)
}

func (h *harness) startWith(cfg *config.Config, r system.Role, sysOpts []system.Option) *system.System {
	h.t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{h.t}, nil))
	}
	sys, err := system.New(h.ctx, cfg, r, logger, sysOpts...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.runSystem(sys)
	return sys
}

func (h *harness) runSystem(sys *system.System) {
	ctx, stop := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	h.t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			h.t.Errorf("system run: %v", err)
		}
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// request sends a command and returns the approval message it produced.
func (h *harness) request(user, text string) slacksim.Message {
	h.t.Helper()
	before := len(h.ws.Channel(chan1))
	rep, err := h.ws.Command(h.ctx, user, chan1, text)
	if err != nil || rep.Status != http.StatusOK {
		h.t.Fatalf("command %q: %v %+v", text, err, rep)
	}
	if rep.Latency > 3*time.Second {
		h.t.Errorf("acknowledged after %s; Slack gives up after 3s", rep.Latency)
	}
	var msg slacksim.Message
	h.await("an approval message", func() bool {
		ch := h.ws.Channel(chan1)
		if len(ch) > before {
			msg = ch[len(ch)-1]
			return true
		}
		return false
	})
	if !strings.Contains(string(msg.Blocks), `"xvm_approve"`) || !strings.Contains(string(msg.Blocks), `"xvm_reject"`) {
		h.t.Fatalf("approval message lacks Approve/Reject buttons:\n%s", h.ws.Plain(msg))
	}
	return msg
}

func (h *harness) requestID(m slacksim.Message) string {
	id := requestIDRE.FindString(h.ws.Plain(m))
	if id == "" {
		h.t.Fatalf("message names no request id:\n%s", h.ws.Plain(m))
	}
	return id
}

func (h *harness) click(user string, m slacksim.Message, action string) {
	h.t.Helper()
	rep, err := h.ws.Click(h.ctx, user, chan1, m.TS, action, h.requestID(m))
	if err != nil || rep.Status != http.StatusOK {
		h.t.Fatalf("click %s by %s: %v %+v", action, user, err, rep)
	}
}

func (h *harness) await(what string, cond func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 45*time.Second)
	defer cancel()
	if err := h.ws.WaitFor(ctx, cond); err != nil {
		h.t.Fatalf("waiting for %s: %v\n--- channel ---\n%s", what, err, h.transcript())
	}
}

// awaitEphemeral waits for a private answer to user containing want (case-insensitive).
func (h *harness) awaitEphemeral(user string, after int, want string) string {
	h.t.Helper()
	var got string
	h.await(fmt.Sprintf("a private answer to %s mentioning %q", user, want), func() bool {
		e := h.ws.Ephemerals(user)
		for _, m := range e[min(after, len(e)):] {
			if p := h.ws.Plain(m); strings.Contains(strings.ToLower(p), strings.ToLower(want)) {
				got = p
				return true
			}
		}
		return false
	})
	return got
}

func (h *harness) parent(ts string) slacksim.Message {
	m, ok := h.ws.Message(ts)
	if !ok {
		h.t.Fatalf("message %s vanished", ts)
	}
	return m
}

// awaitEnd is awaitStoredEnd in-process; it returns the request's thread.
func (h *harness) awaitEnd(ts string, state approvals.State) []slacksim.Message {
	h.t.Helper()
	h.awaitStoredEnd(ts, state, h.await, h.stored)
	return h.ws.Thread(ts)
}

// awaitStoredEnd waits (with wait) until the request shown by ts is stored as ended (read
// by stored), its message shows state and its thread has the final reply, then fails
// unless the store holds the ending state for the request and every job: the message's
// counts mention every state, so its text alone proves nothing.
func (h *harness) awaitStoredEnd(ts string, state approvals.State, wait func(what string, cond func() bool),
	stored func(id string) (*approvals.Request, error)) {
	h.t.Helper()
	var id string
	wait("the request message of "+ts, func() bool {
		if p, ok := h.ws.Message(ts); ok {
			id = requestIDRE.FindString(h.ws.Plain(p))
		}
		return id != ""
	})
	var (
		r       *approvals.Request
		readErr error
	)
	wait("the request to end "+string(state), func() bool {
		var err error
		if r, err = stored(id); err != nil && (readErr == nil || err.Error() != readErr.Error()) {
			h.t.Logf("read request %s: %v", id, err)
		}
		readErr = err
		p, _ := h.ws.Message(ts) // edited after the final reply when edits wait out rate limits
		return err == nil && r.State.Final() && repliesTo(h, ts, r.Requester) > 0 &&
			strings.Contains(strings.ToLower(h.ws.Plain(p)), string(state))
	})
	if readErr != nil { // the wait fails first unless a last read failed after the end was seen
		h.t.Fatalf("read request %s: %v", id, readErr)
	}
	if bad := approvals.CheckOutcome(r, state); bad != "" {
		h.t.Fatalf("stored outcome: %s\n--- channel ---\n%s", bad, h.transcript())
	}
}

// repliesTo counts the replies in a request's thread that mention its requester.
func repliesTo(h *harness, ts, requester string) int {
	n := 0
	for _, m := range h.ws.Thread(ts) {
		if strings.Contains(m.Text+string(m.Blocks), "<@"+requester+">") {
			n++
		}
	}
	return n
}

// stored reads a request as the store holds it.
func (h *harness) stored(id string) (*approvals.Request, error) {
	r, _, err := h.sys.Approvals().Store().Get(h.ctx, id)
	return r, err
}

func (h *harness) transcript() string {
	var b strings.Builder
	for _, m := range h.ws.Messages() {
		fmt.Fprintf(&b, "[%s to=%s thread=%s edits=%d]\n%s\n", m.TS, m.To, m.ThreadTS, m.Edits, h.ws.Plain(m))
	}
	return b.String()
}

func (h *harness) metric(sys *system.System, line string) bool {
	h.t.Helper()
	resp, err := http.Get("http://" + sys.OpsAddr() + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == line {
			return true
		}
	}
	return false
}

func (h *harness) jobsPublished() int {
	h.t.Helper()
	n, err := h.sys.Bus().QueuedJobs(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return int(n)
}

func TestMigrateEndToEnd(t *testing.T) {
	for _, mode := range transports {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.opts...)
			east, west := h.lab.VC("vc-east"), h.lab.VC("vc-west")
			before, err := east.FindVM(h.ctx, "web-01")
			if err != nil {
				t.Fatal(err)
			}

			msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod pool=prod-pool datastore=ds-gold folder=migrated/web network=app-pg disk=thin")
			review := h.ws.Plain(msg)
			for _, want := range []string{"web-01", "vc-east", "vc-west", "west-prod", "prod-pool", "ds-gold", "migrated/web", "app-pg", "hin"} {
				if !strings.Contains(review, want) {
					t.Errorf("review page does not show %q:\n%s", want, review)
				}
			}
			h.click(uBoss, msg, "xvm_approve")
			thread := h.awaitEnd(msg.TS, approvals.StateSucceeded)

			got, err := west.FindVM(h.ctx, "web-01")
			if err != nil {
				t.Fatalf("web-01 not in vc-west: %v", err)
			}
			if got.Folder != "migrated/web" || got.Pool != "prod-pool" || got.Cluster != "west-prod" || got.Host == "" ||
				len(got.Datastores) != 1 || got.Datastores[0] != "ds-gold" {
				t.Errorf("placement in vc-west = %+v", got)
			}
			for _, d := range got.Disks {
				if !d.Thin || d.Datastore != "ds-gold" {
					t.Errorf("disk %+v, want thin on ds-gold", d)
				}
			}
			if len(got.NICs) != 1 || got.NICs[0].Network != "app-pg" || got.NICs[0].MAC != before.NICs[0].MAC {
				t.Errorf("NICs %+v, want app-pg with MAC %s", got.NICs, before.NICs[0].MAC)
			}
			if got.UUID != before.UUID || got.InstanceUUID != before.InstanceUUID || got.PowerState != before.PowerState {
				t.Errorf("identity/power changed: before %+v after %+v", before, got)
			}
			if _, err := east.FindVM(h.ctx, "web-01"); !errors.Is(err, xvmsim.ErrNotFound) {
				t.Errorf("web-01 still in vc-east: %v", err)
			}
			if n := east.XVMRelocationsOf("web-01"); n != 1 {
				t.Errorf("%d relocations of web-01, want 1", n)
			}

			// The thread: one progress message edited in place, and a final reply to the requester.
			var progress *slacksim.Message
			for i := range thread {
				if strings.Contains(h.ws.Plain(thread[i]), "web-01") && thread[i].Edits > 0 {
					progress = &thread[i]
				}
			}
			if progress == nil {
				t.Errorf("no per-VM progress message edited in place in the thread:\n%s", h.transcript())
			} else if !strings.Contains(h.ws.Plain(*progress), "100%") {
				t.Errorf("progress message does not end at 100%%: %s", h.ws.Plain(*progress))
			}
			if strings.Contains(string(h.parent(msg.TS).Blocks), `"xvm_approve"`) {
				t.Errorf("buttons still on the decided request")
			}
			if !h.metric(h.sys, `xvm_jobs_total{direction="migrate",result="succeeded"} 1`) {
				t.Errorf("/metrics does not count one succeeded migrate job")
			}
		})
	}
}

func TestImportEndToEnd(t *testing.T) {
	h := newHarness(t)
	east, west := h.lab.VC("vc-east"), h.lab.VC("vc-west")
	msg := h.request(uReq, "import legacy-01 from vc-west cluster=east-prod pool=apps datastore=east-ds-02 folder=apps/web network=east-app-pg disk=eager")
	h.click(uOps, msg, "xvm_approve") // approver through the user group
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	got, err := east.FindVM(h.ctx, "legacy-01")
	if err != nil {
		t.Fatalf("legacy-01 not imported into vc-east: %v", err)
	}
	if got.Folder != "apps/web" || got.Pool != "apps" || got.Datastores[0] != "east-ds-02" || got.NICs[0].Network != "east-app-pg" ||
		!got.Disks[0].EagerScrub || got.Disks[0].Thin {
		t.Errorf("imported placement = %+v", got)
	}
	if _, err := west.FindVM(h.ctx, "legacy-01"); !errors.Is(err, xvmsim.ErrNotFound) {
		t.Errorf("legacy-01 still in vc-west")
	}
	// Import is the relocation called on the remote (source) vCenter.
	if west.XVMRelocations() != 1 || east.XVMRelocations() != 0 {
		t.Errorf("relocations: west %d east %d; the import must run on vc-west", west.XVMRelocations(), east.XVMRelocations())
	}
	if !h.metric(h.sys, `xvm_jobs_total{direction="import",result="succeeded"} 1`) {
		t.Errorf("/metrics does not count the import")
	}
}

func TestDecisionsThatQueueNothing(t *testing.T) {
	h := newHarness(t)
	east := h.lab.VC("vc-east")

	// A stranger, then the requester, try to approve: refused privately, no job.
	msg := h.request(uReq, "migrate web-02 to vc-west cluster=west-prod datastore=ds-silver network=app-pg")
	n := len(h.ws.Ephemerals(uNope))
	h.click(uNope, msg, "xvm_approve")
	h.awaitEphemeral(uNope, n, "approve")
	n = len(h.ws.Ephemerals(uReq))
	h.click(uReq, msg, "xvm_approve")
	h.awaitEphemeral(uReq, n, "yourself")
	if strings.Contains(strings.ToLower(h.ws.Plain(h.parent(msg.TS))), "approved by") {
		t.Fatalf("request shows as approved after refused clicks")
	}

	// Reject: the message says who and nothing moves.
	h.click(uBoss, msg, "xvm_reject")
	h.await("the rejection", func() bool {
		p := h.parent(msg.TS)
		return strings.Contains(strings.ToLower(h.ws.Plain(p)), "rejected") && !strings.Contains(string(p.Blocks), `"xvm_approve"`)
	})
	n = len(h.ws.Ephemerals(uOps))
	h.click(uOps, msg, "xvm_approve")
	h.awaitEphemeral(uOps, n, "rejected")

	// Approve, then a second Approve: one job only.
	msg2 := h.request(uReq, "migrate web-03 to vc-west cluster=west-prod datastore=ds-silver network=app-pg")
	h.click(uBoss, msg2, "xvm_approve")
	n = len(h.ws.Ephemerals(uOps))
	h.click(uOps, msg2, "xvm_approve")
	h.awaitEphemeral(uOps, n, "already")
	h.awaitEnd(msg2.TS, approvals.StateSucceeded)

	if _, err := east.FindVM(h.ctx, "web-02"); err != nil {
		t.Errorf("rejected web-02 left vc-east: %v", err)
	}
	if east.XVMRelocations() != 1 || east.XVMRelocationsOf("web-03") != 1 {
		t.Errorf("relocations: %d total, %d of web-03; want exactly the one approved", east.XVMRelocations(), east.XVMRelocationsOf("web-03"))
	}
	if q := h.jobsPublished(); q != 0 {
		t.Errorf("%d jobs still queued", q)
	}
}

func TestBadInputGetsClearAnswers(t *testing.T) {
	h := newHarness(t)
	cases := []struct{ text, want string }{
		{"migrate web-01", "to"},
		{"migrate web-01 to vc-nowhere", "vc-nowhere"},
		{"migrate web-99 to vc-west cluster=west-prod datastore=ds-gold network=app-pg", "web-99"},
		{"migrate web-01 to vc-west cluster=west-prod datastore=ds-nope network=app-pg", "ds-nope"},
		{"migrate web-01 to vc-west cluster=west-prod datastore=ds-gold disk=sparse", "sparse"},
	}
	for _, c := range cases {
		n := len(h.ws.Ephemerals(uReq))
		if _, err := h.ws.Command(h.ctx, uReq, chan1, c.text); err != nil {
			t.Fatal(err)
		}
		h.awaitEphemeral(uReq, n, c.want)
	}
	if got := h.ws.Channel(chan1); len(got) != 0 {
		t.Errorf("bad commands posted %d messages in the channel", len(got))
	}
	if recs, err := h.sys.Approvals().Store().List(h.ctx); err != nil || len(recs) != 0 {
		t.Errorf("bad commands stored %d requests (%v)", len(recs), err)
	}
}

func TestForgedAndStaleRequestsAreRefused(t *testing.T) {
	h := newHarness(t)
	body := "command=%2Fxvm&text=migrate+web-01+to+vc-west&user_id=" + uBoss + "&channel_id=" + chan1
	for name, hdr := range map[string]http.Header{
		"wrong secret": slacksim.Sign("not-the-secret", time.Now(), body),
		"stale":        slacksim.Sign(h.signing, time.Now().Add(-10*time.Minute), body),
		"unsigned":     {"Content-Type": {"application/x-www-form-urlencoded"}},
	} {
		for _, path := range []string{"/slack/commands", "/slack/interactions"} {
			rep, err := h.ws.Deliver(h.ctx, path, body, hdr)
			if err != nil || rep.Status != http.StatusUnauthorized {
				t.Errorf("%s to %s: status %d (%v), want 401", name, path, rep.Status, err)
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // nothing must be happening in the background either
	if len(h.ws.Messages()) != 0 {
		t.Errorf("refused requests produced messages:\n%s", h.transcript())
	}
	if recs, _ := h.sys.Approvals().Store().List(h.ctx); len(recs) != 0 {
		t.Errorf("refused requests stored %d records", len(recs))
	}
}

// A worker whose config has the wrong thumbprint for the target (the certificate was
// replaced after approval, or the config is wrong) fails the job with a message that says
// so, and the VM stays where it was. Bot and worker run as separate roles on one NATS, as
// they do when scaled out.
func TestWrongTargetThumbprintFailsTheJob(t *testing.T) {
	h := newHarnessRole(t, system.RoleBot, func(c *config.Config) { c.NATS.Listen = "127.0.0.1:-1" })
	wrong := strings.TrimSuffix(strings.Repeat("AB:", 20), ":")
	wcfg := h.config(h.asWorker, func(c *config.Config) {
		for i := range c.VCenters {
			if c.VCenters[i].Name == "vc-west" {
				c.VCenters[i].Thumbprint = wrong
			}
		}
	})
	wsys, err := system.New(h.ctx, wcfg, system.RoleWorker, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h.runSystem(wsys)

	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	h.click(uBoss, msg, "xvm_approve")
	thread := h.awaitEnd(msg.TS, approvals.StateFailed)
	var all strings.Builder
	for _, m := range thread {
		all.WriteString(h.ws.Plain(m) + "\n")
	}
	if !strings.Contains(strings.ToLower(all.String()), "thumbprint") || !strings.Contains(all.String(), "vc-west") {
		t.Errorf("the failure does not say the vc-west thumbprint is wrong:\n%s", all.String())
	}
	if _, err := h.lab.VC("vc-east").FindVM(h.ctx, "web-01"); err != nil {
		t.Errorf("web-01 left vc-east: %v", err)
	}
	if _, err := h.lab.VC("vc-west").FindVM(h.ctx, "web-01"); !errors.Is(err, xvmsim.ErrNotFound) {
		t.Errorf("web-01 appeared in vc-west")
	}
	if !h.metric(wsys, `xvm_jobs_total{direction="migrate",result="failed"} 1`) {
		t.Errorf("the worker's /metrics does not count the failed job")
	}
}

// A cluster where DPM put two hosts in standby: they stay connected and run no VMs, the
// least loaded hosts by count. The review says they were left out, and the VM moves to
// the one host that is powered on.
func TestStandbyHostIsNeverChosen(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	west := h.lab.VC(xvmsim.WestVC)
	for _, host := range []string{xvmsim.WestHost2, xvmsim.WestHost3} {
		if _, err := west.SetHostPowerState(host, types.HostSystemPowerStateStandBy); err != nil {
			t.Fatal(err)
		}
	}
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	review := h.ws.Plain(msg)
	for _, want := range []string{"not chosen", xvmsim.WestHost2 + " is in standby (DPM)", xvmsim.WestHost3 + " is in standby (DPM)"} {
		if !strings.Contains(review, want) {
			t.Errorf("the review does not say %q:\n%s", want, review)
		}
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	p, err := west.FindVM(h.ctx, "web-01")
	if err != nil {
		t.Fatal(err)
	}
	if p.Host != xvmsim.WestHost1 {
		t.Errorf("web-01 is on %s, want %s, the only host powered on", p.Host, xvmsim.WestHost1)
	}
}

// Cluster, pool and folder as the vSphere Client and govc show them, from the datacenter
// down: the VM lands there, the review names them as the vSphere Client does, and the
// worker's check after the move finds it as approved.
func TestPlacementByInventoryPaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cluster := "/dc-west/host/west-prod"
	msg := h.request(uReq, "migrate web-02 to vc-west cluster="+cluster+" pool="+cluster+"/Resources/prod-pool datastore=ds-gold network=app-pg folder=/dc-west/vm/migrated/web")
	review := h.ws.Plain(msg)
	for _, want := range []string{"migrated/web", "west-prod", "prod-pool"} {
		if !strings.Contains(review, want) {
			t.Errorf("the review does not show %s:\n%s", want, review)
		}
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	p, err := h.lab.VC(xvmsim.WestVC).FindVM(h.ctx, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if p.Folder != xvmsim.WestWebFolder || p.Pool != xvmsim.WestPool {
		t.Errorf("web-02 is in folder %q pool %q, want %s and %s", p.Folder, p.Pool, xvmsim.WestWebFolder, xvmsim.WestPool)
	}
}
