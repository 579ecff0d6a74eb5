package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// People and places of the load runs.
const (
	channel  = "C0LOAD"
	alice    = "U0ALICE" // requester
	bob      = "U0BOB"   // approver
	dave     = "U0DAVE"  // not an approver
	signing  = "load-signing-secret"
	botToken = "xoxb-load"
)

// stackOpts says what to start.
type stackOpts struct {
	taskDuration time.Duration // emulated XVM relocation time
	extraVMs     int           // bulk-0001… in vc-east
	slots        int           // limits.max_concurrent of the one worker
	perHost      int           // limits.per_host (0: the default)
	perDatastore int           // limits.per_datastore (0: the default)
	slowVC       time.Duration // added to every client→vc-east write (0: none)
	mirrorMaxAge time.Duration // vcenters[].mirror_max_age of both vCenters (0: no mirror)
	workers      int           // slack.workers (0: the default)
	planReuse    time.Duration // worker.plan_reuse (0: the default, 30s)
	tableAbove   int           // slack.table_above (0: the default)
	verbose      bool
}

// stack is one `xvmbot serve` process, built by system.New from a config as the binary
// builds it, on an xvmsim lab, a slacksim workspace and an embedded NATS server, all in
// this process.
type stack struct {
	lab    *xvmsim.Lab
	ws     *slacksim.Workspace
	sys    *system.System
	nc     *nats.Conn
	vc     *vcenter.Manager
	reg    *prometheus.Registry
	proxy  *slowProxy
	dir    string
	cancel context.CancelFunc
	done   chan error
}

func startStack(ctx context.Context, o stackOpts) (_ *stack, err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	logw := io.Discard
	if o.verbose {
		logw = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))

	s.lab, err = xvmsim.Start(ctx, xvmsim.WithTaskDuration(o.taskDuration), xvmsim.WithExtraVMs(o.extraVMs))
	if err != nil {
		return nil, fmt.Errorf("start simulated vCenters: %w", err)
	}
	s.ws = slacksim.New()
	for id, n := range map[string]string{alice: "alice", bob: "bob", dave: "dave"} {
		s.ws.AddUser(id, n)
	}
	if s.dir, err = os.MkdirTemp("", "xvmload-"); err != nil {
		return nil, err
	}
	cfg, err := s.config(o)
	if err != nil {
		return nil, err
	}
	if s.sys, err = system.New(ctx, cfg, system.RoleServe, logger); err != nil {
		return nil, err
	}
	s.nc, s.vc, s.reg = s.sys.Conn(), s.sys.VCenter(), s.sys.Registry()

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- s.sys.Run(runCtx) }()
	s.ws.UseHTTP("http://"+s.sys.SlackAddr(), signing)
	return s, nil
}

// config is the stack's config: the defaults of every key the options do not set.
func (s *stack) config(o stackOpts) (*config.Config, error) {
	cfg := config.Default()
	cfg.Slack = config.SlackConfig{Mode: "http", BotToken: botToken, SigningSecret: signing, APIURL: s.ws.APIURL(),
		Channels: []string{channel}, ProgressInterval: time.Second, TableAbove: o.tableAbove, Workers: o.workers}
	cfg.HTTP = config.HTTPConfig{Listen: "127.0.0.1:0", OpsListen: "127.0.0.1:0"}
	cfg.NATS.DataDir = filepath.Join(s.dir, "nats")
	cfg.NATS.RetryDelay = 300 * time.Millisecond
	cfg.Worker = config.WorkerConfig{Name: "load-worker", MaxAttempts: 2, PlanReuse: o.planReuse}
	cfg.Limits.MaxConcurrent = o.slots
	if o.perHost > 0 {
		cfg.Limits.PerHost = o.perHost
	}
	if o.perDatastore > 0 {
		cfg.Limits.PerDatastore = o.perDatastore
	}
	cfg.Approvals.Approvers = []string{bob}
	cfg.Approvals.SigningKeyFile = filepath.Join(s.dir, "approval-signing.nk")
	if _, err := system.WriteSigningKey(cfg.Approvals.SigningKeyFile); err != nil {
		return nil, err
	}
	for i, v := range s.lab.VCs() {
		u := v.URL.String()
		if i == 0 && o.slowVC > 0 {
			// Only the home (source) vCenter is slowed: the target's URL must stay the one
			// the simulated source checks the ServiceLocator against.
			var err error
			if s.proxy, err = newSlowProxy(v.URL.Host, o.slowVC); err != nil {
				return nil, err
			}
			u = "https://" + s.proxy.addr() + v.URL.Path
		}
		cfg.VCenters = append(cfg.VCenters, config.VCenterConfig{Name: v.Name, URL: u, Username: v.Username,
			Password: secret.Secret(v.Password), Thumbprint: v.Thumbprint, Home: i == 0, MirrorMaxAge: o.mirrorMaxAge})
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return cfg, nil
}

func (s *stack) close() {
	if s.cancel != nil {
		s.cancel()
		<-s.done // Run closes the system: vCenter sessions, NATS, the embedded server
	}
	if s.proxy != nil {
		s.proxy.close()
	}
	if s.ws != nil {
		s.ws.Close()
	}
	if s.lab != nil {
		s.lab.Close()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// slowProxy relays TCP (TLS passes through untouched, so the vCenter's thumbprint is
// unchanged) and delays every chunk the client sends: a slow or distant vCenter.
type slowProxy struct {
	ln      net.Listener
	backend string
	delay   time.Duration
}

func newSlowProxy(backend string, delay time.Duration) (*slowProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &slowProxy{ln: ln, backend: backend, delay: delay}
	go p.accept()
	return p, nil
}

func (p *slowProxy) addr() string { return p.ln.Addr().String() }
func (p *slowProxy) close()       { _ = p.ln.Close() }

func (p *slowProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.relay(c)
	}
}

func (p *slowProxy) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				time.Sleep(p.delay)
				if _, werr := server.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, server)
		done <- struct{}{}
	}()
	<-done
}
