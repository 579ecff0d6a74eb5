package events

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// runEvents runs the bot consumer until stop is called, sending what it sees to got.
func runEvents(ctx context.Context, t *testing.T, b *Bus, h EventHandler) (stop func()) {
	t.Helper()
	ectx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.RunEvents(ectx, h) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunEvents: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("RunEvents did not return within 5s of cancel")
		}
	}
}

func TestRunEventsDurableAndOrdered(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)

	// Published while no bot runs.
	types := []EventType{EventQueued, EventStarted, EventProgress, EventSucceeded}
	for i, typ := range types {
		e := Event{ID: fmt.Sprintf("ev-%d", i), Type: typ, RequestID: "xvm-r1", JobID: "job-1", VM: "web-01", Progress: i * 25}
		if err := tb.PublishEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// A re-sent event (same id) is stored once.
	if err := tb.PublishEvent(ctx, Event{ID: "ev-1", Type: EventStarted, RequestID: "xvm-r1"}); err != nil {
		t.Fatal(err)
	}

	got := make(chan Event, 16)
	failedOnce := false
	stop := runEvents(ctx, t, tb.Bus, func(_ context.Context, e Event) error {
		if e.ID == "ev-2" && !failedOnce { // Slack hiccup: must come back, and before ev-3
			failedOnce = true
			return errors.New("slack: rate limited")
		}
		got <- e
		return nil
	})
	var ids []string
	for range types {
		select {
		case e := <-got:
			ids = append(ids, e.ID)
			if e.V != SchemaVersion || e.At.IsZero() {
				t.Errorf("event %s: v=%d at=%v", e.ID, e.V, e.At)
			}
		case <-ctx.Done():
			t.Fatalf("got %v before timeout, want 4 events", ids)
		}
	}
	if fmt.Sprint(ids) != "[ev-0 ev-1 ev-2 ev-3]" {
		t.Fatalf("events in order %v, want [ev-0 ev-1 ev-2 ev-3] (a nak'ed event comes back first)", ids)
	}
	stop()
	// A stopped iterator's pull request stays with the server until the server sees its
	// reply subject go; an event published before that is handed to the stopped iterator
	// and comes back only after AckWait (30s). A restarted bot process has a new
	// connection, whose old pull requests go with the old one; on this shared connection,
	// wait for the server to drop it, as that restart would.
	eventually(ctx, t, "the stopped consumer's pull request to go", func() bool {
		info, err := tb.bot.Info(ctx)
		return err == nil && info.NumWaiting == 0
	})

	// After a restart of the consumer only the new event arrives.
	if err := tb.PublishEvent(ctx, Event{Type: EventProgress, RequestID: "xvm-r1", JobID: "job-2"}); err != nil {
		t.Fatal(err)
	}
	stop = runEvents(ctx, t, tb.Bus, func(_ context.Context, e Event) error {
		got <- e
		return nil
	})
	defer stop()
	select {
	case e := <-got:
		if e.JobID != "job-2" || e.ID == "" {
			t.Fatalf("first event after restart = %+v, want the new job-2 event with a generated id", e)
		}
	case <-ctx.Done():
		t.Fatal("new event not delivered after restart")
	}
	eventually(ctx, t, "bot consumer to settle", func() bool {
		info, err := tb.bot.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if len(got) != 0 {
		e := <-got
		t.Fatalf("acked event %s delivered again after restart", e.ID)
	}
}

func TestRunEventsTermsMalformed(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 10*time.Second)
	js, _ := jetstream.New(tb.nc)
	if _, err := js.Publish(ctx, SubjectEvents+".xvm-r1.progress", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := tb.PublishEvent(ctx, Event{ID: "ev-ok", Type: EventFailed, RequestID: "xvm-r1"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan Event, 4)
	stop := runEvents(ctx, t, tb.Bus, func(_ context.Context, e Event) error { got <- e; return nil })
	defer stop()
	select {
	case e := <-got:
		if e.ID != "ev-ok" {
			t.Fatalf("got %+v, want ev-ok", e)
		}
	case <-ctx.Done():
		t.Fatal("a malformed event blocked the good one")
	}
	if n := metricValue(t, tb.reg, "xvm_nats_deliveries_total", map[string]string{"kind": "event", "outcome": "term"}); n != 1 {
		t.Errorf("terminated events = %v, want 1", n)
	}
}

func TestEventSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		req  string
		typ  EventType
		want string
	}{
		{"xvm-k3m9q", EventStarted, "xvm.events.xvm-k3m9q.started"},
		{"", EventQueued, "xvm.events._.queued"},
		{"a.b c*>", EventFailed, "xvm.events.a_b_c__.failed"},
	}
	for _, tt := range tests {
		if got := EventSubject(tt.req, tt.typ); got != tt.want {
			t.Errorf("EventSubject(%q, %q) = %q, want %q", tt.req, tt.typ, got, tt.want)
		}
	}
}

// A bot that takes longer than EventAckWait over an event (Slack slow to answer) keeps it:
// it says it is still at it, so the event is not handed out again meanwhile. (Events go
// out one at a time, so the short EventAckWait is what lets a dead bot's event, and every
// event behind it, move on in seconds.)
func TestSlowEventIsNotHandedOutAgain(t *testing.T) {
	t.Parallel()
	const ackWait = 500 * time.Millisecond
	tb := newTestBus(t, BusConfig{EventAckWait: ackWait})
	ctx := testCtx(t, 30*time.Second)
	for _, id := range []string{"ev-slow", "ev-next"} {
		if err := tb.PublishEvent(ctx, Event{ID: id, Type: EventProgress, RequestID: "xvm-r1", JobID: "job-1"}); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan string, 16)
	stop := runEvents(ctx, t, tb.Bus, func(_ context.Context, e Event) error {
		if e.ID == "ev-slow" {
			time.Sleep(4 * ackWait) // the ack wait runs out three times over
		}
		got <- e.ID
		return nil
	})
	defer stop()
	ids := receive(ctx, t, got, 2, "ev-slow then ev-next")
	eventually(ctx, t, "bot consumer to settle", func() bool {
		info, err := tb.bot.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	close(got)
	for id := range got {
		ids = append(ids, id)
	}
	if fmt.Sprint(ids) != "[ev-slow ev-next]" {
		t.Fatalf("handled %v, want each event once: [ev-slow ev-next]", ids)
	}
}

// A bot killed while it holds an event (its connection gone, the event neither acked nor
// handed back) holds it only for EventAckWait: then the other bot gets it, and the events
// behind it.
func TestDeadBotsEventGoesToAnotherBot(t *testing.T) {
	t.Parallel()
	const ackWait = 500 * time.Millisecond
	cfg := BusConfig{EventAckWait: ackWait}
	tb := newTestBus(t, cfg)
	ctx := testCtx(t, 30*time.Second)
	deadNC := connect(t, tb.srv)
	dead, err := NewBus(ctx, deadNC, cfg, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	holding, deadDone := make(chan struct{}), make(chan struct{})
	deadCtx, deadCancel := context.WithCancel(ctx)
	go func() {
		defer close(deadDone)
		_ = dead.RunEvents(deadCtx, func(context.Context, Event) error {
			close(holding)
			deadNC.Close() // SIGKILL: nothing more is said of the event
			<-deadCtx.Done()
			return deadCtx.Err()
		})
	}()
	defer func() { deadCancel(); <-deadDone }()
	for _, id := range []string{"ev-held", "ev-next"} {
		if err := tb.PublishEvent(ctx, Event{ID: id, Type: EventProgress, RequestID: "xvm-r1", JobID: "job-1"}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-holding:
	case <-ctx.Done():
		t.Fatal("the first bot never got an event")
	}
	got := make(chan string, 16)
	stop := runEvents(ctx, t, tb.Bus, func(_ context.Context, e Event) error {
		got <- e.ID
		return nil
	})
	defer stop()
	ids := receive(ctx, t, got, 2, "ev-held then ev-next at the live bot")
	if fmt.Sprint(ids) != "[ev-held ev-next]" {
		t.Errorf("the live bot got %v, want [ev-held ev-next]", ids)
	}
	c, err := tb.js.Consumer(ctx, StreamEvents, ConsumerBot)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.CachedInfo().Config.AckWait; w != ackWait {
		t.Errorf("the bot consumer's ack wait is %s, want the configured %s", w, ackWait)
	}
}

// receive takes n event ids from got, failing the test (saying it wanted want) if ctx
// ends first.
func receive(ctx context.Context, t *testing.T, got <-chan string, n int, want string) []string {
	t.Helper()
	var ids []string
	for len(ids) < n {
		select {
		case id := <-got:
			ids = append(ids, id)
		case <-ctx.Done():
			t.Fatalf("got %v, want %s", ids, want)
		}
	}
	return ids
}
