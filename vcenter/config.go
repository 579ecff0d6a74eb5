package vcenter

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/secret"
)

// Config is one vCenter as the operator configured it.
type Config struct {
	Name     string
	URL      string // https://vc/sdk
	Username string
	Password secret.Secret
	// Thumbprint is the SHA-1 or SHA-256 thumbprint of the vCenter certificate,
	// colon-separated hex. It is required unless Insecure is set, because a
	// service account password is sent to whatever answers at URL.
	Thumbprint string
	// Insecure allows a vCenter without a Thumbprint: its certificate is then not
	// verified at all. Next to a Thumbprint it changes nothing (the certificate is
	// pinned either way). See CertCheck.
	Insecure bool
	// Home marks the local vCenter: the source of migrate and the target of
	// import when a request does not name one.
	Home bool
	// ServiceURL is where the SOURCE vCenter reaches this one when it is a move's target
	// (the ServiceLocator's url), when that differs from URL, xvmbot's own view of it:
	// split DNS, a proxy, another network. "" uses URL. It must reach the same vCenter
	// (same certificate: the source pins the thumbprint xvmbot verified at URL).
	ServiceURL string
	// MirrorMaxAge, when set, gives the vCenter an inventory mirror (Manager.RunMirrors
	// feeds it): pre-flights then read its inventory from memory, kept fresh by the
	// property collector's change feed, while the feed answered within MirrorMaxAge,
	// and live otherwise. 0: pre-flights always read live.
	MirrorMaxAge time.Duration
}

// CertCheck is how xvmbot checks a vCenter's TLS certificate, as its configuration
// decides. vCenters mostly present certificates of their own VMCA that no system root
// trusts, so xvmbot never verifies a chain: it pins the configured thumbprint, or, with
// insecure: true and no thumbprint, checks nothing.
type CertCheck int

// The ways a certificate is checked.
const (
	// CertPinned: the certificate must have the configured thumbprint.
	CertPinned CertCheck = iota
	// CertPinnedInsecureIgnored: the same, with insecure: true also written, which
	// has no effect next to a thumbprint.
	CertPinnedInsecureIgnored
	// CertUnverified: insecure: true and no thumbprint; any certificate is accepted.
	CertUnverified
)

// String says in plain words what is checked, for logs, `xvmbot check` and chat.
func (k CertCheck) String() string {
	switch k {
	case CertPinnedInsecureIgnored:
		return "certificate pinned to the configured thumbprint (the certificate chain is not verified); " +
			"insecure: true has no effect while a thumbprint is set"
	case CertUnverified:
		return "certificate NOT verified (insecure: true and no thumbprint): anyone on the network path can " +
			"impersonate this vCenter and receive the service account's password; set its thumbprint"
	}
	return "certificate pinned to the configured thumbprint (the certificate chain is not verified)"
}

// CertCheck says how the vCenter's certificate is checked with this configuration.
func (c Config) CertCheck() CertCheck {
	switch {
	case c.Thumbprint == "" && c.Insecure:
		return CertUnverified
	case c.Insecure:
		return CertPinnedInsecureIgnored
	}
	return CertPinned
}

// endpointURL is the vCenter SDK address with an explicit port, the form
// vCenter expects in a ServiceLocator.
func (c Config) endpointURL() (*url.URL, error) { return c.sdkURL("url", c.URL) }

// locatorURL is where the source vCenter reaches this one as a move's target: ServiceURL,
// or the endpoint URL.
func (c Config) locatorURL() (*url.URL, error) {
	if c.ServiceURL == "" {
		return c.endpointURL()
	}
	return c.sdkURL("service_url", c.ServiceURL)
}

// sdkURL reads raw, the value of key, as a vCenter's SDK endpoint.
func (c Config) sdkURL(key, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("vcenter %s: %s %q: %w", c.Name, key, raw, err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("vcenter %s: %s %q must use https", c.Name, key, raw)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("vcenter %s: %s %q has no host", c.Name, key, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("vcenter %s: %s must not carry credentials; use username and password_file", c.Name, key)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(u.Hostname(), port), Path: u.Path}, nil
}

// validate checks one entry on its own; NewManager checks the set.
func (c Config) validate() error {
	if c.Name == "" {
		return errors.New("vcenter without a name")
	}
	if _, err := c.endpointURL(); err != nil {
		return err
	}
	if _, err := c.locatorURL(); err != nil {
		return err
	}
	if c.Username == "" {
		return fmt.Errorf("vcenter %s: username is empty", c.Name)
	}
	if c.Password.IsZero() {
		return fmt.Errorf("vcenter %s: password is empty", c.Name)
	}
	if c.Thumbprint == "" && !c.Insecure {
		return fmt.Errorf("vcenter %s: thumbprint is required (or insecure: true, which is not recommended)", c.Name)
	}
	if c.Thumbprint != "" {
		if _, err := NormalizeThumbprint(c.Thumbprint); err != nil {
			return fmt.Errorf("vcenter %s: %w", c.Name, err)
		}
	}
	return nil
}

// NormalizeThumbprint accepts the forms people paste (lower case, no colons,
// "SHA256:" prefixes from openssl output) and returns the colon-separated
// upper-case form that soap.Client compares byte for byte.
func NormalizeThumbprint(tp string) (string, error) {
	s := strings.TrimSpace(tp)
	if i := strings.LastIndex(s, "="); i >= 0 { // "SHA1 Fingerprint=AB:CD…"
		s = s[i+1:]
	}
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("thumbprint %q is not hex", tp)
	}
	if len(b) != 20 && len(b) != 32 {
		return "", fmt.Errorf("thumbprint %q is neither SHA-1 (20 bytes) nor SHA-256 (32 bytes)", tp)
	}
	return formatThumbprint(b), nil
}

func formatThumbprint(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}
