package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// A newcomer reads the thumbprints before a Slack app exists: `check --only vcenters`
// loads a config with nothing but vCenters, shows the certificate of the one not pinned
// yet without sending it the password, and passes once it is pinned.
func TestCheckOnlyVCentersNeedsNoSlack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := xvmsim.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	dir := t.TempDir()
	east, west := lab.VC("vc-east"), lab.VC("vc-west")
	write := func(westPin string) string {
		var b strings.Builder
		// The Slack app does not exist yet: its token's variable is not set.
		b.WriteString("slack:\n  bot_token: ${XVMBOT_TEST_TOKEN_NOT_SET}\nvcenters:\n")
		for _, vc := range []*xvmsim.VC{east, west} {
			pw := filepath.Join(dir, vc.Name+".password")
			if err := os.WriteFile(pw, []byte(vc.Password), 0o600); err != nil {
				t.Fatal(err)
			}
			pin := vc.Thumbprint
			if vc == west {
				pin = westPin
			}
			b.WriteString("  - {name: " + vc.Name + ", url: " + vc.URL.String() + ", username: " + vc.Username + ", password_file: " + pw)
			if pin != "" {
				b.WriteString(`, thumbprint: "` + pin + `"`)
			}
			if vc == east {
				b.WriteString(", home: true")
			}
			b.WriteString("}\n")
		}
		path := filepath.Join(dir, "xvmbot.yaml")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	var out bytes.Buffer
	before := west.Requests()
	err = runCheckCommand(ctx, write(""), "vcenters", &out, io.Discard)
	text := out.String()
	if err == nil {
		t.Errorf("check passed with vc-west not pinned:\n%s", text)
	}
	for _, want := range []string{
		"ok    config                 parsed; vcenters valid",
		"ok    vcenter vc-east",
		`PIN   vcenter vc-west        not pinned: add thumbprint: "` + west.Thumbprint + `" after checking it out of band (SHA-256 ` + west.ThumbprintSHA256,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("check --only vcenters lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "slack") || strings.Contains(text, "approver") {
		t.Errorf("check --only vcenters checked more than vCenters:\n%s", text)
	}
	if n := west.Requests() - before; n != 0 || west.RefusedLogins() != 0 {
		t.Errorf("vc-west, not pinned, got %d SOAP requests: its password may have been sent to an unverified server", n)
	}

	out.Reset()
	if err := runCheckCommand(ctx, write(west.Thumbprint), "vcenters", &out, io.Discard); err != nil {
		t.Fatalf("check --only vcenters of pinned vCenters: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "checks passed: vcenters (the rest was not checked: --only)") {
		t.Errorf("output:\n%s", out.String())
	}
	if err := runCheckCommand(ctx, write(""), "vcenter", io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "choose from vcenters,") {
		t.Errorf("--only with a misspelt part: %v", err)
	}
}

// Each Slack check is tried, and a failure there says what to do; what cannot be tried
// from here says skip, never ok.
func TestCheckTriesSlackApproversAndDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws := slacksim.New()
	defer ws.Close()
	for id, name := range map[string]string{"U1": "ann", "U2": "ben", "U3": "cid", "S1": "vm-admins"} {
		ws.AddUser(id, name)
	}
	ws.SetGroup("S1", "U1", "U2")
	ws.Deactivate("U3")
	ws.RequireTokens("xoxb-good", "xapp-good")
	logger := slog.New(slog.DiscardHandler)
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name    string
		scopes  []string
		mutate  func(*config.Config)
		want    []string
		wantErr bool
	}{
		{name: "all good, socket mode", scopes: botScopes, want: []string{
			"ok    slack auth.test", "ok    slack scopes", "ok    slack app token        apps.connections.open answered",
			"ok    approver S1            user group @vm-admins, 2 member(s)", "ok    quorum                 2 approver(s) for a quorum of 2; note: self-approval is off",
		}},
		{name: "scopes missing", scopes: []string{"commands"}, wantErr: true,
			want: []string{"FAIL  slack scopes           the bot token lacks chat:write, usergroups:read"}},
		{name: "no scopes header", want: []string{"skip  slack scopes"}},
		{name: "wrong app token", scopes: botScopes, wantErr: true, mutate: func(c *config.Config) { c.Slack.AppToken = "xapp-other" },
			want: []string{"FAIL  slack app token        invalid_auth"}},
		{name: "wrong bot token", scopes: botScopes, wantErr: true, mutate: func(c *config.Config) { c.Slack.BotToken = "xoxb-other" },
			want: []string{"FAIL  slack auth.test        invalid_auth"}},
		{name: "http mode: the signing secret is not ok, it is not tried", scopes: botScopes,
			mutate: func(c *config.Config) { c.Slack.Mode, c.Slack.SigningSecret = "http", "s" },
			want:   []string{"skip  slack signing secret"}},
		{name: "quorum out of reach", scopes: botScopes, wantErr: true, mutate: func(c *config.Config) { c.Approvals.QuorumByVCenter = map[string]int{"vc-west": 3} },
			want: []string{"FAIL  quorum                 approvals.quorum_by_vcenter[vc-west] is 3 but the approvers are 2 people"}},
		{name: "deactivated and unknown approvers", scopes: botScopes, wantErr: true,
			mutate: func(c *config.Config) { c.Approvals.Approvers = []string{"U3", "U9", "S9", "S1"} },
			want:   []string{"FAIL  approver U3            @cid is deactivated", "FAIL  approver U9            users.info: user_not_found", "FAIL  approver S9            no such user group"}},
		{name: "data dir is not a directory", scopes: botScopes, wantErr: true, mutate: func(c *config.Config) { c.NATS.DataDir = filepath.Join(file, "data") },
			want: []string{"FAIL  data dir               " + file + " is not a directory"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ws.SetScopes(tt.scopes...)
			cfg := config.Default()
			cfg.Slack = config.SlackConfig{Mode: "socket", BotToken: "xoxb-good", AppToken: "xapp-good", APIURL: ws.APIURL()}
			cfg.Approvals.Approvers, cfg.Approvals.Quorum = []string{"S1"}, 2
			cfg.NATS.DataDir = filepath.Join(t.TempDir(), "data")
			if tt.mutate != nil {
				tt.mutate(cfg)
			}
			var out bytes.Buffer
			err := runCheckParts(ctx, cfg, []string{"slack", "approvals", "data"}, &out, logger)
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error %v\n%s", err, tt.wantErr, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// The scopes check asks for what the app manifest asks for, no more and no less.
func TestCheckScopesAreTheManifests(t *testing.T) {
	b, err := os.ReadFile("../../deploy/slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
	}
	if err := yaml.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	got, want := strings.Join(botScopes, ","), strings.Join(manifest.OAuth.Scopes.Bot, ",")
	if got != want {
		t.Fatalf("check asks for scopes %s; deploy/slack-app-manifest.yaml gives the bot %s", got, want)
	}
}
