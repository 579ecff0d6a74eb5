package vcenter

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"

	"github.com/xvmbot/xvmbot/secret"
)

// Manager holds the configured vCenters and their sessions. It is safe for
// concurrent use: many worker slots may plan and relocate at once.
type Manager struct {
	conns   map[string]*conn // fixed after NewManager
	names   []string         // configuration order
	home    string
	log     *slog.Logger
	metrics *metrics
	secrets []string // every configured password, scrubbed from messages
	lists   *listCache
	recent  recentPlans
	flights planFlights
	refs    vmRefs
	mirrors mirrors
}

// NewManager validates the vCenter configurations (names unique, thumbprints
// well-formed, exactly one home when there are several) and returns a Manager
// that has not connected yet: sessions are made on first use, so a vCenter that
// is down at start-up does not keep the bot from starting.
func NewManager(cfgs []Config, logger *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("no vcenters configured")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Manager{
		conns:   make(map[string]*conn, len(cfgs)),
		log:     logger.With("component", "vcenter"),
		metrics: newMetrics(reg),
		lists:   newListCache(),
	}
	m.mirrors = newMirrors(reg)
	var homes []string
	for _, cfg := range cfgs {
		if err := cfg.validate(); err != nil {
			return nil, err
		}
		if _, dup := m.conns[cfg.Name]; dup {
			return nil, fmt.Errorf("vcenter %s is configured twice", cfg.Name)
		}
		c, err := newConn(cfg, m.log, m.metrics)
		if err != nil {
			return nil, err
		}
		m.conns[cfg.Name] = c
		m.names = append(m.names, cfg.Name)
		m.metrics.initVCenter(cfg.Name)
		if cfg.MirrorMaxAge > 0 {
			m.mirrors.add(cfg.Name, newInventoryMirror(cfg.MirrorMaxAge))
		}
		m.secrets = append(m.secrets, cfg.Password.Reveal())
		if cfg.Home {
			homes = append(homes, cfg.Name)
		}
		switch check := cfg.CertCheck(); check {
		case CertUnverified:
			m.log.Warn("INSECURE: "+check.String(), "vcenter", cfg.Name)
		case CertPinnedInsecureIgnored:
			m.log.Warn("insecure: true is ignored: "+check.String(), "vcenter", cfg.Name)
		}
	}
	switch {
	case len(homes) == 1:
		m.home = homes[0]
	case len(homes) > 1:
		return nil, fmt.Errorf("more than one home vcenter: %s", strings.Join(homes, ", "))
	case len(cfgs) == 1:
		m.home = cfgs[0].Name
	default:
		return nil, fmt.Errorf("%d vcenters configured but none is marked home: true", len(cfgs))
	}
	return m, nil
}

// Names returns the configured vCenter names in configuration order.
func (m *Manager) Names() []string { return slices.Clone(m.names) }

// Home returns the name of the home vCenter.
func (m *Manager) Home() string { return m.home }

func (m *Manager) conn(name string) (*conn, error) {
	c, ok := m.conns[name]
	if !ok {
		return nil, fmt.Errorf("vcenter %q: %w (configured: %s)", name, ErrUnknownVCenter, strings.Join(m.names, ", "))
	}
	return c, nil
}

// Info logs in if needed and reports the vCenter's version, instance UUID and
// the thumbprint of the certificate it presented. Reachable is false, with an
// error, when no session could be made.
func (m *Manager) Info(ctx context.Context, name string) (Endpoint, error) {
	c, err := m.conn(name)
	if err != nil {
		return Endpoint{Name: name}, err
	}
	ep := Endpoint{Name: name, URL: c.url.String(), Home: name == m.home, CertCheck: c.cfg.CertCheck()}
	client, peer, err := c.session(ctx)
	if err != nil {
		return ep, m.scrub(err)
	}
	return endpointOf(ep, client, peer), nil
}

func endpointOf(ep Endpoint, client *vim25.Client, peer *x509.Certificate) Endpoint {
	about := client.ServiceContent.About
	ep.Version = strings.TrimSpace(about.Version + " build " + about.Build)
	ep.InstanceUUID = about.InstanceUuid
	if peer != nil {
		ep.Thumbprint = soap.ThumbprintSHA1(peer)
		ep.ThumbprintSHA256 = soap.ThumbprintSHA256(peer)
	}
	ep.Reachable = true
	return ep
}

// withSession runs fn with a logged-in client of vCenter name, logging in
// again once if the session turns out to have expired under fn.
func (m *Manager) withSession(ctx context.Context, name string, fn func(*vim25.Client, *x509.Certificate) error) error {
	c, err := m.conn(name)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		client, peer, err := c.session(ctx)
		if err != nil {
			return m.scrub(err)
		}
		err = fn(client, peer)
		if isNotAuthenticated(err) && attempt == 0 {
			c.invalidate(ctx, client)
			continue
		}
		return err
	}
}

// Locate reports whether a VM of that name is now registered in vCenter
// vcName: after a crash, a worker uses it to learn whether a relocation it
// lost track of already happened.
func (m *Manager) Locate(ctx context.Context, vcName, vm string) (bool, error) {
	var found bool
	err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		refs, err := findVMsByName(ctx, c, []string{vm})
		found = len(refs[vm]) > 0
		return err
	})
	if err != nil {
		return false, m.scrub(classify(err, vcName, "", vm, StepResolve))
	}
	return found, nil
}

// Close logs out of every vCenter it has a session with.
func (m *Manager) Close(ctx context.Context) {
	for _, name := range m.names {
		m.conns[name].logout(ctx)
	}
}

// scrub removes configured passwords from the human-readable parts of an
// error. vCenter messages echo request fields now and then; a password
// must never reach a chat channel or a log.
func (m *Manager) scrub(err error) error {
	var f *Fault
	if errors.As(err, &f) {
		f.Message = m.scrubString(f.Message)
		f.Hint = m.scrubString(f.Hint)
		return err
	}
	if s := err.Error(); m.scrubString(s) != s {
		return errors.New(m.scrubString(s))
	}
	return err
}

func (m *Manager) scrubString(s string) string {
	for _, p := range m.secrets {
		if p != "" {
			s = strings.ReplaceAll(s, p, secret.Redacted)
		}
	}
	return s
}
