package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/events"
)

// connectNATS starts the embedded server (no nats.url) and connects to it, or connects
// to the external one, as the process's role.
func (s *System) connectNATS(ctx context.Context) error {
	if s.cfg.NATS.URL != "" {
		nc, err := DialNATS(s.cfg.NATS, s.role, s.log)
		s.nc = nc
		return err
	}
	dir, err := filepath.Abs(s.cfg.NATS.DataDir)
	if err != nil {
		return err
	}
	s.embedded, err = events.StartEmbedded(ctx, events.EmbeddedConfig{DataDir: dir, Listen: s.cfg.NATS.Listen,
		MaxStore: s.cfg.NATS.MaxStore, MaxMemory: s.cfg.NATS.MaxMemory}, s.log)
	if err != nil {
		return fmt.Errorf("start embedded NATS: %w", err)
	}
	// In-process, with this role's permissions: the same lists a separate process
	// gets, so a missing permission shows here first.
	s.nc, err = s.embedded.ConnectAs(s.role.NATSRole(), connOptions(s.log)...)
	return err
}

// connOptions are every connection's: its name, endless reconnects, and permission
// violations logged as what they are.
func connOptions(logger *slog.Logger) []nats.Option {
	log := logger.With("component", "nats")
	return []nats.Option{nats.Name("xvmbot"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		// Permission violations arrive here, not as errors of the call that caused them.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"err", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			if errors.Is(err, nats.ErrPermissionViolation) {
				log.Error("nats refused an operation: this process's NATS credential lacks a permission (see docs/nats-permissions.md)", attrs...)
				return
			}
			log.Warn("nats asynchronous error", attrs...)
		})}
}

// DialNATS connects to the external NATS of cfg (nats.url) as role r, with the
// credentials and TLS the config gives; extra options come last (and so override).
// `xvmbot check` uses it to try a credential as each role.
func DialNATS(cfg config.NATSConfig, r Role, logger *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append(connOptions(logger), events.ClientOptions(r.NATSRole())...)
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password.Reveal()))
	}
	if cfg.NkeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(cfg.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_file: %w", err)
		}
		opts = append(opts, opt)
	}
	if cfg.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	nc, err := nats.Connect(cfg.URL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", cfg.RedactedURL(), err)
	}
	return nc, nil
}

// notProvisionedRetry is how often a worker looks again for the streams and buckets the
// bot has not created yet.
const notProvisionedRetry = 2 * time.Second

// openBus opens the streams, consumers and buckets. A worker may not create them (its
// credential does not allow it): it waits until the bot has. Either role also waits out a
// NATS cluster that cannot answer yet (a leader election after a node was lost, a node
// still catching up), for up to busSetupPatience, instead of exiting: a process
// restarted by its supervisor during an election would otherwise only fail again.
func (s *System) openBus(ctx context.Context) (*events.Bus, error) {
	cfg := events.BusConfig{Role: s.role.NATSRole(), Replicas: s.cfg.NATS.Replicas, AckWait: s.cfg.NATS.AckWait,
		RetryDelay: s.cfg.NATS.RetryDelay, LeaseTTL: s.cfg.NATS.LeaseTTL}
	var unprovisioned, unanswered bool
	var since time.Time
	for {
		bus, err := events.NewBus(ctx, s.nc, cfg, s.log, s.reg)
		switch {
		case err == nil:
			return bus, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("set up NATS streams and buckets: %w (%w)", err, ctx.Err())
		case errors.Is(err, events.ErrNotProvisioned):
			if !unprovisioned {
				s.log.Warn("waiting for the bot to create the NATS streams and buckets; start `xvmbot bot` if it is not running", "err", err)
				unprovisioned = true
			}
		case unansweredSetup(err):
			if since.IsZero() {
				since = time.Now()
			}
			if time.Since(since) > busSetupPatience {
				return nil, fmt.Errorf("set up NATS streams and buckets: NATS did not answer for %s: %w", busSetupPatience, err)
			}
			if !unanswered {
				s.log.Warn("NATS does not answer xvmbot's stream and bucket set-up yet (a cluster electing a leader, or a node not up?); trying again", "err", err)
				unanswered = true
			}
		default:
			return nil, fmt.Errorf("set up NATS streams and buckets: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("set up NATS streams and buckets: %w (%w)", err, ctx.Err())
		case <-time.After(notProvisionedRetry):
		}
	}
}

// busSetupPatience is how long openBus waits for a NATS that does not answer.
const busSetupPatience = 2 * time.Minute

// The JetStream API errors of a cluster that is not whole yet (docs/nats-facts.md N4):
// its meta leader not elected, or a stream's replicas not placeable while a node is down
// or not yet joined ("no suitable peers for placement, peer offline"). The other reasons
// for no peers (storage, tags) are the operator's to fix, not to wait out.
const (
	jsClusterNotAvail jetstream.ErrorCode = 10008
	jsClusterNoPeers  jetstream.ErrorCode = 10005
)

// unansweredSetup says whether err, from setting up the streams and buckets, means that
// NATS could not answer yet (a request timed out, nobody responded, a stream had no
// leader, the cluster is not whole), not that it refused: worth trying again.
func unansweredSetup(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return true
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	return api.ErrorCode == jsClusterNotAvail ||
		api.ErrorCode == jsClusterNoPeers && strings.Contains(api.Description, "peer offline")
}
