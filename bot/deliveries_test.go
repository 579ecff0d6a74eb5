package bot

import (
	"context"
	"errors"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// natsBus is an embedded NATS server with xvmbot's streams and buckets, as bots share it.
type natsBus struct {
	srv *events.Embedded
	nc  *nats.Conn
	bus *events.Bus
}

func newNATSBus(t *testing.T) natsBus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := events.StartEmbedded(ctx, events.EmbeddedConfig{DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := events.NewBus(ctx, nc, events.BusConfig{}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return natsBus{srv: srv, nc: nc, bus: bus}
}

// replica is a bot that keeps its requests and its handled deliveries on the bus, as
// `xvmbot bot` does.
func (n natsBus) replica(t *testing.T, fs *slacksim.Workspace, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, fs, n.bus.Requests(), append([]envOption{func(c *Config, _ *approvals.Policy) {
		c.Deliveries = n.bus.Deliveries()
	}}, opts...)...)
}

// A signed slash command is valid for five minutes. Re-sent after the bot restarted, or
// to another replica, it used to make a second request; delivery keys now live in NATS.
func TestReplayedCommandMakesOneRequestAcrossReplicasAndRestarts(t *testing.T) {
	t.Parallel()
	n := newNATSBus(t)
	fs := newSlack(t)
	first := n.replica(t, fs)
	body := commandBody(requester, testChannel, "migrate web-01 to vc-west", "trig.replayed")
	headers := slacksim.Sign(testSecret, time.Now(), body) // captured once, replayed as is

	if got := ackText(t, first.deliver(PathCommands, body, headers)); !strings.Contains(got, "Checking web-01") {
		t.Fatalf("first delivery answered:\n%s", got)
	}
	first.settle()
	if n := len(first.requests()); n != 1 {
		t.Fatalf("%d requests after the first delivery, want 1", n)
	}

	// The same bot, within the window: still handled once.
	if d := first.deliver(PathCommands, body, headers); d.status != http.StatusOK || d.body != "" {
		t.Fatalf("replay to the same bot: %d %q", d.status, d.body)
	}
	// A second bot on the same NATS: another replica, or the first one restarted. Its
	// ack is decided before the shared log is asked (the ack stays fast), so it may say
	// "Checking…"; nothing is stored or posted.
	second := n.replica(t, fs)
	if d := second.deliver(PathCommands, body, headers); d.status != http.StatusOK {
		t.Fatalf("replay to another bot: %d %q", d.status, d.body)
	}
	second.settle()
	first.settle()
	if n := len(second.requests()); n != 1 {
		t.Fatalf("%d requests after the replays, want 1", n)
	}
	if n := len(fs.Public()); n != 1 {
		t.Fatalf("%d approval messages posted, want 1", n)
	}

	// A different command still goes through the other bot.
	if got := ackText(t, second.command(requester, "migrate web-02 to vc-west")); !strings.Contains(got, "Checking web-02") {
		t.Fatalf("a new command answered:\n%s", got)
	}
	second.settle()
	if n := len(second.requests()); n != 2 {
		t.Fatalf("%d requests after a new command, want 2", n)
	}
}

// A click replayed to another replica is one click too.
func TestReplayedClickIsHandledOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	n := newNATSBus(t)
	fs := newSlack(t)
	first := n.replica(t, fs, func(_ *Config, p *approvals.Policy) { p.Quorum = 2 })
	r, msg := first.submit("migrate web-01 to vc-west")
	body := url.Values{"payload": {clickPayload(approver, testChannel, msg.TS, ActionApprove, r.ID, "trig.click")}}.Encode()
	headers := slacksim.Sign(testSecret, time.Now(), body)
	if d := first.deliver(PathInteractions, body, headers); d.status != http.StatusOK {
		t.Fatalf("click: %d", d.status)
	}
	first.settle()
	second := n.replica(t, fs, func(_ *Config, p *approvals.Policy) { p.Quorum = 2 })
	if d := second.deliver(PathInteractions, body, headers); d.status != http.StatusOK {
		t.Fatalf("replayed click: %d", d.status)
	}
	second.settle()
	if eph := ephemeralsTo(fs, approver); len(eph) != 0 {
		t.Fatalf("the replayed click was handled again (answered %q)", eph[0].Words())
	}
	if got := second.get(r.ID); len(got.Approvals) != 1 || got.State != approvals.StatePending {
		t.Fatalf("after a replayed click: state %s, %d approvals", got.State, len(got.Approvals))
	}
}

// Exactly one click completes an approval, and that click's jobs are queued whatever the
// shared log says of its delivery: here another replica logged the same delivery first
// (and then, say, timed out deciding it), and this replica's approval is the one counted.
func TestApprovingClickQueuesItsJobsWhenTheLogHadItFirst(t *testing.T) {
	t.Parallel()
	n := newNATSBus(t)
	e := n.replica(t, newSlack(t))
	r, msg := e.submit("migrate web-01 to vc-west")
	if first, err := n.bus.Deliveries().Claim(context.Background(), "t:trig.won", "another-replica"); err != nil || !first {
		t.Fatalf("log the delivery for another replica: %v %v", first, err)
	}
	body := url.Values{"payload": {clickPayload(approver, testChannel, msg.TS, ActionApprove, r.ID, "trig.won")}}.Encode()
	if d := e.deliver(PathInteractions, body, slacksim.Sign(testSecret, time.Now(), body)); d.status != http.StatusOK {
		t.Fatalf("click: %d", d.status)
	}
	e.settle()
	if got := e.get(r.ID); got.State != approvals.StateApproved && got.State != approvals.StateQueued {
		t.Fatalf("request %s after the click, want it approved", got.State)
	}
	if n := len(e.jobs.published()); n != 1 {
		t.Fatalf("%d jobs queued by the click that completed the approval, want 1", n)
	}
}

// When NATS cannot say whether a command was handled, the bot waits a while for it after
// the ack, then does nothing and says so: a request made twice cannot be taken back, a
// refusal only costs a retry. A click is decided in the record itself, which NATS keeps
// too: it is not counted, and the approver is told to try again.
func TestUncheckableDeliveryIsRefusedClearly(t *testing.T) {
	t.Parallel()
	n := newNATSBus(t)
	e := n.replica(t, newSlack(t))
	// Both waits are cut to a fraction of their defaults: NATS is really down, so each
	// costs the test its full length in real time.
	e.bot.deliveries.patience = 300 * time.Millisecond
	e.bot.tasks.timeout = time.Second // (the work after an ack gives up on NATS this soon)
	r, msg := e.submit("migrate web-01 to vc-west")
	n.srv.Shutdown() // the bucket is now out of reach

	d := e.command(requester, "migrate web-02 to vc-west")
	if d.status != http.StatusOK || d.latency > 3*time.Second {
		t.Fatalf("command acknowledged %d after %s", d.status, d.latency)
	}
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	if len(e.planner.specs) != 1 {
		t.Fatalf("the unchecked command was planned: %d plans", len(e.planner.specs))
	}
	if eph := e.ephemeralsTo(requester); len(eph) != 1 || !strings.Contains(eph[0].Words(), "could not check") ||
		!strings.Contains(eph[0].Words(), "try again") {
		t.Fatalf("%s was answered %+v", requester, eph)
	}
	if eph := e.ephemeralsTo(approver); len(eph) != 1 || !strings.Contains(strings.ToLower(eph[0].Words()), "try again") ||
		strings.Contains(eph[0].Words(), "counted") {
		t.Fatalf("%s was answered %+v", approver, eph)
	}
	if v := counterValue(e.bot.m.commands.WithLabelValues(VerbMigrate, outcomeUnavailable)); v != 1 {
		t.Fatalf("xvm_commands_total{outcome=unavailable} = %v, want 1", v)
	}
}

// claimFunc is a DeliveryLog made of a function: a log that fails, or answers for
// another replica, without a NATS server to break.
type claimFunc func(ctx context.Context, key, holder string) (bool, error)

func (f claimFunc) Claim(ctx context.Context, key, holder string) (bool, error) {
	return f(ctx, key, holder)
}

// What this process has handled answers at once, for as long as Slack may replay it.
func TestDeliveryGuardRemembersWhatItHandled(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764000000, 0)
	g := newDeliveryGuard(nil, slog.New(slog.DiscardHandler), func() time.Time { return now })
	for _, want := range []bool{true, false} {
		if first, err := g.first("trig.1", g.holder()); err != nil || first != want {
			t.Fatalf("first=%v err=%v, want %v", first, err, want)
		}
	}
	if first, _ := g.first("", g.holder()); !first {
		t.Fatal("a delivery without a key was taken for a repeat")
	}
	now = now.Add(dedupeFor)
	if first, _ := g.first("trig.1", g.holder()); !first {
		t.Fatal("a key older than the replay window still counts as seen")
	}
	if a, b := g.holder(), g.holder(); a == b {
		t.Fatalf("two handlings share the holder %s", a)
	}
}

// The shared log decides what this process has not seen; its answer is remembered, and a
// log that does not answer leaves the delivery unchecked, not handled.
func TestDeliveryGuardAsksTheSharedLog(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764000000, 0)
	var asked int
	fails := 2
	log := claimFunc(func(_ context.Context, key, _ string) (bool, error) {
		asked++
		if fails > 0 {
			fails--
			return false, errors.New("nats: timeout")
		}
		return key != "trig.other", nil
	})
	g := newDeliveryGuard(log, slog.New(slog.DiscardHandler), func() time.Time { return now })
	if _, err := g.first("trig.1", "h1"); !errors.Is(err, errDeliveryUnchecked) {
		t.Fatalf("a log that does not answer: %v", err)
	}
	// After the ack the claim is tried again until the log answers.
	if first, err := g.later(t.Context(), "trig.1", "h1"); err != nil || !first {
		t.Fatalf("claim after the ack: first=%v err=%v", first, err)
	}
	if first, err := g.first("trig.1", "h2"); err != nil || first || asked != 3 {
		t.Fatalf("a handled delivery again: first=%v err=%v, log asked %d times, want 3", first, err, asked)
	}
	for _, holder := range []string{"h3", "h4"} {
		if first, err := g.first("trig.other", holder); err != nil || first || asked != 4 {
			t.Fatalf("a delivery another replica claimed: first=%v err=%v, log asked %d times, want 4", first, err, asked)
		}
	}

	never := newDeliveryGuard(claimFunc(func(context.Context, string, string) (bool, error) { return false, errors.New("nats: no responders") }),
		slog.New(slog.DiscardHandler), time.Now)
	never.patience = time.Millisecond
	if _, err := never.later(t.Context(), "trig.2", "h4"); !errors.Is(err, errDeliveryUnchecked) {
		t.Fatalf("a log that never answers: %v", err)
	}
}
