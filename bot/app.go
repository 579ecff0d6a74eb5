package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
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
	// PostsPerSecond paces the bot's posts (chat.postMessage) in each channel, default 1
	// after a burst of 3: Slack refuses more than about one a second per channel. Posts of
	// new requests and final replies go before those of threads. Negative: not paced.
	PostsPerSecond float64
	// PostQueue is how many approval messages may wait for their channel's pace, per
	// channel (default 300: five minutes at one a second). A request's pre-flight does not
	// wait for the post: the message is queued once the request is stored. Beyond the
	// bound, a new request in that channel is refused (nothing is stored); other channels
	// are not affected.
	PostQueue int
	// TableAbove is the size above which a request's thread shows its progress as one
	// table message, edited in place, instead of one message per VM (failures are still
	// posted one by one). Default 20; negative: never.
	TableAbove int
	// SweepEvery is how often pending requests are checked for expiry and for reminders
	// that came due (0 = every 30 s).
	SweepEvery time.Duration
	// Digest, if its Channel is set, posts the stats to that channel every Every, at
	// wall-clock times.
	Digest Digest
	// Digests records which period's digest a replica claimed, shared by every bot
	// replica and kept across restarts: each period's digest is posted once, and a bot
	// that starts after a period began without one posts it. nil: each process posts
	// at the times it is up for, and none on start.
	Digests DigestLog
	// Windows are the change windows of target vCenters: the review says when moves start.
	Windows map[string][]approvals.Window
	// ClientURLs are the vSphere Clients of the vCenters by name ("https://vc/ui/"): the
	// messages link each VM there. A vCenter not in it gets no links.
	ClientURLs map[string]string
	// Workers is how many commands and clicks are worked on at once after their ack
	// (pre-flight, Slack posts); default 16 × GOMAXPROCS.
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
	// Instance is this process's name, one a restart keeps (serve derives it as the
	// worker's name). The approval messages its post queue held when it stopped are
	// posted as soon as it starts again; those another bot queued wait until no live
	// queue could still hold them. "" names no queue: every unposted request waits.
	Instance string
}

// Defaults of the caps on one command.
const (
	DefaultMaxCommandBytes  = 128 << 10
	DefaultMaxVMsPerRequest = 5000
	// DefaultTableAbove is Config.TableAbove's default.
	DefaultTableAbove = 20
)

// Digest is the scheduled stats post; docs/digest.md says when it is due.
type Digest struct {
	Channel string
	Every   time.Duration // default 24h
	Window  time.Duration // what the post covers (up to when it was due); default Every
	// Daily digests are due at At (a time of day) in Location (nil: UTC), every Every, a
	// whole number of days; the others at multiples of Every (24h: midnight UTC).
	Daily    bool
	At       time.Duration
	Location *time.Location
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
// decisions, queues approved jobs, and reports their progress back in the channel. What
// it remembers between deliveries is held by parts that own their state and its lock.
type Bot struct {
	cfg     Config
	svc     *approvals.Service
	planner planner
	jobs    jobPublisher
	slack   *slackClient
	m       *metrics
	log     *slog.Logger
	now     func() time.Time

	tasks      *afterAck        // the work after an ack, and shutdown
	deliveries *deliveryGuard   // each Slack delivery handled once
	edits      *editThrottle    // when a message may be edited again
	putOff     *putOffEdits     // edits the budget had no room for
	reqViews   *requestViews    // large requests in flight, kept whole in memory
	locks      *keyLocks        // per request (and wizard view): one at a time
	views      *wizardViews     // the newest change of each open wizard
	vcInfos    *vcInfoCache     // what each vCenter last said of itself
	said       *onceSet         // notices already posted
	ready      *readiness       // whether Slack accepts the bot token
	digest     *digester        // the scheduled stats post
	homeNotes  *homeNotes       // what a click on the Home tab is answered with
	inv        *cachedInventory // nil: no inventory listing, the wizard is not offered
	depth      queueDepth       // nil: queue depth unknown
	posts      *postQueues      // approval messages waiting for their channel's pace
	// repostAfter is how old a request stored without a message must be before a start
	// posts it: the longest a live replica's queue may still hold it.
	repostAfter time.Duration
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
	if cfg.PostsPerSecond == 0 {
		cfg.PostsPerSecond = defaultPostsPerSecond
	}
	if cfg.PostQueue <= 0 {
		cfg.PostQueue = defaultPostQueue
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = expirySweepEvery
	}
	if cfg.TableAbove == 0 {
		cfg.TableAbove = DefaultTableAbove
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
	b := &Bot{cfg: cfg, svc: svc, planner: p, jobs: jobs, m: m, log: logger, now: time.Now}
	clock := func() time.Time { return b.now() } // tests replace b.now after New
	b.tasks = newAfterAck(cfg.Workers, cfg.WorkQueue, logger)
	b.posts = newPostQueues(cfg.PostQueue, &b.tasks.wg, b.postApproval)
	b.tasks.abandons = append(b.tasks.abandons, b.posts.abandon)
	b.repostAfter = repostMargin
	if cfg.PostsPerSecond > 0 {
		b.repostAfter += time.Duration(float64(cfg.PostQueue) / cfg.PostsPerSecond * float64(time.Second))
	}
	b.deliveries = newDeliveryGuard(cfg.Deliveries, logger, clock)
	b.edits = newEditThrottle(cfg.ProgressInterval, clock)
	b.putOff = newPutOffEdits(clock)
	b.reqViews = newRequestViews()
	b.locks = newKeyLocks()
	b.views = newWizardViews()
	b.vcInfos = newVCInfoCache(p, clock)
	b.said = newOnceSet()
	b.homeNotes = newHomeNotes()
	registerWorkPool(reg, b.tasks.pool)
	registerPostQueues(reg, b.posts)
	if reg != nil {
		registerPending(reg, svc.Store(), clock)
	}
	if inv := inventoryOf(p); inv != nil {
		b.inv = newCachedInventory(inv, clock)
	}
	if q, ok := jobs.(queueDepth); ok {
		b.depth = q
	}
	var edits *rate.Limiter
	if cfg.EditsPerMinute > 0 {
		edits = rate.NewLimiter(rate.Limit(float64(cfg.EditsPerMinute)/60), editBurst)
	}
	b.slack = newSlackClient(slack.New(cfg.BotToken.Reveal(), b.slackOptions()...), m, logger, edits)
	b.slack.now = clock
	b.slack.posts = newChannelPacer(cfg.PostsPerSecond)
	b.ready = newReadiness(b.slack.authTest, clock)
	b.digest = newDigester(cfg.Digest, cfg.Digests, logger, clock, b.postDigest)
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
	g.Go(func() error { return every(gctx, b.cfg.SweepEvery, b.sweepExpired) })
	g.Go(func() error { return every(gctx, republishEvery, b.republishApproved) })
	g.Go(func() error { b.postUnposted(gctx); return nil })
	g.Go(func() error {
		b.resyncMessages(gctx)
		return every(gctx, flushDeferredEvery, b.flushDeferred)
	})
	if b.cfg.Digest.Channel != "" {
		g.Go(func() error { return b.digest.run(gctx) })
	}
	err := g.Wait()
	b.tasks.shutdown()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func every(ctx context.Context, d time.Duration, fn func(context.Context)) error {
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
	r, err := b.tasks.pool.reserve()
	if err != nil {
		b.m.refused.WithLabelValues(what, refusalReason(err)).Inc()
	}
	return r, err
}

// tellLater sends a notice after the ack on the notices pool, so that a refused click is
// answered even while the main pool is full. If even that pool is full the notice is only
// logged: the refusal itself changed nothing, so nothing is lost but the message.
func (b *Bot) tellLater(who invocation, text string) {
	r, err := b.tasks.notices.reserve()
	if err != nil {
		b.m.refused.WithLabelValues(workNotice, refusalReason(err)).Inc()
		b.log.Warn("notice not sent: bot overloaded", "user", who.User, "err", err)
		return
	}
	r.submit(task{what: workNotice, fn: func(ctx context.Context) { b.tell(ctx, who, notice(text)) }})
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

// Ready reports whether the bot can work: not shutting down, and Slack accepts the bot
// token (auth.test, cached for a minute).
func (b *Bot) Ready() error {
	if b.tasks.shuttingDown() {
		return errors.New("bot is shutting down")
	}
	return b.ready.check()
}

// readiness caches whether Slack accepts the bot token: a probe every few seconds must
// not cost an auth.test each.
type readiness struct {
	authTest func(ctx context.Context) (*slack.AuthTestResponse, error)
	now      func() time.Time

	mu      sync.Mutex
	checked time.Time
	err     error
}

func newReadiness(authTest func(ctx context.Context) (*slack.AuthTestResponse, error), now func() time.Time) *readiness {
	return &readiness{authTest: authTest, now: now}
}

// check asks Slack unless it answered within readyCacheFor (a sixth of it after a
// failure: it is asked again sooner).
func (r *readiness) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cacheFor := readyCacheFor
	if r.err != nil {
		cacheFor = readyCacheFor / 6
	}
	if !r.checked.IsZero() && r.now().Sub(r.checked) < cacheFor {
		return r.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := r.authTest(ctx)
	if err != nil {
		err = fmt.Errorf("slack auth.test: %w", err)
	}
	r.checked, r.err = r.now(), err
	return err
}
