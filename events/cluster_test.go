package events_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
	"github.com/xvmbot/xvmbot/worker"
	"github.com/xvmbot/xvmbot/worker/workertest"
)

// A three-node NATS cluster on loopback, every stream and bucket replicated three times,
// three workers spread over the nodes: the node leading the jobs stream is shut down in
// the middle of a wave, and every VM is still relocated exactly once (by the source
// vCenter's own count) with no job left in the queue.
func TestClusterNodeLossDuringWave(t *testing.T) {
	const vms = 12
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	nodes := startCluster(t, 3)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.ClientURL()
	}

	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(1200*time.Millisecond), xvmsim.WithExtraVMs(vms))
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	var vcs []vcenter.Config
	for i, vc := range lab.VCs() {
		vcs = append(vcs, vcenter.Config{Name: vc.Name, URL: vc.URL.String(), Username: vc.Username, Password: secret.Secret(vc.Password),
			Thumbprint: vc.Thumbprint, Home: i == 0})
	}

	busCfg := events.BusConfig{Replicas: 3, AckWait: 2 * time.Second, RetryDelay: 100 * time.Millisecond, LeaseTTL: 3 * time.Second}
	// Each worker prefers a different node, as pods spread over a cluster would.
	connect := func(first int) *nats.Conn {
		order := append(append([]string{}, urls[first:]...), urls[:first]...)
		nc, err := nats.Connect(strings.Join(order, ","), nats.DontRandomize(), nats.MaxReconnects(-1),
			nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	newBus := func(nc *nats.Conn) *events.Bus {
		var b *events.Bus
		deadline := time.Now().Add(30 * time.Second)
		for {
			bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
			b, err = events.NewBus(bctx, nc, busCfg, logger, prometheus.NewRegistry())
			bcancel()
			if err == nil {
				return b
			}
			if time.Now().After(deadline) {
				t.Fatalf("bus on the cluster: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // the JetStream meta leader is still being elected
		}
	}
	publisher := newBus(connect(0))
	signer, keys := workertest.Key(1)

	// The test's own connection, on the node that stays up longest in the node order.
	watchNC := connect(2)
	progressed := make(chan struct{}, 1)
	if _, err := watchNC.Subscribe(events.SubjectEvents+".>", func(m *nats.Msg) {
		if strings.HasSuffix(m.Subject, "."+string(events.EventProgress)) {
			select {
			case progressed <- struct{}{}:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}

	// Workers run on a context without a deadline, as under `xvmbot worker`: the jetstream
	// client bounds each call with its default timeout only when the caller's context has
	// no deadline of its own (see the reliability notes).
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopWorkers(); wg.Wait() }()
	for i := range 3 {
		nc := connect(i)
		b := newBus(nc)
		mgr, err := vcenter.NewManager(vcs, logger, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		defer mgr.Close(context.Background())
		w := worker.New(worker.Config{Name: fmt.Sprintf("w%d", i+1), Slots: 2, MaxAttempts: 3, RenewEvery: time.Second,
			Trust: keys, Requests: worker.NATSRequests{Store: b.Requests()}},
			mgr, b, worker.NATSRecords{Jobs: b.Jobs()}, worker.NATSLocks{Leases: b.Leases()},
			worker.NATSSlots{Slots: b.Slots(), Limits: worker.Limits{PerHost: 8, PerDatastore: 8, PerVCenter: 128}},
			logger, prometheus.NewRegistry())
		wg.Go(func() {
			if err := w.Run(wctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("worker w%d: %v", i+1, err)
			}
		})
	}

	names := make([]string, vms)
	var wave []events.Job
	for i := range names {
		names[i] = fmt.Sprintf("bulk-%04d", i+1)
		wave = append(wave, events.Job{V: events.SchemaVersion, ID: fmt.Sprintf("xvm-cluster1-%02d", i+1), RequestID: "xvm-cluster1",
			Direction: "migrate", VM: names[i], SourceVC: xvmsim.EastVC, TargetVC: xvmsim.WestVC,
			Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Networks: []move.Network{{Target: "app-pg"}}}, QueuedAt: time.Now()})
	}
	wave, err = (&workertest.Approver{Store: publisher.Requests(), Signer: signer, Lab: lab}).Approve(ctx, wave...)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range wave {
		if err := publisher.PublishJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}

	// Mid-wave: shut down the node that leads the jobs stream.
	select {
	case <-progressed:
	case <-ctx.Done():
		t.Fatal("no progress before the node loss")
	}
	victim := streamLeader(ctx, t, watchNC)
	for _, n := range nodes {
		if n.Name() == victim {
			n.Shutdown()
			n.WaitForShutdown()
		}
	}
	t.Logf("shut down %s, the %s leader, during the wave", victim, events.StreamJobs)

	east := lab.VC(xvmsim.EastVC)
	deadline := time.Now().Add(45 * time.Second)
	for east.XVMRelocations() < vms || finalEvents(ctx, t, watchNC) < vms {
		if time.Now().After(deadline) {
			if testing.Verbose() {
				_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			}
			t.Fatalf("after the node loss: %d of %d relocations, %d final events", east.XVMRelocations(), vms, finalEvents(context.Background(), t, watchNC))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, vm := range names {
		if n := east.XVMRelocationsOf(vm); n != 1 {
			t.Errorf("%s relocated %d times, want 1", vm, n)
		}
	}
	qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
	defer qcancel()
	for {
		n, err := publisher.QueuedJobs(qctx)
		if err == nil && n == 0 {
			break
		}
		if qctx.Err() != nil {
			t.Errorf("%d jobs still queued (%v)", n, err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// finalEvents counts the jobs with a succeeded event stored in the (replicated) events
// stream, read back as the bot's durable consumer would see them.
func finalEvents(ctx context.Context, t *testing.T, nc *nats.Conn) int {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(rctx, events.StreamEvents)
	if err != nil {
		return 0 // the stream is electing a leader
	}
	info, err := st.Info(rctx)
	if err != nil {
		return 0
	}
	jobs := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(rctx, seq)
		if err != nil {
			continue
		}
		if strings.HasSuffix(m.Subject, "."+string(events.EventSucceeded)) {
			jobs[m.Header.Get(nats.MsgIdHdr)] = true
		}
	}
	return len(jobs)
}

func streamLeader(ctx context.Context, t *testing.T, nc *nats.Conn) string {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, events.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("jobs stream leader: %v %+v", err, info)
	}
	if len(info.Cluster.Replicas) != 2 {
		t.Errorf("jobs stream has %d peers besides the leader, want 2 (3 replicas)", len(info.Cluster.Replicas))
	}
	return info.Cluster.Leader
}

// startCluster starts n JetStream servers routed to each other on loopback, as
// nats-server's own tests do (createJetStreamClusterExplicit), and stops them at the end.
func startCluster(t *testing.T, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	routes := make([]*url.URL, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	var out []*server.Server
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i+1)),
			JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 256 << 20,
			Cluster: server.ClusterOpts{Name: "xvm", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("n%d not ready", i+1)
		}
		out = append(out, s)
	}
	return out
}

// A claim whose slot lapsed (its worker stalled past the TTL) and whose place was taken
// must not come back over the limit when its late renewal arrives: the limits are what
// keep a wave within vSphere's per-host and per-datastore budgets.
func TestLateSlotRenewalKeepsTheLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(), JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := events.NewBus(ctx, nc, events.BusConfig{LeaseTTL: time.Second}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	want := []events.Want{{Key: "datastore/vc-west/ds-gold", Limit: 1}}
	stalled, err := b.Slots().Acquire(ctx, "job-stalled", want)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the stalled holder's slot lapses
	if _, err := b.Slots().Acquire(ctx, "job-next", want); err != nil {
		t.Fatalf("the lapsed slot was not freed: %v", err)
	}
	if err := stalled.Renew(ctx); !errors.Is(err, events.ErrSlotLost) { // the stalled worker wakes up
		t.Errorf("late renewal: %v, want ErrSlotLost", err)
	}
	if n, err := b.Slots().Count(ctx, want[0].Key); err != nil || n > 1 {
		t.Errorf("%d holders of a slot limited to 1 after a late renewal (%v)", n, err)
	}
}
