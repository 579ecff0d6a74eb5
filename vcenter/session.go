package vcenter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// sessionRecheck is how long a session is trusted without asking the vCenter
// whether it is still alive; vCenter's own idle timeout is 30 minutes.
const sessionRecheck = 30 * time.Second

// conn is the cached session with one vCenter. Its fields below lock are
// guarded by the one-slot channel, so a caller waiting for someone else's
// login can still give up when its context ends.
type conn struct {
	cfg     Config
	url     *url.URL // normalised, with port
	tp      string   // normalised configured thumbprint; empty when insecure
	log     *slog.Logger
	metrics *metrics

	lock    chan struct{}
	client  *vim25.Client
	checked time.Time
	peer    *x509.Certificate // certificate seen (and verified) at the last login
}

func newConn(cfg Config, log *slog.Logger, m *metrics) (*conn, error) {
	u, err := cfg.endpointURL()
	if err != nil {
		return nil, err
	}
	c := &conn{cfg: cfg, url: u, log: log.With("vcenter", cfg.Name), metrics: m, lock: make(chan struct{}, 1)}
	if cfg.Thumbprint != "" {
		if c.tp, err = normalizeThumbprint(cfg.Thumbprint); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *conn) acquire(ctx context.Context) error {
	select {
	case c.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *conn) release() { <-c.lock }

// session returns a logged-in client, logging in when there is none or the
// cached one no longer has a valid session.
func (c *conn) session(ctx context.Context) (*vim25.Client, *x509.Certificate, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, nil, err
	}
	defer c.release()

	if c.client != nil && time.Since(c.checked) < sessionRecheck {
		return c.client, c.peer, nil
	}
	if c.client != nil {
		us, err := session.NewManager(c.client).UserSession(ctx)
		if err == nil && us != nil {
			c.checked = time.Now()
			return c.client, c.peer, nil
		}
		c.log.Info("vcenter session no longer valid, logging in again", "err", err)
		c.client = nil
	}

	client, peer, err := c.login(ctx)
	if err != nil {
		c.metrics.up.WithLabelValues(c.cfg.Name).Set(0)
		return nil, nil, err
	}
	c.metrics.up.WithLabelValues(c.cfg.Name).Set(1)
	c.client, c.peer, c.checked = client, peer, time.Now()
	return client, peer, nil
}

// invalidate drops client if it is still the cached one, so the next call
// logs in again; used when a call fails with NotAuthenticated.
func (c *conn) invalidate(ctx context.Context, client *vim25.Client) {
	if c.acquire(ctx) != nil {
		return
	}
	defer c.release()
	if c.client == client {
		c.client = nil
	}
}

// idleConnsPerVCenter is how many idle keep-alive connections a session keeps to its
// vCenter: enough for a worker's concurrent moves and the bot's lists.
const idleConnsPerVCenter = 32

// login verifies the certificate first, and only then sends the password.
func (c *conn) login(ctx context.Context) (*vim25.Client, *x509.Certificate, error) {
	peer, err := c.verifyPeer(ctx)
	if err != nil {
		return nil, nil, err
	}

	sc := soap.NewClient(c.url, c.cfg.Insecure)
	// One session serves every job and list at once. Go keeps 2 idle connections per
	// host by default, so with more calls in flight each burst closed the extra
	// connections and the next one paid a new TLS handshake (a third of the CPU of a
	// 200-VM wave went to handshakes before this).
	sc.DefaultTransport().MaxIdleConnsPerHost = idleConnsPerVCenter
	if c.tp != "" {
		// Every later connection is pinned too, so a certificate swapped
		// mid-session fails the call instead of leaking the session. Checking
		// the thumbprint inside the one handshake (rather than soap's
		// SetThumbprint, which first tries and fails a CA-verified handshake)
		// keeps vCenter's logs free of a "bad certificate" per connection.
		tlsc := sc.DefaultTransport().TLSClientConfig
		tlsc.InsecureSkipVerify = true //nolint:gosec // verified by thumbprint below
		tlsc.VerifyPeerCertificate = pinned(c.tp)
		sc.SetThumbprint(c.url.Host, c.tp)
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, nil, classify(err, c.cfg.Name, "", "", StepLogin)
	}
	user := url.UserPassword(c.cfg.Username, c.cfg.Password.Reveal())
	if err := session.NewManager(vc).Login(ctx, user); err != nil {
		return nil, nil, classify(err, c.cfg.Name, "", "", StepLogin)
	}
	c.log.Info("logged into vcenter", "version", vc.ServiceContent.About.Version,
		"instance_uuid", vc.ServiceContent.About.InstanceUuid)
	return vc, peer, nil
}

// verifyPeer reads the certificate the vCenter presents and compares it with
// the configured thumbprint (SHA-1 or SHA-256, whichever was configured).
func (c *conn) verifyPeer(ctx context.Context) (*x509.Certificate, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 15 * time.Second},
		// Verification is the thumbprint comparison below; vCenters mostly
		// run on certificates of their own VMCA that no system root trusts.
		Config: &tls.Config{InsecureSkipVerify: true, ServerName: c.url.Hostname()}, //nolint:gosec // pinned by thumbprint
	}
	nc, err := d.DialContext(ctx, "tcp", c.url.Host)
	if err != nil {
		return nil, &Fault{
			VCenter: c.cfg.Name, Step: StepLogin, Kind: KindUnreachable, Retryable: true, Err: err,
			Message: fmt.Sprintf("%s is unreachable at %s: %v", c.cfg.Name, c.url.Host, err),
			Hint:    faultTexts[KindUnreachable].hint(c.cfg.Name, ""),
		}
	}
	defer nc.Close()
	tc, ok := nc.(*tls.Conn)
	if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
		return nil, fmt.Errorf("vcenter %s presented no certificate", c.cfg.Name)
	}
	cert := tc.ConnectionState().PeerCertificates[0]
	if c.tp == "" {
		return cert, nil
	}
	if got := thumbprintLike(cert, c.tp); got != c.tp {
		c.log.Error("vcenter certificate does not match the configured thumbprint", "expected", c.tp, "got", got)
		return nil, &ThumbprintError{VCenter: c.cfg.Name, Expected: c.tp, Got: got}
	}
	return cert, nil
}

// thumbprintLike is cert's thumbprint in the form of the configured one: SHA-1 or SHA-256,
// told apart by length.
func thumbprintLike(cert *x509.Certificate, configured string) string {
	if got := soap.ThumbprintSHA1(cert); len(got) == len(configured) {
		return got
	}
	return soap.ThumbprintSHA256(cert)
}

// pinned accepts exactly the certificate whose SHA-1 or SHA-256 thumbprint is tp.
func pinned(tp string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no certificate presented")
		}
		cert, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		if got := thumbprintLike(cert, tp); got != tp {
			return fmt.Errorf("certificate thumbprint %s does not match the configured %s", got, tp)
		}
		return nil
	}
}

// logout ends the cached session, if any.
func (c *conn) logout(ctx context.Context) {
	if c.acquire(ctx) != nil {
		return
	}
	defer c.release()
	if c.client == nil {
		return
	}
	if err := session.NewManager(c.client).Logout(ctx); err != nil {
		c.log.Warn("vcenter logout failed", "err", err)
	}
	c.client = nil
}

// isNotAuthenticated reports whether a call failed because the session is gone.
func isNotAuthenticated(err error) bool {
	return err != nil && fault.Is(err, &types.NotAuthenticated{})
}
