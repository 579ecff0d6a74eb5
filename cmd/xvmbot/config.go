package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot"
	"github.com/xvmbot/xvmbot/secret"
)

// Config is the one YAML file xvmbot reads. Unknown keys are an error; every secret x can
// instead be given as x_file (a path whose content, trimmed, is the secret), and ${ENV}
// references anywhere in a value are expanded.
type Config struct {
	Slack     SlackConfig     `yaml:"slack"`
	HTTP      HTTPConfig      `yaml:"http"`
	NATS      NATSConfig      `yaml:"nats"`
	VCenters  []VCenterConfig `yaml:"vcenters"`
	Approvals ApprovalsConfig `yaml:"approvals"`
	Limits    LimitsConfig    `yaml:"limits"`
	Worker    WorkerConfig    `yaml:"worker"`
	Log       LogConfig       `yaml:"log"`
}

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
	EditsPerMinute int          `yaml:"edits_per_minute"`
	Digest         DigestConfig `yaml:"digest"`
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

// DigestConfig schedules the stats post (/xvm stats) to a channel; no channel, no digest.
type DigestConfig struct {
	Channel string        `yaml:"channel"`
	Every   time.Duration `yaml:"every"`  // default 24h
	Window  time.Duration `yaml:"window"` // what each post covers; default every
}

// HTTPConfig is where xvmbot listens: Slack's requests on one address, the operator's
// metrics and probes on another, so that the one exposed to Slack serves nothing else
// and the other can stay on loopback or inside the cluster.
type HTTPConfig struct {
	// Listen serves /slack/commands, /slack/interactions and /slack/options; it is
	// opened only by a process that runs the bot in http mode.
	Listen string `yaml:"listen"`
	// OpsListen serves /metrics, /healthz and /readyz, in every process. Default
	// 127.0.0.1:9090: loopback, so nothing outside the host reads them unless asked.
	OpsListen string `yaml:"ops_listen"`
}

// NATSConfig says which NATS to use.
type NATSConfig struct {
	URL          string        `yaml:"url"` // empty: embedded server
	DataDir      string        `yaml:"data_dir"`
	Listen       string        `yaml:"listen"` // embedded server's client port ("" = in-process only)
	CredsFile    string        `yaml:"creds_file"`
	Replicas     int           `yaml:"replicas"`
	AckWait      time.Duration `yaml:"ack_wait"`
	RetryDelay   time.Duration `yaml:"retry_delay"`
	MaxStore     int64         `yaml:"max_store"`
	MaxMemory    int64         `yaml:"max_memory"`
	User         string        `yaml:"user"`
	Password     secret.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	// NkeyFile is a file holding a user nkey seed (SU…), for servers that authenticate
	// with nkeys instead of passwords or JWTs.
	NkeyFile string `yaml:"nkey_file"`
	// TLS verifies the server against a private CA and presents a client certificate.
	TLS NATSTLSConfig `yaml:"tls"`
	// LeaseTTL is how long a dead worker's per-VM lease blocks its job from other
	// workers; the live holder renews it every LeaseTTL/3. Default 60s.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// NATSTLSConfig is TLS towards an external NATS server.
type NATSTLSConfig struct {
	CAFile   string `yaml:"ca_file"`   // PEM CA bundle that signed the server certificate
	CertFile string `yaml:"cert_file"` // client certificate (mutual TLS), with key_file
	KeyFile  string `yaml:"key_file"`
}

// VCenterConfig is one vCenter xvmbot talks to.
type VCenterConfig struct {
	Name         string        `yaml:"name"`
	URL          string        `yaml:"url"`
	Username     string        `yaml:"username"`
	Password     secret.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	Thumbprint   string        `yaml:"thumbprint"`
	Insecure     bool          `yaml:"insecure"`
	Home         bool          `yaml:"home"`
	// Windows are change windows for moves INTO this vCenter, e.g. "sat 22:00-sun 04:00"
	// or "daily 01:00-05:00", in Timezone (an IANA name; default UTC). Empty: any time.
	Windows  []string `yaml:"windows"`
	Timezone string   `yaml:"timezone"`
}

// windows returns every vCenter's change windows (validated with the config).
func (c *Config) windows() map[string][]approvals.Window {
	out := map[string][]approvals.Window{}
	for _, v := range c.VCenters {
		if ws, err := v.ParsedWindows(); err == nil && len(ws) > 0 {
			out[v.Name] = ws
		}
	}
	return out
}

// ParsedWindows returns the vCenter's change windows.
func (v VCenterConfig) ParsedWindows() ([]approvals.Window, error) {
	loc := time.UTC
	if v.Timezone != "" {
		l, err := time.LoadLocation(v.Timezone)
		if err != nil {
			return nil, fmt.Errorf("vcenters[%s].timezone: %w", v.Name, err)
		}
		loc = l
	}
	var out []approvals.Window
	for _, s := range v.Windows {
		w, err := approvals.ParseWindow(s, loc)
		if err != nil {
			return nil, fmt.Errorf("vcenters[%s].windows: %w", v.Name, err)
		}
		out = append(out, w)
	}
	return out, nil
}

// ApprovalsConfig is the approval policy.
type ApprovalsConfig struct {
	Approvers         []string       `yaml:"approvers"`
	Quorum            int            `yaml:"quorum"`
	QuorumByVCenter   map[string]int `yaml:"quorum_by_vcenter"` // target vCenter → approvers needed
	AllowSelfApproval bool           `yaml:"allow_self_approval"`
	ExpireAfter       time.Duration  `yaml:"expire_after"`
	// SigningKeyFile holds the bot's approval signing key (an nkey seed, SU…, made with
	// `xvmbot keygen`); `serve` generates one in nats.data_dir when it is unset.
	SigningKeyFile string `yaml:"signing_key_file"`
	// TrustedKeys are the public keys (U…) of the bots whose approvals workers accept; more
	// than one while a key is being replaced. `serve` trusts its own key as well.
	TrustedKeys []string `yaml:"trusted_keys"`
	// RunWithin is how long after its approval a job may still start (default 168h).
	RunWithin time.Duration `yaml:"run_within"`
	// GroupMaxStale is how long the last known members of an approver group may still be
	// used while Slack's usergroups.users.list does not answer (default 10m). Past that,
	// only approvers listed by user ID can decide until Slack answers again; 0 never uses
	// a list older than a minute.
	GroupMaxStale time.Duration `yaml:"group_max_stale"`
}

// LimitsConfig bounds concurrent relocations.
type LimitsConfig struct {
	MaxConcurrent int `yaml:"max_concurrent"`
	PerHost       int `yaml:"per_host"`
	PerDatastore  int `yaml:"per_datastore"`
	PerVCenter    int `yaml:"per_vcenter"`
	// MaxVMsPerRequest caps the VMs of one request, typed, chosen in the wizard or matched
	// by a pattern (0 = 5000); a larger request is refused with an answer that says to
	// split it.
	MaxVMsPerRequest int `yaml:"max_vms_per_request"`
}

// WorkerConfig names this worker process.
type WorkerConfig struct {
	Name        string `yaml:"name"`
	MaxAttempts int    `yaml:"max_attempts"`
	// PlanReuse is how old a pre-flight may be when a job starts on it (shared by the jobs
	// of a request, kept by a job waiting for a slot); HoldFor is how long a job whose
	// host or datastore is full waits in the worker before going back to the queue.
	PlanReuse time.Duration `yaml:"plan_reuse"`
	HoldFor   time.Duration `yaml:"hold_for"`
}

// LogConfig sets the logger.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadConfig reads, expands, decodes strictly, resolves *_file secrets and validates.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(raw, os.LookupEnv, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig is LoadConfig without the file: lookup resolves ${ENV} references and
// relative *_file paths are taken from baseDir.
func ParseConfig(raw []byte, lookup func(string) (string, bool), baseDir string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	if err := expandNode(&root, lookup); err != nil {
		return nil, err
	}
	// Decoding from a re-encoded node keeps values typed as written while letting the
	// decoder reject unknown keys (Node.Decode cannot).
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, fmt.Errorf("re-encode yaml: %w", err)
	}
	cfg := defaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := cfg.resolveFiles(baseDir); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func expandNode(n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode {
		var missing []string
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			return fmt.Errorf("line %d: environment variable %s is not set", n.Line, strings.Join(missing, ", "))
		}
	}
	for _, c := range n.Content {
		if err := expandNode(c, lookup); err != nil {
			return err
		}
	}
	return nil
}

func defaultConfig() *Config {
	return &Config{
		Slack: SlackConfig{Mode: "socket", ProgressInterval: 3 * time.Second, MaxCommandBytes: bot.DefaultMaxCommandBytes},
		HTTP:  HTTPConfig{Listen: "127.0.0.1:8080", OpsListen: "127.0.0.1:9090"},
		NATS:  NATSConfig{DataDir: "./xvm-data", Replicas: 1},
		Approvals: ApprovalsConfig{Quorum: 1, ExpireAfter: 4 * time.Hour, RunWithin: approvals.DefaultRunWithin,
			GroupMaxStale: approvals.DefaultGroupMaxStale},
		// vSphere's own cost model: a vMotion without shared storage costs 4 of a host's
		// 8 units and 16 of a datastore's 128; about 640 operations per vCenter.
		Limits: LimitsConfig{MaxConcurrent: 8, PerHost: 2, PerDatastore: 8, PerVCenter: 128,
			MaxVMsPerRequest: bot.DefaultMaxVMsPerRequest},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

func (c *Config) resolveFiles(baseDir string) error {
	read := func(field string, dst *secret.Secret, file string) error {
		if file == "" {
			return nil
		}
		if !dst.IsZero() {
			return fmt.Errorf("%s and %s_file are both set; keep one", field, field)
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(baseDir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s_file: %w", field, err)
		}
		*dst = secret.Secret(strings.TrimSpace(string(b)))
		if dst.IsZero() {
			return fmt.Errorf("%s_file %s is empty", field, file)
		}
		return nil
	}
	if err := read("slack.bot_token", &c.Slack.BotToken, c.Slack.BotTokenFile); err != nil {
		return err
	}
	if err := read("slack.app_token", &c.Slack.AppToken, c.Slack.AppTokenFile); err != nil {
		return err
	}
	if err := read("slack.signing_secret", &c.Slack.SigningSecret, c.Slack.SigningSecretFile); err != nil {
		return err
	}
	if err := read("nats.password", &c.NATS.Password, c.NATS.PasswordFile); err != nil {
		return err
	}
	if f := c.Approvals.SigningKeyFile; f != "" && !filepath.IsAbs(f) {
		c.Approvals.SigningKeyFile = filepath.Join(baseDir, f)
	}
	for i := range c.VCenters {
		v := &c.VCenters[i]
		if err := read(fmt.Sprintf("vcenters[%s].password", v.Name), &v.Password, v.PasswordFile); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks what can be checked without the network.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Slack.Mode {
	case "socket":
		if c.Slack.AppToken.IsZero() {
			bad("slack.app_token is required in socket mode (an xapp- app-level token with connections:write)")
		}
	case "http":
		if c.Slack.SigningSecret.IsZero() {
			bad("slack.signing_secret is required in http mode")
		}
	default:
		bad("slack.mode must be socket or http, not %q", c.Slack.Mode)
	}
	if c.Worker.PlanReuse < 0 || c.Worker.HoldFor < 0 {
		bad("worker.plan_reuse and worker.hold_for must not be negative (0 = default)")
	}
	if c.Slack.Workers < 0 || c.Slack.WorkQueue < 0 {
		bad("slack.workers and slack.work_queue must not be negative (0 = default)")
	}
	if c.Slack.BotToken.IsZero() {
		bad("slack.bot_token is required (an xoxb- bot token)")
	}
	c.HTTP.validate(bad)
	if c.NATS.URL == "" && c.NATS.DataDir == "" {
		bad("nats.data_dir is required for the embedded server")
	}
	if (c.NATS.TLS.CertFile == "") != (c.NATS.TLS.KeyFile == "") {
		bad("nats.tls: cert_file and key_file go together")
	}
	if c.NATS.URL == "" && (c.NATS.CredsFile != "" || c.NATS.NkeyFile != "" || c.NATS.TLS != (NATSTLSConfig{})) {
		bad("nats: creds_file, nkey_file and tls apply to an external server; set nats.url")
	}
	if c.NATS.Listen != "" {
		if c.NATS.URL != "" {
			bad("nats.listen opens the embedded server's port, and nats.url means there is none; remove one of them")
		} else if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
			bad("nats.listen %q: %v (write host:port, e.g. 127.0.0.1:4222)", c.NATS.Listen, err)
		}
	}
	if len(c.VCenters) < 2 {
		bad("vcenters: at least two are needed to move VMs between them (have %d)", len(c.VCenters))
	}
	names, homes := map[string]bool{}, 0
	for i, v := range c.VCenters {
		where := fmt.Sprintf("vcenters[%d]", i)
		if v.Name == "" {
			bad("%s.name is required", where)
		} else if names[v.Name] {
			bad("%s.name %q is used twice", where, v.Name)
		}
		names[v.Name] = true
		if !strings.HasPrefix(v.URL, "https://") {
			bad("%s (%s).url must start with https://", where, v.Name)
		}
		if v.Username == "" || v.Password.IsZero() {
			bad("%s (%s): username and password (or password_file) are required", where, v.Name)
		}
		if v.Thumbprint == "" && !v.Insecure {
			bad("%s (%s).thumbprint is required (run `xvmbot check` to read it) unless insecure: true", where, v.Name)
		}
		if v.Home {
			homes++
		}
		if _, err := v.ParsedWindows(); err != nil {
			bad("%v", err)
		}
	}
	if homes != 1 && len(c.VCenters) > 0 {
		bad("vcenters: exactly one must have home: true (have %d)", homes)
	}
	if len(c.Approvals.Approvers) == 0 {
		bad("approvals.approvers: list at least one Slack user ID (U…) or user-group ID (S…)")
	}
	for _, a := range c.Approvals.Approvers {
		if !approvals.IsUserID(a) && !approvals.IsGroupID(a) {
			bad("approvals.approvers: %q is not a Slack user (U…/W…) or user-group (S…) ID: write the ID as Slack shows it (upper-case letters and digits, e.g. U012ABC or S0123GRP)", a)
		}
	}
	if c.Approvals.GroupMaxStale < 0 {
		bad("approvals.group_max_stale must not be negative (e.g. 10m; 0 never uses an approver group's members older than a minute)")
	}
	if c.Approvals.Quorum < 1 {
		bad("approvals.quorum must be at least 1")
	}
	for _, k := range c.Approvals.TrustedKeys {
		if !nkeys.IsValidPublicUserKey(k) {
			bad("approvals.trusted_keys: %q is not a public key as `xvmbot keygen` prints it (U…, 56 characters)", k)
		}
	}
	if c.Approvals.RunWithin < time.Second {
		bad("approvals.run_within must be at least 1s (default 168h): it is how long after its approval a job may still start")
	}
	// A request that never expires can be approved weeks later, on a plan made for an
	// inventory that has changed since; 0 used to mean that, silently.
	if c.Approvals.ExpireAfter <= 0 {
		bad("approvals.expire_after must be a positive duration such as 4h (have %s); requests always expire, "+
			"so write a long one (e.g. 168h) for approvals that may take days", c.Approvals.ExpireAfter)
	}
	for name, q := range c.Approvals.QuorumByVCenter {
		if !names[name] {
			bad("approvals.quorum_by_vcenter: %q is not a configured vCenter", name)
		}
		if q < 1 {
			bad("approvals.quorum_by_vcenter[%s] must be at least 1", name)
		}
	}
	if d := c.Slack.Digest; d.Channel != "" && (d.Every < 0 || d.Every > 0 && d.Every < time.Minute) {
		bad("slack.digest.every must be at least 1m (default 24h)")
	}
	if c.Limits.MaxConcurrent < 1 || c.Limits.PerHost < 1 || c.Limits.PerDatastore < 1 || c.Limits.PerVCenter < 1 {
		bad("limits: max_concurrent, per_host, per_datastore and per_vcenter must be at least 1")
	}
	if c.Limits.MaxVMsPerRequest < 0 {
		bad("limits.max_vms_per_request must be at least 1 (0 = the default, %d)", bot.DefaultMaxVMsPerRequest)
	}
	if n := c.Slack.MaxCommandBytes; n != 0 && (n < minCommandBytes || n > maxCommandBytes) {
		bad("slack.max_command_bytes must be between %d and %d (0 = the default, %d)", minCommandBytes, maxCommandBytes, bot.DefaultMaxCommandBytes)
	}
	return errors.Join(errs...)
}

// Bounds of slack.max_command_bytes: a few names at least, and well inside the 1 MiB the
// HTTP transport reads of a request body (which also carries the command's other fields,
// form-encoded).
const (
	minCommandBytes = 1 << 10
	maxCommandBytes = 512 << 10
)

// validate checks both addresses and that they differ: the Slack listener must not
// also serve metrics and probes, which is what sharing an address would ask for.
func (h HTTPConfig) validate(bad func(string, ...any)) {
	lhost, lport, lerr := net.SplitHostPort(h.Listen)
	if lerr != nil {
		bad("http.listen %q: %v", h.Listen, lerr)
	}
	ohost, oport, oerr := net.SplitHostPort(h.OpsListen)
	if oerr != nil {
		bad("http.ops_listen %q: %v (it serves /metrics, /healthz and /readyz; default 127.0.0.1:9090)", h.OpsListen, oerr)
	}
	if lerr != nil || oerr != nil || lport != oport || lport == "0" {
		return
	}
	wildcard := func(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }
	if lhost == ohost || wildcard(lhost) || wildcard(ohost) {
		bad("http.ops_listen %q and http.listen %q are the same address: /metrics, /healthz and /readyz have their "+
			"own listener, apart from Slack's endpoints; give ops_listen another port (default 127.0.0.1:9090)", h.OpsListen, h.Listen)
	}
}

// unprotected says, in words for an operator, how an external NATS connection is left
// open to anyone who can reach the server; "" when it is not (or when the server is
// embedded, which protects itself). Credentials are creds_file, nkey_file, user and
// password, a client certificate or a user in the URL; TLS is a tls:// URL or
// tls.ca_file.
func (n NATSConfig) unprotected() string {
	if n.URL == "" || n.hasCredentials() || n.usesTLS() {
		return ""
	}
	return "nats.url is used without credentials (creds_file, nkey_file, user and password) and without TLS: " +
		"anyone who can reach that server can queue VM moves and rewrite requests; give xvmbot a credential " +
		"with the permissions in docs/nats-permissions.md"
}

// passwordInClear reports a NATS password sent over a connection without TLS: fine on a
// private network between containers, worth knowing anywhere else.
func (n NATSConfig) passwordInClear() bool {
	return n.URL != "" && (n.User != "" || n.urlUser()) && n.CredsFile == "" && n.NkeyFile == "" && !n.usesTLS()
}

func (n NATSConfig) hasCredentials() bool {
	return n.CredsFile != "" || n.NkeyFile != "" || n.User != "" || n.TLS.CertFile != "" || n.urlUser()
}

// usesTLS: every URL is tls://, or a private CA is given (which makes the client use TLS).
func (n NATSConfig) usesTLS() bool {
	if n.TLS.CAFile != "" {
		return true
	}
	for _, raw := range strings.Split(n.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || !strings.EqualFold(u.Scheme, "tls") {
			return false
		}
	}
	return true
}

func (n NATSConfig) urlUser() bool {
	for _, raw := range strings.Split(n.URL, ",") {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// redactURL drops any user and password from (each of) the NATS URL(s), for logs.
func redactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
