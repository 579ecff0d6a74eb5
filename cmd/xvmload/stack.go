package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
	"github.com/xvmbot/xvmbot/worker"
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

// defaultLimits are cmd/xvmbot's defaults of limits.per_host, per_datastore, per_vcenter.
var defaultLimits = worker.Limits{PerHost: 2, PerDatastore: 8, PerVCenter: 128}

// stackOpts says what to start.
type stackOpts struct {
	taskDuration time.Duration // emulated XVM relocation time
	extraVMs     int           // bulk-0001… in vc-east
	slots        int           // limits.max_concurrent of the one worker
	limits       worker.Limits // limits.per_host, per_datastore, per_vcenter
	slowVC       time.Duration // added to every client→vc-east write (0: none)
	planReuse    time.Duration // worker.plan_reuse (0: the default, 30s)
	verbose      bool
}

// stack is one xvmbot process wired as cmd/xvmbot's system.go wires `serve`, on an
// xvmsim lab, a slacksim workspace and an embedded NATS server, all in this process.
type stack struct {
	lab    *xvmsim.Lab
	ws     *slacksim.Workspace
	emb    *events.Embedded
	nc     *nats.Conn
	bus    *events.Bus
	vc     *vcenter.Manager
	reg    *prometheus.Registry
	addr   string
	proxy  *slowProxy
	dir    string
	cancel context.CancelFunc
	g      *errgroup.Group
}

func startStack(ctx context.Context, o stackOpts) (_ *stack, err error) {
	s := &stack{reg: prometheus.NewRegistry()}
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
	s.emb, err = events.StartEmbedded(ctx, events.EmbeddedConfig{DataDir: s.dir}, logger)
	if err != nil {
		return nil, err
	}
	if s.nc, err = s.emb.Connect(nats.Name("xvmload")); err != nil {
		return nil, err
	}
	s.bus, err = events.NewBus(ctx, s.nc, events.BusConfig{Replicas: 1, RetryDelay: 300 * time.Millisecond}, logger, s.reg)
	if err != nil {
		return nil, err
	}

	var vcs []vcenter.Config
	for i, v := range s.lab.VCs() {
		u := v.URL.String()
		if i == 0 && o.slowVC > 0 {
			// Only the home (source) vCenter is slowed: the target's URL must stay the one
			// the simulated source checks the ServiceLocator against.
			if s.proxy, err = newSlowProxy(v.URL.Host, o.slowVC); err != nil {
				return nil, err
			}
			u = "https://" + s.proxy.addr() + v.URL.Path
		}
		vcs = append(vcs, vcenter.Config{Name: v.Name, URL: u, Username: v.Username, Password: secret.Secret(v.Password),
			Thumbprint: v.Thumbprint, Home: i == 0})
	}
	if s.vc, err = vcenter.NewManager(vcs, logger, s.reg); err != nil {
		return nil, err
	}
	signer, keys, err := ephemeralKey()
	if err != nil {
		return nil, err
	}
	svc := approvals.NewService(s.bus.Requests(), approvals.Policy{Approvers: []string{bob}, Quorum: 1, ExpireAfter: 4 * time.Hour}, nil, logger).
		WithSigner(signer)
	b, err := bot.New(bot.Config{BotToken: botToken, SigningSecret: signing, APIURL: s.ws.APIURL(), Channels: []string{channel},
		ProgressInterval: time.Second, Signer: signer, Keys: keys, Deliveries: s.bus.Deliveries()}, svc, s.vc, s.bus, logger, s.reg)
	if err != nil {
		return nil, err
	}
	if o.limits == (worker.Limits{}) {
		o.limits = defaultLimits
	}
	w := worker.New(worker.Config{Name: "load-worker", Slots: o.slots, MaxAttempts: 2, RenewEvery: s.bus.Config().LeaseTTL / 3,
		Requests: worker.NATSRequests{Store: s.bus.Requests()}, PlanReuse: o.planReuse, Trust: keys},
		s.vc, s.bus, worker.NATSRecords{Jobs: s.bus.Jobs()}, worker.NATSLocks{Leases: s.bus.Leases()},
		worker.NATSSlots{Slots: s.bus.Slots(), Limits: o.limits}, logger, s.reg)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 10 * time.Second}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	g, gctx := errgroup.WithContext(runCtx)
	s.g = g
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return b.Run(gctx) })
	g.Go(func() error { return s.bus.RunEvents(gctx, b.HandleEvent) })
	g.Go(func() error { return w.Run(gctx) })
	s.ws.UseHTTP("http://"+s.addr, signing)
	return s, nil
}

func (s *stack) close() {
	if s.cancel != nil {
		s.cancel()
		_ = s.g.Wait()
	}
	if s.vc != nil {
		ctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		s.vc.Close(ctx)
		c()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.emb != nil {
		s.emb.Shutdown()
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
