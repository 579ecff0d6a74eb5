package bot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
)

func TestRateLimitedCallsAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, msg := e.submit("migrate web-01 to vc-west")
	e.slack.Throttle("chat.update", 2, 0)
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	if a := e.message(msg.TS).ActionIDs(); len(a) == 0 || a[0] == ActionApprove {
		t.Fatalf("parent not updated after 429s: buttons %v", a)
	}
	if v := counterValue(e.bot.m.apiCalls.WithLabelValues("chat.update", "ratelimited")); v != 2 {
		t.Fatalf("ratelimited chat.update counted %v, want 2", v)
	}
	if v := counterValue(e.bot.m.apiCalls.WithLabelValues("chat.update", "ok")); v != 1 {
		t.Fatalf("ok chat.update counted %v, want 1", v)
	}
	if w := e.retryWaits(); len(w) != 2 {
		t.Fatalf("the bot paused %v before its retries, want 2 pauses", w)
	}
}

// Before each retry the bot pauses as long as Slack asked (at least 100 ms, at most
// slackMaxWait), longer after each server error, and gives up after slackMaxAttempts.
func TestRetriesWaitAsSlackAsks(t *testing.T) {
	t.Parallel()
	answers := func(errs ...error) func() error {
		return func() error {
			if len(errs) == 0 {
				return nil
			}
			err := errs[0]
			errs = errs[1:]
			return err
		}
	}
	limited := func(d time.Duration) error { return &slack.RateLimitedError{RetryAfter: d} }
	unavailable := slack.StatusCodeError{Code: http.StatusServiceUnavailable, Status: "503 Service Unavailable"}
	tests := []struct {
		name    string
		fn      func() error
		waits   []time.Duration
		failure string // "" for success
	}{
		{"retry-after 0", answers(limited(0), limited(0)), []time.Duration{100 * time.Millisecond, 100 * time.Millisecond}, ""},
		{"retry-after 3s", answers(limited(3 * time.Second)), []time.Duration{3 * time.Second}, ""},
		{"retry-after an hour", answers(limited(time.Hour)), []time.Duration{slackMaxWait}, ""},
		{"server errors", answers(unavailable, unavailable), []time.Duration{slackServerRetry, 2 * slackServerRetry}, ""},
		{"never answers", answers(limited(0), limited(0), limited(0), limited(0), limited(0), limited(0), limited(0)),
			[]time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond},
			"giving up after 6 attempts"},
		{"refused", answers(errors.New("channel_not_found")), nil, "channel_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var waits []time.Duration
			c := newSlackClient(nil, newMetrics(nil), slog.New(slog.DiscardHandler), nil)
			c.wait = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			err := c.call(context.Background(), "chat.postMessage", tt.fn)
			if !slices.Equal(waits, tt.waits) {
				t.Errorf("paused %v, want %v", waits, tt.waits)
			}
			switch {
			case tt.failure == "" && err != nil:
				t.Errorf("call failed: %v", err)
			case tt.failure != "" && (err == nil || !strings.Contains(err.Error(), tt.failure)):
				t.Errorf("call ended with %v, want %q", err, tt.failure)
			}
		})
	}

	// A pause cut short by the caller ends the call.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := newSlackClient(nil, newMetrics(nil), slog.New(slog.DiscardHandler), nil)
	if err := c.call(ctx, "chat.update", answers(limited(time.Second))); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled pause ended the call with %v", err)
	}
}

func TestReadyChecksAuthOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.bot.Ready(); err != nil {
		t.Fatal(err)
	}
	if err := e.bot.Ready(); err != nil {
		t.Fatal(err)
	}
	if v := counterValue(e.bot.m.apiCalls.WithLabelValues("auth.test", "ok")); v != 1 {
		t.Fatalf("auth.test called %v times, want 1 (cached)", v)
	}
}

// syncBuffer is a log sink safe for the bot's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestLogsNeverCarryTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(&buf), &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := New(e.bot.cfg, e.svc, e.planner, e.jobs, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("config", "config", b.cfg) // even the whole config, by mistake
	e.slack.Throttle("chat.postMessage", 1, 0)
	b.slack.wait = e.retryWait
	e.bot = b
	e.http.Close()
	e.http = httptest.NewServer(b.Handler())
	t.Cleanup(func() { e.http.Close(); b.tasks.wait() })
	r, msg := e.submit("migrate web-01 to vc-west")
	e.click(stranger, msg.TS, ActionApprove, r.ID)
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	_ = b.Ready()
	out := buf.String()
	for _, tok := range []string{"xoxb-test", "xapp-test", testSecret} {
		if strings.Contains(out, tok) {
			t.Fatalf("log carries a secret %q:\n%s", tok, out)
		}
	}
	if !strings.Contains(out, `"component":"bot"`) || !strings.Contains(out, `"request_id":"`+r.ID+`"`) {
		t.Fatalf("logs lack component or request_id:\n%s", out)
	}
	if e.get(r.ID).State != approvals.StateQueued {
		t.Fatal("flow did not complete")
	}
}
