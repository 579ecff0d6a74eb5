package worker

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

type metrics struct {
	jobs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	refused  *prometheus.CounterVec
	// rechecks counts the approved placements rechecked instead of planned from names.
	rechecks *prometheus.CounterVec
	running  *runningMoves
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		jobs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_jobs_total", Help: "Finished VM moves by direction (migrate|import) and result (succeeded|failed|cancelled).",
		}, []string{"direction", "result"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "xvm_job_duration_seconds", Help: "Wall time of one VM move, from start to its final state.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200},
		}, []string{"direction"}),
		inFlight: f.NewGauge(prometheus.GaugeOpts{
			Name: "xvm_jobs_in_flight", Help: "VM moves this process is running now.",
		}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_jobs_refused_total",
			Help: "Jobs a worker would not run because their approval did not check out, by reason; nothing was moved.",
		}, []string{"reason"}),
		rechecks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_worker_rechecks_total",
			Help: "Approved placements a worker rechecked instead of planning the move from names, by result: " +
				"used (the move started on it), changed (something changed since the approval: planned from names) or failed (could not be read: planned from names).",
		}, []string{"result"}),
		running: &runningMoves{now: time.Now, moves: map[string]runningMove{}},
	}
	for _, r := range []string{recheckUsed, recheckChanged, recheckFailed} {
		m.rechecks.WithLabelValues(r)
	}
	if reg != nil { // as promauto.With(nil): nothing registered
		reg.MustRegister(m.running)
	}
	for _, r := range approvals.Reasons() {
		m.refused.WithLabelValues(string(r)) // every reason from zero, so that an alert sees the first one
	}
	// Every direction and result from zero: increase() and rate() see the first finished
	// move of a process (a series born at 1 counts no increase), and an alert asking "did
	// any move finish?" gets 0 instead of no answer before the first one.
	for _, d := range []approvals.Direction{approvals.Migrate, approvals.Import} {
		for _, r := range []events.JobState{events.JobSucceeded, events.JobFailed, events.JobCancelled} {
			m.jobs.WithLabelValues(string(d), string(r))
		}
		m.duration.WithLabelValues(string(d))
	}
	return m
}

// runningMoves are the relocations this worker follows in vCenter now. Scraped, they are
// xvm_job_oldest_running_seconds: the age of the oldest one per pair of vCenters, so the
// series stay bounded by the configured vCenters however many VMs move.
type runningMoves struct {
	now func() time.Time

	mu    sync.Mutex
	moves map[string]runningMove // by job id
}

type runningMove struct {
	source, target string
	since          time.Time
}

var oldestRunningDesc = prometheus.NewDesc("xvm_job_oldest_running_seconds",
	"Age of the oldest VM move this process follows in vCenter now, by source and target vCenter; no series for a pair with no running move.",
	[]string{"source_vc", "target_vc"}, nil)

// add records job id's relocation, running since since, until the returned func is called.
func (r *runningMoves) add(id string, j events.Job, since time.Time) (done func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.moves[id] = runningMove{source: j.SourceVC, target: j.TargetVC, since: since}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.moves, id)
	}
}

// Describe implements prometheus.Collector.
func (r *runningMoves) Describe(ch chan<- *prometheus.Desc) { ch <- oldestRunningDesc }

// Collect implements prometheus.Collector.
func (r *runningMoves) Collect(ch chan<- prometheus.Metric) {
	type pair struct{ source, target string }
	r.mu.Lock()
	oldest := map[pair]time.Time{}
	for _, m := range r.moves {
		p := pair{m.source, m.target}
		if t, ok := oldest[p]; !ok || m.since.Before(t) {
			oldest[p] = m.since
		}
	}
	r.mu.Unlock()
	now := r.now()
	for p, since := range oldest {
		ch <- prometheus.MustNewConstMetric(oldestRunningDesc, prometheus.GaugeValue, max(0, now.Sub(since).Seconds()), p.source, p.target)
	}
}
