package bot

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Slack takes about one message a second per channel (chat.postMessage), with short
// bursts; beyond that it answers 429 with Retry-After, and every refused post stalls
// whatever waits for it (docs/slack-facts.md S3). The bot paces its own posts per channel
// instead, and lets the posts people wait on (a new request, a final reply) go first: a
// post in a thread leaves one message of the channel's burst for them.

// Defaults of the per-channel pacing of posts.
const (
	defaultPostsPerSecond = 1
	postBurst             = 3
)

// channelPacer spaces the posts of each channel. The zero rate (nil pacer) does not pace.
type channelPacer struct {
	every rate.Limit
	burst int
	now   func() time.Time
	wait  func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	channels map[string]*rate.Limiter
}

func newChannelPacer(perSecond float64) *channelPacer {
	if perSecond <= 0 {
		return nil
	}
	return &channelPacer{every: rate.Limit(perSecond), burst: postBurst, now: time.Now, wait: sleep,
		channels: map[string]*rate.Limiter{}}
}

// take waits until channel may take one more post now; first posts need only one
// message of room, the others leave one for them. It returns ctx's error if ctx ends first.
func (p *channelPacer) take(ctx context.Context, channel string, first bool) error {
	if p == nil {
		return nil
	}
	need := 2.0
	if first || p.burst < 2 {
		need = 1
	}
	for {
		p.mu.Lock()
		l := p.channels[channel]
		if l == nil {
			l = rate.NewLimiter(p.every, p.burst)
			p.channels[channel] = l
		}
		now := p.now()
		tokens := l.TokensAt(now)
		if tokens >= need && l.AllowN(now, 1) {
			p.mu.Unlock()
			return nil
		}
		d := time.Duration((need - tokens) / float64(p.every) * float64(time.Second))
		p.mu.Unlock()
		if err := p.wait(ctx, max(d, time.Millisecond)); err != nil {
			return err
		}
	}
}
