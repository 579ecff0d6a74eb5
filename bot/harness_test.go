package bot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/slack-go/slack/slacktest"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter"
)

const (
	testSecret  = "8f742231b10e8888abcd99yyyzzz85a5"
	testChannel = "C0OPS"
	requester   = "U0ALICE" // also an approver: self-approval must still be refused
	approver    = "U0BOSS"
	stranger    = "U0MALLORY"
)

// posted is one message as the fake Slack keeps it.
type posted struct {
	Channel, TS, ThreadTS, Text, User string
	Blocks                            []map[string]any
	Edits                             int
	Ephemeral                         bool
}

// words is everything a person can read in the message: text and every text in its blocks.
func (p posted) words() string {
	var parts []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, vv := range x {
				if s, ok := vv.(string); ok && k == "text" {
					parts = append(parts, s)
					continue
				}
				walk(vv)
			}
		case []any:
			for _, vv := range x {
				walk(vv)
			}
		}
	}
	for _, b := range p.Blocks {
		walk(b)
	}
	return p.Text + "\n" + strings.Join(parts, "\n")
}

// actions are the action_ids of the message's buttons.
func (p posted) actions() []string {
	var out []string
	for _, b := range p.Blocks {
		if b["type"] != "actions" {
			continue
		}
		els, _ := b["elements"].([]any)
		for _, el := range els {
			if m, ok := el.(map[string]any); ok {
				out = append(out, fmt.Sprint(m["action_id"]))
			}
		}
	}
	return out
}

// fakeSlack is slack-go's slacktest server with the routes xvmbot needs recorded:
// chat.postMessage with unique timestamps, chat.update, chat.postEphemeral.
type fakeSlack struct {
	srv *slacktest.Server

	mu        sync.Mutex
	seq       int
	msgs      []*posted
	ephemeral []posted
	limited   map[string]int // method → how many 429s to answer before succeeding
	calls     map[string]int
	sent      []sentText // every text the bot sent, each edit apart
}

// sentText is one text and its blocks as the bot sent them, by any method: what a person
// may read, including versions later edited away.
type sentText struct {
	Method string
	Text   string
	Blocks []map[string]any
}

func (f *fakeSlack) record(method, text string, blocks []map[string]any) {
	f.mu.Lock()
	f.sent = append(f.sent, sentText{Method: method, Text: text, Blocks: blocks})
	f.mu.Unlock()
}

// allSent returns every text the bot sent so far.
func (f *fakeSlack) allSent() []sentText {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func newFakeSlack(t *testing.T, extra ...slacktest.Binder) *fakeSlack {
	t.Helper()
	f := &fakeSlack{limited: map[string]int{}, calls: map[string]int{}}
	binders := append([]slacktest.Binder{func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.api("chat.postMessage", f.postMessage))
		c.Handle("/chat.update", f.api("chat.update", f.update))
		c.Handle("/chat.postEphemeral", f.api("chat.postEphemeral", f.postEphemeral))
		c.Handle("/response", f.api("response_url", f.response))
	}}, extra...)
	f.srv = slacktest.NewTestServer(binders...)
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) api(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls[method]++
		limited := f.limited[method] > 0
		if limited {
			f.limited[method]--
		}
		f.mu.Unlock()
		if limited {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
			return
		}
		h(w, r)
	}
}

func formOf(r *http.Request) url.Values {
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		v := url.Values{}
		for k, val := range m {
			if s, ok := val.(string); ok {
				v.Set(k, s)
			} else {
				b, _ := json.Marshal(val)
				v.Set(k, string(b))
			}
		}
		return v
	}
	v, _ := url.ParseQuery(string(body))
	return v
}

func blocksOf(s string) []map[string]any {
	var out []map[string]any
	_ = json.Unmarshal([]byte(s), &out)
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	v := formOf(r)
	f.mu.Lock()
	f.seq++
	m := &posted{Channel: v.Get("channel"), TS: fmt.Sprintf("1764000000.%06d", f.seq), ThreadTS: v.Get("thread_ts"),
		Text: v.Get("text"), Blocks: blocksOf(v.Get("blocks"))}
	f.msgs = append(f.msgs, m)
	f.mu.Unlock()
	f.record("chat.postMessage", m.Text, m.Blocks)
	writeJSON(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (f *fakeSlack) update(w http.ResponseWriter, r *http.Request) {
	v := formOf(r)
	f.record("chat.update", v.Get("text"), blocksOf(v.Get("blocks")))
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		if m.TS == v.Get("ts") && m.Channel == v.Get("channel") {
			m.Text, m.Blocks = v.Get("text"), blocksOf(v.Get("blocks"))
			m.Edits++
			writeJSON(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
			return
		}
	}
	writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
}

// notInChannel is a channel the bot is not a member of: chat.postEphemeral fails there.
const notInChannel = "C0NOTIN"

func (f *fakeSlack) postEphemeral(w http.ResponseWriter, r *http.Request) {
	v := formOf(r)
	if v.Get("channel") == notInChannel {
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	f.record("chat.postEphemeral", v.Get("text"), blocksOf(v.Get("blocks")))
	f.mu.Lock()
	f.ephemeral = append(f.ephemeral, posted{Channel: v.Get("channel"), User: v.Get("user"), Text: v.Get("text"),
		Blocks: blocksOf(v.Get("blocks")), Ephemeral: true})
	f.mu.Unlock()
	writeJSON(w, map[string]any{"ok": true, "message_ts": "1764000000.999999"})
}

// response records a response_url post as an ephemeral reply to the user in its query.
func (f *fakeSlack) response(w http.ResponseWriter, r *http.Request) {
	var m struct {
		Text         string           `json:"text"`
		Blocks       []map[string]any `json:"blocks"`
		ResponseType string           `json:"response_type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.ResponseType != "ephemeral" {
		http.Error(w, "bad response_url post", http.StatusBadRequest)
		return
	}
	f.record("response_url", m.Text, m.Blocks)
	f.mu.Lock()
	f.ephemeral = append(f.ephemeral, posted{User: r.URL.Query().Get("user"), Text: m.Text, Blocks: m.Blocks, Ephemeral: true})
	f.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

// messages returns copies of the top-level messages and thread replies, in posting order.
func (f *fakeSlack) messages() []posted {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]posted, len(f.msgs))
	for i, m := range f.msgs {
		out[i] = *m
	}
	return out
}

func (f *fakeSlack) thread(ts string) []posted {
	var out []posted
	for _, m := range f.messages() {
		if m.ThreadTS == ts {
			out = append(out, m)
		}
	}
	return out
}

func (f *fakeSlack) message(ts string) posted {
	for _, m := range f.messages() {
		if m.TS == ts {
			return m
		}
	}
	return posted{}
}

func (f *fakeSlack) ephemeralsTo(user string) []posted {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []posted
	for _, m := range f.ephemeral {
		if m.User == user {
			out = append(out, m)
		}
	}
	return out
}

func (f *fakeSlack) rateLimit(method string, n int) {
	f.mu.Lock()
	f.limited[method] = n
	f.mu.Unlock()
}

func (f *fakeSlack) callCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// fakePlanner answers every move with a plan of the VMs asked for.
type fakePlanner struct {
	mu       sync.Mutex
	findings []vcenter.Finding
	err      error
	specs    []vcenter.MoveSpec
	gate     chan struct{}       // if set, Plan waits for it: a slow vCenter
	entered  chan struct{}       // if set, Plan signals it on entry
	matches  map[string][]string // a pattern and the VMs it matches
}

func (p *fakePlanner) Plan(ctx context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error) {
	if p.entered != nil {
		p.entered <- struct{}{}
	}
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.specs = append(p.specs, spec)
	if p.err != nil {
		return nil, p.err
	}
	plan := &vcenter.Plan{Spec: spec,
		Source:  vcenter.Endpoint{Name: spec.Source, Version: "8.0.3", InstanceUUID: "uuid-" + spec.Source},
		Target:  vcenter.Endpoint{Name: spec.Target, Version: "8.0.3", InstanceUUID: "uuid-" + spec.Target},
		Cluster: "cl-west", Datastore: "ds-west-1", Folder: "migrated", DiskFormat: move.Same,
		Findings: slices.Clone(p.findings), ResolvedAt: time.Now()}
	var names []string
	for _, vm := range spec.VMs {
		if m, ok := p.matches[vm]; ok {
			names = append(names, m...)
		} else {
			names = append(names, vm)
		}
	}
	for _, vm := range names {
		plan.VMs = append(plan.VMs, vcenter.VM{Name: vm, Ref: "vm-" + vm, PowerState: "poweredOn", CPUs: 2, MemoryMB: 4096, DiskGB: 40,
			NICs: []vcenter.NIC{{Label: "Network adapter 1", Network: "VM Network", Target: "pg-west"}}})
	}
	return plan, nil
}
func (p *fakePlanner) Info(_ context.Context, name string) (vcenter.Endpoint, error) {
	if name == "vc-down" {
		return vcenter.Endpoint{Name: name}, fmt.Errorf("dial tcp: connection refused")
	}
	return vcenter.Endpoint{Name: name, Version: "8.0.3 build 24022515", URL: "https://" + name + ".example.com:443/sdk",
		Thumbprint: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01", Home: name == "vc-east", Reachable: true}, nil
}
func (p *fakePlanner) Names() []string { return []string{"vc-east", "vc-west"} }
func (p *fakePlanner) Home() string    { return "vc-east" }

// fakeJobs records published jobs; fail makes the next n publishes fail.
type fakeJobs struct {
	mu        sync.Mutex
	jobs      []events.Job
	cancelled []string
	fail      int
}

func (j *fakeJobs) PublishJob(_ context.Context, job events.Job) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail > 0 {
		j.fail--
		return fmt.Errorf("nats: no responders")
	}
	j.jobs = append(j.jobs, job)
	return nil
}

func (j *fakeJobs) CancelJob(_ context.Context, jobID, by string) (events.JobState, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancelled = append(j.cancelled, jobID+" by "+by)
	return events.JobCancelled, nil
}

func (j *fakeJobs) published() []events.Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.jobs)
}

// env is a bot wired to a fake Slack, a memory store and the fakes above, served over HTTP.
type env struct {
	t       *testing.T
	slack   *fakeSlack
	bot     *Bot
	svc     *approvals.Service
	planner *fakePlanner
	jobs    *fakeJobs
	http    *httptest.Server
	reg     *prometheus.Registry
	trigger atomic.Int64
}

type envOption func(*Config, *approvals.Policy)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with extra routes on the fake Slack.
func newEnvWith(t *testing.T, routes []slacktest.Binder, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, newFakeSlack(t, routes...), approvals.NewMemoryStore(), opts...)
}

// newEnvOn is a bot on the given fake Slack and request store: several bots on one store
// are replicas of one deployment, or one bot before and after a restart.
func newEnvOn(t *testing.T, fs *fakeSlack, store approvals.Store, opts ...envOption) *env {
	t.Helper()
	approvers := []string{approver, requester}
	for i := range 50 {
		approvers = append(approvers, fmt.Sprintf("U0A%02d", i))
	}
	policy := approvals.Policy{Approvers: approvers, Quorum: 1, ExpireAfter: time.Hour}
	signer, keys := approvaltest.Key(1)
	cfg := Config{BotToken: secret.Secret("xoxb-test"), AppToken: secret.Secret("xapp-test"), SigningSecret: secret.Secret(testSecret),
		APIURL: fs.srv.GetAPIURL(), ProgressInterval: time.Nanosecond, EditsPerMinute: -1, Signer: signer, Keys: keys}
	for _, o := range opts {
		o(&cfg, &policy)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc := approvals.NewService(store, policy, nil, logger).WithSigner(signer)
	e := &env{t: t, slack: fs, svc: svc, planner: &fakePlanner{}, jobs: &fakeJobs{}, reg: prometheus.NewRegistry()}
	b, err := New(cfg, svc, e.planner, e.jobs, logger, e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.bot = b
	e.http = httptest.NewServer(b.Handler())
	t.Cleanup(func() { e.http.Close(); b.tasks.wait() })
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// settle waits for all work started by the requests sent so far.
func (e *env) settle() { e.bot.tasks.wait() }

// sign signs body the way Slack does: v0=hex(HMAC-SHA256(secret, "v0:<ts>:<body>")).
func sign(secret string, ts time.Time, body string) http.Header {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

type delivery struct {
	status  int
	body    string
	latency time.Duration
}

func (e *env) deliver(path, body string, h http.Header) delivery {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = h
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ack struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	if json.Unmarshal(b, &ack) == nil && (ack.Text != "" || len(ack.Blocks) > 0) {
		e.slack.record("ack", ack.Text, ack.Blocks)
	}
	return delivery{status: resp.StatusCode, body: string(b), latency: time.Since(start)}
}

func (e *env) nextTrigger() string {
	return fmt.Sprintf("trig.%d", e.trigger.Add(1))
}

// commandBody is a slash command as Slack posts it.
func commandBody(user, channel, text, trigger string) string {
	return url.Values{"token": {"legacy"}, "team_id": {"T0XVM"}, "team_domain": {"xvm-lab"}, "channel_id": {channel},
		"channel_name": {"ops"}, "user_id": {user}, "user_name": {strings.ToLower(user)}, "command": {"/xvm"}, "text": {text},
		"api_app_id": {"A0XVM"}, "response_url": {"https://hooks.slack.com/commands/T0XVM/1/abc"}, "trigger_id": {trigger}}.Encode()
}

// clickPayload is a block_actions payload for one button on the message at ts.
func clickPayload(user, channel, ts, actionID, value, trigger string) string {
	p := map[string]any{
		"type": "block_actions", "api_app_id": "A0XVM", "token": "legacy", "trigger_id": trigger,
		"user":         map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": "T0XVM"},
		"team":         map[string]any{"id": "T0XVM", "domain": "xvm-lab"},
		"channel":      map[string]any{"id": channel, "name": "ops"},
		"container":    map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"message":      map[string]any{"type": "message", "ts": ts, "text": "request"},
		"response_url": "https://hooks.slack.com/actions/T0XVM/1/abc",
		"actions": []any{map[string]any{"action_id": actionID, "block_id": "req", "type": "button", "value": value,
			"text": map[string]any{"type": "plain_text", "text": actionID}, "action_ts": fmt.Sprintf("%d.000100", time.Now().Unix())}},
	}
	b, _ := json.Marshal(p)
	return string(b)
}

func (e *env) command(user, text string) delivery {
	e.t.Helper()
	return e.commandIn(testChannel, user, text)
}

// commandIn sends a command from another channel; its response_url leads to the fake Slack.
func (e *env) commandIn(channel, user, text string) delivery {
	e.t.Helper()
	v, _ := url.ParseQuery(commandBody(user, channel, text, e.nextTrigger()))
	v.Set("response_url", e.slack.srv.GetAPIURL()+"response?user="+user)
	body := v.Encode()
	return e.deliver(PathCommands, body, sign(testSecret, time.Now(), body))
}

func (e *env) click(user, ts, actionID, value string) delivery {
	e.t.Helper()
	body := url.Values{"payload": {clickPayload(user, testChannel, ts, actionID, value, e.nextTrigger())}}.Encode()
	return e.deliver(PathInteractions, body, sign(testSecret, time.Now(), body))
}

func (e *env) requests() []*approvals.Request {
	e.t.Helper()
	all, err := e.svc.Store().List(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return all
}

// submit runs a migrate command to completion and returns the stored request and its message.
func (e *env) submit(text string) (*approvals.Request, posted) {
	e.t.Helper()
	before := len(e.requests())
	if d := e.command(requester, text); d.status != http.StatusOK {
		e.t.Fatalf("command %q: status %d %s", text, d.status, d.body)
	}
	e.settle()
	all := e.requests()
	if len(all) != before+1 {
		e.t.Fatalf("command %q stored %d requests, want 1 (ephemerals: %+v)", text, len(all)-before, e.slack.ephemeralsTo(requester))
	}
	r := all[len(all)-1]
	if r.MessageTS == "" {
		e.t.Fatalf("request %s has no message ts", r.ID)
	}
	return r, e.slack.message(r.MessageTS)
}

func (e *env) get(id string) *approvals.Request {
	e.t.Helper()
	r, err := e.svc.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// counterValue reads one counter (testutil would pull another module into go.sum).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// forge rewrites a stored request as someone who can write the request store could,
// bypassing every rule of approvals.
func (e *env) forge(id string, fn func(r *approvals.Request)) {
	e.t.Helper()
	ctx := context.Background()
	r, rev, err := e.svc.Store().Get(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	fn(r)
	if _, err := e.svc.Store().Update(ctx, r, rev); err != nil {
		e.t.Fatal(err)
	}
}
