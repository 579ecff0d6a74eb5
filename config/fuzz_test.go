package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzFileSecret is the content of the password file the fuzzed configs may reference
// (password_file: pw, bot_token_file: pw, …): a bot token, so that it is a valid one too.
const fuzzFileSecret = "xoxb-file-secret-Zq8#k2"

// fuzzEnvSecret is what every ${ENV} reference expands to.
const fuzzEnvSecret = "env-secret-Wm4!p9"

// FuzzLoadConfig feeds arbitrary bytes to the config loader: it must never panic; a
// secret read from a *_file never appears in an error; and a config that loads never
// shows any of its secrets when printed (%v, %+v, %#v) or marshalled to JSON.
// Seeds: testdata/fuzz/FuzzLoadConfig plus the example config in deploy/.
func FuzzLoadConfig(f *testing.F) {
	if b, err := os.ReadFile("../deploy/xvmbot.example.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(fuzzMinimalConfig))
	f.Add([]byte("slack: {mode: http}\nvcenters: [{name: a, password_file: pw, password: x}]\n"))
	f.Add([]byte("nats: {tls: {cert_file: c}}\n"))
	f.Add([]byte("approvals: {quorum: ${X}}\n"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(fuzzFileSecret+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	lookup := func(string) (string, bool) { return fuzzEnvSecret, true }
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse(raw, lookup, dir)
		if err != nil {
			if strings.Contains(err.Error(), fuzzFileSecret) {
				t.Fatalf("error shows a secret read from a file: %v", err)
			}
			return
		}
		secrets := []string{cfg.Slack.BotToken.Reveal(), cfg.Slack.AppToken.Reveal(), cfg.Slack.SigningSecret.Reveal(), cfg.NATS.Password.Reveal()}
		for _, v := range cfg.VCenters {
			secrets = append(secrets, v.Password.Reveal())
		}
		j, _ := json.Marshal(cfg)
		out := fmt.Sprintf("%v\n%+v\n%#v\n%s", cfg, cfg, cfg, j)
		for _, s := range secrets {
			// Short secrets are substrings of anything; the loader is told real ones.
			if len(s) >= 8 && strings.Contains(out, s) {
				t.Fatalf("a loaded config shows its secret %q when printed:\n%s", s, out)
			}
		}
	})
}

const fuzzMinimalConfig = `slack:
  mode: http
  bot_token_file: pw
  signing_secret: ${SLACK_SIGNING_SECRET}
http:
  listen: 127.0.0.1:0
nats:
  url: nats://127.0.0.1:4222
  password_file: pw
  user: xvm
  tls: {ca_file: /ca.pem}
vcenters:
  - {name: vc-east, url: https://e/sdk, username: u, password_file: pw, thumbprint: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01", home: true}
  - {name: vc-west, url: https://w/sdk, username: u, password: ${VC_WEST_PASSWORD}, insecure: true}
approvals:
  approvers: [U012ABC, S0GROUP]
`
