package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
	"github.com/xvmbot/xvmbot/worker/workertest"
)

// The lab tests: the worker on real parts, simulated vCenters, a vcenter.Manager, and job
// records, leases and slots in an embedded NATS, for what only the real things show (a
// task re-attached across workers, vCenter's own faults and cancel, limits across two
// workers). The rest of its behaviour is tested in memory (behaviour_test.go). Only the
// event sink is a recorder, because what the worker says is what these tests check.

type recorder struct {
	mu     sync.Mutex
	events []events.Event
	back   []string // tokens of deliveries handed back
}

func (r *recorder) HandBack(_ context.Context, token string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.back = append(r.back, token)
	return nil
}

func (r *recorder) handedBack() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.back)
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
func (d delivery) Token() string     { return fmt.Sprintf("$JS.ACK.jobs.workers.%d", d.n) }

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
	bus := startBus(t, ctx, events.BusConfig{})
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
	return r.workerOn(name, maxAttempts, r.mgr)
}

// workerOn is rig.worker talking to the vCenters through vc (a probe around r.mgr).
func (r *rig) workerOn(name string, maxAttempts int, vc relocator) *Worker {
	return New(r.trusting(Config{Name: name, Slots: 1, MaxAttempts: maxAttempts}), vc, r.rec,
		NATSRecords{Jobs: r.bus.Jobs()}, NATSLocks{Leases: r.bus.Leases()}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

// jobFor is the job of web-NN in the tests' request, not yet approved (see rig.approve).
func jobFor(vm string) events.Job {
	return events.Job{V: 1, ID: "xvm-test0001-01", RequestID: "xvm-test0001", Direction: "migrate", VM: vm,
		SourceVC: "vc-east", TargetVC: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web",
			Networks: []move.Network{{Target: "app-pg"}}, DiskFormat: move.Thin}}
}

func (r *rig) plan(t *testing.T, j events.Job) *vcenter.Plan {
	t.Helper()
	p, err := r.mgr.Plan(r.ctx, MoveSpec(j))
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
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
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
		o.Networks[0] != (move.Network{Source: "app-pg", Target: "east-app-pg"}) {
		t.Fatalf("origin = %+v", o)
	}
}

// A worker died after starting the relocation: the next one follows the same task.
func TestRedeliveryFollowsTheRecordedTask(t *testing.T) {
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
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

// waveSize is the number of VMs in the wave of the fast test; the lab's wave is smaller,
// for it runs on simulated vCenters.
const (
	waveSize    = 200
	labWaveSize = 24
)

// A wave of 24 VMs in two requests (half to ds-gold, half to ds-silver), shared by two
// workers with 4 slots each. Every limit binds somewhere: 2 moves per host (3 target
// hosts), 3 per datastore (two target datastores), 5 per vCenter (fewer than the hosts,
// datastores and workers' 8 slots allow). Observed at Start and at the end of Watch,
// i.e. while vCenter runs the task, no host, datastore or vCenter ever runs more than
// its limit across both workers; every VM moves exactly once; the jobs of a request
// share their pre-flight; and a full host sends jobs to the other hosts of the cluster.
func TestWaveRespectsLimitsAcrossWorkers(t *testing.T) {
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(300*time.Millisecond), xvmsim.WithExtraVMs(labWaveSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close) // after the Manager's logout (cleanups run last first)
	mgr := labManager(t, lab, logger)
	bus := startBus(t, ctx, events.BusConfig{RetryDelay: 50 * time.Millisecond})

	// Two requests of the wave: odd VMs to ds-gold, even VMs to ds-silver.
	signer, keys := workertest.Key(1)
	approver := &workertest.Approver{Store: bus.Requests(), Signer: signer, Lab: lab}
	waves := []struct{ id, datastore string }{{"xvm-wave0001", xvmsim.WestGold}, {"xvm-wave0002", xvmsim.WestSilver}}
	var jobs []events.Job
	for w, wave := range waves {
		var req []events.Job
		for i := 1 + w; i <= labWaveSize; i += len(waves) {
			vm := fmt.Sprintf("bulk-%04d", i)
			id := fmt.Sprintf("%s-%03d", wave.id, i)
			req = append(req, events.Job{V: 1, ID: id, RequestID: wave.id, Direction: "migrate", VM: vm,
				SourceVC: "vc-east", TargetVC: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: wave.datastore,
					Networks: []move.Network{{Target: "app-pg"}}}})
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
		// Plans are good for longer than the wave takes, however slow the machine: each
		// worker plans each request once, and the count below does not depend on speed.
		w := New(Config{Name: name, Slots: 4, MaxAttempts: 3, WaitDelay: 50 * time.Millisecond, PlanReuse: 10 * time.Minute,
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
	const n = labWaveSize
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
	// Two workers, each planning a request at most once per PlanReuse: a handful of
	// plans, not one per VM.
	if obs.plans >= labWaveSize/4 {
		t.Errorf("%d pre-flights for %d VMs of two requests: the jobs did not share them", obs.plans, labWaveSize)
	}
	t.Logf("wave of %d moved in %s; peak concurrency overall %d; per resource %v; %d pre-flights", n, time.Since(waveStart).Round(time.Millisecond), obs.max, obs.peak, obs.plans)
}

// Cancelling a job while its relocation runs cancels the vCenter task: the move is rolled
// back and the job ends cancelled, not failed.
func TestCancelWhileRunningRollsBack(t *testing.T) {
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
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

// fixedVMs lists the same VMs for any request; records are read from the bus.
type fixedVMs struct {
	NATSRequests
	vms []string
}

func (f fixedVMs) VMs(context.Context, string) ([]string, error) { return f.vms, nil }

// Plans are kept only while they may be used: a worker that moved the VMs of many
// requests holds the plans of the recent ones, not of every request it ever saw.
func TestPlanCacheForgetsOldPlans(t *testing.T) {
	t.Parallel()
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

// A relocation task that fails with a fault worth retrying (its network copy broke off)
// is rolled back by vCenter; the next delivery starts a new relocation instead of looking
// at the failed task again, and the VM moves exactly once.
func TestRetryableTaskFaultStartsANewRelocation(t *testing.T) {
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
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

// Pre-flight runs again when the job starts: a target that stopped fitting between
// approval and start (its datastore lost its storage) fails the job with the finding
// that says so and what to do, and nothing is relocated.
func TestStartTimePreflightFailsAJobWhoseTargetStoppedFitting(t *testing.T) {
	t.Parallel() // xvmsim.Start takes its turn; running labs are independent
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
