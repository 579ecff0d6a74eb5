package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest config that loads; each case below adds to it or replaces a line.
const minimal = `
slack:
  mode: http
  bot_token: xoxb-1234-abcd
  signing_secret: 8f742231b10e8888abcd99yyyzzz85a5
vcenters:
  - {name: vc-east, url: https://e/sdk, username: u, password: pw-east, thumbprint: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01", home: true}
  - {name: vc-west, url: https://w/sdk, username: u, password: pw-west, thumbprint: "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45"}
approvals:
  approvers: [U012ABC]
`

func parseText(t *testing.T, text string, env map[string]string) (*Config, error) {
	t.Helper()
	return Parse([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, t.TempDir())
}

// A section given in part keeps the defaults of the keys it does not set, and a file
// that omits a section gets that section's default.
func TestSectionDefaults(t *testing.T) {
	cfg, err := parseText(t, minimal+`
http:
  listen: 127.0.0.1:8081
limits:
  per_host: 3
log:
  format: json
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"http.listen as set", cfg.HTTP.Listen, "127.0.0.1:8081"},
		{"http.ops_listen default", cfg.HTTP.OpsListen, DefaultHTTPConfig.OpsListen},
		{"limits.per_host as set", cfg.Limits.PerHost, 3},
		{"limits.max_concurrent default", cfg.Limits.MaxConcurrent, DefaultLimitsConfig.MaxConcurrent},
		{"limits.max_vms_per_request default", cfg.Limits.MaxVMsPerRequest, DefaultLimitsConfig.MaxVMsPerRequest},
		{"log.format as set", cfg.Log.Format, "json"},
		{"log.level default", cfg.Log.Level, "info"},
		{"slack.progress_interval default", cfg.Slack.ProgressInterval, 3 * time.Second},
		{"slack.table_above default", cfg.Slack.TableAbove, 20},
		{"slack.max_command_bytes default", cfg.Slack.MaxCommandBytes, DefaultSlackConfig.MaxCommandBytes},
		{"nats default (section absent)", cfg.NATS.DataDir, "./xvm-data"},
		{"approvals.expire_after default", cfg.Approvals.ExpireAfter, 4 * time.Hour},
		{"approvals.run_within default", cfg.Approvals.RunWithin, DefaultApprovalsConfig.RunWithin},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	// The defaults themselves are never written to by a load.
	if DefaultHTTPConfig.Listen != "127.0.0.1:8080" || DefaultLogConfig.Format != "text" {
		t.Fatalf("a load changed the package defaults: %+v %+v", DefaultHTTPConfig, DefaultLogConfig)
	}
}

// Findings a person can act on: each names its key, and none shows a secret.
func TestValidationNamesTheKey(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(minimal, old) {
			t.Fatalf("minimal config has no %q", old)
		}
		return strings.Replace(minimal, old, new, 1)
	}
	const tokenSecret = "abcd-not-a-token-9f8e7d"
	env := map[string]string{"QUORUM": "hunter2-secret", "BOT": "xapp-1-A0-hunter3"}
	for _, tt := range []struct {
		name, text string
		want       []string
		secrets    []string // must not appear in the error
	}{
		{"thumbprint cut short", replace(`thumbprint: "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45"`, `thumbprint: "EF:01:23"`),
			[]string{`vcenters[1] (vc-west).thumbprint: thumbprint "EF:01:23" is neither SHA-1 (20 bytes) nor SHA-256 (32 bytes)`}, nil},
		{"ui_url not https", replace(`thumbprint: "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45"`, `thumbprint: "EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45", ui_url: "http://vc-west/ui/"`),
			[]string{"vcenters[1] (vc-west).ui_url must start with https://"}, nil},
		{"log level", minimal + "log:\n  level: verbose\n", []string{`log.level must be debug, info, warn or error, not "verbose"`}, nil},
		{"log format", minimal + "log:\n  format: yaml\n", []string{`log.format must be text or json, not "yaml"`}, nil},
		{"bot token is an app token", replace("bot_token: xoxb-1234-abcd", "bot_token: ${BOT}"),
			[]string{"slack.bot_token holds an app-level token (xapp-…); it wants a bot token (xoxb-…)"}, []string{"hunter3"}},
		{"bot token of no known kind", replace("bot_token: xoxb-1234-abcd", "bot_token: "+tokenSecret),
			[]string{"slack.bot_token does not start with xoxb-"}, []string{tokenSecret}},
		{"app token is a bot token", replace("mode: http", "mode: socket\n  app_token: xoxb-99-zz-app"),
			[]string{"slack.app_token holds a bot token (xoxb-…); it wants an app-level token (xapp-…)"}, []string{"xoxb-99-zz-app"}},
		{"app token of no known kind", replace("mode: http", "mode: socket\n  app_token: "+tokenSecret),
			[]string{"slack.app_token does not start with xapp-"}, []string{tokenSecret}},
		{"signing secret is a token", replace("signing_secret: 8f742231b10e8888abcd99yyyzzz85a5", "signing_secret: xoxp-12-34-user"),
			[]string{"slack.signing_secret holds a user token (xoxp-…)"}, []string{"xoxp-12-34-user"}},
		{"duration in words", minimal + "nats:\n  ack_wait: 3 days\n",
			[]string{`nats.ack_wait (line 12): want a duration like 30s, 10m or 72h, got "3 days"`}, nil},
		{"number in words", replace("approvers: [U012ABC]", "approvers: [U012ABC]\n  quorum: two"),
			[]string{`approvals.quorum (line 11): want a whole number, got "two"`}, nil},
		{"expanded value is not shown", replace("approvers: [U012ABC]", "approvers: [U012ABC]\n  quorum: ${QUORUM}"),
			[]string{`approvals.quorum (line 11): want a whole number, got "${QUORUM}" (its expanded value is not shown)`}, []string{"hunter2"}},
		{"bool in words", replace("thumbprint: \"EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45\"}", "thumbprint: \"EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45\", home: maybe}"),
			[]string{`vcenters[1].home (line 8): want true or false, got "maybe"`}, nil},
		{"one channel, not a list", replace("mode: http", "mode: http\n  channels: C0MOVES"),
			[]string{`slack.channels (line 4): want a list, got "C0MOVES"`}, nil},
		{"a list where one value goes", replace("mode: http", "mode: [http]"),
			[]string{`slack.mode (line 3): want a single value, got a list`}, nil},
		{"a section that is not a mapping", minimal + "log: debug\n",
			[]string{`log (line 11): want a mapping with the keys format, level, got "debug"`}, nil},
		{"unknown key in a list item", replace("password: pw-west,", "passwrd: pw-west,"),
			[]string{"vcenters[1].passwrd (line 8): unknown key; vcenters[1] has home, insecure, mirror_max_age, name, password, password_file"}, []string{"pw-west"}},
		{"a negative mirror age", replace("password: pw-west,", "password: pw-west, mirror_max_age: -5s,"),
			[]string{"vcenters[1] (vc-west).mirror_max_age must not be negative (0: no inventory mirror)"}, []string{"pw-west"}},
		{"a limit in words", minimal + "limits:\n  max_concurrent: lots\n",
			[]string{`limits.max_concurrent (line 12): want a whole number, got "lots"`}, nil},
		{"a key set twice", replace("mode: http", "mode: http\n  mode: socket"),
			[]string{`slack.mode (line 4): set twice (first on line 3); keep one`}, nil},
		{"a name set twice in a map", replace("approvers: [U012ABC]", "approvers: [U012ABC]\n  quorum_by_vcenter: {vc-west: 2, vc-west: 3}"),
			[]string{`approvals.quorum_by_vcenter.vc-west (line 11): set twice (first on line 11); keep one`}, nil},
		{"a tab indents", replace("  mode: http", "\tmode: http"),
			[]string{"line 3: the file is not valid YAML: found character that cannot start any token (a tab? YAML indents with spaces only)"}, nil},
		{"a key out of line", replace("  bot_token: xoxb-1234-abcd", " bot_token: xoxb-1234-abcd"),
			// go-yaml numbers this error by where the enclosing mapping begins, not where it broke.
			[]string{": the file is not valid YAML: did not find expected key (check this line's indentation"}, nil},
		{"unknown section", minimal + "slak:\n  mode: http\n", []string{"slak (line 11): unknown key; the config has approvals, http, limits, log, nats, slack, vcenters, worker"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseText(t, tt.text, env)
			if err == nil {
				t.Fatalf("loaded; want an error mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to mention %q", err, w)
				}
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a secret %q: %v", s, err)
				}
			}
		})
	}
}

// Values that were accepted before the checks above stay accepted.
func TestValidationAccepts(t *testing.T) {
	for _, tt := range []struct{ name, text string }{
		{"upper-case level", minimal + "log:\n  level: DEBUG\n"},
		{"every level", minimal + "log:\n  level: warn\n  format: json\n"},
		{"socket mode with an app token", strings.Replace(minimal, "mode: http", "mode: socket\n  app_token: xapp-1-A0-1234", 1)},
		{"empty section keeps defaults", minimal + "log:\n"},
		{"merge keys", minimal + "log:\n  <<: [{level: warn}, {format: json}]\n"},
		{"anchors and merge keys", minimal + "x-common: &c {level: info}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseText(t, tt.text, nil)
			if tt.name == "anchors and merge keys" {
				// An unknown top-level key stays an error, anchor or not.
				if err == nil || !strings.Contains(err.Error(), "x-common") {
					t.Fatalf("err = %v, want it to name x-common", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The logger follows log.level and log.format.
func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	LogConfig{Level: "warn", Format: "json"}.NewLogger(&buf).Info("hidden")
	LogConfig{Level: "warn", Format: "json"}.NewLogger(&buf).Warn("shown", "vm", "web-01")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, `"msg":"shown","vm":"web-01"`) {
		t.Fatalf("log output = %q", out)
	}
	buf.Reset()
	LogConfig{Level: "DEBUG", Format: "text"}.NewLogger(&buf).Debug("detail")
	if !strings.Contains(buf.String(), "level=DEBUG msg=detail") {
		t.Fatalf("log output = %q", buf.String())
	}
}

// `xvmbot check --only vcenters` validates a config that has neither Slack settings nor
// thumbprints yet: the vcenters section alone passes, and the pins rule still names
// every vCenter to pin when asked (as Validate does for serve).
func TestValidateSectionsApart(t *testing.T) {
	text := `
vcenters:
  - {name: vc-east, url: https://e/sdk, username: u, password: pw-east, home: true}
  - {name: vc-west, url: https://w/sdk, username: u, password: pw-west}
`
	cfg, err := decode([]byte(text), func(string) (string, bool) { return "", false }, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateSections("vcenters"); err != nil {
		t.Errorf("vcenters without thumbprints: %v; want valid until pins are asked for", err)
	}
	err = cfg.ValidateSections("vcenters", "pins")
	for _, want := range []string{"vcenters[0] (vc-east).thumbprint is required", "vcenters[1] (vc-west).thumbprint is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pins: err = %v, want it to mention %q", err, want)
		}
	}
	err = cfg.Validate()
	for _, want := range []string{"slack.bot_token is required", "thumbprint is required", "approvals.approvers"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: err = %v, want it to mention %q", err, want)
		}
	}
}

// Read for `xvmbot check`, an ${ENV} not set is a finding of its own section only: the
// vCenters can be checked before the Slack tokens exist.
func TestUnsetEnvIsASectionsFinding(t *testing.T) {
	text := `
slack:
  bot_token: ${XVM_NOT_SET}
vcenters:
  - {name: vc-east, url: https://e/sdk, username: u, password: pw-east, home: true}
  - {name: vc-west, url: https://w/sdk, username: u, password: pw-west}
`
	none := func(string) (string, bool) { return "", false }
	if _, err := decode([]byte(text), none, t.TempDir()); err == nil || !strings.Contains(err.Error(), "line 3: environment variable XVM_NOT_SET is not set") {
		t.Fatalf("strict decode: %v", err)
	}
	cfg, err := decodeLenient([]byte(text), none, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateSections("vcenters"); err != nil {
		t.Errorf("vcenters: %v", err)
	}
	if err := cfg.ValidateSections("slack"); err == nil || !strings.Contains(err.Error(), "slack: line 3: environment variable XVM_NOT_SET is not set") {
		t.Errorf("slack: %v; want the unset variable named", err)
	}
}
