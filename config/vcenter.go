package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter"
)

// VCenterConfig is one vCenter xvmbot talks to. It has no default: every vCenter is
// named, located and credentialed in the file.
type VCenterConfig struct {
	Name         string        `yaml:"name"`
	URL          string        `yaml:"url"`
	Username     string        `yaml:"username"`
	Password     secret.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	Thumbprint   string        `yaml:"thumbprint"`
	Insecure     bool          `yaml:"insecure"`
	Home         bool          `yaml:"home"`
	// ServiceURL is where the other vCenters reach this one when it is a move's target
	// (the ServiceLocator), when that is not url: split DNS, a proxy. "" is url.
	ServiceURL string `yaml:"service_url"`
	// UIURL is this vCenter's vSphere Client, which the Slack messages link VMs to
	// ("https://vc.example.com/ui/"). "": https://<host of url>/ui/.
	UIURL string `yaml:"ui_url"`
	// Windows are change windows for moves INTO this vCenter, e.g. "sat 22:00-sun 04:00"
	// or "daily 01:00-05:00", in Timezone (an IANA name; default UTC). Empty: any time.
	Windows  []string `yaml:"windows"`
	Timezone string   `yaml:"timezone"`
	// MirrorMaxAge, when set, keeps a mirror of this vCenter's inventory in memory, fed by
	// the property collector's change feed, and pre-flights read names and properties
	// from it while its feed answered within this time (live otherwise; vCenter's
	// compatibility check is always asked live). 0 (the default): no mirror.
	// docs/inventory-mirror.md says what it costs and what it saves.
	MirrorMaxAge time.Duration `yaml:"mirror_max_age"`
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

// ClientURL is the vSphere Client of the vCenter, ending in "/": ui_url, or by default
// https://<host of url>/ui/ (the port of url kept, as a proxy in front of both would).
// "" if neither says where.
func (v VCenterConfig) ClientURL() string {
	if v.UIURL != "" {
		return strings.TrimSuffix(v.UIURL, "/") + "/"
	}
	u, err := url.Parse(v.URL)
	if err != nil || u.Host == "" {
		return ""
	}
	return "https://" + u.Host + "/ui/"
}

// validate checks one vCenter; where is how the message names it (vcenters[1]).
func (v VCenterConfig) validate(where string) error {
	var p problems
	if v.Name == "" {
		p.add("%s.name is required", where)
	}
	if !strings.HasPrefix(v.URL, "https://") {
		p.add("%s (%s).url must start with https://", where, v.Name)
	}
	if v.ServiceURL != "" && !strings.HasPrefix(v.ServiceURL, "https://") {
		p.add("%s (%s).service_url must start with https://", where, v.Name)
	}
	if v.UIURL != "" && !strings.HasPrefix(v.UIURL, "https://") {
		p.add("%s (%s).ui_url must start with https://", where, v.Name)
	}
	if v.MirrorMaxAge < 0 {
		p.add("%s (%s).mirror_max_age must not be negative (0: no inventory mirror)", where, v.Name)
	}
	if v.Username == "" || v.Password.IsZero() {
		p.add("%s (%s): username and password (or password_file) are required", where, v.Name)
	}
	if _, err := vcenter.NormalizeThumbprint(v.Thumbprint); v.Thumbprint != "" && err != nil {
		p.add("%s (%s).thumbprint: %v (run `xvmbot check --only vcenters` to read it)", where, v.Name, err)
	}
	if _, err := v.ParsedWindows(); err != nil {
		p = append(p, err)
	}
	return p.err()
}

// validateVCenters checks each vCenter and what only the list can tell: at least two,
// distinct names, exactly one home.
func validateVCenters(vcs []VCenterConfig) error {
	var p problems
	if len(vcs) < 2 {
		p.add("vcenters: at least two are needed to move VMs between them (have %d)", len(vcs))
	}
	names, homes := map[string]bool{}, 0
	for i, v := range vcs {
		where := fmt.Sprintf("vcenters[%d]", i)
		if err := v.validate(where); err != nil {
			p = append(p, err)
		}
		if v.Name != "" && names[v.Name] {
			p.add("%s.name %q is used twice", where, v.Name)
		}
		names[v.Name] = true
		if v.Home {
			homes++
		}
	}
	if homes != 1 && len(vcs) > 0 {
		p.add("vcenters: exactly one must have home: true (have %d)", homes)
	}
	return p.err()
}

// validatePins asks for a thumbprint of every vCenter that is not insecure. It is apart
// from validateVCenters because `xvmbot check` is the tool that reads the thumbprints:
// it checks a config whose vCenters are not pinned yet, and prints what to pin.
func validatePins(vcs []VCenterConfig) error {
	var p problems
	for i, v := range vcs {
		if v.Thumbprint == "" && !v.Insecure {
			p.add("vcenters[%d] (%s).thumbprint is required (run `xvmbot check --only vcenters` to read it) unless insecure: true", i, v.Name)
		}
	}
	return p.err()
}
