package config

import (
	"strings"
	"testing"
)

// A worker never talks to Slack: with WithoutSlack (what `xvmbot worker` loads with) a
// config whose Slack tokens are missing, unset in the environment or absent altogether
// loads, while the bot that shares the file is still refused, naming the key.
func TestWorkerNeedsNoSlackTokens(t *testing.T) {
	t.Parallel()
	rest := minimal[strings.Index(minimal, "vcenters:"):]
	for _, tc := range []struct{ name, text string }{
		{"tokens from an unset environment", "slack:\n  mode: socket\n  bot_token: ${SLACK_BOT_TOKEN}\n  app_token: ${SLACK_APP_TOKEN}\n" + rest},
		{"no slack section", rest},
		{"socket mode without an app token", "slack:\n  bot_token: xoxb-1234-abcd\n" + rest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseText(t, tc.text, nil); err == nil || !strings.Contains(strings.ToLower(err.Error()), "slack") {
				t.Errorf("as a bot: err = %v, want one naming the Slack key or variable", err)
			}
			cfg, err := Parse([]byte(tc.text), func(string) (string, bool) { return "", false }, t.TempDir(), WithoutSlack())
			if err != nil {
				t.Fatalf("as a worker: %v", err)
			}
			if !cfg.Slack.BotToken.IsZero() || len(cfg.VCenters) != 2 {
				t.Errorf("as a worker: slack %+v, vcenters %d; want no token and the rest of the file", cfg.Slack, len(cfg.VCenters))
			}
		})
	}
	// The rest of the file is checked as strictly as ever.
	bad := minimal[strings.Index(minimal, "vcenters:"):] + "limits:\n  max_concurent: 3\n"
	if _, err := Parse([]byte(bad), func(string) (string, bool) { return "", false }, t.TempDir(), WithoutSlack()); err == nil {
		t.Error("as a worker, an unknown key outside slack loaded")
	}
}
