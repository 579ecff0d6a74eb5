package bot

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/xvmbot/xvmbot/approvals"
)

// metrics are the bot's Prometheus series. Labels are bounded: verbs, outcomes, decisions
// and Slack method names only — never user IDs or VM names.
type metrics struct {
	commands      *prometheus.CounterVec // command, outcome
	approvals     *prometheus.CounterVec // decision
	apiCalls      *prometheus.CounterVec // method, outcome
	editsDeferred prometheus.Counter
	ack           *prometheus.HistogramVec // kind
	refused       *prometheus.CounterVec   // work, reason
}

// Outcomes of a command (xvm_commands_total{outcome}).
const (
	outcomeSubmitted      = "submitted"       // a request was stored and offered for approval
	outcomeChecked        = "checked"         // check: a review was shown, nothing stored
	outcomeBlocked        = "blocked"         // the plan had blockers, nothing stored
	outcomeUsageError     = "usage_error"     // the grammar refused it
	outcomeRefused        = "refused"         // wrong channel
	outcomeUnknownVCenter = "unknown_vcenter" // a vCenter name that is not configured
	outcomeFailed         = "failed"          // infrastructure error (vCenter, store, Slack)
	outcomeOK             = "ok"              // an information verb answered
	outcomeDenied         = "denied"          // policy refused (cancel by a stranger…)
	outcomeUnavailable    = "unavailable"     // verb not offered yet, or the bot is shutting down
	outcomeBusy           = "busy"            // refused at once: every worker busy, the queue full
	outcomeTooLarge       = "too_large"       // over slack.max_command_bytes or limits.max_vms_per_request
)

// Reasons work after an ack was refused (xvm_slack_work_refused_total{reason}).
const (
	reasonBusy         = "busy"
	reasonShuttingDown = "shutting_down"
)

// Kinds of work after an ack (xvm_slack_work_refused_total{work}), besides command verbs
// and the action ids of the request buttons.
const (
	workPlan         = "plan"
	workWizard       = "wizard"
	workWizardUpdate = "wizard_update"
	workRejected     = "rejected"
	workReply        = "reply"
	workNotice       = "notice"
	workDeferred     = "deferred" // a delivery waiting after its ack for the shared delivery log
)

// Decisions (xvm_approvals_total{decision}).
const (
	decisionApproved  = "approved"
	decisionRejected  = "rejected"
	decisionDenied    = "denied"
	decisionDuplicate = "duplicate"
	decisionExpired   = "expired"
	decisionCancelled = "cancelled"
	// decisionUnverified: a record marked approved without an approval the bot can verify
	// (edited in the store); nothing of it is queued.
	decisionUnverified = "unverified"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		commands: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_commands_total",
			Help: "Slash commands handled, by verb and outcome.",
		}, []string{"command", "outcome"}),
		approvals: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_approvals_total",
			Help: "Approval button clicks and expiries, by decision.",
		}, []string{"decision"}),
		editsDeferred: f.NewCounter(prometheus.CounterOpts{
			Name: "xvm_slack_edits_deferred_total",
			Help: "Progress edits of Slack messages put off because the app's chat.update budget was spent; each is sent later with the newest state.",
		}),
		apiCalls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_slack_api_calls_total",
			Help: "Slack Web API calls (each attempt), by method and outcome (ok, ratelimited, error).",
		}, []string{"method", "outcome"}),
		ack: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xvm_slack_ack_seconds",
			Help:    "Time from receiving a Slack request to acknowledging it (Slack allows 3 s).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5},
		}, []string{"kind"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "xvm_slack_work_refused_total",
			Help: "Commands and clicks turned away at once instead of being queued after their ack, by kind of work and reason (busy: every worker busy and the queue full; shutting_down).",
		}, []string{"work", "reason"}),
	}
	// Every decision from zero: a series born at 1 shows no increase(), so the first
	// request to expire would not fire XvmApprovalsExpired.
	for _, d := range []string{decisionApproved, decisionRejected, decisionDenied, decisionDuplicate,
		decisionExpired, decisionCancelled, decisionUnverified} {
		m.approvals.WithLabelValues(d)
	}
	return m
}

// registerWorkPool exposes how much work after an ack is queued and running.
func registerWorkPool(reg prometheus.Registerer, p *workPool) {
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "xvm_slack_work_queued",
		Help: "Commands and clicks acknowledged and waiting for a worker; while every worker is busy and the queue is full, new ones are refused.",
	}, func() float64 { return float64(p.load().queued) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "xvm_slack_work_running",
		Help: "Commands and clicks being worked on after their ack.",
	}, func() float64 { return float64(p.load().running) })
}

// registerPending exposes the requests waiting for approval, read from the durable store at
// most every 15 s (scrapes are cheap however many requests there are): how many, and how
// long the oldest has waited, so an alert can warn before requests expire.
func registerPending(reg prometheus.Registerer, store approvals.Store, now func() time.Time) {
	var mu sync.Mutex
	var at time.Time
	var count, oldest float64
	read := func() (float64, float64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < 15*time.Second {
			return count, oldest
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		list := store.List
		if hl, ok := store.(approvals.HeadLister); ok {
			list = hl.ListHeads // state and age are in the head
		}
		all, err := list(ctx)
		if err != nil {
			return count, oldest
		}
		count, oldest = 0, 0
		for _, r := range all {
			if r.State == approvals.StatePending {
				count++
				oldest = max(oldest, now().Sub(r.CreatedAt).Seconds())
			}
		}
		at = time.Now()
		return count, oldest
	}
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "xvm_requests_pending_approval",
		Help: "Requests waiting for approval now.",
	}, func() float64 { c, _ := read(); return c })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "xvm_approval_oldest_pending_seconds",
		Help: "How long the oldest request waiting for approval has waited (0 when none waits).",
	}, func() float64 { _, o := read(); return o })
}
