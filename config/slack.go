package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/bot"
	"github.com/xvmbot/xvmbot/secret"
)

// SlackConfig is the Slack app's side.
type SlackConfig struct {
	Mode              string        `yaml:"mode"` // socket | http
	BotToken          secret.Secret `yaml:"bot_token"`
	BotTokenFile      string        `yaml:"bot_token_file"`
	AppToken          secret.Secret `yaml:"app_token"`
	AppTokenFile      string        `yaml:"app_token_file"`
	SigningSecret     secret.Secret `yaml:"signing_secret"`
	SigningSecretFile string        `yaml:"signing_secret_file"`
	APIURL            string        `yaml:"api_url"`
	Channels          []string      `yaml:"channels"`
	ProgressInterval  time.Duration `yaml:"progress_interval"`
	// EditsPerMinute is the app's budget of message edits (default 40; Slack allows about
	// 50 a minute per app). Progress edits beyond it are sent later with the newest state.
	// Negative: no budget.
	EditsPerMinute int `yaml:"edits_per_minute"`
	// TableAbove is the number of VMs above which a request's thread shows its progress
	// as one table message, edited in place, instead of one message per VM; failures are
	// still posted one by one (default 20; 0 = the default; negative: never).
	TableAbove int          `yaml:"table_above"`
	Digest     DigestConfig `yaml:"digest"`
	// Workers and WorkQueue bound the work done after each acknowledgement (pre-flight,
	// approvals, posts): beyond Workers running and WorkQueue waiting, a command or click
	// is answered "busy, try again" at once and nothing is stored. 0 = default.
	Workers   int `yaml:"workers"`
	WorkQueue int `yaml:"work_queue"`
	// MaxCommandBytes caps the text of one /xvm command (0 = 131072, room for 5,000 VM
	// names of about 25 characters). A longer one is refused before it is read, with an
	// answer that names the limit.
	MaxCommandBytes int `yaml:"max_command_bytes"`
}

// DefaultSlackConfig is the slack section's default: Socket Mode.
var DefaultSlackConfig = SlackConfig{Mode: "socket", ProgressInterval: 3 * time.Second, MaxCommandBytes: bot.DefaultMaxCommandBytes,
	TableAbove: bot.DefaultTableAbove}

// UnmarshalYAML starts from DefaultSlackConfig.
func (s *SlackConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*s = DefaultSlackConfig
	type plain SlackConfig
	return unmarshal((*plain)(s))
}

// DigestConfig schedules the stats post (/xvm stats) to a channel; no channel, no digest.
// Posts are due at wall-clock times, and one bot replica posts each (docs/digest.md).
type DigestConfig struct {
	Channel string        `yaml:"channel"`
	Every   time.Duration `yaml:"every"`  // default 24h
	Window  time.Duration `yaml:"window"` // what each post covers; default every
	// At is the time of day ("08:00") the digest is due, in Timezone; every must then be
	// a whole number of days. With neither at nor timezone, posts are due at multiples of
	// every (24h: midnight UTC, 1h: on the hour).
	At string `yaml:"at"`
	// Timezone is at's IANA time zone name (default UTC); set alone, at is 00:00.
	Timezone string `yaml:"timezone"`
}

// Schedule returns the bot's digest: its channel, and when posts are due.
func (d DigestConfig) Schedule() (bot.Digest, error) {
	out := bot.Digest{Channel: d.Channel, Every: d.Every, Window: d.Window, Location: time.UTC}
	if d.Timezone != "" {
		l, err := time.LoadLocation(d.Timezone)
		if err != nil {
			return bot.Digest{}, fmt.Errorf("slack.digest.timezone: %w", err)
		}
		out.Location = l
	}
	if d.At != "" {
		at, err := time.Parse("15:04", d.At)
		if err != nil {
			return bot.Digest{}, fmt.Errorf("slack.digest.at must be a time of day such as 08:00, not %q", d.At)
		}
		out.At = time.Duration(at.Hour())*time.Hour + time.Duration(at.Minute())*time.Minute
	}
	out.Daily = d.At != "" || d.Timezone != ""
	return out, nil
}

// Bounds of slack.max_command_bytes: a few names at least, and well inside the 1 MiB the
// HTTP transport reads of a request body (which also carries the command's other fields,
// form-encoded).
const (
	minCommandBytes = 1 << 10
	maxCommandBytes = 512 << 10
)

func (s SlackConfig) validate() error {
	var p problems
	switch s.Mode {
	case "socket":
		if s.AppToken.IsZero() {
			p.add("slack.app_token is required in socket mode (an xapp- app-level token with connections:write)")
		}
	case "http":
		if s.SigningSecret.IsZero() {
			p.add("slack.signing_secret is required in http mode")
		}
	default:
		p.add("slack.mode must be socket or http, not %q", s.Mode)
	}
	if s.BotToken.IsZero() {
		p.add("slack.bot_token is required (an xoxb- bot token)")
	}
	if err := checkToken("slack.bot_token", s.BotToken, botToken); err != nil {
		p = append(p, err)
	}
	if err := checkToken("slack.app_token", s.AppToken, appToken); err != nil {
		p = append(p, err)
	}
	if k, ok := tokenKindOf(s.SigningSecret); ok {
		p.add("slack.signing_secret holds %s (%s…), not the app's signing secret (Basic Information → App Credentials → Signing Secret)", k.what, k.prefix)
	}
	if s.Workers < 0 || s.WorkQueue < 0 {
		p.add("slack.workers and slack.work_queue must not be negative (0 = default)")
	}
	if d := s.Digest; d.Channel != "" && (d.Every < 0 || d.Every > 0 && d.Every < time.Minute) {
		p.add("slack.digest.every must be at least 1m (default 24h)")
	}
	if d := s.Digest; d.Channel != "" {
		if _, err := d.Schedule(); err != nil {
			p = append(p, err)
		}
		if (d.At != "" || d.Timezone != "") && d.Every%(24*time.Hour) != 0 {
			p.add("slack.digest.at and slack.digest.timezone need slack.digest.every to be a whole number of days (24h, 168h), not %v", d.Every)
		}
	}
	if n := s.MaxCommandBytes; n != 0 && (n < minCommandBytes || n > maxCommandBytes) {
		p.add("slack.max_command_bytes must be between %d and %d (0 = the default, %d)", minCommandBytes, maxCommandBytes, bot.DefaultMaxCommandBytes)
	}
	return p.err()
}

// tokenKind is one kind of Slack token, told by its prefix (docs/security.md lists them).
type tokenKind struct{ prefix, what string }

var (
	botToken  = tokenKind{"xoxb-", "a bot token"}
	appToken  = tokenKind{"xapp-", "an app-level token"}
	userToken = tokenKind{"xoxp-", "a user token"}
	// Token rotation's refresh tokens; config tokens start xoxe.xoxp-, also caught here.
	refreshToken = tokenKind{"xoxe", "a refresh or configuration token"}
	tokenKinds   = []tokenKind{botToken, appToken, userToken, refreshToken}
)

func tokenKindOf(s secret.Secret) (tokenKind, bool) {
	for _, k := range tokenKinds {
		if strings.HasPrefix(s.Reveal(), k.prefix) {
			return k, true
		}
	}
	return tokenKind{}, false
}

// checkToken says when a token set under key is not of the kind it wants, naming the kind
// it is when that can be told from its prefix; it never shows the value. An empty token
// is another check's business.
func checkToken(key string, s secret.Secret, want tokenKind) error {
	if s.IsZero() || strings.HasPrefix(s.Reveal(), want.prefix) {
		return nil
	}
	if k, ok := tokenKindOf(s); ok {
		return fmt.Errorf("%s holds %s (%s…); it wants %s (%s…)", key, k.what, k.prefix, want.what, want.prefix)
	}
	return fmt.Errorf("%s does not start with %s: it wants %s (the value is not shown)", key, want.prefix, want.what)
}
