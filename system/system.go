package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/worker"
)

// System is one xvmbot process, wired from its config. It is the only place that knows
// every concrete type.
type System struct {
	cfg      *config.Config
	role     Role
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

// Option changes what New builds in ways no config key does.
type Option func(*options)

type options struct {
	stamp      Stamp
	readyEvery time.Duration
	sweepEvery time.Duration
}

// WithVersion sets the version xvm_build_info reports (default ReleaseVersion-dev).
func WithVersion(v string) Option { return func(o *options) { o.stamp.Version = v } }

// WithReadyEvery sets how long /readyz's refresher waits between two rounds of probes
// (default 10s).
func WithReadyEvery(d time.Duration) Option { return func(o *options) { o.readyEvery = d } }

// WithSweepEvery sets how often the bot looks for expired requests and reminders due
// (default 30s), for tests of reminders and expiry that cannot wait that long.
func WithSweepEvery(d time.Duration) Option { return func(o *options) { o.sweepEvery = d } }

// New builds every component the role needs and opens its HTTP listeners; nothing
// runs until Run. cfg must be valid (config.Load validates it; a config built in code
// calls Validate).
func New(ctx context.Context, cfg *config.Config, r Role, logger *slog.Logger, opts ...Option) (s *System, err error) {
	o := options{readyEvery: readyEvery}
	for _, opt := range opts {
		opt(&o)
	}
	s = &System{cfg: cfg, role: r, log: logger, reg: prometheus.NewRegistry()}
	// Close what was built through this local: every error path returns nil for s, and a
	// deferred s.close() would then panic instead of reporting err.
	built := s
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(s.reg, ReadBuild(o.stamp))

	if err := s.connectNATS(ctx); err != nil {
		return nil, err
	}
	if s.bus, err = s.openBus(ctx); err != nil {
		return nil, err
	}
	if s.vc, err = vcenter.NewManager(VCenters(cfg), logger, s.reg); err != nil {
		return nil, err
	}

	// The process's name, kept across restarts: the worker's identity, and the name of the
	// bot's post queue.
	instance := workerName(cfg.Worker.Name, s.embedded != nil, cfg.HTTP.OpsListen)
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
		digest, err := cfg.Slack.Digest.Schedule()
		if err != nil {
			return nil, err
		}
		s.svc = approvals.NewService(s.bus.Requests(), cfg.Approvals.Policy(), newGroupMembers(cfg, logger), logger).WithSigner(signer)
		s.bot, err = bot.New(bot.Config{
			Instance: instance,
			BotToken: cfg.Slack.BotToken, AppToken: cfg.Slack.AppToken, SigningSecret: cfg.Slack.SigningSecret,
			APIURL: cfg.Slack.APIURL, Channels: cfg.Slack.Channels, ProgressInterval: cfg.Slack.ProgressInterval,
			EditsPerMinute: cfg.Slack.EditsPerMinute,
			Workers:        cfg.Slack.Workers, WorkQueue: cfg.Slack.WorkQueue,
			Deliveries:       s.bus.Deliveries(),
			MaxCommandBytes:  cfg.Slack.MaxCommandBytes,
			MaxVMsPerRequest: cfg.Limits.MaxVMsPerRequest,
			TableAbove:       cfg.Slack.TableAbove,
			SweepEvery:       o.sweepEvery,
			Digest:           digest,
			Digests:          s.bus.Digests(),
			Windows:          cfg.Windows(),
			ClientURLs:       cfg.ClientURLs(),
			Signer:           signer, Keys: keys,
		}, s.svc, s.vc, s.bus, logger, s.reg)
		if err != nil {
			return nil, err
		}
	}
	if r.runsWorker() {
		s.worker = worker.New(worker.Config{Name: instance, Slots: cfg.Limits.MaxConcurrent, MaxAttempts: cfg.Worker.MaxAttempts,
			RenewEvery: min(s.bus.Config().LeaseTTL/3, 5*time.Second), Windows: cfg.Windows(),
			PlanReuse: cfg.Worker.PlanReuse, HoldFor: cfg.Worker.HoldFor,
			Requests: worker.NATSRequests{Store: s.bus.Requests()}, Trust: keys},
			s.vc, s.bus, worker.NATSRecords{Jobs: s.bus.Jobs()}, worker.NATSLocks{Leases: s.bus.Leases()},
			worker.NATSSlots{Slots: s.bus.Slots(), Limits: worker.Limits{
				PerHost: cfg.Limits.PerHost, PerDatastore: cfg.Limits.PerDatastore, PerVCenter: cfg.Limits.PerVCenter,
			}}, logger, s.reg)
	}

	s.ready = newReadiness(s.probes())
	s.ready.every = o.readyEvery
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

// workerName is the process's identity (the worker's, and the name of the bot's post
// queue): the configured worker.name, else one that a restart keeps
// where no other running process can have it. With the embedded NATS server that is the
// host's name: the server's data directory is locked, so this is the only process using
// it. Against an external NATS it is the host's name and the address of the ops listener
// (opsListen as configured): only one process of a host can listen there, and a restart
// listens there again. Either way a restarted process takes back at once what its
// previous run left running (worker.takeBack), and posts the approval messages its queue
// held (bot.postUnposted). Only an ops listener on a random port
// (":0") leaves the process id to tell processes apart, new on every restart; set
// worker.name then.
func workerName(configured string, embedded bool, opsListen string) string {
	if configured != "" {
		return configured
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "xvmbot"
	}
	if embedded {
		return host
	}
	if _, port, err := net.SplitHostPort(opsListen); err == nil && port != "" && port != "0" {
		return host + "-" + nameSafe(opsListen)
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// nameSafe writes an address as letters, digits and dashes (":9090" → "9090",
// "10.0.0.5:9090" → "10-0-0-5-9090"), for a name that is also part of NATS keys.
func nameSafe(addr string) string {
	f := strings.FieldsFunc(addr, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	return strings.Join(f, "-")
}

// VCenters is the vCenters of cfg as vcenter.NewManager takes them.
func VCenters(cfg *config.Config) []vcenter.Config {
	vcs := make([]vcenter.Config, 0, len(cfg.VCenters))
	for _, v := range cfg.VCenters {
		vcs = append(vcs, vcenter.Config{Name: v.Name, URL: v.URL, Username: v.Username, Password: v.Password,
			Thumbprint: v.Thumbprint, Insecure: v.Insecure, Home: v.Home, ServiceURL: v.ServiceURL, MirrorMaxAge: v.MirrorMaxAge})
	}
	return vcs
}

// probes lists what /readyz reports: NATS is critical, each vCenter and Slack are not
// (the bot stays up and says what is degraded). A vCenter whose login was refused is
// not asked again until its pause is over (vcenter.Manager), so probing never locks
// the service account.
func (s *System) probes() []probe {
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
func (s *System) OpsAddr() string { return s.ops.ln.Addr().String() }

// SlackAddr is the bound address of Slack's endpoints, or "" when this process serves
// none (a worker, or a bot in socket mode).
func (s *System) SlackAddr() string {
	if s.slack == nil {
		return ""
	}
	return s.slack.ln.Addr().String()
}

// Config is the config the system was built from.
func (s *System) Config() *config.Config { return s.cfg }

// Embedded is the embedded NATS server, nil when nats.url names an external one.
func (s *System) Embedded() *events.Embedded { return s.embedded }

// Conn is the system's NATS connection.
func (s *System) Conn() *nats.Conn { return s.nc }

// Bus is the system's streams and buckets.
func (s *System) Bus() *events.Bus { return s.bus }

// Approvals is the approval service, nil in a worker.
func (s *System) Approvals() *approvals.Service { return s.svc }

// VCenter is the system's vCenter sessions.
func (s *System) VCenter() *vcenter.Manager { return s.vc }

// Registry is the registry /metrics serves.
func (s *System) Registry() *prometheus.Registry { return s.reg }

// Run runs every part until ctx is done, then shuts down within a bounded time.
// Relocations in progress keep running in vCenter; their jobs stay unacknowledged and the
// next worker re-attaches.
func (s *System) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	s.ops.serve(gctx, g, "ops")
	if s.slack != nil {
		s.slack.serve(gctx, g, "slack")
	}
	g.Go(func() error { return s.ready.Run(gctx) })
	g.Go(func() error { return s.vc.RunMirrors(gctx) })
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
	s.log.Info("xvmbot running", "role", s.role.String(), "ops_http", s.OpsAddr(), "slack_http", s.SlackAddr(), "slack_mode", s.cfg.Slack.Mode,
		"nats", s.natsWhere(), "vcenters", s.vc.Names())
	err := g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

func (s *System) natsWhere() string {
	if s.embedded != nil {
		return "embedded"
	}
	return s.cfg.NATS.RedactedURL()
}

func (s *System) close() {
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

// Serve runs the role on cfg until ctx ends: what `xvmbot serve`, `bot` and `worker` do.
func Serve(ctx context.Context, cfg *config.Config, r Role, logger *slog.Logger, opts ...Option) error {
	if r != RoleServe && cfg.NATS.URL == "" {
		return errors.New("`xvmbot bot` and `xvmbot worker` share work through an external NATS: set nats.url (or use `xvmbot serve`)")
	}
	if w := cfg.NATS.Unprotected(); w != "" {
		logger.Warn("NATS IS NOT PROTECTED: "+w, "nats_url", cfg.NATS.RedactedURL())
	}
	if follow := applyMemoryLimit(cfg, logger); follow != nil {
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		go follow(ctx)
	}
	s, err := New(ctx, cfg, r, logger, opts...)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
