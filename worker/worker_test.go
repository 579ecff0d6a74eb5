package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
	"github.com/xvmbot/xvmbot/worker/workertest"
)

// The worker is tested on real parts: simulated vCenters, a vcenter.Manager, and job
// records and leases in an embedded NATS. Only the event sink is a recorder, because what
// the worker says is what these tests check.

type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) PublishEvent(_ context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) RunWorker(context.Context, int, events.JobHandler) error { return nil }

// saw reports whether an event matching ok was published.
func (r *recorder) saw(ok func(events.Event) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if ok(e) {
			return true
		}
	}
	return false
}

func (r *recorder) final() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.Event
	for _, e := range r.events {
		if e.Type.Final() {
			out = append(out, e)
		}
	}
	return out
}

type delivery struct{ n uint64 }

func (d delivery) Attempt() uint64   { return d.n }
func (d delivery) InProgress() error { return nil }

type rig struct {
	ctx      context.Context
	lab      *xvmsim.Lab
	mgr      *vcenter.Manager
	bus      *events.Bus
	rec      *recorder
	keys     *approvals.Keyring
	approver *workertest.Approver
}

// newRig starts a lab (tasks of 400ms unless opts say otherwise), a Manager of its
// vCenters and an embedded NATS.
func newRig(t *testing.T, opts ...xvmsim.Option) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	lab, err := xvmsim.Start(ctx, append([]xvmsim.Option{xvmsim.WithTaskDuration(400 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	mgr := labManager(t, lab, logger)
	srv, err := events.StartEmbedded(ctx, events.EmbeddedConfig{DataDir: filepath.Join(t.TempDir(), "nats")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := events.NewBus(ctx, nc, events.BusConfig{}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, keys := workertest.Key(1)
	return &rig{ctx: ctx, lab: lab, mgr: mgr, bus: bus, rec: &recorder{}, keys: keys,
		approver: &workertest.Approver{Store: bus.Requests(), Signer: signer, Lab: lab}}
}

// approve stores the approved request of jobs and returns them signed, as the bot queues them.
func (r *rig) approve(t *testing.T, jobs ...events.Job) []events.Job {
	t.Helper()
	out, err := r.approver.Approve(r.ctx, jobs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// job is the approved job of vm in the tests' request.
func (r *rig) job(t *testing.T, vm string) events.Job {
	t.Helper()
	return r.approve(t, jobFor(vm))[0]
}

// trusting completes a worker's config with what it checks approvals against.
func (r *rig) trusting(c Config) Config {
	c.Trust = r.keys
	if c.Requests == nil {
		c.Requests = NATSRequests{Store: r.bus.Requests()}
	}
	return c
}

// labManager is a Manager of every vCenter of lab, the first one home.
func labManager(t *testing.T, lab *xvmsim.Lab, logger *slog.Logger) *vcenter.Manager {
	t.Helper()
	var cfgs []vcenter.Config
	for i, vc := range lab.VCs() {
		cfgs = append(cfgs, vcenter.Config{Name: vc.Name, URL: vc.URL.String(), Username: vc.Username,
			Password: secret.Secret(vc.Password), Thumbprint: vc.Thumbprint, Home: i == 0})
	}
	mgr, err := vcenter.NewManager(cfgs, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.Background()) })
	return mgr
}

func (r *rig) worker(name string, maxAttempts int) *Worker {
	return New(r.trusting(Config{Name: name, Slots: 1, MaxAttempts: maxAttempts}), r.mgr, r.rec,
		NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

// jobFor is the job of web-NN in the tests' request, not yet approved (see rig.approve).
func jobFor(vm string) events.Job {
	return events.Job{V: 1, ID: "xvm-test0001-01", RequestID: "xvm-test0001", Direction: "migrate", VM: vm,
		SourceVC: "vc-east", TargetVC: "vc-west", Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web",
		Networks: []events.NetworkMapping{{Target: "app-pg"}}, DiskFormat: "thin"}
}

func (r *rig) plan(t *testing.T, j events.Job) *vcenter.Plan {
	t.Helper()
	p, err := r.mgr.Plan(r.ctx, moveSpec(j))
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %+v", err, p)
	}
	return p
}

func (r *rig) arrivedOnce(t *testing.T, vm string) {
	t.Helper()
	if _, err := r.lab.VC("vc-west").FindVM(r.ctx, vm); err != nil {
		t.Errorf("%s not in vc-west: %v", vm, err)
	}
	if _, err := r.lab.VC("vc-east").FindVM(r.ctx, vm); !errors.Is(err, xvmsim.ErrNotFound) {
		t.Errorf("%s still in vc-east", vm)
	}
	if n := r.lab.VC("vc-east").XVMRelocationsOf(vm); n != 1 {
		t.Errorf("%s relocated %d times, want exactly 1", vm, n)
	}
	if f := r.rec.final(); len(f) != 1 || f[0].Type != events.EventSucceeded {
		t.Errorf("final events %+v, want one succeeded", f)
	}
}

func TestFreshJobMovesTheVM(t *testing.T) {
	r := newRig(t)
	if err := r.worker("w1", 3).Handle(r.ctx, r.job(t, "web-01"), delivery{1}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-01")
	rec, _, err := r.bus.Jobs().Get(r.ctx, "xvm-test0001-01")
	if err != nil || rec.State != events.JobSucceeded || rec.TaskRef == "" || rec.Attempts != 1 {
		t.Fatalf("job record %+v (%v)", rec, err)
	}
	// The outcome carries where the VM was, for /xvm undo.
	o := r.rec.final()[0].Origin
	if o == nil || o.VCenter != "vc-east" || o.Cluster != "east-prod" || o.Pool != "apps" || o.Folder != "apps/web" ||
		o.Datastore != "east-ds-01" || o.Host == "" || len(o.Networks) != 1 ||
		o.Networks[0] != (events.NetworkMapping{Source: "app-pg", Target: "east-app-pg"}) {
		t.Fatalf("origin = %+v", o)
	}
}

// A worker died after starting the relocation: the next one follows the same task.
func TestRedeliveryFollowsTheRecordedTask(t *testing.T) {
	r := newRig(t)
	j := r.job(t, "web-02")
	taskRef, err := r.mgr.Start(r.ctx, r.plan(t, j), j.VM)
	if err != nil {
		t.Fatal(err)
	}
	err = NATSRecords{Jobs: r.bus.Jobs()}.Save(r.ctx, events.JobRecord{JobID: j.ID, State: events.JobRunning, Worker: "dead-worker",
		Attempts: 1, TaskRef: taskRef, SourceVC: "vc-east"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.worker("w2", 3).Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-02")
	var started []string
	for _, e := range r.rec.events {
		if e.Type == events.EventStarted {
			started = append(started, e.Message)
		}
	}
	if len(started) != 1 || !strings.Contains(started[0], taskRef) {
		t.Errorf("started events %q, want one saying it follows %s", started, taskRef)
	}
}

// A worker died between asking vCenter to relocate and recording the task, and the move
// finished meanwhile: the next one sees the VM arrived and starts nothing.
func TestRedeliveryAfterTheMoveFinishedStartsNothing(t *testing.T) {
	r := newRig(t)
	j := r.job(t, "web-03")
	if _, err := r.mgr.Relocate(r.ctx, r.plan(t, j), j.VM, nil); err != nil {
		t.Fatal(err)
	}
	err := NATSRecords{Jobs: r.bus.Jobs()}.Save(r.ctx, events.JobRecord{JobID: j.ID, State: events.JobPreparing, Worker: "dead-worker", Attempts: 1, SourceVC: "vc-east"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.worker("w2", 3).Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-03")
}

// Two jobs for the same VM (two requests for web-01) reach the same worker at once: the
// VM's lease belongs to one job, so the other waits for it and never starts a second
// relocation, although both run under the same worker name.
func TestTwoJobsForOneVMOnOneWorker(t *testing.T) {
	r := newRig(t)
	w := r.worker("w1", 3)
	first, second := r.job(t, "web-01"), jobFor("web-01")
	second.ID, second.RequestID = "xvm-test0002-01", "xvm-test0002"
	second = r.approve(t, second)[0]
	done := make(chan error, 1)
	go func() { done <- w.Handle(r.ctx, first, delivery{1}) }()
	for {
		holder, err := r.bus.Leases().Holder(r.ctx, leaseKey(first))
		if err != nil {
			t.Fatal(err)
		}
		if holder != "" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the first job ended (%v) before its lease was seen", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	err := w.Handle(r.ctx, second, delivery{1})
	if !errors.Is(err, events.ErrRetry) {
		t.Fatalf("second job: err = %v, want it handed back to wait for the lease", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-01")
	if _, seen, _ := (NATSRecords{Jobs: r.bus.Jobs()}).Load(r.ctx, second.ID); seen {
		t.Errorf("the second job left a record: it got past the lease")
	}
}

// A finished job delivered again re-announces its outcome (same event id) and moves nothing.
func TestFinishedJobIsOnlyReannounced(t *testing.T) {
	r := newRig(t)
	w := r.worker("w1", 3)
	j := r.job(t, "web-01")
	if err := w.Handle(r.ctx, j, delivery{1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatal(err)
	}
	f := r.rec.final()
	if len(f) != 2 || f[0].ID != f[1].ID || f[1].Type != events.EventSucceeded {
		t.Fatalf("final events %+v: want the same succeeded event twice (NATS stores it once)", f)
	}
	if f[1].Origin == nil || f[1].TaskRef != f[0].TaskRef || f[1].Duration != f[0].Duration {
		t.Fatalf("re-announced %+v, want it as first published (origin, task, duration): %+v", f[1], f[0])
	}
	if n := r.lab.VC("vc-east").XVMRelocations(); n != 1 {
		t.Fatalf("%d relocations, want 1", n)
	}
}

// While another worker holds the VM's lease, the job waits; nothing runs twice.
func TestLeaseHeldElsewhereWaits(t *testing.T) {
	r := newRig(t)
	j := r.job(t, "web-01")
	lease, err := r.bus.Leases().Acquire(r.ctx, leaseKey(j), "other-worker")
	if err != nil {
		t.Fatal(err)
	}
	err = r.worker("w1", 3).Handle(r.ctx, j, delivery{1})
	if !errors.Is(err, events.ErrRetry) {
		t.Fatalf("err = %v, want a retry", err)
	}
	if n := r.lab.VC("vc-east").XVMRelocations(); n != 0 || len(r.rec.events) != 0 {
		t.Fatalf("ran anyway: %d relocations, events %+v", n, r.rec.events)
	}
	if err := lease.Release(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.worker("w1", 3).Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-01")
}

// A target that stops answering: retried up to MaxAttempts deliveries, then failed with
// words that say what is wrong; the VM never leaves the source.
func TestUnreachableTargetFailsAfterAttempts(t *testing.T) {
	r := newRig(t)
	j := r.job(t, "web-02")
	r.lab.VC("vc-west").SetDown(true)
	w := r.worker("w1", 2)
	if err := w.Handle(r.ctx, j, delivery{1}); !errors.Is(err, events.ErrRetry) {
		t.Fatalf("first attempt: %v, want a retry", err)
	}
	err := w.Handle(r.ctx, j, delivery{2})
	if err == nil || errors.Is(err, events.ErrRetry) {
		t.Fatalf("second attempt: %v, want a permanent failure", err)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventFailed || !strings.Contains(f[0].Error, "vc-west") || f[0].Hint == "" {
		t.Fatalf("final events %+v, want one failure naming vc-west with a hint", f)
	}
	r.lab.VC("vc-west").SetDown(false)
	if _, err := r.lab.VC("vc-east").FindVM(r.ctx, j.VM); err != nil {
		t.Fatalf("%s left vc-east: %v", j.VM, err)
	}
	rec, _, _ := r.bus.Jobs().Get(r.ctx, j.ID)
	if rec.State != events.JobFailed || rec.Attempts != 2 {
		t.Fatalf("job record %+v", rec)
	}
}

// concurrency wraps the real relocator and records, per resource of each move's
// footprint, how many relocations ran at once.
type concurrency struct {
	relocator
	mu    sync.Mutex
	fps   map[string]vcenter.Footprint
	now   map[string]int
	peak  map[string]int
	total int
	max   int
	plans int
}

func (c *concurrency) Plan(ctx context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error) {
	c.mu.Lock()
	c.plans++
	c.mu.Unlock()
	return c.relocator.Plan(ctx, spec)
}

func (c *concurrency) keys(fp vcenter.Footprint) []string {
	keys := []string{"host/" + fp.SourceHost, "host/" + fp.TargetHost, "datastore/" + fp.TargetDatastore,
		"vcenter/" + fp.SourceVCenter, "vcenter/" + fp.TargetVCenter}
	for _, ds := range fp.SourceDatastores {
		keys = append(keys, "datastore/"+ds)
	}
	return keys
}

func (c *concurrency) Start(ctx context.Context, p *vcenter.Plan, vm string) (string, error) {
	fp, err := c.relocator.Footprint(ctx, p, vm)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.fps[vm] = fp
	for _, k := range c.keys(fp) {
		c.now[k]++
		c.peak[k] = max(c.peak[k], c.now[k])
	}
	c.total++
	c.max = max(c.max, c.total)
	c.mu.Unlock()
	return c.relocator.Start(ctx, p, vm)
}

func (c *concurrency) Watch(ctx context.Context, vcName, taskRef, vm string, progress vcenter.ProgressFunc) (*vcenter.Result, error) {
	res, err := c.relocator.Watch(ctx, vcName, taskRef, vm, progress)
	c.mu.Lock()
	for _, k := range c.keys(c.fps[vm]) {
		c.now[k]--
	}
	c.total--
	c.mu.Unlock()
	return res, err
}

// waveSize is the number of VMs in the wave test.
const waveSize = 200

// A wave of 200 VMs in two requests (half to ds-gold, half to ds-silver), shared by two
// workers with 4 slots each. Every limit binds somewhere: 2 moves per host (3 target
// hosts), 3 per datastore (two target datastores), 5 per vCenter (fewer than the hosts,
// datastores and workers' 8 slots allow). Observed at Start and at the end of Watch,
// i.e. while vCenter runs the task, no host, datastore or vCenter ever runs more than
// its limit across both workers; every VM moves exactly once; the jobs of a request
// share their pre-flight; and a full host sends jobs to the other hosts of the cluster.
func TestWaveRespectsLimitsAcrossWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(300*time.Millisecond), xvmsim.WithExtraVMs(waveSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close) // after the Manager's logout (cleanups run last first)
	mgr := labManager(t, lab, logger)
	srv, err := events.StartEmbedded(ctx, events.EmbeddedConfig{DataDir: filepath.Join(t.TempDir(), "nats")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bus, err := events.NewBus(ctx, nc, events.BusConfig{RetryDelay: 50 * time.Millisecond}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Two requests of the wave: odd VMs to ds-gold, even VMs to ds-silver.
	signer, keys := workertest.Key(1)
	approver := &workertest.Approver{Store: bus.Requests(), Signer: signer, Lab: lab}
	waves := []struct{ id, datastore string }{{"xvm-wave0001", xvmsim.WestGold}, {"xvm-wave0002", xvmsim.WestSilver}}
	var jobs []events.Job
	for w, wave := range waves {
		var req []events.Job
		for i := 1 + w; i <= waveSize; i += len(waves) {
			vm := fmt.Sprintf("bulk-%04d", i)
			id := fmt.Sprintf("%s-%03d", wave.id, i)
			req = append(req, events.Job{V: 1, ID: id, RequestID: wave.id, Direction: "migrate", VM: vm,
				SourceVC: "vc-east", TargetVC: "vc-west", Cluster: "west-prod", Datastore: wave.datastore,
				Networks: []events.NetworkMapping{{Target: "app-pg"}}})
		}
		signed, err := approver.Approve(ctx, req...)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, signed...)
	}

	limits := Limits{PerHost: 2, PerDatastore: 3, PerVCenter: 5}
	obs := &concurrency{relocator: mgr, fps: map[string]vcenter.Footprint{}, now: map[string]int{}, peak: map[string]int{}}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, name := range []string{"w1", "w2"} {
		w := New(Config{Name: name, Slots: 4, MaxAttempts: 3, WaitDelay: 50 * time.Millisecond,
			Requests: NATSRequests{Store: bus.Requests()}, Trust: keys}, obs, bus,
			NATSRecords{Jobs: bus.Jobs()}, NATSLocks{Leases: bus.Leases()}, NATSSlots{Slots: bus.Slots(), Limits: limits},
			logger, prometheus.NewRegistry())
		wg.Go(func() { _ = w.Run(runCtx) })
	}
	defer func() { stop(); wg.Wait() }()

	// Interleaved, as two requests approved a moment apart would reach the queue.
	for i := range jobs {
		j := jobs[(i%2)*(len(jobs)/2)+i/2]
		if err := bus.PublishJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	const n = waveSize
	waveStart := time.Now()
	for lab.VC("vc-east").XVMRelocations() < n {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d moved", lab.VC("vc-east").XVMRelocations(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 1; i <= n; i++ {
		if got := lab.VC("vc-east").XVMRelocationsOf(fmt.Sprintf("bulk-%04d", i)); got != 1 {
			t.Errorf("bulk-%04d moved %d times", i, got)
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	kinds := map[string]int{"host": limits.PerHost, "datastore": limits.PerDatastore, "vcenter": limits.PerVCenter}
	seen := map[string]int{}
	for k, p := range obs.peak {
		kind, _, _ := strings.Cut(k, "/")
		limit, ok := kinds[kind]
		if !ok {
			t.Fatalf("observed resource %q of no known kind", k)
		}
		seen[kind]++
		if p > limit {
			t.Errorf("%s ran %d moves at once, limit %d", k, p, limit)
		}
	}
	if seen["vcenter"] != 2 || seen["datastore"] < 3 || seen["host"] < 4 {
		t.Errorf("observed %v resources, want both vCenters, both target datastores and a source one, hosts on both sides", seen)
	}
	if obs.max < 2 {
		t.Errorf("never more than %d move at once: the limits serialised the wave", obs.max)
	}
	targetHosts := 0
	for k := range obs.peak {
		if strings.HasPrefix(k, "host/vc-west/") {
			targetHosts++
		}
	}
	if targetHosts < 2 {
		t.Errorf("the wave used %d target host(s): a full host did not send jobs to the others of the cluster", targetHosts)
	}
	// Two workers, each planning a request at most once per PlanReuse (30s): a handful
	// of plans, not one per VM.
	if obs.plans >= waveSize/4 {
		t.Errorf("%d pre-flights for %d VMs of two requests: the jobs did not share them", obs.plans, waveSize)
	}
	t.Logf("wave of %d moved in %s; peak concurrency overall %d; per resource %v; %d pre-flights", n, time.Since(waveStart).Round(time.Millisecond), obs.max, obs.peak, obs.plans)
}

// A job into a vCenter whose change window is closed waits, says when it will start, and
// moves nothing; once the window is open it runs.
func TestClosedChangeWindowHoldsTheJob(t *testing.T) {
	r := newRig(t)
	now := time.Now().UTC()
	opens := now.Add(2 * time.Hour).Truncate(time.Minute)
	win, err := approvals.ParseWindow(fmt.Sprintf("daily %s-%s", opens.Format("15:04"), opens.Add(time.Hour).Format("15:04")), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	w := r.worker("w1", 3)
	w.cfg.Windows = map[string][]approvals.Window{"vc-west": {win}}
	j := r.job(t, "web-01")
	err = w.Handle(r.ctx, j, delivery{1})
	if !errors.Is(err, events.ErrRetry) {
		t.Fatalf("err = %v, want the job handed back", err)
	}
	if n := r.lab.VC("vc-east").XVMRelocations(); n != 0 {
		t.Fatalf("%d relocations outside the window", n)
	}
	if len(r.rec.events) != 1 || r.rec.events[0].Type != events.EventQueued || !strings.Contains(r.rec.events[0].Message, "change window") {
		t.Fatalf("events %+v, want one saying the job waits for the change window", r.rec.events)
	}
	if _, seen, _ := (NATSRecords{Jobs: r.bus.Jobs()}).Load(r.ctx, j.ID); seen {
		t.Fatalf("waiting for a window counted as an attempt")
	}
	w.now = func() time.Time { return opens.Add(time.Minute) }
	if err := w.Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-01")
}

// A job cancelled before any worker took it is never started, however it is delivered.
func TestJobCancelledBeforeStartNeverRuns(t *testing.T) {
	r := newRig(t)
	j := r.job(t, "web-01")
	state, err := r.bus.Jobs().RequestCancel(r.ctx, j.ID, "U0ALICE")
	if err != nil || state != events.JobCancelled {
		t.Fatalf("RequestCancel = %s, %v", state, err)
	}
	for attempt := uint64(1); attempt <= 2; attempt++ {
		if err := r.worker("w1", 3).Handle(r.ctx, j, delivery{attempt}); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.lab.VC("vc-east").XVMRelocations(); n != 0 {
		t.Fatalf("a cancelled job relocated %d VM(s)", n)
	}
	f := r.rec.final()
	if len(f) != 2 || f[0].Type != events.EventCancelled || f[0].ID != f[1].ID || !strings.Contains(f[0].Message, "U0ALICE") {
		t.Fatalf("final events %+v, want the same cancelled event naming who cancelled", f)
	}
}

// misplaced reports the moved VM in another folder than the plan's, as a vCenter that
// ignored part of the spec would leave it.
type misplaced struct{ relocator }

func (m misplaced) Where(ctx context.Context, vc, vm string) (*vcenter.Where, error) {
	w, err := m.relocator.Where(ctx, vc, vm)
	if w != nil && vc == "vc-west" {
		w.Folder = "lost+found"
	}
	return w, err
}

// A task that succeeds but leaves the VM elsewhere than approved is reported as such.
func TestPlacementIsVerifiedAfterTheMove(t *testing.T) {
	r := newRig(t)
	w := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 3}), misplaced{r.mgr}, r.rec,
		NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err := w.Handle(r.ctx, r.job(t, "web-01"), delivery{1}); err == nil {
		t.Fatal("a misplaced VM was reported as moved")
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Fault != "PlacementMismatch" ||
		!strings.Contains(f[0].Error, "lost+found") || !strings.Contains(f[0].Hint, "undo") {
		t.Fatalf("final events %+v", f)
	}
	// The VM did move: the failure carries where it was, so undo can take it back.
	if o := f[0].Origin; o == nil || o.VCenter != "vc-east" || o.Folder != "apps/web" {
		t.Fatalf("origin %+v, want web-01's place in vc-east", o)
	}
	if f[0].Step != "verifying the placement after the move" {
		t.Fatalf("step %q", f[0].Step)
	}
}

// unreadable cannot read where a VM is in the target after its move.
type unreadable struct{ relocator }

func (u unreadable) Where(ctx context.Context, vc, vm string) (*vcenter.Where, error) {
	if vc == "vc-west" {
		return nil, errors.New("vc-west did not answer")
	}
	return u.relocator.Where(ctx, vc, vm)
}

// A move whose placement cannot be read back still succeeded (vCenter said so), but the
// succeeded event says it was not verified and undo is not offered, instead of nothing.
func TestUnverifiedMoveSaysSo(t *testing.T) {
	r := newRig(t)
	w := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 3}), unreadable{r.mgr}, r.rec,
		NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err := w.Handle(r.ctx, r.job(t, "web-01"), delivery{1}); err != nil {
		t.Fatal(err)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventSucceeded || f[0].Origin != nil ||
		!strings.Contains(f[0].Warning, "could not be read to verify it") || !strings.Contains(f[0].Warning, "undo is not offered") {
		t.Fatalf("final events %+v, want a success warning that the placement was not verified", f)
	}
}

// watchProbe records how many holders a slot has while a relocation is being watched.
type watchProbe struct {
	relocator
	slots *events.Slots
	key   string
	seen  int
}

func (p *watchProbe) Watch(ctx context.Context, vcName, taskRef, vm string, progress vcenter.ProgressFunc) (*vcenter.Result, error) {
	p.seen, _ = p.slots.Count(ctx, p.key)
	return p.relocator.Watch(ctx, vcName, taskRef, vm, progress)
}

// A worker re-attaching to a crashed worker's relocation holds its slots again while the
// task runs (or others would start on top of it), and gives them back after.
func TestRedeliveryHoldsTheSlotsAgain(t *testing.T) {
	r := newRig(t)
	j := r.job(t, "web-02")
	taskRef, err := r.mgr.Start(r.ctx, r.plan(t, j), j.VM)
	if err != nil {
		t.Fatal(err)
	}
	const key = "host/vc-west/some-host"
	err = NATSRecords{Jobs: r.bus.Jobs()}.Save(r.ctx, events.JobRecord{JobID: j.ID, State: events.JobRunning, Worker: "dead-worker",
		Attempts: 1, TaskRef: taskRef, SourceVC: "vc-east", Slots: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	probe := &watchProbe{relocator: r.mgr, slots: r.bus.Slots(), key: key}
	w := New(r.trusting(Config{Name: "w2", Slots: 1, MaxAttempts: 3}), probe, r.rec, NATSRecords{Jobs: r.bus.Jobs()},
		NATSLocks{Leases: r.bus.Leases()}, NATSSlots{Slots: r.bus.Slots(), Limits: Limits{PerHost: 2}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err := w.Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-02")
	if probe.seen != 1 {
		t.Fatalf("%d holders of %s while the re-attached task ran, want 1", probe.seen, key)
	}
	if n, _ := r.bus.Slots().Count(r.ctx, key); n != 0 {
		t.Fatalf("%d holders left after the move", n)
	}
}

// Cancelling a job while its relocation runs cancels the vCenter task: the move is rolled
// back and the job ends cancelled, not failed.
func TestCancelWhileRunningRollsBack(t *testing.T) {
	r := newRig(t, xvmsim.WithTaskDuration(3*time.Second))
	ctx, lab := r.ctx, r.lab
	w := r.worker("w1", 3)
	w.cfg.RenewEvery = 100 * time.Millisecond
	j := r.job(t, "web-02")
	done := make(chan error, 1)
	go func() { done <- w.Handle(ctx, j, delivery{1}) }()
	// Once the task runs, ask to cancel, as the bot does.
	for {
		rec, _, err := r.bus.Jobs().Get(ctx, j.ID)
		if err == nil && rec.TaskRef != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the relocation never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if state, err := r.bus.Jobs().RequestCancel(ctx, j.ID, "U0BOB"); err != nil || state != events.JobRunning {
		t.Fatalf("RequestCancel = %s, %v", state, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventCancelled || !strings.Contains(f[0].Message, "U0BOB") {
		t.Fatalf("final events %+v, want one cancelled by U0BOB", f)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, inWest := lab.VC("vc-west").FindVM(ctx, "web-02")
		if _, err := lab.VC("vc-east").FindVM(ctx, "web-02"); err == nil && errors.Is(inWest, xvmsim.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("web-02 did not end back in vc-east only")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := lab.VC("vc-east").XVMRelocations(); n != 0 {
		t.Fatalf("%d relocations completed", n)
	}
}

// A cancel that comes once the VM is switching over is refused by vCenter: the person who
// cancelled is told the move will finish, the move finishes, and the job is reported as
// what it is, a success (not "cancelled" for a VM that moved).
func TestCancelTooLateIsSaidAndTheMoveFinishes(t *testing.T) {
	r := newRig(t, xvmsim.WithTaskDuration(0), xvmsim.WithMinStep(700*time.Millisecond))
	ctx, lab := r.ctx, r.lab
	w := r.worker("w1", 3)
	w.cfg.RenewEvery = 50 * time.Millisecond
	j := r.job(t, "web-02")
	done := make(chan error, 1)
	go func() { done <- w.Handle(ctx, j, delivery{1}) }()
	// Once the VM has left the source (the switch-over), ask to cancel, as the bot does.
	for lab.VC("vc-east").XVMRelocationsOf(j.VM) == 0 {
		select {
		case err := <-done:
			t.Fatalf("the job ended (%v) before its switch-over", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if state, err := r.bus.Jobs().RequestCancel(ctx, j.ID, "U0BOB"); err != nil || state != events.JobRunning {
		t.Fatalf("RequestCancel = %s, %v", state, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !r.rec.saw(func(e events.Event) bool {
		return e.Type == events.EventProgress && strings.Contains(e.Message, "could not cancel") && strings.Contains(e.Message, "will finish")
	}) {
		t.Errorf("nobody was told the cancel was refused: %+v", r.rec.events)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventSucceeded {
		t.Fatalf("final events %+v, want one succeeded", f)
	}
	if _, err := lab.VC("vc-west").FindVM(ctx, j.VM); err != nil {
		t.Fatalf("%s not in vc-west: %v", j.VM, err)
	}
}

// planCounter counts the pre-flights a worker makes.
type planCounter struct {
	relocator
	n atomic.Int32
}

func (c *planCounter) Plan(ctx context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error) {
	c.n.Add(1)
	return c.relocator.Plan(ctx, spec)
}

// In one process the bot's plan of a request, made moments before the approval, is the
// job's pre-flight; an older one is not: the job resolves its move again.
func TestJobStartsOnTheRequestsFreshPlan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reuse     time.Duration
		wantPlans int32
	}{{"fresh plan reused", time.Minute, 0}, {"stale plan resolved again", time.Nanosecond, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			j := r.job(t, "web-01")
			r.plan(t, j) // what the bot did when the request was made
			pc := &planCounter{relocator: r.mgr}
			w := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 3, PlanReuse: tc.reuse}), pc, r.rec,
				NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
				slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err := w.Handle(r.ctx, j, delivery{1}); err != nil {
				t.Fatal(err)
			}
			r.arrivedOnce(t, "web-01")
			if n := pc.n.Load(); n != tc.wantPlans {
				t.Errorf("the worker made %d pre-flights, want %d", n, tc.wantPlans)
			}
		})
	}
}

// vanishing fails any plan of several VMs the way vCenter does when one of them leaves
// the source between the listing and the read (its move just ended).
type vanishing struct{ relocator }

func (v vanishing) Plan(ctx context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error) {
	if len(spec.VMs) > 1 {
		return nil, &vcenter.Fault{VCenter: spec.Source, Step: vcenter.StepResolve, Kind: "ManagedObjectNotFound",
			Message: "an object the move refers to no longer exists in " + spec.Source}
	}
	return v.relocator.Plan(ctx, spec)
}

// fixedVMs lists the same VMs for any request; records are read from the bus.
type fixedVMs struct {
	NATSRequests
	vms []string
}

func (f fixedVMs) VMs(context.Context, string) ([]string, error) { return f.vms, nil }

// A request-wide pre-flight that fails because of another VM of the request (one that
// finished moving mid-read) does not fail this job: it is planned alone and moves.
func TestRequestPlanFailureFallsBackToTheJobsVM(t *testing.T) {
	r := newRig(t)
	w := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 3, Requests: fixedVMs{NATSRequests{Store: r.bus.Requests()}, []string{"web-01", "web-02", "web-03"}}}),
		vanishing{r.mgr}, r.rec, NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err := w.Handle(r.ctx, r.job(t, "web-01"), delivery{1}); err != nil {
		t.Fatal(err)
	}
	r.arrivedOnce(t, "web-01")
}

// Plans are kept only while they may be used: a worker that moved the VMs of many
// requests holds the plans of the recent ones, not of every request it ever saw.
func TestPlanCacheForgetsOldPlans(t *testing.T) {
	c := newPlanCache()
	now := time.Now()
	reuse := 30 * time.Second
	for i := range 100 {
		at := now.Add(time.Duration(i-100) * time.Minute) // one request a minute
		c.keepRequest(fmt.Sprintf("xvm-r%03d", i), &vcenter.Plan{ResolvedAt: at}, at, reuse)
	}
	c.keepRequest("xvm-now", &vcenter.Plan{ResolvedAt: now}, now, reuse)
	if r, _ := c.size(); r != 1 {
		t.Fatalf("kept %d request plans, want only the one made now", r)
	}
	c.wait("xvm-old-01", &waitingPlans{plans: []*vcenter.Plan{{ResolvedAt: now.Add(-time.Hour)}}}, now.Add(-time.Hour), reuse)
	c.wait("xvm-now-01", &waitingPlans{plans: []*vcenter.Plan{{ResolvedAt: now}}}, now, reuse)
	if r, j := c.size(); r != 1 || j != 1 {
		t.Fatalf("kept %d request plans and %d waiting jobs, want 1 and 1", r, j)
	}
	if _, ok := c.waiting("xvm-now-01", now.Add(reuse), reuse); ok {
		t.Errorf("a waiting job's plans were handed out past the reuse time")
	}
	if _, ok := c.request("xvm-now", "web-01", now, reuse); ok {
		t.Errorf("a request plan without the VM was handed out for it")
	}
}

// The VMs a job plans together with are the request's jobs that have not started: ended
// ones are gone, and running ones already take their space in the target (counting them
// again in the space check could block every job still to come).
func TestRequestVMsLeavesOutStartedMoves(t *testing.T) {
	r := newRig(t)
	req := &approvals.Request{ID: "xvm-vms00001", Direction: approvals.Migrate, SourceVC: "vc-east", TargetVC: "vc-west",
		State: approvals.StateRunning, CreatedAt: time.Now(), VMs: []string{"a", "b", "c", "d", "e"},
		Jobs: []approvals.Job{{ID: "j1", VM: "a", State: approvals.StateSucceeded}, {ID: "j2", VM: "b", State: approvals.StateRunning},
			{ID: "j3", VM: "c", State: approvals.StateQueued}, {ID: "j4", VM: "d", State: approvals.StateFailed},
			{ID: "j5", VM: "e", State: approvals.StateQueued}}}
	if _, err := r.bus.Requests().Create(r.ctx, req); err != nil {
		t.Fatal(err)
	}
	got, err := NATSRequests{Store: r.bus.Requests()}.VMs(r.ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "c,e" {
		t.Fatalf("VMs = %v, want the two not started (c, e)", got)
	}
}

// A relocation task that fails with a fault worth retrying (its network copy broke off)
// is rolled back by vCenter; the next delivery starts a new relocation instead of looking
// at the failed task again, and the VM moves exactly once.
func TestRetryableTaskFaultStartsANewRelocation(t *testing.T) {
	r := newRig(t)
	w := r.worker("w1", 3)
	j := r.job(t, "web-02")
	r.lab.VC("vc-east").FailNextRelocation(j.VM, &types.NetworkCopyFault{})
	err := w.Handle(r.ctx, j, delivery{1})
	if !errors.Is(err, events.ErrRetry) {
		t.Fatalf("first delivery: err = %v, want a retry", err)
	}
	rec, _, _ := NATSRecords{Jobs: r.bus.Jobs()}.Load(r.ctx, j.ID)
	if rec.State != events.JobPreparing || rec.TaskRef != "" || rec.Attempts != 1 {
		t.Fatalf("record after the failed task %+v, want preparing with no task", rec)
	}
	retrying := false
	for _, e := range r.rec.events {
		retrying = retrying || (e.Type == events.EventProgress && strings.Contains(e.Message, "retrying (attempt 1 of 3)"))
	}
	if !retrying {
		t.Errorf("events %+v, want one saying the move is retried", r.rec.events)
	}
	if err := w.Handle(r.ctx, j, delivery{2}); err != nil {
		t.Fatalf("second delivery: %v", err)
	}
	r.arrivedOnce(t, j.VM)
	rec, _, _ = NATSRecords{Jobs: r.bus.Jobs()}.Load(r.ctx, j.ID)
	if rec.State != events.JobSucceeded || rec.Attempts != 2 || rec.TaskRef == "" {
		t.Fatalf("record %+v, want succeeded on the second attempt with its own task", rec)
	}
}

// A relocation task that fails with a fault no retry can mend fails the job at once, and
// the failure names the step (the task, by its reference), the fault, and what to check.
func TestPermanentTaskFaultFailsAtOnceNamingTheStep(t *testing.T) {
	r := newRig(t)
	j := r.job(t, "web-03")
	r.lab.VC("vc-east").FailNextRelocation(j.VM, &types.DisallowedMigrationDeviceAttached{})
	err := r.worker("w1", 3).Handle(r.ctx, j, delivery{1})
	if err == nil || errors.Is(err, events.ErrRetry) {
		t.Fatalf("err = %v, want a permanent failure", err)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventFailed {
		t.Fatalf("final events %+v, want one failure", f)
	}
	rec, _, _ := NATSRecords{Jobs: r.bus.Jobs()}.Load(r.ctx, j.ID)
	if f[0].Step != "relocation task "+rec.TaskRef || rec.TaskRef == "" || f[0].Fault != "DisallowedMigrationDeviceAttached" ||
		f[0].Hint == "" || f[0].Error == "" {
		t.Fatalf("failure %+v, want the task step, the fault, what happened and what to check", f[0])
	}
	if rec.Attempts != 1 || rec.State != events.JobFailed || rec.Final == nil || rec.Final.Step != f[0].Step {
		t.Fatalf("record %+v, want failed after one attempt, keeping the failure as published", rec)
	}
	if _, err := r.lab.VC("vc-east").FindVM(r.ctx, j.VM); err != nil {
		t.Fatalf("%s left vc-east: %v", j.VM, err)
	}
}

// panicky plans by panicking, as a bug would.
type panicky struct{ relocator }

func (panicky) Plan(context.Context, vcenter.MoveSpec) (*vcenter.Plan, error) {
	panic("index out of range")
}

// A job whose handling panics before anything started is tried again, and after its
// attempts it is reported failed (with what to check) instead of vanishing: nobody is
// left waiting for an outcome that would never come.
func TestPanickingJobIsRetriedThenReported(t *testing.T) {
	r := newRig(t)
	w := New(r.trusting(Config{Name: "w1", Slots: 1, MaxAttempts: 2}), panicky{r.mgr}, r.rec,
		NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	j := r.job(t, "web-01")
	if err := w.Handle(r.ctx, j, delivery{1}); !errors.Is(err, events.ErrRetry) {
		t.Fatalf("first panic: err = %v, want a retry", err)
	}
	if len(r.rec.final()) != 0 {
		t.Fatalf("reported after one attempt: %+v", r.rec.final())
	}
	if err := w.Handle(r.ctx, j, delivery{2}); err == nil || errors.Is(err, events.ErrRetry) {
		t.Fatalf("second panic: err = %v, want the job failed", err)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Fault != "InternalError" || !strings.Contains(f[0].Hint, "job_id="+j.ID) {
		t.Fatalf("final events %+v, want one InternalError failure", f)
	}
	if holder, _ := r.bus.Leases().Holder(r.ctx, leaseKey(j)); holder != "" {
		t.Fatalf("the lease is still held by %s after the panic", holder)
	}
}

// A disk placed apart occupies its datastore like the VM's own: the per-datastore limit
// counts moves writing there.
func TestDiskPlacedApartTakesItsDatastoresSlot(t *testing.T) {
	r := newRig(t)
	s := NATSSlots{Slots: r.bus.Slots(), Limits: Limits{PerDatastore: 1}}
	apart := vcenter.Footprint{TargetVCenter: "vc-west", TargetDatastore: "vc-west/ds-1", TargetDiskDatastores: []string{"vc-west/ds-2"}}
	c, err := s.Acquire(r.ctx, "job-1", apart)
	if err != nil {
		t.Fatal(err)
	}
	onlyDS2 := vcenter.Footprint{TargetVCenter: "vc-west", TargetDatastore: "vc-west/ds-2"}
	if _, err := s.Acquire(r.ctx, "job-2", onlyDS2); !errors.Is(err, ErrBusy) {
		t.Fatalf("second move onto ds-2: err = %v, want busy", err)
	}
	if err := c.Release(r.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(r.ctx, "job-2", onlyDS2); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// Pre-flight runs again when the job starts: a target that stopped fitting between
// approval and start (its datastore lost its storage) fails the job with the finding
// that says so and what to do, and nothing is relocated.
func TestStartTimePreflightFailsAJobWhoseTargetStoppedFitting(t *testing.T) {
	r := newRig(t)
	west := r.lab.VC("vc-west")
	was, err := west.SetDatastoreAccessible("ds-gold", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = west.SetDatastoreAccessible("ds-gold", was) })
	j := r.job(t, "web-01")
	err = r.worker("w1", 3).Handle(r.ctx, j, delivery{1})
	if err == nil || errors.Is(err, events.ErrRetry) {
		t.Fatalf("err = %v, want the job failed", err)
	}
	if n := r.lab.VC("vc-east").XVMRelocations(); n != 0 {
		t.Fatalf("%d relocations despite the blocker", n)
	}
	f := r.rec.final()
	if len(f) != 1 || f[0].Type != events.EventFailed || f[0].Fault != "PreflightBlocked" ||
		!strings.Contains(f[0].Error, "ds-gold is not accessible") || f[0].Hint == "" || f[0].Step != "pre-flight checks at start" {
		t.Fatalf("final events %+v, want a pre-flight failure naming ds-gold", f)
	}
	if _, err := r.lab.VC("vc-east").FindVM(r.ctx, j.VM); err != nil {
		t.Fatalf("%s left vc-east: %v", j.VM, err)
	}
}

// The per-vCenter limit counts moves across every host and datastore of a vCenter.
func TestPerVCenterLimitRefusesTheMoveBeyondIt(t *testing.T) {
	r := newRig(t)
	s := NATSSlots{Slots: r.bus.Slots(), Limits: Limits{PerHost: 10, PerDatastore: 10, PerVCenter: 2}}
	fp := func(i int) vcenter.Footprint {
		return vcenter.Footprint{SourceVCenter: "vc-east", TargetVCenter: "vc-west",
			SourceHost: fmt.Sprintf("vc-east/host-%d", i), TargetHost: fmt.Sprintf("vc-west/host-%d", i),
			SourceDatastores: []string{fmt.Sprintf("vc-east/ds-%d", i)}, TargetDatastore: fmt.Sprintf("vc-west/ds-%d", i)}
	}
	var claims []Claim
	for i := range 2 {
		c, err := s.Acquire(r.ctx, fmt.Sprintf("job-%d", i), fp(i))
		if err != nil {
			t.Fatalf("move %d: %v", i, err)
		}
		claims = append(claims, c)
	}
	if _, err := s.Acquire(r.ctx, "job-2", fp(2)); !errors.Is(err, ErrBusy) {
		t.Fatalf("third move on other hosts and datastores: err = %v, want busy (vCenter limit 2)", err)
	}
	if err := claims[0].Release(r.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(r.ctx, "job-2", fp(2)); err != nil {
		t.Fatalf("after one ended: %v", err)
	}
}
