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
	listener net.Listener
	http     *http.Server
}

// newSystem builds every component the role needs and opens the HTTP listener; nothing
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
	s.bus, err = events.NewBus(ctx, s.nc, events.BusConfig{Replicas: cfg.NATS.Replicas, AckWait: cfg.NATS.AckWait, RetryDelay: cfg.NATS.RetryDelay,
		LeaseTTL: cfg.NATS.LeaseTTL}, logger, s.reg)
	if err != nil {
		return nil, fmt.Errorf("set up NATS streams and buckets: %w", err)
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

	if r.runsBot() {
		s.svc = approvals.NewService(s.bus.Requests(), approvals.Policy{
			Approvers: cfg.Approvals.Approvers, Quorum: cfg.Approvals.Quorum, QuorumByVCenter: cfg.Approvals.QuorumByVCenter,
			AllowSelfApproval: cfg.Approvals.AllowSelfApproval, ExpireAfter: cfg.Approvals.ExpireAfter,
		}, newGroupMembers(cfg, logger), logger)
		s.bot, err = bot.New(bot.Config{
			BotToken: cfg.Slack.BotToken, AppToken: cfg.Slack.AppToken, SigningSecret: cfg.Slack.SigningSecret,
			APIURL: cfg.Slack.APIURL, Channels: cfg.Slack.Channels, ProgressInterval: cfg.Slack.ProgressInterval,
			EditsPerMinute: cfg.Slack.EditsPerMinute,
			Workers:        cfg.Slack.Workers, WorkQueue: cfg.Slack.WorkQueue,
			Deliveries:       s.bus.Deliveries(),
			MaxCommandBytes:  cfg.Slack.MaxCommandBytes,
			MaxVMsPerRequest: cfg.Limits.MaxVMsPerRequest,
			InsecureVCenters: cfg.insecureVCenters(),
			Digest:           bot.Digest{Channel: cfg.Slack.Digest.Channel, Every: cfg.Slack.Digest.Every, Window: cfg.Slack.Digest.Window},
			Windows:          cfg.windows(),
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
			Requests: worker.NATSRequests{Store: s.bus.Requests()}},
			s.vc, s.bus, worker.NATSRecords{Jobs: s.bus.Jobs()}, worker.NATSLocks{Leases: s.bus.Leases()},
			worker.NATSSlots{Slots: s.bus.Slots(), Limits: worker.Limits{
				PerHost: cfg.Limits.PerHost, PerDatastore: cfg.Limits.PerDatastore, PerVCenter: cfg.Limits.PerVCenter,
			}}, logger, s.reg)
	}

	var app http.Handler
	if s.bot != nil && cfg.Slack.Mode == "http" {
		app = s.bot.Handler()
	}
	s.listener, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	s.http = &http.Server{Handler: opsHandler(s.reg, app, s.readiness()), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

func (s *system) connectNATS(ctx context.Context) error {
	opts := []nats.Option{nats.Name("xvmbot"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
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
		s.nc, err = s.embedded.Connect(opts...)
		return err
	}
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
	nc, err := nats.Connect(s.cfg.NATS.URL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", s.cfg.NATS.URL, err)
	}
	s.nc = nc
	return nil
}

// readiness lists what /readyz reports: NATS is critical, each vCenter and Slack are not
// (the bot stays up and says what is degraded).
func (s *system) readiness() []readiness {
	checks := []readiness{{name: "nats", critical: true, check: func(context.Context) error {
		if !s.nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	}}}
	for _, name := range s.vc.Names() {
		checks = append(checks, readiness{name: "vcenter:" + name, check: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			return s.vc.Ping(ctx, name)
		}})
	}
	if s.bot != nil {
		checks = append(checks, readiness{name: "slack", check: func(context.Context) error { return s.bot.Ready() }})
	}
	return checks
}

// Addr is the bound HTTP address (useful with port 0).
func (s *system) Addr() string { return s.listener.Addr().String() }

// Run runs every part until ctx is done, then shuts down within a bounded time.
// Relocations in progress keep running in vCenter; their jobs stay unacknowledged and the
// next worker re-attaches.
func (s *system) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 10*time.Second)
		defer cancel()
		return s.http.Shutdown(sctx)
	})
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
	s.log.Info("xvmbot running", "role", s.roleName(), "http", s.Addr(), "slack_mode", s.cfg.Slack.Mode,
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
	return s.cfg.NATS.URL
}

func (s *system) close() {
	if s.vc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.vc.Close(ctx)
		cancel()
	}
	if s.listener != nil {
		_ = s.listener.Close()
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
	for _, v := range cfg.VCenters {
		if v.Insecure {
			logger.Warn("TLS VERIFICATION IS OFF for this vCenter (insecure: true): anyone on the path can impersonate it and receive the service account's password",
				"vcenter", v.Name)
		}
	}
	s, err := newSystem(ctx, cfg, r, logger)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
