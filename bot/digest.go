package bot

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"time"

	"github.com/xvmbot/xvmbot/events"
)

// DigestLog records which period's digest a bot replica claimed, shared by every replica
// and kept across restarts, so that each period's digest is posted once. *events.Digests
// keeps it in a NATS KV bucket.
type DigestLog interface {
	// Claim claims the digest of channel for the period starting at period, for holder,
	// and reports whether holder has it: true for exactly one of any concurrent first
	// claims, and for the same holder claiming again; false for anyone else and for a
	// period older than one already claimed.
	Claim(ctx context.Context, channel string, period time.Time, holder string) (bool, error)
}

var _ DigestLog = (*events.Digests)(nil)

// digestClaimAttempt bounds one question to the shared log; digestRetryEvery is how soon
// a period whose claim got no answer (NATS reconnecting) is tried again.
const (
	digestClaimAttempt = 5 * time.Second
	digestRetryEvery   = 30 * time.Second
	oneDay             = 24 * time.Hour
)

// mondayEpoch is 1970-01-05, a Monday, as days since 1970-01-01: digests due every 7
// days are due on Mondays.
const mondayEpoch = 4

// due returns the start of the digest period that holds t: the latest time at or before
// t when a digest is due. Daily digests (At and Location) are due at At in Location every
// Every, a whole number of days counted from Monday 1970-01-05 (a weekly digest is due on
// Mondays); the others at multiples of Every since 0001-01-01 UTC (time.Truncate): 24h
// at midnight UTC, 1h on the hour, 168h at Monday midnight UTC.
func (d Digest) due(t time.Time) time.Time {
	if !d.Daily {
		return t.Truncate(d.Every)
	}
	days := int(d.Every / oneDay)
	local := t.In(d.location())
	today := civilDay(local)
	start := today - floorMod(today-mondayEpoch, days)
	at := d.on(start)
	if at.After(t) {
		at = d.on(start - days)
	}
	return at
}

// next returns when the next digest is due after t.
func (d Digest) next(t time.Time) time.Time {
	if !d.Daily {
		return d.due(t).Add(d.Every)
	}
	return d.on(civilDay(d.due(t).In(d.location())) + int(d.Every/oneDay))
}

func (d Digest) location() *time.Location {
	if d.Location == nil {
		return time.UTC
	}
	return d.Location
}

// on is At on the civil day numbered n (days since 1970-01-01) in Location, by the wall
// clock: 08:00 stays 08:00 across daylight-saving changes (a time of day that a change
// skips is taken as time.Date normalises it).
func (d Digest) on(n int) time.Time {
	c := time.Unix(int64(n)*86400, 0).UTC()
	return time.Date(c.Year(), c.Month(), c.Day(), int(d.At/time.Hour), int(d.At%time.Hour/time.Minute), 0, 0, d.location())
}

// civilDay numbers t's calendar date (in t's own location) as days since 1970-01-01.
func civilDay(t time.Time) int {
	return int(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func floorMod(a, b int) int { return ((a % b) + b) % b }

// digester posts the digest once per period across every bot replica: when a period
// starts, and at start-up for a period that began while no replica ran (a bot restarted
// more often than the period still posts it). Without a shared log each process posts at
// the boundaries it is up for, and none at start-up (a restart loop would repeat it).
type digester struct {
	cfg    Digest
	log    DigestLog // nil: this process only
	logger *slog.Logger
	holder string
	now    func() time.Time
	// wait returns after d, or with ctx's error; tests move a clock instead.
	wait func(ctx context.Context, d time.Duration) error
	post func(ctx context.Context, period time.Time) error

	mu     sync.Mutex
	posted time.Time // the latest period this process posted or saw claimed
}

func newDigester(cfg Digest, log DigestLog, logger *slog.Logger, now func() time.Time, post func(ctx context.Context, period time.Time) error) *digester {
	return &digester{cfg: cfg, log: log, logger: logger, holder: rand.Text(), now: now, wait: sleep, post: post}
}

// run posts the digest of each period as it starts, until ctx ends.
func (g *digester) run(ctx context.Context) error {
	if g.log != nil {
		g.catchUp(ctx)
	} else {
		g.done(g.cfg.due(g.now())) // this process was not up when the current period began
	}
	for {
		now := g.now()
		wake := g.cfg.next(now)
		if g.pending(g.cfg.due(now)) {
			wake = earlier(wake, now.Add(digestRetryEvery))
		}
		if !wake.After(now) { // never spin, whatever a time zone's rules do
			wake = now.Add(time.Minute)
		}
		if err := g.wait(ctx, wake.Sub(now)); err != nil {
			return nil
		}
		g.catchUp(ctx)
	}
}

// catchUp posts the current period's digest unless it was posted (by any replica).
func (g *digester) catchUp(ctx context.Context) {
	period := g.cfg.due(g.now())
	if !g.pending(period) {
		return
	}
	if g.log != nil {
		actx, cancel := context.WithTimeout(ctx, digestClaimAttempt)
		mine, err := g.log.Claim(actx, g.cfg.Channel, period, g.holder)
		cancel()
		if err != nil {
			// Asked again soon (run's retry): nothing is posted on this replica's word.
			g.logger.Warn("digest not claimed: the digest log did not answer", "channel", g.cfg.Channel, "period", period, "err", err)
			return
		}
		if !mine {
			g.done(period)
			return
		}
	}
	// A failed post (logged) is not tried again: the claim is this replica's, and a post
	// Slack took but did not answer would be doubled. The next digest covers the time.
	_ = g.post(ctx, period)
	g.done(period)
}

func (g *digester) pending(period time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.posted.Before(period)
}

func (g *digester) done(period time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if period.After(g.posted) {
		g.posted = period
	}
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// postDigest posts the stats of the digest window that ends when period began.
func (b *Bot) postDigest(ctx context.Context, period time.Time) error {
	s, err := b.statsAt(ctx, period, b.cfg.Digest.Window)
	if err != nil {
		b.log.Error("digest", "err", err)
		return err
	}
	title := "last " + humanDuration(b.cfg.Digest.Window)
	if b.cfg.Digest.Window == oneDay {
		title = "last 24 hours"
	}
	if _, err := b.slack.post(ctx, b.cfg.Digest.Channel, "", asMessage(RenderStats(s, title))); err != nil {
		b.log.Error("post digest", "channel", b.cfg.Digest.Channel, "period", period, "err", err)
		return err
	}
	b.log.Info("digest posted", "channel", b.cfg.Digest.Channel, "period", period)
	return nil
}
