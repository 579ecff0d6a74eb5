package vcenter

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are labelled by configured vCenter name and a bounded result set
// (success, error, or a fault kind from faultTexts); never by VM or user.
type metrics struct {
	taskResults *prometheus.CounterVec
	up          *prometheus.GaugeVec
	taskSeconds *prometheus.HistogramVec
	// loginRefused is 1 while logins to a vCenter are paused after it refused the
	// credentials: the one state in which xvmbot stops trying by itself.
	loginRefused *prometheus.GaugeVec
	// coalesced counts pre-flights that waited for an identical one in flight.
	coalesced prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		taskResults: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_vcenter_task_results_total",
			Help: "Relocation tasks by the vCenter that ran them and result (success, error or fault kind).",
		}, []string{"vcenter", "result"}),
		up: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "xvm_vcenter_up",
			Help: "1 if the last attempt to reach and log into the vCenter succeeded, else 0.",
		}, []string{"vcenter"}),
		taskSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xvm_vcenter_task_duration_seconds",
			Help:    "Duration of relocation tasks, from submission to their end, by the vCenter that ran them.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200},
		}, []string{"vcenter"}),
		loginRefused: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "xvm_vcenter_login_refused",
			Help: "1 while xvmbot does not log into the vCenter because it refused the service account's credentials (InvalidLogin), else 0.",
		}, []string{"vcenter"}),
		coalesced: f.NewCounter(prometheus.CounterOpts{
			Name: "xvm_preflight_coalesced_total",
			Help: "Pre-flights that shared the resolution of an identical one already in flight instead of reading the vCenters again.",
		}),
	}
}

// initVCenter makes every series of vCenter name exist from the start, at 0: a counter
// series born at its first increment shows less than that increment to increase() and
// rate(), so XvmVCenterTasksFailing would need one fault more than it says.
func (m *metrics) initVCenter(name string) {
	results := []string{metricResult(nil), "error", string(KindThumbprintMismatch)}
	for k := range faultTexts {
		results = append(results, string(k))
	}
	for _, r := range results {
		m.taskResults.WithLabelValues(name, r)
	}
	m.taskSeconds.WithLabelValues(name)
}
