package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/xvmbot/xvmbot/approvals"
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

	// unsetEnv are the ${ENV} references not set, by section, when the file was read by
	// LoadUnvalidated; ValidateSections reports those of the sections it checks.
	unsetEnv map[string][]error
}

// DefaultConfig is what a file that sets nothing gets: every section's default.
var DefaultConfig = Config{
	Slack:     DefaultSlackConfig,
	HTTP:      DefaultHTTPConfig,
	NATS:      DefaultNATSConfig,
	Approvals: DefaultApprovalsConfig,
	Limits:    DefaultLimitsConfig,
	Worker:    DefaultWorkerConfig,
	Log:       DefaultLogConfig,
}

// Default returns a fresh copy of DefaultConfig, for a config built in code (the demo,
// tests, the load tool).
func Default() *Config {
	c := DefaultConfig
	return &c
}

// UnmarshalYAML starts from DefaultConfig; each section present in the file starts from
// its own default in turn.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// Windows returns every vCenter's change windows (validated with the config).
func (c *Config) Windows() map[string][]approvals.Window {
	out := map[string][]approvals.Window{}
	for _, v := range c.VCenters {
		if ws, err := v.ParsedWindows(); err == nil && len(ws) > 0 {
			out[v.Name] = ws
		}
	}
	return out
}

// ClientURLs maps each vCenter's name to its vSphere Client (VCenterConfig.ClientURL).
func (c *Config) ClientURLs() map[string]string {
	out := map[string]string{}
	for _, v := range c.VCenters {
		if u := v.ClientURL(); u != "" {
			out[v.Name] = u
		}
	}
	return out
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadOption changes what Load and Parse read of the file.
type LoadOption func(*loadOptions)

type loadOptions struct{ withoutSlack bool }

// WithoutSlack is for a process that runs no bot (a worker): its slack section is neither
// expanded, nor read, nor required, so a worker starts without the Slack tokens (and a
// ${SLACK_…} reference left unset in its environment is no error). The bot that shares
// the file still checks that section.
func WithoutSlack() LoadOption { return func(o *loadOptions) { o.withoutSlack = true } }

// Load reads, expands, decodes strictly, resolves *_file secrets and validates.
func Load(path string, opts ...LoadOption) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(raw, os.LookupEnv, filepath.Dir(path), opts...)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// LoadUnvalidated is Load without Validate: `xvmbot check` validates the sections it is
// asked about (ValidateSections), so that a setting missing in one section (Slack tokens
// before the app exists, a thumbprint not read yet) does not stop it from trying the others.
func LoadUnvalidated(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := decodeLenient(raw, os.LookupEnv, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load without the file: lookup resolves ${ENV} references and relative
// *_file paths are taken from baseDir.
func Parse(raw []byte, lookup func(string) (string, bool), baseDir string, opts ...LoadOption) (*Config, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := decodeWith(raw, lookup, baseDir, nil, o)
	if err != nil {
		return nil, err
	}
	sections := Sections
	if o.withoutSlack {
		sections = slices.DeleteFunc(slices.Clone(Sections), func(s string) bool { return s == "slack" })
	}
	if err := cfg.ValidateSections(sections...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decode reads, expands, decodes strictly and resolves *_file secrets. An ${ENV} that is
// not set is an error.
func decode(raw []byte, lookup func(string) (string, bool), baseDir string) (*Config, error) {
	return decodeWith(raw, lookup, baseDir, nil, loadOptions{})
}

// decodeLenient is decode, except that an ${ENV} that is not set expands to nothing and is
// kept as a finding of the section it is in, for ValidateSections: `xvmbot check --only
// vcenters` must not stop at a Slack token's variable the person has not set yet.
func decodeLenient(raw []byte, lookup func(string) (string, bool), baseDir string) (*Config, error) {
	unset := map[string][]error{}
	cfg, err := decodeWith(raw, lookup, baseDir, unset, loadOptions{})
	if cfg != nil {
		cfg.unsetEnv = unset
	}
	return cfg, err
}

func decodeWith(raw []byte, lookup func(string) (string, bool), baseDir string, unset map[string][]error, o loadOptions) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, syntaxError(err)
	}
	if o.withoutSlack {
		dropKey(&root, "slack")
	}
	expanded := map[*yaml.Node]string{}
	if unset == nil {
		if err := expandNode(&root, lookup, expanded, nil); err != nil {
			return nil, err
		}
	} else if doc := topMapping(&root); doc != nil {
		for i := 0; i+1 < len(doc.Content); i += 2 {
			section := doc.Content[i].Value
			_ = expandNode(doc.Content[i+1], lookup, expanded, func(e error) { unset[section] = append(unset[section], fmt.Errorf("%s: %w", section, e)) })
		}
	}
	if err := checkShape(&root, reflect.TypeFor[Config](), expanded); err != nil {
		return nil, err
	}
	// Decoding from a re-encoded node keeps values typed as written while letting the
	// decoder reject unknown keys (Node.Decode cannot).
	text, err := yaml.Marshal(&root)
	if err != nil {
		return nil, fmt.Errorf("re-encode yaml: %w", err)
	}
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if err := cfg.resolveFiles(baseDir); err != nil {
		return nil, err
	}
	return cfg, nil
}

// dropKey removes key from the document's top-level mapping, if it is there.
func dropKey(doc *yaml.Node, key string) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// expandNode replaces ${ENV} references in every scalar, and notes in expanded the
// original text of each scalar it changed: an error about such a value shows the
// reference, never what it expanded to.
// topMapping is the document's top-level mapping, or nil.
func topMapping(root *yaml.Node) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// expandNode is strict when unset is nil (the first variable not set is the error);
// otherwise each is passed to unset and the walk goes on.
func expandNode(n *yaml.Node, lookup func(string) (string, bool), expanded map[*yaml.Node]string, unset func(error)) error {
	if n.Kind == yaml.ScalarNode {
		var missing []string
		orig := n.Value
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			err := fmt.Errorf("line %d: environment variable %s is not set", n.Line, strings.Join(missing, ", "))
			if unset == nil {
				return err
			}
			unset(err)
		}
		if n.Value != orig {
			expanded[n] = orig
		}
	}
	for _, c := range n.Content {
		if err := expandNode(c, lookup, expanded, unset); err != nil {
			return err
		}
	}
	return nil
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

// Validate checks what can be checked without the network: each section, then what
// one section says about another.
func (c *Config) Validate() error { return c.ValidateSections(Sections...) }

// Sections are the parts of the config ValidateSections knows: the file's top-level keys,
// and "pins", the rule that every vCenter not marked insecure has a thumbprint.
var Sections = []string{"slack", "http", "nats", "vcenters", "pins", "approvals", "limits", "worker", "log"}

// ValidateSections checks the named sections only (see Sections), and what one of them
// says about another when both are named.
func (c *Config) ValidateSections(sections ...string) error {
	checks := map[string]func() error{
		"slack":     c.Slack.validate,
		"http":      c.HTTP.validate,
		"nats":      c.NATS.validate,
		"vcenters":  func() error { return validateVCenters(c.VCenters) },
		"pins":      func() error { return validatePins(c.VCenters) },
		"approvals": c.Approvals.validate,
		"limits":    c.Limits.validate,
		"worker":    c.Worker.validate,
		"log":       c.Log.validate,
	}
	var errs []error
	for _, s := range sections {
		check, ok := checks[s]
		if !ok {
			errs = append(errs, fmt.Errorf("no config section %q to validate", s))
			continue
		}
		errs = append(errs, check())
		errs = append(errs, c.unsetEnv[s]...)
	}
	if slices.Contains(sections, "vcenters") && slices.Contains(sections, "approvals") {
		names := map[string]bool{}
		for _, v := range c.VCenters {
			names[v.Name] = true
		}
		for name := range c.Approvals.QuorumByVCenter {
			if !names[name] {
				errs = append(errs, fmt.Errorf("approvals.quorum_by_vcenter: %q is not a configured vCenter", name))
			}
		}
	}
	return errors.Join(errs...)
}

// problems gathers a section's findings, each written as a sentence that names its key.
type problems []error

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Errorf(format, a...)) }

func (p problems) err() error { return errors.Join(p...) }
