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

// After a vCenter refuses the service account's credentials (InvalidLogin), no login
// is tried for a pause that doubles with each further refusal, up to the cap: SSO
// locks an account after a few failed logins (five by default), and probes, retries
// and users' commands would otherwise each send the wrong password once more.
const (
	firstLoginBackoff = time.Minute
	maxLoginBackoff   = 30 * time.Minute
)

// conn is the cached session with one vCenter. Its fields below lock are
// guarded by the one-slot channel, so a caller waiting for someone else's
// login can still give up when its context ends.
type conn struct {
	cfg     Config
	url     *url.URL // normalised, with port
	tp      string   // normalised configured thumbprint; empty when insecure
	log     *slog.Logger
	metrics *metrics

	now func() time.Time

	lock    chan struct{}
	client  *vim25.Client
	checked time.Time
	peer    *x509.Certificate // certificate seen (and verified) at the last login
	refusal loginRefusal

	vapi vapiSession // for tags; guarded by its own lock
}

// loginRefusal is what a conn remembers of refused logins: while until is ahead, a
// session is refused without asking the vCenter.
type loginRefusal struct {
	pause time.Duration // the current pause; 0 while logins are accepted
	at    time.Time     // when the vCenter last refused
	until time.Time     // no login before this
	err   error         // the vCenter's own refusal, kept for errors.Is/As
}

func newConn(cfg Config, log *slog.Logger, m *metrics) (*conn, error) {
	u, err := cfg.endpointURL()
	if err != nil {
		return nil, err
	}
	c := &conn{cfg: cfg, url: u, log: log.With("vcenter", cfg.Name), metrics: m, now: time.Now, lock: make(chan struct{}, 1)}
	if cfg.Thumbprint != "" {
		if c.tp, err = NormalizeThumbprint(cfg.Thumbprint); err != nil {
			return nil, err
		}
	}
	m.loginRefused.WithLabelValues(cfg.Name).Set(0)
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

	if c.client != nil && c.now().Sub(c.checked) < sessionRecheck {
		return c.client, c.peer, nil
	}
	if c.client != nil {
		us, err := session.NewManager(c.client).UserSession(ctx)
		if err == nil && us != nil {
			c.checked = c.now()
			return c.client, c.peer, nil
		}
		c.log.Info("vcenter session no longer valid, logging in again", "err", err)
		c.client = nil
	}
	if c.now().Before(c.refusal.until) {
		return nil, nil, c.refusedFault()
	}

	client, peer, err := c.login(ctx)
	if err != nil {
		c.metrics.up.WithLabelValues(c.cfg.Name).Set(0)
		if isInvalidLogin(err) {
			c.refused(err)
			return nil, nil, c.refusedFault()
		}
		return nil, nil, err
	}
	c.metrics.up.WithLabelValues(c.cfg.Name).Set(1)
	if c.refusal.pause > 0 {
		c.log.Info("vcenter accepts the service account's credentials again")
		c.refusal = loginRefusal{}
		c.metrics.loginRefused.WithLabelValues(c.cfg.Name).Set(0)
	}
	c.client, c.peer, c.checked = client, peer, c.now()
	return client, peer, nil
}

// refused starts or lengthens the pause after the vCenter refused the credentials. The
// first refusal of a run of them is logged at ERROR with what to fix; the later ones,
// which only confirm it, at WARN.
func (c *conn) refused(err error) {
	first := c.refusal.pause == 0
	pause := min(2*c.refusal.pause, maxLoginBackoff)
	if first {
		pause = firstLoginBackoff
	}
	now := c.now()
	c.refusal = loginRefusal{pause: pause, at: now, until: now.Add(pause), err: err}
	c.metrics.loginRefused.WithLabelValues(c.cfg.Name).Set(1)
	if first {
		c.log.Error("vcenter refused the service account's credentials; not logging in again for a while, so that "+
			"retries do not lock the account: check the username and password (or password_file) of this vCenter "+
			"and that the account is not locked in vCenter SSO, then restart xvmbot",
			"username", c.cfg.Username, "retry_at", c.refusal.until.UTC().Format(time.RFC3339), "err", err)
		return
	}
	c.log.Warn("vcenter still refuses the service account's credentials", "username", c.cfg.Username,
		"retry_at", c.refusal.until.UTC().Format(time.RFC3339))
}

// refusedFault is the answer to everything that needs a session while logins are
// paused: the vCenter's refusal in plain words and when xvmbot will try again.
func (c *conn) refusedFault() *Fault {
	name := c.cfg.Name
	t := faultTexts[KindInvalidLogin]
	said := t.message(name, name)
	var f *Fault
	if errors.As(c.refusal.err, &f) && f.Message != "" {
		said = f.Message // with the vCenter's own words
	}
	return &Fault{
		VCenter: name, Step: StepLogin, Kind: KindInvalidLogin, Err: c.refusal.err,
		Message: fmt.Sprintf("%s; xvmbot does not log in again before %s, so that retries do not lock the account",
			said, c.refusal.until.UTC().Format("15:04 MST")),
		Hint: t.hint(name, name) + ", and that the account is not locked in vCenter SSO; restart xvmbot after changing them",
	}
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
	cert, err := presentedCertificate(ctx, c.url.Host, c.url.Hostname())
	if errors.Is(err, errNoCertificate) {
		return nil, fmt.Errorf("vcenter %s presented no certificate", c.cfg.Name)
	}
	if err != nil {
		return nil, &Fault{
			VCenter: c.cfg.Name, Step: StepLogin, Kind: KindUnreachable, Retryable: true, Err: err,
			Message: fmt.Sprintf("vCenter %s did not answer at %s", c.cfg.Name, c.url.Host), Detail: err.Error(),
			Hint: faultTexts[KindUnreachable].hint(c.cfg.Name, ""),
		}
	}
	if c.tp == "" {
		return cert, nil
	}
	if got := thumbprintLike(cert, c.tp); got != c.tp {
		c.log.Error("vcenter certificate does not match the configured thumbprint", "expected", c.tp, "got", got)
		return nil, &ThumbprintError{VCenter: c.cfg.Name, Expected: c.tp, Got: got}
	}
	return cert, nil
}

var errNoCertificate = errors.New("no certificate presented")

// presentedCertificate dials host (host:port) and returns the certificate the server
// presents. Nothing is sent over the connection, and the certificate is not trusted here:
// the caller compares it with a pinned thumbprint, or shows it to be checked out of band
// (vCenters mostly run on certificates of their own VMCA that no system root trusts).
func presentedCertificate(ctx context.Context, host, serverName string) (*x509.Certificate, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 15 * time.Second},
		Config:    &tls.Config{InsecureSkipVerify: true, ServerName: serverName, MinVersion: tls.VersionTLS12}, //nolint:gosec // only read, never trusted
	}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	tc, ok := nc.(*tls.Conn)
	if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
		return nil, errNoCertificate
	}
	return tc.ConnectionState().PeerCertificates[0], nil
}

// PresentedThumbprints reads the certificate the vCenter at rawURL presents, without
// logging in, and returns its SHA-1 and SHA-256 thumbprints: for a person to check out of
// band and pin (xvmbot check, for a vCenter with no thumbprint configured).
func PresentedThumbprints(ctx context.Context, rawURL string) (sha1, sha256 string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	cert, err := presentedCertificate(ctx, host, u.Hostname())
	if err != nil {
		return "", "", err
	}
	return soap.ThumbprintSHA1(cert), soap.ThumbprintSHA256(cert), nil
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
	if err := c.vapi.logout(ctx); err != nil {
		c.log.Warn("vcenter vAPI logout failed", "err", err)
	}
	if c.client == nil {
		return
	}
	if err := session.NewManager(c.client).Logout(ctx); err != nil {
		c.log.Warn("vcenter logout failed", "err", err)
	}
	c.client = nil
}

// isInvalidLogin reports whether the vCenter refused the credentials of a login.
func isInvalidLogin(err error) bool {
	var f *Fault
	return errors.As(err, &f) && f.Kind == KindInvalidLogin
}

// isNotAuthenticated reports whether a call failed because the session is gone.
func isNotAuthenticated(err error) bool {
	return err != nil && fault.Is(err, &types.NotAuthenticated{})
}
