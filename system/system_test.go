package system

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/secret"
)

// unreachableConfig is a valid config whose vCenters nobody answers for: New builds
// without reaching them.
func unreachableConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Slack = config.SlackConfig{Mode: "http", BotToken: "xoxb-test", SigningSecret: "s"}
	cfg.HTTP = config.HTTPConfig{Listen: "127.0.0.1:0", OpsListen: "127.0.0.1:0"}
	cfg.NATS.DataDir = filepath.Join(t.TempDir(), "nats")
	cfg.Approvals.Approvers = []string{"U012ABC"}
	for i, name := range []string{"vc-east", "vc-west"} {
		cfg.VCenters = append(cfg.VCenters, config.VCenterConfig{Name: name, URL: "https://127.0.0.1:1/sdk", Username: "u",
			Password: secret.Secret("pw"), Thumbprint: strings.Repeat("AB:", 19) + "AB", Home: i == 0})
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// `xvmbot bot` and `xvmbot worker` need a NATS they share: without nats.url they refuse
// to start and say so.
func TestServeApartNeedsExternalNATS(t *testing.T) {
	for _, r := range []Role{RoleBot, RoleWorker} {
		err := Serve(t.Context(), unreachableConfig(t), r, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "set nats.url") {
			t.Errorf("%s without nats.url: %v, want it to ask for nats.url", r, err)
		}
	}
}

// A port already taken fails New with the key to change, and what New had started (the
// embedded NATS server on its data dir) is stopped again: a second New on the same data
// dir works.
func TestNewNamesTheBusyPortAndCleansUp(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := unreachableConfig(t)
	cfg.HTTP.OpsListen = busy.Addr().String()
	_, err = New(t.Context(), cfg, RoleServe, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "http.ops_listen "+busy.Addr().String()) {
		t.Fatalf("New on a busy ops port: %v, want it to name http.ops_listen", err)
	}

	cfg.HTTP.OpsListen = "127.0.0.1:0"
	s, err := New(t.Context(), cfg, RoleServe, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New after a failed New on the same data dir: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run, cancelled: %v", err)
	}
	if s.SlackAddr() == "" || s.Approvals() == nil || s.Embedded() == nil {
		t.Errorf("serve in http mode: slack %q, approvals %v, embedded %v", s.SlackAddr(), s.Approvals(), s.Embedded())
	}
}
