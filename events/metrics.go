package events

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values of the events metrics. Kept to these fixed sets so series stay bounded.
const (
	kindJob   = "job"
	kindEvent = "event"

	outcomeOK        = "ok"
	outcomeDuplicate = "duplicate"
	outcomeError     = "error"

	// Delivery outcomes, for jobs and for events alike.
	outcomeAck       = "ack"
	outcomeNak       = "nak"
	outcomeTerm      = "term"
	outcomeAbandoned = "abandoned" // shutdown: left for redelivery after AckWait
	// outcomeHandedBack: a delivery a previous run of the worker left unsettled, given
	// back to the queue by the next run (nak on its token).
	outcomeHandedBack = "handed_back"
)

// queuedScrapeTimeout bounds the consumer-info request made while Prometheus scrapes.
const queuedScrapeTimeout = 2 * time.Second

type metrics struct {
	publish    *prometheus.CounterVec
	deliveries *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, queued func(context.Context) (uint64, error)) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		publish: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_nats_publish_total",
			Help: "Messages published to JetStream, by kind (job, event) and outcome (ok, duplicate, error).",
		}, []string{"kind", "outcome"}),
		deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_nats_deliveries_total",
			Help: "Messages consumed from JetStream, by kind (job, event) and how they were settled (ack, nak, term, abandoned, handed_back).",
		}, []string{"kind", "outcome"}),
	}
	// A GaugeFunc reads the consumer when scraped, so the number is never staler than the
	// scrape and no goroutine has to be owned for it.
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "xvm_jobs_queued",
		Help: "Jobs waiting in the work queue that no worker has taken yet; -1 when NATS could not be asked.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), queuedScrapeTimeout)
		defer cancel()
		n, err := queued(ctx)
		if err != nil {
			return -1 // visible in dashboards as "unknown", unlike a plausible 0
		}
		return float64(n)
	})
	for _, k := range []string{kindJob, kindEvent} {
		for _, o := range []string{outcomeOK, outcomeDuplicate, outcomeError} {
			m.publish.WithLabelValues(k, o)
		}
		for _, o := range []string{outcomeAck, outcomeNak, outcomeTerm, outcomeAbandoned, outcomeHandedBack} {
			m.deliveries.WithLabelValues(k, o)
		}
	}
	return m
}
