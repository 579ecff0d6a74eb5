package bot

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter"
)

// Config is what the bot needs to talk to Slack.
type Config struct {
	BotToken      secret.Secret // xoxb-: Web API calls
	AppToken      secret.Secret // xapp-: Socket Mode
	SigningSecret secret.Secret // HTTP mode: verifies X-Slack-Signature
	// APIURL overrides the Slack Web API base URL ("" = Slack), e.g. a test server's URL + "/".
	APIURL string
	// Channels are the channel IDs where commands are accepted; empty accepts any.
	Channels []string
	// ProgressInterval is the least time between two edits of one progress message
	// (default 3s; negative: no throttling). The final state of a job is always shown.
	// A running job's percentage is stored in the request record only with an edit.
	ProgressInterval time.Duration
	// EditsPerMinute is the app's budget of message edits (chat.update), default 40 a
	// minute after a burst of 5: Slack allows about 50 (Tier 3) for the whole app. An edit
	// the budget has no room for is put off and sent later with the newest state, changes
	// of a request's state (approved, queued, ended) first; nothing waits for the budget.
	// Negative: no budget.
	EditsPerMinute int
	// Digest, if its Channel is set, posts the stats to that channel every Every.
	Digest Digest
	// Windows are the change windows of target vCenters: the review says when moves start.
	Windows map[string][]approvals.Window
	// Workers is how many commands and clicks are worked on at once after their ack
	// (pre-flight, Slack posts); default 4 × GOMAXPROCS.
	Workers int
	// WorkQueue is how many more may wait for a worker (default 64). Beyond that a command
	// or click is refused at once with a "busy, try again" answer, so the acks stay fast
	// under a burst; nothing is stored for a refused command or click.
	WorkQueue int
	// Signer signs the grant of each approved job (with the key the approvals service signs
	// approvals with); Keys are the public keys whose approvals the bot accepts when it
	// queues jobs or shows a request as approved. Both are required.
	Signer *approvals.Signer
	Keys   *approvals.Keyring
	// Deliveries remembers the Slack deliveries already handled, shared by every bot
	// replica and kept across restarts, so that a retried or replayed command or click is
	// handled once. nil keeps them in this process only (a replay after a restart, or to
	// another replica, is then handled again).
	Deliveries DeliveryLog
	// MaxCommandBytes caps the text of a slash command (default 128 KiB, room for 5,000
	// VM names of about 25 characters); a longer one is refused before it is parsed.
	MaxCommandBytes int
	// MaxVMsPerRequest caps the VMs of one request, typed, chosen in the wizard or matched
	// by a pattern (default 5000).
	MaxVMsPerRequest int
}

// Defaults of the caps on one command.
const (
	DefaultMaxCommandBytes  = 128 << 10
	DefaultMaxVMsPerRequest = 5000
)

// Digest is the scheduled stats post.
type Digest struct {
	Channel string
	Every   time.Duration // default 24h
	Window  time.Duration // what the post covers; default Every
}

// planner is what the bot needs of the vCenters: read-only pre-flight. *vcenter.Manager
// satisfies it.
type planner interface {
	Plan(ctx context.Context, spec vcenter.MoveSpec) (*vcenter.Plan, error)
	Info(ctx context.Context, name string) (vcenter.Endpoint, error)
	Names() []string
	Home() string
}

var _ planner = (*vcenter.Manager)(nil)

// jobPublisher queues one job per VM; *events.Bus satisfies it. Publishing the same job
// twice must be harmless (the job id is the Nats-Msg-Id).
type jobPublisher interface {
	PublishJob(ctx context.Context, j events.Job) error
	// CancelJob stops a job: never started if no worker took it yet, its vCenter task
	// cancelled if it runs. It returns the job's state after the call.
	CancelJob(ctx context.Context, jobID, by string) (events.JobState, error)
}

var _ jobPublisher = (*events.Bus)(nil)

// Timings of the bot's own work.
const (
	defaultProgressInterval = 3 * time.Second
	defaultEditsPerMinute   = 40
	editBurst               = 5
	flushDeferredEvery      = 250 * time.Millisecond // cheap when nothing is put off or the budget is spent
	workTimeout             = 2 * time.Minute        // one command or click, after the ack
	shutdownGrace           = 20 * time.Second       // in-flight work may finish after Run's ctx ends
	expirySweepEvery        = 30 * time.Second
	republishEvery          = 5 * time.Second
	republishAfter          = 10 * time.Second // an approved request this old with no queued mark is re-published
	readyCacheFor           = time.Minute
	dedupeFor               = 10 * time.Minute
	maxBodyBytes            = 1 << 20
)

// Bot is the Slack side of xvmbot: it turns commands and clicks into requests and
// decisions, queues approved jobs, and reports their progress back in the channel.
type Bot struct {
	cfg     Config
	svc     *approvals.Service
	planner planner
	jobs    jobPublisher
	slack   *slackClient
	m       *metrics
	log     *slog.Logger
	now     func() time.Time

	mu        sync.Mutex
	closing   bool                          // set when Run's ctx ends: no new work is started
	abandoned bool                          // shutdown grace is over: work still starting is cancelled
	seq       uint64                        // ids of in-flight work
	cancels   map[uint64]context.CancelFunc // in-flight work, cancelled when shutdown grace ends
	work      sync.WaitGroup                // every worker of pool and notices, every open reservation
	pool      *workPool                     // the work after an ack
	notices   *workPool                     // "busy, try again" notices for refused clicks
	seen      map[string]time.Time          // dedupe keys of Slack deliveries already handled
	instance  string                        // names this process's claims in the shared delivery log
	claims    atomic.Uint64                 // claims made, for unique claim holders
	// claimPatience is how long a delivery waits after its ack for the shared log.
	claimPatience time.Duration
	edited        map[string]time.Time      // message ts → last progress edit
	running       map[string]runningJob     // job id → what its progress events need, while it runs
	deferred      map[string]*deferredEdits // request id → its messages whose last edit was put off
	locks         map[string]*keyLock       // per request: events are applied one at a time
	ready         readyState
	infos         map[string]vcInfo // vCenter name → what was last learnt of it
	inv           *cachedInventory  // nil: no inventory listing, the wizard is not offered
	depth         queueDepth        // nil: queue depth unknown
	viewSeq       map[string]uint64 // wizard view id → changes seen, so only the newest is rendered
	forged        map[string]bool   // requests marked approved without a valid approval, already reported
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

type readyState struct {
	mu      sync.Mutex
	checked time.Time
	err     error
}

// New returns a Bot. svc applies the approval policy, p pre-flights moves, jobs queues
// approved work. reg receives the bot's metrics (nil: not registered).
func New(cfg Config, svc *approvals.Service, p planner, jobs jobPublisher, logger *slog.Logger, reg prometheus.Registerer) (*Bot, error) {
	switch {
	case svc == nil:
		return nil, errors.New("bot: no approvals service")
	case p == nil:
		return nil, errors.New("bot: no planner")
	case jobs == nil:
		return nil, errors.New("bot: no job publisher")
	case cfg.BotToken.IsZero():
		return nil, errors.New("bot: no bot token")
	case cfg.Signer == nil || cfg.Keys == nil:
		return nil, errors.New("bot: no approval signing key")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProgressInterval == 0 {
		cfg.ProgressInterval = defaultProgressInterval
	}
	if cfg.EditsPerMinute == 0 {
		cfg.EditsPerMinute = defaultEditsPerMinute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers()
	}
	if cfg.WorkQueue <= 0 {
		cfg.WorkQueue = defaultWorkQueue
	}
	if cfg.MaxCommandBytes <= 0 {
		cfg.MaxCommandBytes = DefaultMaxCommandBytes
	}
	if cfg.MaxVMsPerRequest <= 0 {
		cfg.MaxVMsPerRequest = DefaultMaxVMsPerRequest
	}
	if cfg.Digest.Every <= 0 {
		cfg.Digest.Every = 24 * time.Hour
	}
	if cfg.Digest.Window <= 0 {
		cfg.Digest.Window = cfg.Digest.Every
	}
	if cfg.APIURL != "" && !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	logger = logger.With("component", "bot")
	m := newMetrics(reg)
	b := &Bot{
		cfg:           cfg,
		svc:           svc,
		planner:       p,
		jobs:          jobs,
		m:             m,
		log:           logger,
		now:           time.Now,
		cancels:       map[uint64]context.CancelFunc{},
		seen:          map[string]time.Time{},
		instance:      rand.Text(),
		claimPatience: defaultClaimPatience,
		edited:        map[string]time.Time{},
		running:       map[string]runningJob{},
		deferred:      map[string]*deferredEdits{},
		locks:         map[string]*keyLock{},
		infos:         map[string]vcInfo{},
		viewSeq:       map[string]uint64{},
		forged:        map[string]bool{},
	}
	b.pool = newWorkPool(cfg.Workers, cfg.WorkQueue, &b.work, b.runTask)
	b.notices = newWorkPool(noticeWorkers, noticeQueue, &b.work, b.runTask)
	registerWorkPool(reg, b.pool)
	if reg != nil {
		registerPending(reg, svc.Store(), func() time.Time { return b.now() })
	}
	if inv := inventoryOf(p); inv != nil {
		b.inv = newCachedInventory(inv, func() time.Time { return b.now() })
	}
	if q, ok := jobs.(queueDepth); ok {
		b.depth = q
	}
	var edits *rate.Limiter
	if cfg.EditsPerMinute > 0 {
		edits = rate.NewLimiter(rate.Limit(float64(cfg.EditsPerMinute)/60), editBurst)
	}
	b.slack = newSlackClient(slack.New(cfg.BotToken.Reveal(), b.slackOptions()...), m, logger, edits)
	return b, nil
}

// slackOptions configures a Web API client: base URL, timeouts, and a logger that goes
// through slog.
func (b *Bot) slackOptions() []slack.Option {
	opts := []slack.Option{
		slack.OptionHTTPClient(&http.Client{Timeout: 20 * time.Second}),
		slack.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)),
	}
	if b.cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(b.cfg.APIURL))
	}
	if !b.cfg.AppToken.IsZero() {
		opts = append(opts, slack.OptionAppLevelToken(b.cfg.AppToken.Reveal()))
	}
	return opts
}

// Run runs the bot's background loops — the expiry sweep and the re-publishing of
// approved requests whose jobs were not all queued — until ctx ends, then waits for
// in-flight work (bounded by a grace period, after which that work is cancelled).
func (b *Bot) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return b.every(gctx, expirySweepEvery, b.sweepExpired) })
	g.Go(func() error { return b.every(gctx, republishEvery, b.republishApproved) })
	g.Go(func() error {
		b.resyncMessages(gctx)
		return b.every(gctx, flushDeferredEvery, b.flushDeferred)
	})
	if b.cfg.Digest.Channel != "" {
		g.Go(func() error { return b.every(gctx, b.cfg.Digest.Every, b.postDigest) })
	}
	err := g.Wait()
	b.shutdown()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (b *Bot) every(ctx context.Context, d time.Duration, fn func(context.Context)) error {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			fn(ctx)
		}
	}
}

// shutdown stops new work and waits for what is in flight or queued.
func (b *Bot) shutdown() {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	b.pool.close()
	b.notices.close()
	done := make(chan struct{})
	go func() { b.work.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(shutdownGrace):
	}
	dropped := append(b.pool.abandon(), b.notices.abandon()...)
	b.mu.Lock()
	b.abandoned = true
	n := len(b.cancels)
	for _, cancel := range b.cancels {
		cancel()
	}
	b.mu.Unlock()
	b.log.Warn("shutdown grace over: cancelling in-flight work", "in_flight", n, "dropped", len(dropped),
		"dropped_work", strings.Join(dropped, ","))
	<-done
}

// spawn queues fn to run after the ack on the Bot's pool: Run waits for it on shutdown.
// It returns errShuttingDown or a *busyError (counted in xvm_slack_work_refused_total) when
// fn was not queued; the caller must then tell the person that nothing was done.
func (b *Bot) spawn(what string, fn func(ctx context.Context)) error {
	r, err := b.reserve(what)
	if err != nil {
		return err
	}
	r.submit(task{what: what, fn: fn})
	return nil
}

// reserve takes a place in the pool for work whose first part runs before the ack.
func (b *Bot) reserve(what string) (*reservation, error) {
	r, err := b.pool.reserve()
	if err != nil {
		b.m.refused.WithLabelValues(what, refusalReason(err)).Inc()
	}
	return r, err
}

// tellLater sends a notice after the ack on the notices pool, so that a refused click is
// answered even while the main pool is full. If even that pool is full the notice is only
// logged: the refusal itself changed nothing, so nothing is lost but the message.
func (b *Bot) tellLater(who invocation, text string) {
	r, err := b.notices.reserve()
	if err != nil {
		b.m.refused.WithLabelValues(workNotice, refusalReason(err)).Inc()
		b.log.Warn("notice not sent: bot overloaded", "user", who.User, "err", err)
		return
	}
	r.submit(task{what: workNotice, fn: func(ctx context.Context) { b.tell(ctx, who, notice(text)) }})
}

// runTask runs one task with its own deadline; the context is cancelled if shutdown grace
// ends first. A panic is logged, not fatal: one bad payload must not stop the bot.
func (b *Bot) runTask(t task) {
	ctx, cancel := context.WithTimeout(context.Background(), workTimeout)
	b.mu.Lock()
	b.seq++
	id := b.seq
	b.cancels[id] = cancel
	if b.abandoned {
		cancel()
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.cancels, id)
		b.mu.Unlock()
		cancel()
	}()
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("panic in bot work", "work", t.what, "panic", fmt.Sprint(p))
		}
	}()
	t.fn(ctx)
}

// refusalReason is the reason label of xvm_slack_work_refused_total.
func refusalReason(err error) string {
	if errors.Is(err, errShuttingDown) {
		return reasonShuttingDown
	}
	return reasonBusy
}

// refusalText tells a person at once that their command or click was not taken, and
// what that means for them (outcome, e.g. "Nothing was stored.").
func refusalText(err error, outcome string) string {
	var busy *busyError
	if !errors.As(err, &busy) {
		return strings.Join(nonEmpty("xvmbot is restarting.", outcome, "Please try again in a minute."), " ")
	}
	are := "are"
	if busy.Waiting == 1 {
		are = "is"
	}
	return strings.Join(nonEmpty(fmt.Sprintf("xvmbot is busy right now — %d %s %s waiting.", busy.Waiting, plural(busy.Waiting, "command"), are),
		outcome, "Try again in a minute."), " ")
}

func nonEmpty(parts ...string) []string {
	return slices.DeleteFunc(parts, func(s string) bool { return s == "" })
}

// lock serialises work on one key (a request id) within this process.
func (b *Bot) lock(key string) (unlock func()) {
	b.mu.Lock()
	l := b.locks[key]
	if l == nil {
		l = &keyLock{}
		b.locks[key] = l
	}
	l.refs++
	b.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		b.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(b.locks, key)
		}
		b.mu.Unlock()
	}
}

// Ready reports whether the bot can work: not shutting down, and Slack accepts the bot
// token (auth.test, cached for a minute).
func (b *Bot) Ready() error {
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		return errors.New("bot is shutting down")
	}
	b.ready.mu.Lock()
	defer b.ready.mu.Unlock()
	cacheFor := readyCacheFor
	if b.ready.err != nil {
		cacheFor = readyCacheFor / 6 // look again sooner after a failure
	}
	if !b.ready.checked.IsZero() && b.now().Sub(b.ready.checked) < cacheFor {
		return b.ready.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.slack.authTest(ctx)
	if err != nil {
		err = fmt.Errorf("slack auth.test: %w", err)
	}
	b.ready.checked, b.ready.err = b.now(), err
	return err
}
