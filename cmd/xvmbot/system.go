package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/worker"
)

// role says which halves of xvmbot a process runs.
type role int

const (
	roleAll    role = iota // serve: bot + worker
	roleBot                // bot: Slack side only
	roleWorker             // worker: relocations only
)

func roleOf(cmd string) role {
	switch cmd {
	case "bot":
		return roleBot
	case "worker":
		return roleWorker
	}
	return roleAll
}

// natsRole is the role's NATS identity: what its credential may do and its inbox prefix.
func (r role) natsRole() events.Role {
	return [...]events.Role{events.RoleServe, events.RoleBot, events.RoleWorker}[r]
}

func (r role) runsBot() bool    { return r == roleAll || r == roleBot }
func (r role) runsWorker() bool { return r == roleAll || r == roleWorker }

// system is one xvmbot process, wired from its config. cmd/xvmbot is the only place that
// knows every concrete type.
type system struct {
	cfg      *Config
	role     role
	log      *slog.Logger
	reg      *prometheus.Registry
	embedded *events.Embedded
	nc       *nats.Conn
	bus      *events.Bus
	vc       *vcenter.Manager
	svc      *approvals.Service
	bot      *bot.Bot
	worker   *worker.Worker
	ready    *readiness
	// ops serves /metrics, /healthz and /readyz on http.ops_listen, in every process;
	// slack serves Slack's endpoints on http.listen, only in a bot in http mode (nil else).
	ops   *listening
	slack *listening
}

// listening is one HTTP server and the listener it serves.
type listening struct {
	ln  net.Listener
	srv *http.Server
}

// listen opens addr for h; key names the config key, for the error.
func listen(key, addr string, h http.Handler) (*listening, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s: %w", key, addr, err)
	}
	return &listening{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// serve runs the server in g until ctx ends, then shuts it down within a bounded time.
func (l *listening) serve(ctx context.Context, g *errgroup.Group, name string) {
	g.Go(func() error {
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s http server: %w", name, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return l.srv.Shutdown(sctx)
	})
}

// newSystem builds every component the role needs and opens its HTTP listeners; nothing
// runs until Run.
func newSystem(ctx context.Context, cfg *Config, r role, logger *slog.Logger) (s *system, err error) {
	s = &system{cfg: cfg, role: r, log: logger, reg: prometheus.NewRegistry()}
	// Close what was built through this local: every error path returns nil for s, and a
	// deferred s.close() would then panic instead of reporting err.
	built := s
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(s.reg)

	if err := s.connectNATS(ctx); err != nil {
		return nil, err
	}
	if s.bus, err = s.openBus(ctx); err != nil {
		return nil, err
	}

	vcs := make([]vcenter.Config, 0, len(cfg.VCenters))
	for _, v := range cfg.VCenters {
		vcs = append(vcs, vcenter.Config{Name: v.Name, URL: v.URL, Username: v.Username, Password: v.Password,
			Thumbprint: v.Thumbprint, Insecure: v.Insecure, Home: v.Home})
	}
	s.vc, err = vcenter.NewManager(vcs, logger, s.reg)
	if err != nil {
		return nil, err
	}

	var signer *approvals.Signer
	if r.runsBot() {
		if signer, err = signingKey(cfg, r, logger); err != nil {
			return nil, err
		}
	}
	keys, err := trustedKeys(cfg, r, signer)
	if err != nil {
		return nil, err
	}
	if r.runsBot() {
		s.svc = approvals.NewService(s.bus.Requests(), approvals.Policy{
			Approvers: cfg.Approvals.Approvers, Quorum: cfg.Approvals.Quorum, QuorumByVCenter: cfg.Approvals.QuorumByVCenter,
			AllowSelfApproval: cfg.Approvals.AllowSelfApproval, ExpireAfter: cfg.Approvals.ExpireAfter,
			RunWithin: cfg.Approvals.RunWithin,
		}, newGroupMembers(cfg, logger), logger).WithSigner(signer)
		s.bot, err = bot.New(bot.Config{
			BotToken: cfg.Slack.BotToken, AppToken: cfg.Slack.AppToken, SigningSecret: cfg.Slack.SigningSecret,
			APIURL: cfg.Slack.APIURL, Channels: cfg.Slack.Channels, ProgressInterval: cfg.Slack.ProgressInterval,
			EditsPerMinute: cfg.Slack.EditsPerMinute,
			Workers:        cfg.Slack.Workers, WorkQueue: cfg.Slack.WorkQueue,
			Deliveries:       s.bus.Deliveries(),
			MaxCommandBytes:  cfg.Slack.MaxCommandBytes,
			MaxVMsPerRequest: cfg.Limits.MaxVMsPerRequest,
			Digest:           bot.Digest{Channel: cfg.Slack.Digest.Channel, Every: cfg.Slack.Digest.Every, Window: cfg.Slack.Digest.Window},
			Windows:          cfg.windows(),
			Signer:           signer, Keys: keys,
		}, s.svc, s.vc, s.bus, logger, s.reg)
		if err != nil {
			return nil, err
		}
	}
	if r.runsWorker() {
		name := cfg.Worker.Name
		if name == "" {
			host, _ := os.Hostname()
			name = fmt.Sprintf("%s-%d", host, os.Getpid())
		}
		windows := cfg.windows()
		s.worker = worker.New(worker.Config{Name: name, Slots: cfg.Limits.MaxConcurrent, MaxAttempts: cfg.Worker.MaxAttempts,
			RenewEvery: min(s.bus.Config().LeaseTTL/3, 5*time.Second), Windows: windows,
			PlanReuse: cfg.Worker.PlanReuse, HoldFor: cfg.Worker.HoldFor,
			Requests: worker.NATSRequests{Store: s.bus.Requests()}, Trust: keys},
			s.vc, s.bus, worker.NATSRecords{Jobs: s.bus.Jobs()}, worker.NATSLocks{Leases: s.bus.Leases()},
			worker.NATSSlots{Slots: s.bus.Slots(), Limits: worker.Limits{
				PerHost: cfg.Limits.PerHost, PerDatastore: cfg.Limits.PerDatastore, PerVCenter: cfg.Limits.PerVCenter,
			}}, logger, s.reg)
	}

	s.ready = newReadiness(s.probes())
	if s.ops, err = listen("http.ops_listen", cfg.HTTP.OpsListen, opsHandler(s.reg, s.ready)); err != nil {
		return nil, err
	}
	if s.bot != nil && cfg.Slack.Mode == "http" {
		if s.slack, err = listen("http.listen", cfg.HTTP.Listen, s.bot.Handler()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// notProvisionedRetry is how often a worker looks again for the streams and buckets the
// bot has not created yet.
const notProvisionedRetry = 2 * time.Second

// openBus opens the streams, consumers and buckets. A worker may not create them (its
// credential cannot): started before the bot, it waits for them instead of failing, so
// a whole deployment can start at once.
func (s *system) openBus(ctx context.Context) (*events.Bus, error) {
	cfg := events.BusConfig{Role: s.role.natsRole(), Replicas: s.cfg.NATS.Replicas, AckWait: s.cfg.NATS.AckWait,
		RetryDelay: s.cfg.NATS.RetryDelay, LeaseTTL: s.cfg.NATS.LeaseTTL}
	for waited := false; ; waited = true {
		bus, err := events.NewBus(ctx, s.nc, cfg, s.log, s.reg)
		if !errors.Is(err, events.ErrNotProvisioned) {
			if err != nil {
				return nil, fmt.Errorf("set up NATS streams and buckets: %w", err)
			}
			return bus, nil
		}
		if !waited {
			s.log.Warn("waiting for the bot to create the NATS streams and buckets; start `xvmbot bot` if it is not running", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("set up NATS streams and buckets: %w (%w)", err, ctx.Err())
		case <-time.After(notProvisionedRetry):
		}
	}
}

// connectNATS connects as the process's role; extra options come last (and so override).
func (s *system) connectNATS(ctx context.Context, extra ...nats.Option) error {
	log := s.log.With("component", "nats")
	opts := []nats.Option{nats.Name("xvmbot"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
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
	if s.cfg.NATS.URL == "" {
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
		s.nc, err = s.embedded.ConnectAs(s.role.natsRole(), append(opts, extra...)...)
		return err
	}
	opts = append(opts, events.ClientOptions(s.role.natsRole())...)
	if s.cfg.NATS.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(s.cfg.NATS.CredsFile))
	}
	if s.cfg.NATS.User != "" {
		opts = append(opts, nats.UserInfo(s.cfg.NATS.User, s.cfg.NATS.Password.Reveal()))
	}
	if s.cfg.NATS.NkeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(s.cfg.NATS.NkeyFile)
		if err != nil {
			return fmt.Errorf("nats.nkey_file: %w", err)
		}
		opts = append(opts, opt)
	}
	if t := s.cfg.NATS.TLS; t.CAFile != "" {
		opts = append(opts, nats.RootCAs(t.CAFile))
	}
	if t := s.cfg.NATS.TLS; t.CertFile != "" {
		opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
	}
	nc, err := nats.Connect(s.cfg.NATS.URL, append(opts, extra...)...)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", redactURL(s.cfg.NATS.URL), err)
	}
	s.nc = nc
	return nil
}

// probes lists what /readyz reports: NATS is critical, each vCenter and Slack are not
// (the bot stays up and says what is degraded). A vCenter whose login was refused is
// not asked again until its pause is over (vcenter.Manager), so probing never locks
// the service account.
func (s *system) probes() []probe {
	probes := []probe{{name: "nats", critical: true, check: func(context.Context) error {
		if !s.nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	}}}
	for _, name := range s.vc.Names() {
		probes = append(probes, probe{name: "vcenter:" + name, check: func(ctx context.Context) error {
			return s.vc.Ping(ctx, name)
		}})
	}
	if s.bot != nil {
		probes = append(probes, probe{name: "slack", check: func(context.Context) error { return s.bot.Ready() }})
	}
	return probes
}

// OpsAddr is the bound address of /metrics, /healthz and /readyz (useful with port 0).
func (s *system) OpsAddr() string { return s.ops.ln.Addr().String() }

// SlackAddr is the bound address of Slack's endpoints, or "" when this process serves
// none (a worker, or a bot in socket mode).
func (s *system) SlackAddr() string {
	if s.slack == nil {
		return ""
	}
	return s.slack.ln.Addr().String()
}

// Run runs every part until ctx is done, then shuts down within a bounded time.
// Relocations in progress keep running in vCenter; their jobs stay unacknowledged and the
// next worker re-attaches.
func (s *system) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	s.ops.serve(gctx, g, "ops")
	if s.slack != nil {
		s.slack.serve(gctx, g, "slack")
	}
	g.Go(func() error { return s.ready.Run(gctx) })
	if s.bot != nil {
		g.Go(func() error { return s.bot.Run(gctx) })
		g.Go(func() error { return s.bus.RunEvents(gctx, s.bot.HandleEvent) })
		if s.cfg.Slack.Mode == "socket" {
			g.Go(func() error { return s.bot.RunSocketMode(gctx) })
		}
	}
	if s.worker != nil {
		g.Go(func() error { return s.worker.Run(gctx) })
	}
	s.log.Info("xvmbot running", "role", s.roleName(), "ops_http", s.OpsAddr(), "slack_http", s.SlackAddr(), "slack_mode", s.cfg.Slack.Mode,
		"nats", s.natsWhere(), "vcenters", s.vc.Names())
	err := g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

func (s *system) roleName() string {
	return [...]string{"serve", "bot", "worker"}[s.role]
}

func (s *system) natsWhere() string {
	if s.embedded != nil {
		return "embedded"
	}
	return redactURL(s.cfg.NATS.URL)
}

func (s *system) close() {
	if s.vc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.vc.Close(ctx)
		cancel()
	}
	for _, l := range []*listening{s.ops, s.slack} {
		if l != nil {
			_ = l.ln.Close()
		}
	}
	if s.nc != nil {
		_ = s.nc.Drain()
		s.nc.Close()
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
}

func serve(ctx context.Context, cfg *Config, r role, logger *slog.Logger) error {
	if r != roleAll && cfg.NATS.URL == "" {
		return errors.New("`xvmbot bot` and `xvmbot worker` share work through an external NATS: set nats.url (or use `xvmbot serve`)")
	}
	if w := cfg.NATS.unprotected(); w != "" {
		logger.Warn("NATS IS NOT PROTECTED: "+w, "nats_url", redactURL(cfg.NATS.URL))
	}
	s, err := newSystem(ctx, cfg, r, logger)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
