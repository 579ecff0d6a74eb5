package vcenter

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// guardedVC is a stock simulator whose SSO can be told to refuse every login, as a
// vCenter does once the service account's password was changed or the account locked;
// it counts the logins it sees.
type guardedVC struct {
	cfg    Config
	logins atomic.Int64
	refuse atomic.Bool
}

func startGuardedVC(t *testing.T, name string) *guardedVC {
	t.Helper()
	g := &guardedVC{}
	m := simulator.VPX()
	var s *simulator.Server
	err := xvmsim.StartSerially(m, func() error {
		if err := m.Create(); err != nil {
			return err
		}
		m.Map().Handler = func(_ *simulator.Context, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
			if method.Name == "Login" {
				g.logins.Add(1)
				if g.refuse.Load() {
					return nil, &types.InvalidLogin{}
				}
			}
			return nil, nil
		}
		m.Service.TLS = new(tls.Config)
		m.Service.Listen = &url.URL{User: url.UserPassword(testUser, testPassword)}
		s = m.Service.NewServer()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Remove() })
	u := *s.URL
	u.User = nil
	g.cfg = Config{Name: name, URL: u.String(), Username: testUser, Password: secret.Secret(testPassword),
		Thumbprint: soap.ThumbprintSHA1(s.Certificate())}
	return g
}

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logRecords decodes the JSON log lines written so far.
func logRecords(t *testing.T, logs *strings.Builder, mu *sync.Mutex) []map[string]any {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// A vCenter that refuses the service account's credentials is not asked again for a
// pause that grows from 1m to 30m: probes, session re-creation on use and users'
// lookups all get the refusal without a login, logged once at ERROR with what to fix
// and no password, shown in xvm_vcenter_up and xvm_vcenter_login_refused. Once the
// vCenter accepts the credentials again, the pause starts over from 1m.
func TestRefusedLoginBacksOff(t *testing.T) {
	t.Parallel()
	vc := startGuardedVC(t, "vc-a")
	vc.refuse.Store(true)
	var logs strings.Builder
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	m, err := NewManager([]Config{vc.cfg}, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	clock := &testClock{t: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}
	m.conns["vc-a"].now = clock.now
	ctx := context.Background()

	// Everything that needs a session, many times over: one login reaches the vCenter.
	uses := map[string]func() error{
		"ping":   func() error { return m.Ping(ctx, "vc-a") },
		"info":   func() error { _, err := m.Info(ctx, "vc-a"); return err },
		"locate": func() error { _, err := m.Locate(ctx, "vc-a", "DC0_H0_VM0"); return err },
		"list":   func() error { _, err := m.List(ctx, "vc-a", KindClusters, "", Scope{}); return err },
	}
	for range 10 {
		for what, use := range uses {
			err := use()
			var f *Fault
			if !errors.As(err, &f) || f.Kind != "InvalidLogin" || f.Retryable {
				t.Fatalf("%s: err = %v, want a permanent InvalidLogin fault", what, err)
			}
			for _, want := range []string{"refused the service account's credentials", "does not log in again before 09:01 UTC"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %q does not say %q", what, err, want)
				}
			}
			if !strings.Contains(f.Hint, "password file of vcenters[vc-a]") {
				t.Errorf("%s: hint %q does not say what to fix", what, f.Hint)
			}
		}
	}
	if n := vc.logins.Load(); n != 1 {
		t.Fatalf("%d logins reached the vCenter for 40 uses, want 1", n)
	}
	if up, refused := metricValue(t, reg, "xvm_vcenter_up", "vc-a"), metricValue(t, reg, "xvm_vcenter_login_refused", "vc-a"); up != 0 || refused != 1 {
		t.Errorf("xvm_vcenter_up = %v, xvm_vcenter_login_refused = %v; want 0 and 1", up, refused)
	}

	// The pause doubles with each refusal, up to 30 minutes; within it nothing is tried.
	want := int64(1)
	for _, pause := range []time.Duration{1, 2, 4, 8, 16, 30, 30} {
		pause *= time.Minute
		clock.advance(pause - time.Second)
		_ = m.Ping(ctx, "vc-a")
		if n := vc.logins.Load(); n != want {
			t.Fatalf("a login %s into a pause of %s (%d logins, want %d)", pause-time.Second, pause, n, want)
		}
		clock.advance(time.Second)
		_ = m.Ping(ctx, "vc-a")
		want++
		if n := vc.logins.Load(); n != want {
			t.Fatalf("no login once the pause of %s was over (%d logins, want %d)", pause, n, want)
		}
	}

	errorsLogged, warnings := 0, 0
	for _, r := range logRecords(t, &logs, &logMu) {
		line, _ := json.Marshal(r)
		if strings.Contains(string(line), testPassword) {
			t.Errorf("the password appears in the log: %s", line)
		}
		switch r["level"] {
		case "ERROR":
			errorsLogged++
			if msg, _ := r["msg"].(string); !strings.Contains(msg, "check the username and password") || r["vcenter"] != "vc-a" {
				t.Errorf("the ERROR does not say which vCenter and what to fix: %s", line)
			}
		case "WARN":
			if msg, _ := r["msg"].(string); strings.Contains(msg, "still refuses") {
				warnings++
			}
		}
	}
	if errorsLogged != 1 || warnings != 7 {
		t.Errorf("%d ERROR and %d 'still refuses' WARN records for 8 refusals, want 1 and 7", errorsLogged, warnings)
	}

	// The account is unlocked: the next try after the pause logs in, and a new refusal
	// later starts again from one minute.
	vc.refuse.Store(false)
	clock.advance(30 * time.Minute)
	if err := m.Ping(ctx, "vc-a"); err != nil {
		t.Fatalf("ping once the vCenter accepts the credentials again: %v", err)
	}
	if up, refused := metricValue(t, reg, "xvm_vcenter_up", "vc-a"), metricValue(t, reg, "xvm_vcenter_login_refused", "vc-a"); up != 1 || refused != 0 {
		t.Errorf("after a login: xvm_vcenter_up = %v, xvm_vcenter_login_refused = %v; want 1 and 0", up, refused)
	}
	m.Close(ctx) // drop the session so that the next use logs in
	vc.refuse.Store(true)
	before := vc.logins.Load()
	_ = m.Ping(ctx, "vc-a")
	clock.advance(time.Minute)
	_ = m.Ping(ctx, "vc-a")
	if n := vc.logins.Load() - before; n != 2 {
		t.Errorf("%d logins over a new refusal and one minute, want 2: the pause did not start over", n)
	}
}
