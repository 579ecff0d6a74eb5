package vcenter

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// startLab starts two simulated vCenters that emulate cross vCenter vMotion,
// and a Manager configured for both the way an operator would. Options are applied
// after a task duration of 100ms. It is for a test that changes the lab; one that only
// reads it uses sharedLab.
func startLab(t *testing.T, opts ...xvmsim.Option) (*xvmsim.Lab, *Manager, *prometheus.Registry) {
	t.Helper()
	ctx := context.Background()
	lab, err := xvmsim.Start(ctx, append([]xvmsim.Option{xvmsim.WithTaskDuration(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	m, reg := newTestManager(t, labConfig(lab, "vc-east"), labConfig(lab, "vc-west"))
	return lab, m, reg
}

func labConfig(lab *xvmsim.Lab, name string) Config {
	vc := lab.VC(name)
	return Config{Name: vc.Name, URL: vc.URL.String(), Username: vc.Username, Password: secret.Secret(vc.Password),
		Thumbprint: vc.Thumbprint, Home: name == "vc-east"}
}

// noSecrets fails the test if err's text carries any lab password.
func noSecrets(t *testing.T, lab *xvmsim.Lab, err error, extra ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msgs := []string{err.Error()}
	var f *Fault
	if errors.As(err, &f) {
		msgs = append(msgs, f.Message, f.Hint)
	}
	for _, vc := range []string{"vc-east", "vc-west"} {
		for _, s := range append(extra, lab.VC(vc).Password) {
			for _, msg := range msgs {
				if s != "" && strings.Contains(msg, s) {
					t.Errorf("error text leaks a password: %q", msg)
				}
			}
		}
	}
}

// progressRecorder collects what a ProgressFunc sees.
type progressRecorder struct {
	mu   sync.Mutex
	seen []int
}

func (p *progressRecorder) record(pct int) { p.mu.Lock(); p.seen = append(p.seen, pct); p.mu.Unlock() }

func (p *progressRecorder) between() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.ContainsFunc(p.seen, func(v int) bool { return v > 0 && v < 100 })
}

// diskWant is where a test wants a disk, and in what format.
type diskWant struct {
	ds          string
	thin, eager bool
}

func TestRelocate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, reg := startLab(t)

	tests := []struct {
		name      string
		spec      MoveSpec
		wantOn    string // power state after
		wantDS    string
		wantThin  bool
		wantEager bool
		wantNICs  []string // target portgroups in NIC order
		wantDist  []bool
		// apart are the disks (by index) placed apart from wantDS, with their format.
		apart map[int]diskWant
	}{{
		name:   "migrate web-01 east to west, thin",
		spec:   MoveSpec{VMs: []string{"web-01"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}, DiskFormat: move.Thin}},
		wantOn: "poweredOn", wantDS: "ds-gold", wantThin: true,
		wantNICs: []string{"app-pg"}, wantDist: []bool{true},
	}, {
		name:   "migrate db-01 (off, two NICs) with a network map, eager zeroed",
		spec:   MoveSpec{VMs: []string{"db-01"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Pool: "prod-pool", Datastore: "ds-silver", Folder: "migrated/db", DiskFormat: move.Eager, Priority: "high", Networks: []move.Network{{Source: "east-app-pg", Target: "db-pg"}, {Source: "VM Network", Target: "VM Network"}}}},
		wantOn: "poweredOff", wantDS: "ds-silver", wantEager: true,
		wantNICs: []string{"db-pg", "VM Network"}, wantDist: []bool{true, false},
	}, {
		// The wizard's "Configure per disk": Hard disk 2 on its own datastore, thin, and a
		// standard portgroup moved onto a distributed one.
		name:   "migrate db-01 back into the root pool with Hard disk 2 apart, standard to distributed",
		spec:   MoveSpec{VMs: []string{"db-01"}, Source: "vc-west", Target: "vc-east", Placement: move.Placement{Cluster: "east-prod", Pool: "Resources", Datastore: "east-ds-01", Folder: "apps/db", DiskFormat: move.Thick, Disks: []move.Disk{{Disk: 2, Datastore: "east-ds-02", DiskFormat: move.Thin}}, Networks: []move.Network{{Source: "db-pg", Target: "east-db-pg"}, {Source: "VM Network", Target: "east-app-pg"}}}},
		wantOn: "poweredOff", wantDS: "east-ds-01",
		wantNICs: []string{"east-db-pg", "east-app-pg"}, wantDist: []bool{true, true},
		apart: map[int]diskWant{1: {ds: "east-ds-02", thin: true}},
	}, {
		name:   "import legacy-01 from west into east",
		spec:   MoveSpec{VMs: []string{"legacy-01"}, Source: "vc-west", Target: "vc-east", Placement: move.Placement{Cluster: "east-prod", Datastore: "east-ds-02", Folder: "apps/web", Pool: "apps", DiskFormat: move.Same, Networks: []move.Network{{Source: "app-pg", Target: "east-app-pg"}}}},
		wantOn: "poweredOn", wantDS: "east-ds-02", wantThin: true, // same as its source disk
		wantNICs: []string{"east-app-pg"}, wantDist: []bool{true},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vmName := tt.spec.VMs[0]
			src, dst := lab.VC(tt.spec.Source), lab.VC(tt.spec.Target)
			before, err := src.FindVM(ctx, vmName)
			if err != nil {
				t.Fatal(err)
			}

			p, err := m.Plan(ctx, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if p.Blocked() {
				t.Fatalf("plan blocked: %v", findingsOf(p, Blocker))
			}
			if p.Host == "" || p.Datastore != tt.wantDS || p.Folder != tt.spec.Folder {
				t.Fatalf("plan host=%q datastore=%q folder=%q", p.Host, p.Datastore, p.Folder)
			}

			// The move stays at 50% until the progress callback has seen a percentage
			// between 0 and 100, however late a loaded machine runs the emulation.
			_, release := src.HoldRelocation(vmName, 50)
			defer release()
			var rec progressRecorder
			res, err := m.Relocate(ctx, p, vmName, func(pct int) {
				rec.record(pct)
				if pct > 0 && pct < 100 {
					release()
				}
			})
			if err != nil {
				noSecrets(t, lab, err)
				t.Fatalf("Relocate: %v", err)
			}
			if res.VM != vmName || res.TaskRef == "" || res.Duration <= 0 {
				t.Errorf("result %+v", res)
			}
			if !rec.between() {
				t.Errorf("progress callback saw %v, want a value between 0 and 100", rec.seen)
			}

			after, err := dst.FindVM(ctx, vmName)
			if err != nil {
				t.Fatalf("VM not in %s after the move: %v", dst.Name, err)
			}
			if after.Folder != tt.spec.Folder || after.Cluster != tt.spec.Cluster || after.Host != p.Host {
				t.Errorf("placed in folder %q cluster %q host %q, want %q %q %q", after.Folder, after.Cluster, after.Host,
					tt.spec.Folder, tt.spec.Cluster, p.Host)
			}
			if tt.spec.Pool != "" && after.Pool != tt.spec.Pool {
				t.Errorf("pool %q, want %q", after.Pool, tt.spec.Pool)
			}
			if after.UUID != before.UUID || after.InstanceUUID != before.InstanceUUID || after.PowerState != tt.wantOn {
				t.Errorf("identity/power changed: before %+v after %+v", before, after)
			}
			if len(after.Disks) != len(before.Disks) {
				t.Fatalf("disks %+v, want %d", after.Disks, len(before.Disks))
			}
			for i, d := range after.Disks {
				want := diskWant{ds: tt.wantDS, thin: tt.wantThin, eager: tt.wantEager}
				if tt.spec.DiskFormat == move.Same {
					want.thin = before.Disks[i].Thin
				}
				if w, ok := tt.apart[i]; ok {
					want = w
				}
				if d.Datastore != want.ds || d.Thin != want.thin || d.EagerScrub != want.eager {
					t.Errorf("disk %d %+v, want datastore %s thin %v eager %v", i, d, want.ds, want.thin, want.eager)
				}
			}
			// Where reads the same back: the VM's own datastore, and each disk's.
			w, err := m.Where(ctx, tt.spec.Target, vmName)
			if err != nil {
				t.Fatal(err)
			}
			if w.Datastore != tt.wantDS || len(w.Disks) != len(after.Disks) {
				t.Fatalf("Where: datastore %q, disks %+v", w.Datastore, w.Disks)
			}
			for i, d := range w.Disks {
				if d.Datastore != after.Disks[i].Datastore {
					t.Errorf("Where: disk %d on %q, the simulator says %q", i, d.Datastore, after.Disks[i].Datastore)
				}
			}
			if len(after.NICs) != len(tt.wantNICs) {
				t.Fatalf("NICs %+v, want %v", after.NICs, tt.wantNICs)
			}
			for i, n := range after.NICs {
				if n.Network != tt.wantNICs[i] || n.Distributed != tt.wantDist[i] || n.MAC != before.NICs[i].MAC {
					t.Errorf("NIC %d %+v, want %s (distributed %v) with MAC %s", i, n, tt.wantNICs[i], tt.wantDist[i], before.NICs[i].MAC)
				}
			}
			if _, err := src.FindVM(ctx, vmName); !errors.Is(err, xvmsim.ErrNotFound) {
				t.Errorf("VM still in %s after the move (err %v)", src.Name, err)
			}
			if found, err := m.Locate(ctx, tt.spec.Target, vmName); err != nil || !found {
				t.Errorf("Locate in target = %v, %v", found, err)
			}
			if found, err := m.Locate(ctx, tt.spec.Source, vmName); err != nil || found {
				t.Errorf("Locate in source = %v, %v", found, err)
			}
		})
	}
	if got := metricValue(t, reg, "xvm_vcenter_task_results_total", "vc-east", "success"); got != 2 {
		t.Errorf("xvm_vcenter_task_results_total{vcenter=vc-east,result=success} = %v, want 2", got)
	}
	if got := metricValue(t, reg, "xvm_vcenter_task_results_total", "vc-west", "success"); got != 2 {
		t.Errorf("xvm_vcenter_task_results_total{vcenter=vc-west,result=success} = %v, want 2", got)
	}
	for _, vc := range []string{"vc-east", "vc-west"} {
		if got := metricValue(t, reg, "xvm_vcenter_up", vc); got != 1 {
			t.Errorf("xvm_vcenter_up{vcenter=%s} = %v, want 1", vc, got)
		}
	}
}

// A plan that went through a job queue has lost its references: Relocate
// resolves it again, and several worker slots may do that at once.
func TestRelocateSerialisedPlansConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	spec := MoveSpec{VMs: []string{"web-01", "web-02", "web-03"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, p.Findings)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var wire Plan
	if err := json.Unmarshal(raw, &wire); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(spec.VMs))
	for _, vm := range spec.VMs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.Relocate(ctx, &wire, vm, nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := lab.VC("vc-east").XVMRelocations(); n != 3 {
		t.Errorf("%d cross-vCenter relocations, want 3", n)
	}
	for _, vm := range spec.VMs {
		if _, err := lab.VC("vc-west").FindVM(ctx, vm); err != nil {
			t.Errorf("%s not in vc-west: %v", vm, err)
		}
	}
}

func TestThumbprintMismatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, _, _ := sharedLab(t)
	west := labConfig(lab, "vc-west")
	west.Thumbprint = lab.VC("vc-east").Thumbprint // a certificate that is not west's
	m, reg := newTestManager(t, labConfig(lab, "vc-east"), west)

	_, err := m.Info(ctx, "vc-west")
	var te *ThumbprintError
	if !errors.As(err, &te) {
		t.Fatalf("Info: %v, want *ThumbprintError", err)
	}
	if te.VCenter != "vc-west" || te.Got != lab.VC("vc-west").Thumbprint || te.Expected != west.Thumbprint {
		t.Errorf("ThumbprintError %+v", te)
	}
	for _, words := range []string{"certificate of vc-west does not match the configured thumbprint", "update vcenters[vc-west].thumbprint"} {
		if !strings.Contains(err.Error(), words) {
			t.Errorf("error %q does not say %q", err, words)
		}
	}
	if IsRetryable(err) {
		t.Error("a certificate mismatch must not be retried")
	}
	noSecrets(t, lab, err)

	_, err = m.Plan(ctx, MoveSpec{VMs: []string{"web-01"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold"}})
	if !errors.As(err, &te) {
		t.Fatalf("Plan: %v, want *ThumbprintError", err)
	}
	if _, err := lab.VC("vc-east").FindVM(ctx, "web-01"); err != nil {
		t.Errorf("web-01 left vc-east: %v", err)
	}
	if n := lab.VC("vc-east").XVMRelocations(); n != 0 {
		t.Errorf("%d relocations attempted", n)
	}
	if got := metricValue(t, reg, "xvm_vcenter_up", "vc-west"); got != 0 {
		t.Errorf("xvm_vcenter_up{vcenter=vc-west} = %v, want 0", got)
	}
}

// The source vCenter logs into the target with the credentials in the
// ServiceLocator. If the target's password was changed after xvmbot's
// session was made, the source reports InvalidLogin: a permanent fault.
func TestRelocateLocatorFault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// vc-east refuses the move before anything is created: the shared lab does.
	lab, m, reg := sharedLab(t)
	spec := MoveSpec{VMs: []string{"web-02"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, p.Findings)
	}
	const wrong = "not-the-Password-42"
	m.conns["vc-west"].cfg.Password = wrong // the session made by Plan stays valid

	_, err = m.Relocate(ctx, p, "web-02", nil)
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("Relocate: %v, want *Fault", err)
	}
	if f.Kind != "InvalidLogin" || f.Step != StepRelocate || f.VCenter != "vc-east" || f.VM != "web-02" || f.Retryable || IsRetryable(err) {
		t.Errorf("fault %+v, want a permanent InvalidLogin at relocate reported by vc-east", f)
	}
	if !strings.Contains(f.Message, "vc-west refused the service account's credentials") || !strings.Contains(f.Hint, "vcenters[vc-west]") {
		t.Errorf("message %q / hint %q do not say what to fix", f.Message, f.Hint)
	}
	noSecrets(t, lab, err, wrong)
	if _, err := lab.VC("vc-east").FindVM(ctx, "web-02"); err != nil {
		t.Errorf("web-02 left vc-east: %v", err)
	}
	if _, err := lab.VC("vc-west").FindVM(ctx, "web-02"); !errors.Is(err, xvmsim.ErrNotFound) {
		t.Errorf("web-02 appeared in vc-west: %v", err)
	}
	if got := metricValue(t, reg, "xvm_vcenter_task_results_total", "vc-east", "InvalidLogin"); got != 1 {
		t.Errorf("xvm_vcenter_task_results_total{vcenter=vc-east,result=InvalidLogin} = %v, want 1", got)
	}
}

func TestLoginFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, err := xvmsim.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	const wrong = "Wrong-Pa55word"
	west := labConfig(lab, "vc-west")
	west.Password = wrong
	m, _ := newTestManager(t, labConfig(lab, "vc-east"), west)

	_, err = m.Info(ctx, "vc-west")
	var f *Fault
	if !errors.As(err, &f) || f.Kind != "InvalidLogin" || f.Step != StepLogin || f.Retryable {
		t.Fatalf("Info with a wrong password: %#v", err)
	}
	if !strings.Contains(f.Message, "vc-west refused the service account's credentials") {
		t.Errorf("message %q", f.Message)
	}
	noSecrets(t, lab, err, wrong)

	lab.VC("vc-east").SetDown(true)
	_, err = m.Info(ctx, "vc-east")
	if !errors.As(err, &f) || f.Kind != KindUnreachable || !f.Retryable {
		t.Fatalf("Info of a vCenter that is down: %#v", err)
	}
	ep, _ := m.Info(ctx, "vc-east")
	if ep.Reachable || ep.Name != "vc-east" {
		t.Errorf("endpoint of a down vCenter: %+v", ep)
	}
	lab.VC("vc-east").SetDown(false)
	ep, err = m.Info(ctx, "vc-east")
	if err != nil || !ep.Reachable || ep.InstanceUUID != lab.VC("vc-east").InstanceUUID || ep.Thumbprint != lab.VC("vc-east").Thumbprint {
		t.Errorf("Info after recovery: %+v, %v", ep, err)
	}
}

// metricValue reads one series from reg: the vcenter label, then result
// for the counters.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labelValues ...string) float64 {
	want := map[string]string{"vcenter": labelValues[0]}
	if len(labelValues) > 1 {
		want["result"] = labelValues[1]
	}
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, want) {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// A worker that crashed after Start hands the task reference to its
// successor, which re-attaches with Watch instead of moving the VM twice.
func TestStartThenWatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, _, _ := startLab(t)
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(b)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := NewManager([]Config{labConfig(lab, "vc-east"), labConfig(lab, "vc-west")}, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)

	spec := MoveSpec{VMs: []string{"web-03"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, p.Findings)
	}
	// The move stays at 10% until the second start has been tried.
	_, release := lab.VC("vc-east").HoldRelocation("web-03", 10)
	defer release()
	taskRef, err := m.Start(ctx, p, "web-03")
	if err != nil || !strings.HasPrefix(taskRef, "task-") {
		t.Fatalf("Start: %q, %v", taskRef, err)
	}
	// A second start of the same VM while the first runs is refused by
	// vCenter as TaskInProgress: retryable, and the VM is moved once.
	_, err = m.Start(ctx, p, "web-03")
	var f *Fault
	if !errors.As(err, &f) || f.Kind != "TaskInProgress" || !IsRetryable(err) {
		t.Errorf("second Start: %v, want a retryable TaskInProgress", err)
	}
	release()

	// The successor: a new Manager, as after a restart.
	m2, _ := newTestManager(t, labConfig(lab, "vc-east"), labConfig(lab, "vc-west"))
	var rec progressRecorder
	res, err := m2.Watch(ctx, "vc-east", taskRef, "web-03", rec.record)
	if err != nil || res.TaskRef != taskRef {
		t.Fatalf("Watch: %+v, %v", res, err)
	}
	if found, err := m2.Locate(ctx, "vc-west", "web-03"); !found || err != nil {
		t.Errorf("web-03 not in vc-west after the watched task: %v", err)
	}
	if n := lab.VC("vc-east").XVMRelocationsOf("web-03"); n != 1 {
		t.Errorf("web-03 relocated %d times, want once", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, vc := range []string{"vc-east", "vc-west"} {
		if strings.Contains(logs.String(), lab.VC(vc).Password) {
			t.Errorf("the log contains the password of %s", vc)
		}
	}
	for _, want := range []string{`"component":"vcenter"`, `"task":"` + taskRef + `"`, `"src_vc":"vc-east"`, `"dst_vc":"vc-west"`, `"vm":"web-03"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// An expired vCenter session is replaced without the caller noticing.
func TestSessionRelogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, m, _ := sharedLab(t)
	if _, err := m.Info(ctx, "vc-east"); err != nil {
		t.Fatal(err)
	}
	c := m.conns["vc-east"]
	old := c.client
	if err := session.NewManager(old).Logout(ctx); err != nil { // as if it timed out
		t.Fatal(err)
	}
	found, err := m.Locate(ctx, "vc-east", "web-01")
	if err != nil || !found {
		t.Fatalf("Locate after the session expired: %v, %v", found, err)
	}
	if c.client == old {
		t.Error("the expired session was not replaced")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// A plan onto a cluster names the other hosts that qualify, and OnHost moves the VM to
// the one chosen, without resolving anything again; a host outside that list is refused.
func TestPlanOnOtherHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	spec := MoveSpec{VMs: []string{"web-02"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}, DiskFormat: move.Thin}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, p.Findings)
	}
	all := append([]string{p.Host}, p.OtherHosts...)
	slices.Sort(all)
	if want := []string{xvmsim.WestHost1, xvmsim.WestHost2, xvmsim.WestHost3}; !slices.Equal(all, want) {
		t.Fatalf("host %s and others %v, want all of %v", p.Host, p.OtherHosts, want)
	}
	if _, err := p.OnHost(p.Host); err == nil {
		t.Errorf("OnHost(the plan's own host) accepted")
	}
	if _, err := p.OnHost("esx-nowhere.lab"); err == nil {
		t.Errorf("OnHost(unknown host) accepted")
	}
	other := p.OtherHosts[len(p.OtherHosts)-1]
	q, err := p.OnHost(other)
	if err != nil {
		t.Fatal(err)
	}
	if q.Host != other || p.Host == other || !slices.Contains(q.OtherHosts, p.Host) || slices.Contains(q.OtherHosts, other) {
		t.Fatalf("OnHost(%s): host %s others %v; original host %s", other, q.Host, q.OtherHosts, p.Host)
	}
	before := lab.VC("vc-west").Requests()
	fp, err := m.Footprint(ctx, q, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if lab.VC("vc-west").Requests() != before {
		t.Errorf("the footprint of a moved plan asked the target vCenter again")
	}
	pfp, _ := m.Footprint(ctx, p, "web-02")
	if fp.TargetHost == pfp.TargetHost || fp.TargetDatastore != pfp.TargetDatastore {
		t.Errorf("footprints: moved %+v, original %+v", fp, pfp)
	}
	taskRef, err := m.Start(ctx, q, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Watch(ctx, "vc-east", taskRef, "web-02", nil); err != nil {
		t.Fatal(err)
	}
	where, err := lab.VC("vc-west").FindVM(ctx, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if where.Host != other {
		t.Errorf("web-02 is on %s, want %s", where.Host, other)
	}
}

// A plan is handed out again for exactly its spec while it is young enough, and never
// for another spec or past the age asked for.
func TestRecentPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, m, _ := sharedLab(t)
	spec := MoveSpec{VMs: []string{"web-02"}, Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Networks: []move.Network{{Target: "app-pg"}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	explicit := spec
	explicit.Source, explicit.DiskFormat = "vc-east", move.Same // the defaults, spelled out
	if got, ok := m.RecentPlan(explicit, time.Minute); !ok || got != p {
		t.Errorf("RecentPlan(same spec) = %p, %v; want the plan made", got, ok)
	}
	if _, ok := m.RecentPlan(explicit, 0); ok {
		t.Errorf("RecentPlan with maxAge 0 handed out a plan")
	}
	other := explicit
	other.VMs = []string{"web-02", "web-03"}
	if _, ok := m.RecentPlan(other, time.Minute); ok {
		t.Errorf("RecentPlan handed out a plan of other VMs")
	}
	other = explicit
	other.DiskFormat = move.Thin
	if _, ok := m.RecentPlan(other, time.Minute); ok {
		t.Errorf("RecentPlan handed out a plan of another disk format")
	}
}

// After a move the VM is looked for first in the folder it was sent to (one lookup, not a
// listing of every VM of the target), and so is found even when another VM of the same
// name lives elsewhere in the target, which pre-flight only warns about.
func TestWhereFindsTheMovedVMInItsFolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, m, _ := startLab(t)
	spec := MoveSpec{VMs: []string{xvmsim.DupVM}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestSilver, Folder: xvmsim.WestDBFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Fatalf("plan blocked: %+v", p.Findings)
	}
	task, err := m.Start(ctx, p, xvmsim.DupVM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Watch(ctx, xvmsim.EastVC, task, xvmsim.DupVM, nil); err != nil {
		t.Fatal(err)
	}
	w, err := m.Where(ctx, xvmsim.WestVC, xvmsim.DupVM)
	if err != nil {
		t.Fatalf("where is the moved %s: %v", xvmsim.DupVM, err)
	}
	if w.Folder != xvmsim.WestDBFolder || w.Datastore != xvmsim.WestSilver {
		t.Fatalf("found %s in folder %q on %s, want the moved one in %q on %s", xvmsim.DupVM, w.Folder, w.Datastore, xvmsim.WestDBFolder, xvmsim.WestSilver)
	}
}

// A task that vCenter refuses for a missing privilege says which privilege, on which
// object, as vCenter reported it: the admin grants that one, not a broader role.
func TestRelocateNamesTheMissingPrivilege(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	p, err := m.Plan(ctx, MoveSpec{VMs: []string{"web-02"}, Source: "vc-east", Target: "vc-west",
		Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}}})
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, p.Findings)
	}
	lab.VC("vc-east").FailNextRelocation("web-02", &types.NoPermission{PrivilegeId: "Resource.HotMigrate",
		Object: &types.ManagedObjectReference{Type: "ResourcePool", Value: "resgroup-42"}})
	_, err = m.Relocate(ctx, p, "web-02", nil)
	var f *Fault
	if !errors.As(err, &f) || f.Kind != "NoPermission" || f.Retryable {
		t.Fatalf("Relocate: %v, want a permanent NoPermission fault", err)
	}
	if want := "Resource.HotMigrate on ResourcePool resgroup-42"; !strings.Contains(f.Message, want) || !strings.Contains(f.Hint, want) {
		t.Errorf("message %q / hint %q do not name %s", f.Message, f.Hint, want)
	}
}

// Cancel says truthfully why a cancel did not happen, from the task itself: past the
// switch-over vCenter marks the relocation not cancelable; once it has ended there is
// nothing to cancel; a cancel during the copy is accepted.
func TestCancelSaysWhyItCannot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	east := lab.VC("vc-east")
	plan := func(vm string) *Plan {
		p, err := m.Plan(ctx, MoveSpec{VMs: []string{vm}, Source: "vc-east", Target: "vc-west",
			Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}}})
		if err != nil || p.Blocked() {
			t.Fatalf("plan %s: %v %v", vm, err, p.Findings)
		}
		return p
	}
	kind := func(err error) FaultKind {
		var f *Fault
		if errors.As(err, &f) {
			return f.Kind
		}
		return ""
	}

	reached, release := east.HoldRelocation("web-02", xvmsim.SwitchedOver)
	defer release()
	taskRef, err := m.Start(ctx, plan("web-02"), "web-02")
	if err != nil {
		t.Fatal(err)
	}
	<-reached
	if err := m.Cancel(ctx, "vc-east", taskRef); kind(err) != KindNotCancelable || !strings.Contains(err.Error(), "switching over") {
		t.Errorf("cancel past the switch-over: %v, want %s saying the VM is switching over", err, KindNotCancelable)
	}
	release()
	if _, err := m.Watch(ctx, "vc-east", taskRef, "web-02", nil); err != nil {
		t.Fatalf("the move did not finish: %v", err)
	}
	if err := m.Cancel(ctx, "vc-east", taskRef); kind(err) != KindTaskEnded || !strings.Contains(err.Error(), "had already ended (success)") {
		t.Errorf("cancel of an ended task: %v, want %s", err, KindTaskEnded)
	}

	reached, release = east.HoldRelocation("web-03", 25)
	defer release()
	taskRef, err = m.Start(ctx, plan("web-03"), "web-03")
	if err != nil {
		t.Fatal(err)
	}
	<-reached
	if err := m.Cancel(ctx, "vc-east", taskRef); err != nil {
		t.Errorf("cancel during the copy: %v", err)
	}
	if err := m.Cancel(ctx, "vc-east", taskRef); kind(err) != KindTaskCancelled {
		t.Errorf("a second cancel: %v, want %s", err, KindTaskCancelled)
	}
	release()
	if _, err := m.Watch(ctx, "vc-east", taskRef, "web-03", nil); kind(err) != KindRequestCanceled {
		t.Errorf("the cancelled move ended with %v, want %s", err, KindRequestCanceled)
	}
}
