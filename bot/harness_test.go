package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
	"github.com/xvmbot/xvmbot/bot/slacksim"
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

// notInChannel is a channel the bot is not a member of: chat.postEphemeral fails there.
const notInChannel = "C0NOTIN"

// newSlack is the local Slack workspace the bot tests run against. At the end of the test
// it checks that every response_url post was explicitly ephemeral: replies to one person
// must never show in the channel.
func newSlack(t *testing.T) *slacksim.Workspace {
	t.Helper()
	ws := slacksim.New()
	ws.RemoveApp(notInChannel)
	t.Cleanup(func() {
		ws.Close()
		for i, rt := range ws.ResponseTypes() {
			if rt != "ephemeral" {
				t.Errorf("response_url post %d has response_type %q, want ephemeral", i, rt)
			}
		}
	})
	return ws
}

// ephemeralsTo returns what only user saw, posted by the bot (chat.postEphemeral or
// response_url), not the acknowledgements of their own commands.
func ephemeralsTo(ws *slacksim.Workspace, user string) []slacksim.Message {
	var out []slacksim.Message
	for _, m := range ws.Ephemerals(user) {
		if m.Via != "ack" {
			out = append(out, m)
		}
	}
	return out
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
		plan.VMs = append(plan.VMs, vcenter.VM{VM: move.VM{Name: vm, Ref: "vm-" + vm}, PowerState: "poweredOn", CPUs: 2, MemoryMB: 4096, DiskGB: 40,
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

// env is a bot wired to a local Slack workspace, a memory store and the fakes above,
// served over HTTP.
type env struct {
	t       *testing.T
	slack   *slacksim.Workspace
	bot     *Bot
	svc     *approvals.Service
	planner *fakePlanner
	jobs    *fakeJobs
	http    *httptest.Server
	reg     *prometheus.Registry
	trigger atomic.Int64

	mu     sync.Mutex
	waited []time.Duration // retry pauses the bot asked for, none taken
}

type envOption func(*Config, *approvals.Policy)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, newSlack(t), approvals.NewMemoryStore(), opts...)
}

// newEnvOn is a bot on the given workspace and request store: several bots on one store
// are replicas of one deployment, or one bot before and after a restart.
func newEnvOn(t *testing.T, ws *slacksim.Workspace, store approvals.Store, opts ...envOption) *env {
	t.Helper()
	approvers := []string{approver, requester}
	for i := range 50 {
		approvers = append(approvers, fmt.Sprintf("U0A%02d", i))
	}
	policy := approvals.Policy{Approvers: approvers, Quorum: 1, ExpireAfter: time.Hour}
	signer, keys := approvaltest.Key(1)
	// No edit budget and no pacing of posts, so tests run at their own speed; the budget
	// and the pacing have tests of their own (deferred_test.go, pacer_test.go).
	cfg := Config{BotToken: secret.Secret("xoxb-test"), AppToken: secret.Secret("xapp-test"), SigningSecret: secret.Secret(testSecret),
		APIURL: ws.APIURL(), ProgressInterval: time.Nanosecond, EditsPerMinute: -1, PostsPerSecond: -1, Signer: signer, Keys: keys}
	for _, o := range opts {
		o(&cfg, &policy)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc := approvals.NewService(store, policy, nil, logger).WithSigner(signer)
	e := &env{t: t, slack: ws, svc: svc, planner: &fakePlanner{}, jobs: &fakeJobs{}, reg: prometheus.NewRegistry()}
	b, err := New(cfg, svc, e.planner, e.jobs, logger, e.reg)
	if err != nil {
		t.Fatal(err)
	}
	b.slack.wait = e.retryWait
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

// retryWait stands in for the pause before a Slack call is retried: it records the pause
// and returns at once, so that 429s and 5xx cost a test no time. slackapi_test.go checks
// the pauses themselves.
func (e *env) retryWait(ctx context.Context, d time.Duration) error {
	e.mu.Lock()
	e.waited = append(e.waited, d)
	e.mu.Unlock()
	return ctx.Err()
}

// retryWaits returns the retry pauses the bot asked for so far.
func (e *env) retryWaits() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.waited)
}

// stepClock is a clock the test moves: each reading is a microsecond after the one
// before (things happen a moment apart, as they do), and advance moves it on at once.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func newStepClock() *stepClock { return &stepClock{t: time.Now()} }

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// settle waits for all work started by the requests sent so far.
func (e *env) settle() { e.bot.tasks.wait() }

type delivery struct {
	status  int
	body    string
	latency time.Duration
}

// reply is what the workspace got back from this env's bot. Replicas share a workspace,
// so each delivery first points it at the bot it is meant for.
func (e *env) reply(send func(ctx context.Context) (slacksim.Reply, error)) delivery {
	e.t.Helper()
	e.slack.UseHTTP(e.http.URL, testSecret)
	rep, err := send(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return delivery{status: rep.Status, body: rep.Body, latency: rep.Latency}
}

// deliver posts a raw body with the given headers to the bot, as Slack would.
func (e *env) deliver(path, body string, h http.Header) delivery {
	e.t.Helper()
	return e.reply(func(ctx context.Context) (slacksim.Reply, error) { return e.slack.Deliver(ctx, path, body, h) })
}

// nextTrigger is a trigger id for a raw delivery built by the test.
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

// commandIn sends a command from another channel; its response_url leads to the workspace.
func (e *env) commandIn(channel, user, text string) delivery {
	e.t.Helper()
	return e.reply(func(ctx context.Context) (slacksim.Reply, error) { return e.slack.Command(ctx, user, channel, text) })
}

func (e *env) click(user, ts, actionID, value string) delivery {
	e.t.Helper()
	return e.reply(func(ctx context.Context) (slacksim.Reply, error) {
		return e.slack.Click(ctx, user, testChannel, ts, actionID, value)
	})
}

// message is the message at ts as people see it now (zero if there is none).
func (e *env) message(ts string) slacksim.Message {
	m, _ := e.slack.Message(ts)
	return m
}

// ephemeralsTo returns what the bot showed only user.
func (e *env) ephemeralsTo(user string) []slacksim.Message { return ephemeralsTo(e.slack, user) }

func (e *env) requests() []*approvals.Request {
	e.t.Helper()
	all, err := e.svc.Store().List(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return all
}

// submit runs a migrate command to completion and returns the stored request and its message.
func (e *env) submit(text string) (*approvals.Request, slacksim.Message) {
	e.t.Helper()
	before := len(e.requests())
	if d := e.command(requester, text); d.status != http.StatusOK {
		e.t.Fatalf("command %q: status %d %s", text, d.status, d.body)
	}
	e.settle()
	all := e.requests()
	if len(all) != before+1 {
		e.t.Fatalf("command %q stored %d requests, want 1 (ephemerals: %+v)", text, len(all)-before, e.ephemeralsTo(requester))
	}
	r := all[len(all)-1]
	if r.MessageTS == "" {
		e.t.Fatalf("request %s has no message ts", r.ID)
	}
	return r, e.message(r.MessageTS)
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
