package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

func TestCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := xvmsim.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	ws := slacksim.New()
	defer ws.Close()
	ws.AddUser("U1", "ann")
	ws.SetScopes(botScopes...)
	dataDir := filepath.Join(t.TempDir(), "data")

	mk := func(mutate func(*config.Config)) *config.Config {
		cfg := config.Default()
		cfg.Slack = config.SlackConfig{Mode: "http", BotToken: "xoxb-check", SigningSecret: "s", APIURL: ws.APIURL()}
		cfg.Approvals.Approvers = []string{"U1"}
		cfg.NATS.DataDir = dataDir
		for i, vc := range lab.VCs() {
			cfg.VCenters = append(cfg.VCenters, config.VCenterConfig{Name: vc.Name, URL: vc.URL.String(), Username: vc.Username,
				Password: secret.Secret(vc.Password), Thumbprint: vc.Thumbprint, Home: i == 0})
		}
		if mutate != nil {
			mutate(cfg)
		}
		return cfg
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	var out bytes.Buffer
	if err := runCheck(ctx, mk(nil), &out, logger); err != nil {
		t.Fatalf("check of a good config failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"vcenter vc-east", "vcenter vc-west", lab.VC("vc-west").InstanceUUID, lab.VC("vc-west").Thumbprint, "slack auth.test",
		"ok    slack scopes", "ok    approver U1            @ann", "ok    quorum                 1 approver(s) for a quorum of 1",
		"ok    data dir               wrote and removed a file in " + filepath.Dir(dataDir), "all checks passed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	err = runCheck(ctx, mk(func(c *config.Config) {
		c.VCenters[1].Thumbprint = strings.TrimSuffix(strings.Repeat("00:", 20), ":")
		c.VCenters[0].Password = "wrong-password"
	}), &out, logger)
	if err == nil {
		t.Fatalf("check passed with a wrong thumbprint and password:\n%s", out.String())
	}
	text := out.String() + err.Error()
	for _, want := range []string{"FAIL  vcenter vc-west", "thumbprint", "FAIL  vcenter vc-east"} {
		if !strings.Contains(text, want) {
			t.Errorf("check output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "wrong-password") || strings.Contains(text, lab.VC("vc-west").Password) {
		t.Errorf("check output leaks a password:\n%s", text)
	}

	// insecure: true says what really happens: next to a thumbprint the certificate is
	// still pinned; without one, nothing is verified.
	out.Reset()
	err = runCheck(ctx, mk(func(c *config.Config) {
		c.VCenters[0].Insecure = true
		c.VCenters[1].Insecure, c.VCenters[1].Thumbprint = true, ""
	}), &out, logger)
	if err != nil {
		t.Fatalf("check with insecure vCenters: %v\n%s", err, out.String())
	}
	line := func(prefix string) string {
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line %q in:\n%s", prefix, out.String())
		return ""
	}
	east, west := line("ok    vcenter vc-east"), line("ok    vcenter vc-west")
	if !strings.Contains(east, "certificate pinned to the configured thumbprint") || !strings.Contains(east, "insecure: true has no effect") ||
		strings.Contains(east, "NOT verified") {
		t.Errorf("vc-east (insecure: true with a thumbprint) reads %q; want pinned, insecure without effect", east)
	}
	if !strings.Contains(west, "certificate NOT verified (insecure: true and no thumbprint)") {
		t.Errorf("vc-west (insecure: true, no thumbprint) reads %q; want NOT verified", west)
	}
}

func TestSimPrintsAUsableConfig(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- runSim(ctx, &out, dir, 0) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "# Try:") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	block := out.String()
	block = block[strings.Index(block, "vcenters:"):strings.Index(block, "# Try:")]
	cfgText := "slack:\n  mode: http\n  bot_token: xoxb-x\n  signing_secret: y\napprovals:\n  approvers: [U1]\n" + block
	cfg, err := config.Parse([]byte(cfgText), os.LookupEnv, dir)
	if err != nil {
		t.Fatalf("the printed block is not a valid config: %v\n%s", err, cfgText)
	}
	if len(cfg.VCenters) != 2 || cfg.VCenters[0].Password.IsZero() || !cfg.VCenters[0].Home {
		t.Fatalf("vcenters = %+v", cfg.VCenters)
	}
	pw, _ := os.ReadFile(filepath.Join(dir, "vc-east.password"))
	if strings.Contains(out.String(), strings.TrimSpace(string(pw))) {
		t.Fatalf("sim printed a password")
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
