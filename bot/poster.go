package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/xvmbot/xvmbot/approvals"
)

// Slack takes about one post a second per channel (docs/slack-facts.md S3), and a new
// request's approval message is one. A pre-flight that waited for its channel's pace before
// posting held one of the pool's workers for as long as the posts before it took: a few
// migrates a second in one channel filled the pool, and checks in every channel were then
// turned away "busy" (BENCHMARKS.md, "Pre-flight at Slack's full rate"). The approval
// message is now handed to its channel's post queue once the request is stored, and the
// worker goes on to the next command; a channel's queue is worked by one goroutine, in
// order, at the channel's pace.

// defaultPostQueue is Config.PostQueue's default: five minutes of posts at Slack's pace.
const defaultPostQueue = 300

// repostMargin is added to the longest a queue holds a post before a start posts a request
// it finds stored but not posted (see Bot.postUnposted).
const repostMargin = 10 * time.Second

// Kind of work and reason of xvm_slack_work_refused_total for a full channel queue.
const (
	workPost          = "post"
	reasonChannelFull = "channel_full"
)

// channelFullError refuses a post because its channel's queue is full.
type channelFullError struct {
	Channel string
	Waiting int
}

func (e *channelFullError) Error() string {
	return fmt.Sprintf("%d approval messages wait to be posted in channel %s", e.Waiting, e.Channel)
}

// pendingPost is one approval message to post: the request's id (it is read again when its
// turn comes, so a queue of large requests holds only their ids) and whom to tell if it
// cannot be posted.
type pendingPost struct {
	id  string
	who invocation
}

// postQueues holds the approval messages waiting for their channel's pace: per channel a
// FIFO of at most limit posts (the one being posted included), worked by one goroutine
// while it has any and by none when it is empty. Each goroutine is counted in wg, which
// shutdown waits for; abandon drops what still waits (a later start posts it) and cancels
// the post being made.
type postQueues struct {
	limit int
	wg    *sync.WaitGroup
	post  func(ctx context.Context, p pendingPost)

	ctx    context.Context // cancelled by abandon
	cancel context.CancelFunc

	mu        sync.Mutex
	lines     map[string]*postLine // channels with posts waiting or being made
	abandoned bool
}

// postLine is one channel's queue.
type postLine struct {
	waiting  []pendingPost
	reserved int  // places taken by reserve and not yet submitted or released
	posting  bool // a post of this line is being made
}

func (l *postLine) len() int {
	n := len(l.waiting) + l.reserved
	if l.posting {
		n++
	}
	return n
}

func newPostQueues(limit int, wg *sync.WaitGroup, post func(ctx context.Context, p pendingPost)) *postQueues {
	ctx, cancel := context.WithCancel(context.Background())
	return &postQueues{limit: max(limit, 1), wg: wg, post: post, ctx: ctx, cancel: cancel, lines: map[string]*postLine{}}
}

// postSlot is a place in a channel's queue, taken before the request is stored so that a
// full queue refuses the request rather than leaving it stored and unposted. Exactly one
// of submit or release must be called.
type postSlot struct {
	q       *postQueues
	channel string
	done    bool
}

// reserve takes a place in channel's queue: errShuttingDown once the queues are abandoned,
// a *channelFullError when the channel has limit posts waiting.
func (q *postQueues) reserve(channel string) (*postSlot, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.abandoned {
		return nil, errShuttingDown
	}
	l := q.lines[channel]
	if l == nil {
		l = &postLine{}
		q.lines[channel] = l
	}
	if n := l.len(); n >= q.limit {
		return nil, &channelFullError{Channel: channel, Waiting: n}
	}
	l.reserved++
	return &postSlot{q: q, channel: channel}, nil
}

// submit queues p in the reserved place and returns how many posts of the channel are
// before it (the one being made included). It starts the channel's goroutine if none runs.
// Once the queues are abandoned p is dropped: its request is stored, and a later start
// posts it.
func (s *postSlot) submit(p pendingPost) (ahead int) {
	q := s.q
	q.mu.Lock()
	if s.done {
		q.mu.Unlock()
		panic("bot: post slot used twice")
	}
	s.done = true
	l := q.lines[s.channel]
	l.reserved--
	if q.abandoned {
		q.dropIfIdle(s.channel, l)
		q.mu.Unlock()
		return 0
	}
	ahead = len(l.waiting)
	if l.posting {
		ahead++
	}
	l.waiting = append(l.waiting, p)
	start := !l.posting && len(l.waiting) == 1
	if start {
		l.posting = true
		q.wg.Add(1)
	}
	q.mu.Unlock()
	if start {
		go q.work(s.channel, l)
	}
	return ahead
}

// release gives the place back unused.
func (s *postSlot) release() {
	q := s.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	l := q.lines[s.channel]
	l.reserved--
	q.dropIfIdle(s.channel, l)
}

// dropIfIdle forgets a channel with nothing waiting, reserved or being posted.
func (q *postQueues) dropIfIdle(channel string, l *postLine) {
	if l.len() == 0 {
		delete(q.lines, channel)
	}
}

// work posts channel's queue in order until it is empty. Each post waits for the channel's
// pace inside q.post; posts of one channel never overlap, so their order is the queue's.
func (q *postQueues) work(channel string, l *postLine) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(l.waiting) == 0 || q.abandoned {
			l.posting = false
			l.waiting = nil
			q.dropIfIdle(channel, l)
			q.mu.Unlock()
			return
		}
		p := l.waiting[0]
		l.waiting[0] = pendingPost{}
		l.waiting = l.waiting[1:]
		q.mu.Unlock()

		ctx, cancel := context.WithTimeout(q.ctx, workTimeout)
		q.post(ctx, p)
		cancel()
	}
}

// abandon drops the posts still waiting and cancels those being made (shutdown grace is
// over); it returns what it dropped, one name per post. Their requests stay stored
// without a message, for the next start to post.
func (q *postQueues) abandon() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.abandoned = true
	q.cancel()
	var names []string
	for _, l := range q.lines {
		for range l.waiting {
			names = append(names, workPost)
		}
		l.waiting = nil
	}
	return names
}

// total is how many posts wait in every channel's queue, those being made included.
func (q *postQueues) total() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, l := range q.lines {
		n += len(l.waiting)
		if l.posting {
			n++
		}
	}
	return n
}

// registerPostQueues exposes how many approval messages wait for their channel's pace.
func registerPostQueues(reg prometheus.Registerer, q *postQueues) {
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "xvm_slack_posts_queued",
		Help: "Approval messages of stored requests waiting for their channel's posting pace (about one a second), in every channel; the one being posted included.",
	}, func() float64 { return float64(q.total()) })
}

// queueApproval hands a stored request's approval message to its channel's queue, and
// tells the requester when the channel's pace keeps it waiting.
func (b *Bot) queueApproval(ctx context.Context, slot *postSlot, r *approvals.Request, who invocation) {
	ahead := slot.submit(pendingPost{id: r.ID, who: who})
	if ahead < 2 || b.cfg.PostsPerSecond <= 0 {
		return // posted within a second or two: nothing to say
	}
	wait := time.Duration(float64(ahead) / b.cfg.PostsPerSecond * float64(time.Second))
	b.tell(ctx, who, notice(escf("Request %s is stored and its approval message is queued in <#%s>: %d %s ahead of it, about %s. "+
		"Slack takes about one message a second in a channel.", r.ID, r.Channel, ahead, plural(ahead, "message"), roughly(wait))))
}

// roughly says d in whole seconds, or in minutes from two minutes up.
func roughly(d time.Duration) string {
	if d < 2*time.Minute {
		return fmt.Sprintf("%d s", max(int(d.Round(time.Second)/time.Second), 1))
	}
	return fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
}

// channelFullText tells the requester that their channel's queue refused the request.
func (b *Bot) channelFullText(err *channelFullError) string {
	return escf("Nothing was stored and nobody was asked to approve anything: %d approval messages are waiting to be posted in <#%s>, "+
		"as many as xvmbot queues for one channel (Slack takes about one message a second in a channel). "+
		"Try again in a few minutes; other channels are not affected.", err.Waiting, err.Channel)
}

// postApproval posts a queued request's approval message, records where it is, and sends
// the approvers' DMs when the request asks for them. A request that got a message
// meanwhile (posted by a start that found it unposted), or that ended while it waited
// (cancelled, expired), is not posted.
func (b *Bot) postApproval(ctx context.Context, p pendingPost) {
	log := b.log.With("request_id", p.id, "user", p.who.User, "channel", p.who.Channel)
	r, err := b.svc.Get(ctx, p.id)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("read request to post", "err", err)
		}
		return // left stored without a message: a later start posts it
	}
	if r.MessageTS != "" || r.State.Final() {
		return
	}
	ts, err := b.slack.post(ctx, r.Channel, "", asMessage(RenderRequest(r, b.now())))
	if err != nil {
		if ctx.Err() != nil {
			// Shutdown grace is over (or the post waited past its time): the request stays
			// stored without a message, and the next start posts it.
			log.Warn("approval message not posted before the bot stopped; the next start posts it", "err", err)
			return
		}
		// Nobody can approve a request they cannot see: withdraw it and say so.
		log.Error("post approval message", "err", err)
		if _, cerr := b.svc.Cancel(ctx, r.ID, r.Requester, "the approval message could not be posted"); cerr != nil {
			log.Error("withdraw unposted request", "err", cerr)
		}
		b.tell(ctx, p.who, asMessage(RenderError(fmt.Sprintf("Could not post request %s for approval (%v); it was withdrawn.", r.ID, err), "")))
		return
	}
	stored, err := b.svc.RecordMessage(ctx, r.ID, ts)
	if err != nil && !errors.Is(err, approvals.ErrUnchanged) {
		log.Error("store message ts", "err", err)
	} else if stored.State != approvals.StatePending {
		// Someone decided in the moment between the post and the store: show it.
		b.refreshParent(ctx, stored)
	}
	if r.Notify == approvals.NotifyDM {
		b.sendDMs(ctx, r.ID)
	}
}

// postUnposted posts, after a start, the approval messages of requests that were stored
// but not posted when a bot stopped (its post queue dropped at shutdown, or the process
// killed): nobody could approve them otherwise. Those this process's previous run queued
// (the request names the queue, Request.PostQueue, by instance name, which no other live
// process has) are posted at once. Another bot's may still wait in that bot's queue, so
// each is posted only once it is older than the longest a queue holds a post
// (b.repostAfter), still has no message then, and this bot has taken its post over: the
// bot that queued it, started again, then leaves it alone.
func (b *Bot) postUnposted(ctx context.Context) {
	heads, err := b.svc.ListHeads(ctx)
	if err != nil {
		b.log.Warn("list requests to post after start", "err", err)
		return
	}
	var own, others []*approvals.Request
	for _, r := range heads {
		switch {
		case r.MessageTS != "" || r.State.Final() || r.Channel == "":
		case b.cfg.Instance != "" && r.PostQueue == b.cfg.Instance:
			own = append(own, r)
		default:
			others = append(others, r)
		}
	}
	byCreation := func(a, c *approvals.Request) int { return a.CreatedAt.Compare(c.CreatedAt) }
	slices.SortStableFunc(own, byCreation)
	slices.SortStableFunc(others, byCreation)
	for _, r := range own {
		b.repost(ctx, r, "its queue stopped with this bot's previous run")
	}
	for _, r := range others {
		if d := r.CreatedAt.Add(b.repostAfter).Sub(b.now()); d > 0 {
			if sleep(ctx, d) != nil {
				return
			}
		}
		if b.cfg.Instance != "" {
			if _, err := b.svc.TakePost(ctx, r.ID, b.cfg.Instance); err != nil {
				continue // posted meanwhile, ended, or taken over by another bot (or unreadable)
			}
		} else if cur, err := b.svc.Head(ctx, r.ID); err != nil || cur.MessageTS != "" || cur.State.Final() {
			continue
		}
		b.repost(ctx, r, "no bot's queue could still hold it")
	}
}

// repost queues the approval message of request r, stored but not posted before this
// bot started, for the same reason as why.
func (b *Bot) repost(ctx context.Context, r *approvals.Request, why string) {
	if ctx.Err() != nil {
		return
	}
	slot, err := b.posts.reserve(r.Channel)
	if err != nil {
		b.log.Warn("request stored but not posted: not queued after start", "request_id", r.ID, "err", err)
		return
	}
	b.log.Info("posting the approval message of a request stored before the bot started", "request_id", r.ID, "why", why)
	slot.submit(pendingPost{id: r.ID, who: invocation{User: r.Requester, Channel: r.Channel}})
}

// postRefusalReason is the reason label of xvm_slack_work_refused_total{work="post"}.
func postRefusalReason(err error) string {
	var full *channelFullError
	if errors.As(err, &full) {
		return reasonChannelFull
	}
	return refusalReason(err)
}
