package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodConfig = `
slack:
  mode: http
  bot_token: ${BOT}
  signing_secret_file: signing.txt
vcenters:
  - name: vc-east
    url: https://vc-east.example.com/sdk
    username: svc-xvm@vsphere.local
    password: "${EAST_PW}"
    thumbprint: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
    home: true
  - name: vc-west
    url: https://vc-west.example.com/sdk
    username: svc-xvm@vsphere.local
    password_file: /dev/null-not-used
    thumbprint: "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45"
approvals:
  approvers: [U012ABC, S0123GRP]
  quorum: 2
  expire_after: 2h
`

func TestParse(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "signing.txt"), []byte("sign-me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "west.pw"), []byte("west: pw # not yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BOT": "xoxb-1", "EAST_PW": `p@ss: "with" yaml chars`}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	good := strings.Replace(goodConfig, "/dev/null-not-used", "west.pw", 1)

	cfg, err := Parse([]byte(good), lookup, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Slack.BotToken.Reveal() != "xoxb-1" || cfg.Slack.SigningSecret.Reveal() != "sign-me" {
		t.Fatalf("slack secrets not resolved")
	}
	if cfg.VCenters[0].Password.Reveal() != env["EAST_PW"] || cfg.VCenters[1].Password.Reveal() != "west: pw # not yaml" {
		t.Fatalf("vcenter passwords not resolved exactly")
	}
	if cfg.Approvals.Quorum != 2 || cfg.Approvals.ExpireAfter.Hours() != 2 || cfg.HTTP.Listen != "127.0.0.1:8080" ||
		cfg.HTTP.OpsListen != "127.0.0.1:9090" || cfg.NATS.DataDir != "./xvm-data" {
		t.Fatalf("values/defaults wrong: %+v", cfg)
	}

	replace := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	bad := []struct{ name, text, want string }{
		{"unknown key", good + "\nlog:\n  levl: debug\n", "levl"},
		{"missing env", replace("${BOT}", "${NOPE}"), "NOPE is not set"},
		{"no thumbprint", replace(`thumbprint: "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45"`, ""), "thumbprint is required"},
		{"two homes", replace(`thumbprint: "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45"`, "thumbprint: \"EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45\"\n    home: true"), "exactly one must have home"},
		{"plain http url", replace("https://vc-west", "http://vc-west"), "must start with https://"},
		{"bad mode", replace("mode: http", "mode: carrier-pigeon"), "slack.mode must be socket or http"},
		{"negative plan reuse", good + "\nworker:\n  plan_reuse: -1s\n", "worker.plan_reuse and worker.hold_for must not be negative"},
		{"negative workers", replace("mode: http", "mode: http\n  workers: -1"), "slack.workers and slack.work_queue must not be negative"},
		{"bad approver", replace("U012ABC, S0123GRP", "alice"), "is not a Slack user"},
		{"run_within zero", replace("expire_after: 2h", "expire_after: 2h\n  run_within: 0s"), "approvals.run_within must be at least 1s"},
		{"trusted key not a key", replace("expire_after: 2h", "expire_after: 2h\n  trusted_keys: [SUAFORGOTTHEPUBLICONE]"), "is not a public key"},
		{"listen and url", good + "\nnats:\n  url: nats://n:4222\n  listen: 127.0.0.1:4222\n", "remove one of them"},
		{"listen without port", good + "\nnats:\n  listen: 0.0.0.0\n", "nats.listen \"0.0.0.0\""},
		{"secret twice", replace("signing_secret_file: signing.txt", "signing_secret_file: signing.txt\n  signing_secret: x"), "both set"},
		{"no expiry", replace("expire_after: 2h", "expire_after: 0s"), "approvals.expire_after must be a positive duration"},
		{"negative expiry", replace("expire_after: 2h", "expire_after: -1h"), "approvals.expire_after must be a positive duration"},
		{"ops on the slack address", good + "\nhttp:\n  listen: 127.0.0.1:8080\n  ops_listen: 127.0.0.1:8080\n", "http.ops_listen \"127.0.0.1:8080\" and http.listen \"127.0.0.1:8080\" are the same address"},
		{"ops on the default slack port", good + "\nhttp:\n  ops_listen: 0.0.0.0:8080\n", "are the same address"},
		{"ops without a port", good + "\nhttp:\n  ops_listen: localhost\n", "http.ops_listen \"localhost\""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			_, err := Parse([]byte(text), lookup, dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			for _, s := range []string{"xoxb-1", "sign-me", env["EAST_PW"]} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

// The documented example config must load as it is, given its secrets.
func TestExampleConfigLoads(t *testing.T) {
	raw, err := os.ReadFile("../deploy/xvmbot.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"vc-east", "vc-west"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("pw-"+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.ReplaceAll(string(raw), "/run/secrets/", dir+"/")
	env := map[string]string{"SLACK_BOT_TOKEN": "xoxb-example", "SLACK_APP_TOKEN": "xapp-example"}
	cfg, err := Parse([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, dir)
	if err != nil {
		t.Fatalf("the example config does not load: %v", err)
	}
	if len(cfg.VCenters) != 2 || cfg.VCenters[1].Password.Reveal() != "pw-vc-west" || cfg.Slack.Mode != "socket" {
		t.Fatalf("example config read as %+v", cfg)
	}
}

// An external NATS without credentials and without TLS lets anyone who reaches it queue
// moves: that is said loudly. A password over plain nats:// is noted apart.
func TestNATSUnprotected(t *testing.T) {
	for _, tt := range []struct {
		name    string
		nats    NATSConfig
		want    string // "" = nothing to say
		inClear bool
	}{
		{"embedded", NATSConfig{}, "", false},
		{"no credentials, no tls", NATSConfig{URL: "nats://nats:4222"}, "without credentials", false},
		{"cluster, no credentials, one plain url", NATSConfig{URL: "tls://a:4222,nats://b:4222"}, "without credentials", false},
		{"tls url, no credentials", NATSConfig{URL: "tls://nats:4222"}, "", false},
		{"private ca, no credentials", NATSConfig{URL: "nats://nats:4222", TLS: NATSTLSConfig{CAFile: "ca.pem"}}, "", false},
		{"nkey over plain nats", NATSConfig{URL: "nats://nats:4222", NkeyFile: "w.nk"}, "", false},
		{"creds over plain nats", NATSConfig{URL: "nats://nats:4222", CredsFile: "w.creds"}, "", false},
		{"client certificate", NATSConfig{URL: "nats://nats:4222", TLS: NATSTLSConfig{CertFile: "c.pem", KeyFile: "k.pem"}}, "", false},
		{"password over plain nats", NATSConfig{URL: "nats://nats:4222", User: "xvm-bot"}, "", true},
		{"password in the url", NATSConfig{URL: "nats://xvm-bot:pw@nats:4222"}, "", true},
		{"password over tls", NATSConfig{URL: "tls://nats:4222", User: "xvm-bot"}, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.nats.Unprotected()
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("unprotected() = %q, want %q", got, tt.want)
			}
			if c := tt.nats.PasswordInClear(); c != tt.inClear {
				t.Fatalf("passwordInClear() = %v, want %v", c, tt.inClear)
			}
		})
	}
	if got := RedactURL("nats://xvm-bot:s3cret@a:4222,nats://b:4222"); strings.Contains(got, "s3cret") || !strings.Contains(got, "a:4222") {
		t.Fatalf("redactURL = %q", got)
	}
}

// Each vCenter's vSphere Client is where the messages link its VMs: ui_url, or the host of
// url (its port kept) with /ui/.
func TestClientURLs(t *testing.T) {
	t.Parallel()
	c := &Config{VCenters: []VCenterConfig{
		{Name: "vc-east", URL: "https://vc-east.example.com/sdk"},
		{Name: "vc-west", URL: "https://10.0.0.5:8443/sdk", UIURL: "https://vsphere.west.example.com/ui"},
	}}
	got := c.ClientURLs()
	want := map[string]string{"vc-east": "https://vc-east.example.com/ui/", "vc-west": "https://vsphere.west.example.com/ui/"}
	if len(got) != len(want) || got["vc-east"] != want["vc-east"] || got["vc-west"] != want["vc-west"] {
		t.Errorf("ClientURLs = %v, want %v", got, want)
	}
}
