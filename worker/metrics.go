package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/xvmbot/xvmbot/approvals"
)

type metrics struct {
	jobs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	refused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		jobs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_jobs_total", Help: "Finished VM moves by direction (migrate|import) and result (succeeded|failed).",
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
	}
	for _, r := range approvals.Reasons() {
		m.refused.WithLabelValues(string(r)) // every reason from zero, so that an alert sees the first one
	}
	return m
}
