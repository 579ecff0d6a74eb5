package worker

import (
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// workerWithRegistry is wd.worker, registering its metrics in reg.
func (wd *world) workerWithRegistry(name string, reg *prometheus.Registry) *Worker {
	var sched Scheduler
	if wd.slots != nil {
		sched = wd.slots
	}
	return New(Config{Name: name, Trust: wd.keys, Requests: NATSRequests{Store: wd.requests}}, wd.vc, wd.rec, wd.records,
		wd.locks, sched, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
}

// gathered is every series of the metric name in reg, by its labels.
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]*dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Metric{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			out[key] = m
		}
	}
	return out
}

// A worker that has moved nothing yet already shows every direction and result at 0: an
// alert that asks whether any move finished gets "none" rather than no answer, and the
// first failure counts as an increase.
func TestJobCountersExistBeforeTheFirstMove(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		reg := prometheus.NewRegistry()
		wd.workerWithRegistry("w1", reg)
		jobs := gathered(t, reg, "xvm_jobs_total")
		for _, d := range []string{"migrate", "import"} {
			for _, r := range []string{"succeeded", "failed", "cancelled"} {
				m, ok := jobs["direction="+d+",result="+r+","]
				if !ok || m.GetCounter().GetValue() != 0 {
					t.Errorf("xvm_jobs_total{direction=%q,result=%q} = %v before any move, want a series at 0", d, r, m)
				}
			}
			if _, ok := gathered(t, reg, "xvm_job_duration_seconds")["direction="+d+","]; !ok {
				t.Errorf("xvm_job_duration_seconds{direction=%q} missing before any move", d)
			}
		}
		if len(jobs) != 6 {
			t.Errorf("xvm_jobs_total has %d series before any move, want 6: %v", len(jobs), jobs)
		}
	})
}

// While a relocation runs in vCenter, xvm_job_oldest_running_seconds says how long it has
// run, labelled by its pair of vCenters; once it ends the series is gone.
func TestOldestRunningMoveAge(t *testing.T) {
	bubble(t, func(t *testing.T, wd *world) {
		reg := prometheus.NewRegistry()
		wd.vc.gate = make(chan struct{})
		w := wd.workerWithRegistry("w1", reg)
		if got := gathered(t, reg, "xvm_job_oldest_running_seconds"); len(got) != 0 {
			t.Fatalf("age of running moves before any job: %v", got)
		}
		j := wd.job("web-01", 1)
		done := async(t.Context(), w, j, 1)
		synctest.Wait()
		time.Sleep(90 * time.Minute)
		synctest.Wait()
		const pair = "source_vc=vc-east,target_vc=vc-west,"
		got := gathered(t, reg, "xvm_job_oldest_running_seconds")
		if m, ok := got[pair]; !ok || m.GetGauge().GetValue() != (90*time.Minute).Seconds() {
			t.Fatalf("after 90 minutes of one running move: %v, want {%s} 5400", got, pair)
		}
		close(wd.vc.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := gathered(t, reg, "xvm_job_oldest_running_seconds"); len(got) != 0 {
			t.Fatalf("age of running moves after the move ended: %v", got)
		}
	})
}
