package worker

import (
	"context"
	"encoding/json"
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

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/worker/workertest"
)

// The fast tests run the worker against an inventory, job records, leases and slots
// kept in memory, under testing/synctest: a task that "runs for a minute" takes no time,
// and every wait is on the fake clock. The few lab tests in worker_test.go run the same
// worker on simulated vCenters and an embedded NATS.

// fakeVC is a vCenter world in memory: where each VM is, and the relocation tasks. A
// task runs until its gate (if any) opens, someone cancels it, or the worker's context
// ends; then the VM is in the target, as planned. Fields named …Fn replace one behaviour.
type fakeVC struct {
	mu    sync.Mutex
	at    map[string]vcenter.Where // by VM name
	tasks map[string]*fakeTask
	md    map[string]*vcenter.Metadata // by "vc/vm"
	moves map[string]int               // completed relocations, by VM
	plans int
	// rechecks counts Recheck calls; recheckFn, when set, answers them.
	rechecks  int
	recheckFn func(r *move.Resolved) error
	// gate, when set, holds every task until it is closed.
	gate chan struct{}
	// started is told the ref of every task started (when not nil; never blocks).
	started chan string
	// taskTime is how long a task runs (on the bubble's clock).
	taskTime time.Duration

	// refs are the VMs' object ids in vc-east, as a plan reads them.
	refs map[string]string
	// recent is a plan the bot made in this process (RecentPlan hands it out while fresh).
	recent *vcenter.Plan

	planFn   func(spec vcenter.MoveSpec) (*vcenter.Plan, error)
	watchFn  func(taskRef string) error                                    // fails a watch before it looks
	whereFn  func(vc, vm string, w *vcenter.Where) (*vcenter.Where, error) // rewrites a Where
	endFn    func(vm string) error                                         // the fault a task ends in
	cancelFn func(taskRef string) error                                    // vCenter's answer to a cancel
	applyErr error
}

type fakeTask struct {
	vm       string
	plan     *vcenter.Plan
	cancel   chan struct{}
	finished bool
}

// vCenter instance UUIDs and VM object ids of the fake world, as approvals bind them.
var fakeInventory = workertest.Static{
	UUIDs: map[string]string{"vc-east": "uuid-east", "vc-west": "uuid-west"},
	Refs:  map[string]string{"vc-east/web-01": "vm-1", "vc-east/web-02": "vm-2", "vc-east/web-03": "vm-3"},
}

func newFakeVC() *fakeVC {
	f := &fakeVC{at: map[string]vcenter.Where{}, tasks: map[string]*fakeTask{}, md: map[string]*vcenter.Metadata{},
		moves: map[string]int{}, refs: map[string]string{}}
	for _, vm := range []string{"web-01", "web-02", "web-03"} {
		f.add(vm, "esx-e1", fakeInventory.Refs["vc-east/"+vm])
	}
	return f
}

// add puts a VM on host of vc-east.
func (f *fakeVC) add(vm, host, ref string) {
	f.refs[vm] = ref
	f.at[vm] = vcenter.Where{VCenter: "vc-east", Cluster: "east-prod", Host: host, Pool: "apps", Datastore: "east-ds-01",
		Folder: "apps/web", Networks: []string{"east-app-pg"}, DiskFormat: "thin", PowerState: "poweredOn"}
}

// VMRef is the object id of vm in vc, as an approval binds it.
func (f *fakeVC) VMRef(_ context.Context, vc, vm string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w, ok := f.at[vm]; ok && w.VCenter == vc {
		return f.refs[vm]
	}
	return ""
}

// InstanceUUID is the instance UUID of vc.
func (f *fakeVC) InstanceUUID(vc string) string { return fakeInventory.UUIDs[vc] }

func (f *fakeVC) Plan(_ context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error) {
	f.mu.Lock()
	f.plans++
	planFn := f.planFn
	f.mu.Unlock()
	if planFn != nil {
		return planFn(spec)
	}
	return f.plan(spec), nil
}

// plan is the plan of spec in the fake world: the target's host esx-w1.
func (f *fakeVC) plan(spec vcenter.MoveSpec) *vcenter.Plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &vcenter.Plan{Spec: spec, Cluster: spec.Cluster, Host: "esx-w1", Pool: "Resources", Datastore: spec.Datastore,
		Folder: spec.Folder, DiskFormat: spec.DiskFormat, ResolvedAt: time.Now(),
		Source: vcenter.Endpoint{Name: spec.Source, InstanceUUID: fakeInventory.UUIDs[spec.Source]},
		Target: vcenter.Endpoint{Name: spec.Target, InstanceUUID: fakeInventory.UUIDs[spec.Target]}}
	for _, vm := range spec.VMs {
		nic := vcenter.NIC{Label: "Network adapter 1"}
		if len(spec.Networks) > 0 {
			nic.Target = spec.Networks[0].Target
		}
		p.VMs = append(p.VMs, vcenter.VM{VM: move.VM{Name: vm, Ref: f.refs[vm]}, NICs: []vcenter.NIC{nic}})
	}
	return p
}

// Recheck is the plan of vm onto the host r names, unless recheckFn says it changed.
func (f *fakeVC) Recheck(_ context.Context, spec vcenter.MoveSpec, vm move.VM, r *move.Resolved) (*vcenter.Plan, error) {
	f.mu.Lock()
	f.rechecks++
	fn := f.recheckFn
	f.mu.Unlock()
	if fn != nil {
		if err := fn(r); err != nil {
			return nil, err
		}
	}
	spec.VMs = []string{vm.Name}
	p := f.plan(spec)
	p.Host = r.Host.Name
	return p, nil
}

func (f *fakeVC) RecentPlan(_ vcenter.MoveSpec, maxAge time.Duration) (*vcenter.Plan, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recent == nil || time.Since(f.recent.ResolvedAt) >= maxAge {
		return nil, false
	}
	return f.recent, true
}

func (f *fakeVC) PlannedRecently(_ vcenter.MoveSpec, vm string, maxAge time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recent != nil && time.Since(f.recent.ResolvedAt) < maxAge &&
		slices.ContainsFunc(f.recent.VMs, func(v vcenter.VM) bool { return v.Name == vm })
}

func (f *fakeVC) Footprint(_ context.Context, p *vcenter.Plan, vm string) (vcenter.Footprint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src := f.at[vm]
	return vcenter.Footprint{SourceVCenter: p.Source.Name, TargetVCenter: p.Target.Name,
		SourceHost: p.Source.Name + "/" + src.Host, TargetHost: p.Target.Name + "/" + p.Host,
		SourceDatastores: []string{p.Source.Name + "/" + src.Datastore}, TargetDatastore: p.Target.Name + "/" + p.Datastore}, nil
}

func (f *fakeVC) Start(_ context.Context, p *vcenter.Plan, vm string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ref := fmt.Sprintf("task-%d", len(f.tasks)+1)
	f.tasks[ref] = &fakeTask{vm: vm, plan: p, cancel: make(chan struct{})}
	if f.started != nil {
		select {
		case f.started <- ref:
		default:
		}
	}
	return ref, nil
}

func (f *fakeVC) Watch(ctx context.Context, vc, taskRef, vm string, progress vcenter.ProgressFunc) (*vcenter.Result, error) {
	f.mu.Lock()
	t, ok := f.tasks[taskRef]
	gate, watchFn := f.gate, f.watchFn
	f.mu.Unlock()
	if watchFn != nil {
		if err := watchFn(taskRef); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, &vcenter.Fault{VCenter: vc, VM: vm, Step: vcenter.StepWatch, Kind: vcenter.KindManagedObjectNotFound,
			Message: "task " + taskRef + " no longer exists"}
	}
	progress(10)
	if f.taskTime > 0 {
		select {
		case <-time.After(f.taskTime):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-t.cancel:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case <-t.cancel:
		return nil, &vcenter.Fault{VCenter: vc, VM: vm, Step: vcenter.StepRelocate, Kind: vcenter.KindRequestCanceled,
			Message: "the task was cancelled"}
	default:
	}
	progress(100)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !t.finished {
		t.finished = true
		if f.endFn != nil {
			if err := f.endFn(vm); err != nil {
				return nil, err
			}
		}
		p := t.plan
		f.refs[vm] = fakeInventory.Refs["vc-east/"+vm]
		f.at[vm] = vcenter.Where{VCenter: p.Target.Name, Cluster: p.Cluster, Host: p.Host, Pool: p.Pool, Datastore: p.Datastore,
			Folder: p.Folder, Networks: []string{p.VMs[0].NICs[0].Target}, DiskFormat: p.DiskFormat, PowerState: "poweredOn"}
		f.moves[vm]++
	}
	return &vcenter.Result{VM: vm, TaskRef: taskRef}, nil
}

func (f *fakeVC) Cancel(_ context.Context, _, taskRef string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancelFn != nil {
		return f.cancelFn(taskRef)
	}
	if t, ok := f.tasks[taskRef]; ok && !t.finished {
		close(t.cancel)
		t.finished = true
	}
	return nil
}

func (f *fakeVC) Locate(_ context.Context, vc, vm string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.at[vm]
	return ok && w.VCenter == vc, nil
}

func (f *fakeVC) Where(_ context.Context, vc, vm string) (*vcenter.Where, error) {
	f.mu.Lock()
	w, ok := f.at[vm]
	whereFn := f.whereFn
	f.mu.Unlock()
	if !ok || w.VCenter != vc {
		return nil, &vcenter.Fault{VCenter: vc, VM: vm, Kind: vcenter.KindManagedObjectNotFound, Message: vm + " is not in " + vc}
	}
	w.Networks = slices.Clone(w.Networks)
	if whereFn != nil {
		return whereFn(vc, vm, &w)
	}
	return &w, nil
}

func (f *fakeVC) ReadMetadata(_ context.Context, vc, vm string) (*vcenter.Metadata, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if md := f.md[vc+"/"+vm]; md != nil {
		return md, nil
	}
	return &vcenter.Metadata{Attributes: map[string]string{}}, nil
}

func (f *fakeVC) ApplyMetadata(_ context.Context, vc, vm string, md *vcenter.Metadata) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applyErr != nil {
		return f.applyErr
	}
	f.md[vc+"/"+vm] = md
	return nil
}

// in says which vCenter the VM is in.
func (f *fakeVC) in(vm string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at[vm].VCenter
}

func (f *fakeVC) movesOf(vm string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.moves[vm]
}

func (f *fakeVC) taskCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tasks)
}

var (
	_ relocator            = (*fakeVC)(nil)
	_ workertest.Inventory = (*fakeVC)(nil)
)

// memBus is a job queue in memory that runs a worker's handler as the bus's runner
// does: slots deliveries at once, a job handed back (ErrRetry) comes back after
// retryDelay.
type memBus struct {
	*recorder
	queue      chan events.Job
	retryDelay time.Duration
}

func newMemBus(rec *recorder, jobs []events.Job) *memBus {
	b := &memBus{recorder: rec, queue: make(chan events.Job, len(jobs)), retryDelay: 50 * time.Millisecond}
	for _, j := range jobs {
		b.queue <- j
	}
	return b
}

func (b *memBus) RunWorker(ctx context.Context, slots int, h events.JobHandler) error {
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-b.queue:
					if err := h(ctx, j, delivery{1}); errors.Is(err, events.ErrRetry) && ctx.Err() == nil {
						time.AfterFunc(b.retryDelay, func() { b.queue <- j })
					}
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// memRecords keeps job records as the NATS bucket does (JSON, a cancelled record wins
// over a worker's write, a cancel request survives one), in memory.
type memRecords struct {
	mu   sync.Mutex
	recs map[string][]byte
	// failTaskSaves fails that many Saves of a record that names a task before the next
	// one succeeds.
	failTaskSaves int
}

func newMemRecords() *memRecords { return &memRecords{recs: map[string][]byte{}} }

func (m *memRecords) load(jobID string) (*events.JobRecord, bool) {
	b, ok := m.recs[jobID]
	if !ok {
		return nil, false
	}
	var rec events.JobRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		panic(err)
	}
	return &rec, true
}

func (m *memRecords) store(rec events.JobRecord) {
	rec.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	m.recs[rec.JobID] = b
}

func (m *memRecords) Load(_ context.Context, jobID string) (events.JobRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.load(jobID)
	if !ok {
		return events.JobRecord{}, false, nil
	}
	return *rec, true, nil
}

func (m *memRecords) Save(_ context.Context, rec events.JobRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failTaskSaves > 0 && rec.TaskRef != "" {
		m.failTaskSaves--
		return fmt.Errorf("job records: no responders")
	}
	cur, ok := m.load(rec.JobID)
	if !ok {
		m.store(merged(nil, rec, time.Now().UTC()))
		return nil
	}
	if err := saveOver(cur, rec); err != nil {
		return err
	}
	m.store(merged(cur, rec, time.Time{}))
	return nil
}

// requestCancel is events.JobRecords.RequestCancel, as the bot calls it.
func (m *memRecords) requestCancel(jobID, by string) events.JobState {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.load(jobID)
	if !ok {
		m.store(events.JobRecord{JobID: jobID, State: events.JobCancelled, CancelledBy: by,
			Error: "cancelled by " + by + " before it started"})
		return events.JobCancelled
	}
	if cur.State.Terminal() {
		return cur.State
	}
	cur.CancelRequested, cur.CancelledBy = true, by
	m.store(*cur)
	return events.JobRunning
}

// get is the stored record of a job (zero if none).
func (m *memRecords) get(jobID string) events.JobRecord {
	rec, _, _ := m.Load(context.Background(), jobID)
	return rec
}

// memLocks are leases that lapse ttl after they were taken or last renewed.
type memLocks struct {
	mu     sync.Mutex
	ttl    time.Duration
	owners map[string]string
	until  map[string]time.Time
}

func newMemLocks(ttl time.Duration) *memLocks {
	return &memLocks{ttl: ttl, owners: map[string]string{}, until: map[string]time.Time{}}
}

func (l *memLocks) Lock(_ context.Context, key, owner string) (func(context.Context) error, func(context.Context) error, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur := l.owners[key]; cur != "" && cur != owner && time.Now().Before(l.until[key]) {
		return nil, nil, fmt.Errorf("lease %s held by %s: %w", key, cur, ErrBusy)
	}
	l.owners[key], l.until[key] = owner, time.Now().Add(l.ttl)
	renew := func(context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.owners[key] != owner || time.Now().After(l.until[key]) {
			return fmt.Errorf("lease %s lost", key)
		}
		l.until[key] = time.Now().Add(l.ttl)
		return nil
	}
	release := func(context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.owners[key] == owner {
			delete(l.owners, key)
		}
		return nil
	}
	return renew, release, nil
}

func (l *memLocks) Held(_ context.Context, ownerPrefix string) (map[string]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for key, owner := range l.owners {
		if strings.HasPrefix(owner, ownerPrefix) && time.Now().Before(l.until[key]) {
			out[key] = owner
		}
	}
	return out, nil
}

// holder is who holds the lease on key now ("" if nobody).
func (l *memLocks) holder(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().After(l.until[key]) {
		return ""
	}
	return l.owners[key]
}

// memSlots counts slots per resource under limits, as NATSSlots does across workers.
type memSlots struct {
	mu      sync.Mutex
	limits  Limits
	holders map[string]map[string]bool // by slot key
	peak    map[string]int
}

func newMemSlots(l Limits) *memSlots {
	return &memSlots{limits: l, holders: map[string]map[string]bool{}, peak: map[string]int{}}
}

func (s *memSlots) Acquire(_ context.Context, holder string, fp vcenter.Footprint) (Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wants := s.limits.wants(fp)
	for _, w := range wants {
		if len(s.holders[w.Key]) >= w.Limit && !s.holders[w.Key][holder] {
			return nil, fmt.Errorf("%s is full: %w", w.Key, ErrBusy)
		}
	}
	var keys []string
	for _, w := range wants {
		keys = append(keys, w.Key)
	}
	return s.holdLocked(holder, keys), nil
}

func (s *memSlots) Hold(_ context.Context, holder string, keys []string) (Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdLocked(holder, keys), nil
}

func (s *memSlots) holdLocked(holder string, keys []string) Claim {
	for _, k := range keys {
		if s.holders[k] == nil {
			s.holders[k] = map[string]bool{}
		}
		s.holders[k][holder] = true
		s.peak[k] = max(s.peak[k], len(s.holders[k]))
	}
	return memClaim{s: s, holder: holder, keys: keys}
}

// count is how many jobs hold a slot of key.
func (s *memSlots) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.holders[key])
}

type memClaim struct {
	s      *memSlots
	holder string
	keys   []string
}

func (c memClaim) Renew(context.Context) error { return nil }
func (c memClaim) Keys() []string              { return c.keys }
func (c memClaim) Release(context.Context) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, k := range c.keys {
		delete(c.s.holders[k], c.holder)
	}
	return nil
}

var (
	_ Records   = (*memRecords)(nil)
	_ Locker    = (*memLocks)(nil)
	_ Scheduler = (*memSlots)(nil)
)

// world is a worker's surroundings in memory: a fake vCenter pair, records, leases,
// slots, the requests store and the event recorder, and an approver.
type world struct {
	t        *testing.T
	vc       *fakeVC
	records  *memRecords
	locks    *memLocks
	slots    *memSlots // nil: no limits
	requests *approvals.MemoryStore
	rec      *recorder
	keys     *approvals.Keyring
	approver *workertest.Approver
}

func newWorld(t *testing.T) *world {
	signer, keys := workertest.Key(1)
	store := approvals.NewMemoryStore()
	vc := newFakeVC()
	return &world{t: t, vc: vc, records: newMemRecords(), locks: newMemLocks(30 * time.Second),
		requests: store, rec: &recorder{}, keys: keys,
		approver: &workertest.Approver{Store: store, Signer: signer, Inventory: vc}}
}

// worker is a worker named name of the world, its config completed from c.
func (wd *world) worker(name string, c Config) *Worker {
	c.Name = name
	if c.Trust == nil {
		c.Trust = wd.keys
	}
	if c.Requests == nil {
		c.Requests = NATSRequests{Store: wd.requests}
	}
	var sched Scheduler
	if wd.slots != nil {
		sched = wd.slots
	}
	return New(c, wd.vc, wd.rec, wd.records, wd.locks, sched, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
}

// job is the approved job of vm in request xvm-test0001 (id suffix n).
func (wd *world) job(vm string, n int) events.Job {
	wd.t.Helper()
	j := jobFor(vm)
	j.ID = fmt.Sprintf("%s-%02d", j.RequestID, n)
	js, err := wd.approver.Approve(context.Background(), j)
	if err != nil {
		wd.t.Fatal(err)
	}
	return js[0]
}

// events is what was published, by type.
func (r *recorder) byType(t events.EventType) []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.Event
	for _, e := range r.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// movedOnce checks that vm is in vc-west, moved by exactly one relocation, and that the
// job's only outcome is a success.
func (wd *world) movedOnce(vm string) {
	wd.t.Helper()
	if in := wd.vc.in(vm); in != "vc-west" {
		wd.t.Errorf("%s is in %q, want vc-west", vm, in)
	}
	if n := wd.vc.movesOf(vm); n != 1 {
		wd.t.Errorf("%s relocated %d times, want exactly 1", vm, n)
	}
	if f := wd.rec.final(); len(f) != 1 || f[0].Type != events.EventSucceeded {
		wd.t.Errorf("final events %+v, want one succeeded", f)
	}
}
