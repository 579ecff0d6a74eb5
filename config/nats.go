package config

import (
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/secret"
)

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

// DefaultNATSConfig is the nats section's default: an embedded server storing in
// ./xvm-data, one replica.
var DefaultNATSConfig = NATSConfig{DataDir: "./xvm-data", Replicas: 1}

// UnmarshalYAML starts from DefaultNATSConfig.
func (n *NATSConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*n = DefaultNATSConfig
	type plain NATSConfig
	return unmarshal((*plain)(n))
}

// NATSTLSConfig is TLS towards an external NATS server.
type NATSTLSConfig struct {
	CAFile   string `yaml:"ca_file"`   // PEM CA bundle that signed the server certificate
	CertFile string `yaml:"cert_file"` // client certificate (mutual TLS), with key_file
	KeyFile  string `yaml:"key_file"`
}

func (n NATSConfig) validate() error {
	var p problems
	if n.URL == "" && n.DataDir == "" {
		p.add("nats.data_dir is required for the embedded server")
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		p.add("nats.tls: cert_file and key_file go together")
	}
	if n.URL == "" && (n.CredsFile != "" || n.NkeyFile != "" || n.TLS != (NATSTLSConfig{})) {
		p.add("nats: creds_file, nkey_file and tls apply to an external server; set nats.url")
	}
	if n.Listen != "" {
		if n.URL != "" {
			p.add("nats.listen opens the embedded server's port, and nats.url means there is none; remove one of them")
		} else if _, _, err := net.SplitHostPort(n.Listen); err != nil {
			p.add("nats.listen %q: %v (write host:port, e.g. 127.0.0.1:4222)", n.Listen, err)
		}
	}
	return p.err()
}

// Unprotected says, in words for an operator, how an external NATS connection is left
// open to anyone who can reach the server; "" when it is not (or when the server is
// embedded, which protects itself). Credentials are creds_file, nkey_file, user and
// password, a client certificate or a user in the URL; TLS is a tls:// URL or
// tls.ca_file.
func (n NATSConfig) Unprotected() string {
	if n.URL == "" || n.hasCredentials() || n.usesTLS() {
		return ""
	}
	return "nats.url is used without credentials (creds_file, nkey_file, user and password) and without TLS: " +
		"anyone who can reach that server can queue VM moves and rewrite requests; give xvmbot a credential " +
		"with the permissions in docs/nats-permissions.md"
}

// PasswordInClear reports a NATS password sent over a connection without TLS: fine on a
// private network between containers, worth knowing anywhere else.
func (n NATSConfig) PasswordInClear() bool {
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

// RedactedURL is nats.url without any user and password, for logs.
func (n NATSConfig) RedactedURL() string { return RedactURL(n.URL) }

// RedactURL drops any user and password from (each of) the NATS URL(s), for logs.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
