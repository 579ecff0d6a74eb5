package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// otherChannel is a second channel the bot takes commands in.
const otherChannel = "C0DEV"

// stallPace holds every post that has to wait for its channel's pace until resume is
// called (at the latest when the test ends); from then on the pace's waits pass at once, on
// a clock of their own. Posts within a channel's burst are not held.
// held says how many posts are being held now.
func (e *env) stallPace() (resume func(), held func() int) {
	clock := newStepClock()
	gate := make(chan struct{})
	var holding atomic.Int64
	p := e.bot.slack.posts
	p.now = clock.now
	p.wait = func(ctx context.Context, d time.Duration) error {
		holding.Add(1)
		defer holding.Add(-1)
		select {
		case <-gate:
			clock.advance(d)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var once sync.Once
	resume = func() { once.Do(func() { close(gate) }) }
	e.t.Cleanup(resume)
	return resume, func() int { return int(holding.Load()) }
}

// reviewsOf counts the private answers to user that show vm.
func reviewsOf(e *env, user, vm string) int {
	n := 0
	for _, m := range e.ephemeralsTo(user) {
		if strings.Contains(m.Words(), vm) {
			n++
		}
	}
	return n
}

// byCreation is the stored requests, oldest first.
func byCreation(e *env) []*approvals.Request {
	all := e.requests()
	slices.SortStableFunc(all, func(a, b *approvals.Request) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return all
}

// assertPostedInOrder checks that channel holds exactly one message per request of rs,
// in their order, each the one the request records.
func assertPostedInOrder(t *testing.T, e *env, channel string, rs []*approvals.Request) {
	t.Helper()
	top := e.slack.Channel(channel)
	if len(top) != len(rs) {
		t.Fatalf("%s holds %d messages, want one per request (%d)", channel, len(top), len(rs))
	}
	for i, r := range rs {
		r = e.get(r.ID)
		if r.MessageTS != top[i].TS || !strings.Contains(top[i].Words(), r.ID) {
			t.Fatalf("message %d of %s is %q (ts %s); want request %s's (ts %q)", i+1, channel, top[i].Words(), top[i].TS, r.ID, r.MessageTS)
		}
	}
}

// Migrates whose approval messages wait for the channel's pace (one post a second in
// Slack) hold no worker: with two workers, eight migrates in one channel are all stored,
// checks in that channel and another are answered with their review, and once the pace
// lets them every approval message is posted once, in the order the requests were made.
// Before, each waiting post held a worker, and the third migrate past the burst was
// answered "busy".
func TestApprovalPostsWaitingForThePaceTurnNoCommandAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPool(2, 1), withPostsPerSecond(1))
	resume, held := e.stallPace()
	const n = 8
	for i := range n {
		vm := fmt.Sprintf("app-%02d", i+1)
		if got := ackText(t, e.command(requester, "migrate "+vm+" to vc-west")); !strings.Contains(got, "Checking "+vm) {
			t.Fatalf("migrate %s, with %d before it in the channel, was answered %q", vm, i, got)
		}
		// One at a time, so that the order of the requests is the order they were sent:
		// until the request is stored and its worker is free or held by the pace. (A
		// command that waits for a worker instead is what the next one runs into.)
		waitUntil(t, vm+" stored", func() bool {
			load := e.bot.tasks.pool.load()
			return load.queued > 0 || len(e.requests()) == i+1 && load.running <= held()
		})
	}
	for i, ch := range []string{testChannel, otherChannel} {
		if got := ackText(t, e.commandIn(ch, requester, "check migrate db-01 to vc-west")); !strings.Contains(got, "Checking db-01") {
			t.Fatalf("a check in %s with %d approval messages waiting in %s was answered %q", ch, n-3, testChannel, got)
		}
		waitUntil(t, "the review of the check in "+ch, func() bool { return reviewsOf(e, requester, "db-01") == i+1 })
	}
	if rs := e.requests(); len(rs) != n {
		t.Fatalf("%d requests stored, want %d", len(rs), n)
	}
	waitUntil(t, "the channel's burst posted", func() bool { return len(e.slack.Channel(testChannel)) == 3 })
	if q := gaugeValue(t, e, "xvm_slack_posts_queued"); q != n-3 {
		t.Errorf("xvm_slack_posts_queued = %v, want %d (all but the channel's burst of 3)", q, n-3)
	}
	queued := 0
	for _, m := range e.ephemeralsTo(requester) {
		if strings.Contains(m.Words(), "ahead of it") {
			queued++
		}
	}
	if queued == 0 {
		t.Errorf("no requester was told their approval message waits for the channel's pace")
	}

	resume()
	e.settle()
	assertPostedInOrder(t, e, testChannel, byCreation(e))
}

// A channel whose post queue is full refuses a new request there, saying why, and stores
// nothing; a request in another channel is posted as usual.
func TestFullPostQueueRefusesOnlyItsChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPostsPerSecond(1), func(c *Config, _ *approvals.Policy) { c.PostQueue = 2 })
	resume, _ := e.stallPace()
	for i := range 5 {
		vm := fmt.Sprintf("app-%02d", i+1)
		ackText(t, e.command(requester, "migrate "+vm+" to vc-west"))
		waitUntil(t, vm+" stored", func() bool { return len(e.requests()) == i+1 })
		if i < 3 { // within the channel's burst: posted at once, and its place in the queue given back
			waitUntil(t, vm+" posted", func() bool { return len(e.slack.Channel(testChannel)) == i+1 && e.bot.posts.total() == 0 })
		}
	}
	// app-04 is being posted (held by the pace) and app-05 waits: the queue is full.
	ackText(t, e.command(requester, "migrate app-06 to vc-west"))
	waitUntil(t, "the refusal of app-06", func() bool { return reviewsOf(e, requester, "Nothing was stored") == 1 })
	refusal := ""
	for _, m := range e.ephemeralsTo(requester) {
		if strings.Contains(m.Words(), "Nothing was stored") {
			refusal = m.Words()
		}
	}
	if !strings.Contains(refusal, "2 approval messages are waiting") || !strings.Contains(refusal, "<#"+testChannel+">") {
		t.Errorf("the refusal says %q; want how many wait, and where", refusal)
	}
	if v := counterValue(e.bot.m.refused.WithLabelValues(workPost, reasonChannelFull)); v != 1 {
		t.Errorf("xvm_slack_work_refused_total{post,channel_full} = %v, want 1", v)
	}
	ackText(t, e.commandIn(otherChannel, requester, "migrate app-07 to vc-west"))
	waitUntil(t, "app-07 posted in "+otherChannel, func() bool { return len(e.slack.Channel(otherChannel)) == 1 })

	resume()
	e.settle()
	var here, there []*approvals.Request
	for _, r := range byCreation(e) {
		if slices.Contains(r.VMs, "app-06") {
			t.Fatalf("the refused request was stored: %s", r.ID)
		}
		if r.Channel == testChannel {
			here = append(here, r)
		} else {
			there = append(there, r)
		}
	}
	assertPostedInOrder(t, e, testChannel, here)
	assertPostedInOrder(t, e, otherChannel, there)
}

// stopWithTwoUnposted asks e's bot for five moves in one channel whose pace lets three be
// posted, stops it with the other two still queued, and returns the requests (oldest
// first) and those two: stored, pending, without a message.
func stopWithTwoUnposted(t *testing.T, e *env) (all, unposted []*approvals.Request) {
	t.Helper()
	_, _ = e.stallPace() // held until the stop
	for i := range 5 {
		vm := fmt.Sprintf("app-%02d", i+1)
		ackText(t, e.command(requester, "migrate "+vm+" to vc-west"))
		waitUntil(t, vm+" stored", func() bool { return len(e.requests()) == i+1 })
	}
	waitUntil(t, "the channel's burst posted", func() bool { return len(e.slack.Channel(testChannel)) == 3 })
	e.bot.tasks.grace = time.Millisecond
	e.bot.tasks.shutdown() // the two held by the pace are dropped
	all = byCreation(e)
	for _, r := range all {
		if r.State != approvals.StatePending {
			t.Fatalf("request %s is %s after the stop; want it pending, to be posted", r.ID, r.State)
		}
		if r.MessageTS == "" {
			unposted = append(unposted, r)
		}
	}
	if len(unposted) != 2 {
		t.Fatalf("%d requests unposted at the stop, want 2", len(unposted))
	}
	return all, unposted
}

// A request stored while its approval message waited for the channel's pace, when the bot
// stopped, is posted by the next start: nobody could approve it otherwise. It is not
// withdrawn for the post the stop cut short, and each request is posted once.
func TestRequestStoredButNotPostedIsPostedAfterRestart(t *testing.T) {
	t.Parallel()
	first := newEnv(t, withPostsPerSecond(1))
	rs, _ := stopWithTwoUnposted(t, first)

	second := newEnvOn(t, first.slack, first.svc.Store(), withPostsPerSecond(1))
	second.bot.repostAfter = 0 // no other replica could still be posting them
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- second.bot.Run(ctx) }()
	waitUntil(t, "the unposted requests posted", func() bool { return len(second.slack.Channel(testChannel)) >= len(rs) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	assertPostedInOrder(t, second, testChannel, rs)
}

func withInstance(name string) envOption {
	return func(c *Config, _ *approvals.Policy) { c.Instance = name }
}

// A bot that starts again under its own name posts at once the approval messages its
// queue held when it stopped: no other process can have that queue. Those another bot
// queued may still wait there, so they wait until no live queue could hold them, and the
// bot that posts them then takes the post over (the request names its queue).
func TestOwnUnpostedRequestsArePostedAtOnceAfterRestart(t *testing.T) {
	t.Parallel()
	first := newEnv(t, withPostsPerSecond(1), withInstance("bot-a"))
	rs, unposted := stopWithTwoUnposted(t, first)
	for _, r := range rs {
		if r.PostQueue != "bot-a" {
			t.Fatalf("request %s names post queue %q, want the bot's own, bot-a", r.ID, r.PostQueue)
		}
	}
	// The last one waits in another replica's queue, as far as anyone can tell.
	ctx := context.Background()
	if _, err := first.svc.TakePost(ctx, unposted[1].ID, "bot-b"); err != nil {
		t.Fatal(err)
	}

	second := newEnvOn(t, first.slack, first.svc.Store(), withPostsPerSecond(1), withInstance("bot-a"))
	if second.bot.repostAfter < time.Minute {
		t.Fatalf("repostAfter %s: the test needs the real wait for another bot's queue", second.bot.repostAfter)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- second.bot.Run(runCtx) }()
	waitUntil(t, "bot-a's unposted request posted at once", func() bool { return second.get(unposted[0].ID).MessageTS != "" })
	// Posted at once it would be by now: the channel's burst has room, and it came next.
	time.Sleep(300 * time.Millisecond)
	if ts := second.get(unposted[1].ID).MessageTS; ts != "" {
		t.Errorf("the request in bot-b's queue was posted by bot-a within %s of its start; want it left to bot-b", second.bot.repostAfter)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// No bot-b came back: once no queue could hold it, a bot takes the post over and posts it.
	third := newEnvOn(t, first.slack, first.svc.Store(), withPostsPerSecond(1), withInstance("bot-c"))
	third.bot.repostAfter = 0
	runCtx, cancel = context.WithCancel(ctx)
	go func() { done <- third.bot.Run(runCtx) }()
	waitUntil(t, "bot-b's request taken over and posted", func() bool { return third.get(unposted[1].ID).MessageTS != "" })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if q := third.get(unposted[1].ID).PostQueue; q != "bot-c" {
		t.Errorf("the request taken over names post queue %q, want bot-c", q)
	}
	assertPostedInOrder(t, third, testChannel, rs)
}

// Approval messages asked for faster than a channel takes posts are posted at its pace:
// the local Slack, which refuses posts above its rate as Slack does, refuses none, and
// each is posted once, in order. (The rates are twenty times Slack's to keep the test short.)
func TestApprovalPostsKeepTheChannelRate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPostsPerSecond(20))
	e.slack.LimitPosts(20, 5) // Slack allows short bursts above its rate; the bot keeps to 3
	for i := range 12 {
		vm := fmt.Sprintf("app-%02d", i+1)
		ackText(t, e.command(requester, "migrate "+vm+" to vc-west"))
		waitUntil(t, vm+" stored", func() bool { return len(e.requests()) == i+1 })
	}
	e.settle()
	if n := e.slack.RateLimited("chat.postMessage"); n != 0 {
		t.Errorf("the local Slack refused %d posts", n)
	}
	assertPostedInOrder(t, e, testChannel, byCreation(e))
}
