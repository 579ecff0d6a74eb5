package bot

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

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
