package bot

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// Posts in threads leave the last message of a channel's burst to the posts people wait
// on; other channels are paced apart.
func TestPacerLetsFirstPostsGoFirst(t *testing.T) {
	t.Parallel()
	clock := newStepClock()
	var waited time.Duration
	p := newChannelPacer(1)
	p.now = clock.now
	p.wait = func(_ context.Context, d time.Duration) error { waited += d; clock.advance(d); return nil }
	ctx := context.Background()
	take := func(channel string, first bool) time.Duration {
		before := waited
		if err := p.take(ctx, channel, first); err != nil {
			t.Fatal(err)
		}
		return waited - before
	}
	if w := take("C1", false) + take("C1", false); w != 0 {
		t.Fatalf("the first two thread posts waited %s", w)
	}
	if w := take("C1", true); w != 0 {
		t.Fatalf("a final reply waited %s behind thread posts with the burst's last message free", w)
	}
	if w := take("C2", false); w != 0 {
		t.Fatalf("another channel waited %s", w)
	}
	if w := take("C1", false); w < 1900*time.Millisecond {
		t.Fatalf("a thread post waited %s with the burst spent, want about 2s (one post a second, one kept free)", w)
	}
	if w := take("C1", true); w != 0 {
		t.Fatalf("a final reply waited %s for the message thread posts keep free", w)
	}
	if w := take("C1", true); w < 900*time.Millisecond {
		t.Fatalf("a final reply waited only %s with the burst spent, want about 1s", w)
	}
}

// A burst — six VMs of a request failing at once — reaches a channel that refuses posts
// above its rate: no post is refused and none is lost. (Both rates are four times Slack's
// one a second, to keep the test short; cmd/xvmbot's TestLargeRequestThreadHoldsTheTable
// AndTheFailures runs the default pace against one a second.)
func TestBurstOfPostsStaysWithinTheChannelRate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTableAbove(3), withPostsPerSecond(4))
	e.slack.LimitPosts(4, 5)
	r, parentTS := e.approved("migrate app-1,app-2,app-3,app-4,app-5,app-6 to vc-west")
	var wg sync.WaitGroup
	for i := range r.Jobs {
		wg.Go(func() { e.handle(event(r, i, events.EventStarted, 0)) })
	}
	wg.Wait()
	for i := range r.Jobs {
		wg.Go(func() {
			e.handle(failedEvent(r, i, "NetworkCopyFault", "the vMotion network went down", "check the vMotion vmknics"))
		})
	}
	wg.Wait()
	if n := e.slack.RateLimited("chat.postMessage"); n != 0 {
		t.Errorf("the local Slack refused %d posts", n)
	}
	thread := e.slack.Thread(parentTS)
	failures := 0
	for _, m := range thread {
		if strings.Contains(m.Words(), "failed to move") {
			failures++
		}
	}
	if len(thread) != 8 || failures != 6 || !strings.Contains(thread[len(thread)-1].Words(), "<@"+requester+">") {
		t.Fatalf("thread holds %d messages (%d failures), want the table, 6 failures and the final reply:\n%s",
			len(thread), failures, threadWords(thread))
	}
	if got := e.get(r.ID).State; got != approvals.StateFailed {
		t.Fatalf("request is %s", got)
	}
}

func withPostsPerSecond(n float64) envOption {
	return func(c *Config, _ *approvals.Policy) { c.PostsPerSecond = n }
}
