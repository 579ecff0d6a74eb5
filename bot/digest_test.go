package bot

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
)

const digestChannel = "C0DIGEST"

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// When a digest is due: on the wall clock, whenever the bot started.
func TestDigestIsDueAtWallClockTimes(t *testing.T) {
	t.Parallel()
	paris := mustLoad(t, "Europe/Paris")
	at := func(s string, loc *time.Location) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	utc := time.UTC
	for _, c := range []struct {
		name      string
		d         Digest
		now       time.Time
		due, next time.Time
	}{
		{"24h: midnight UTC", Digest{Every: oneDay}, at("2026-12-07 14:05", utc),
			at("2026-12-07 00:00", utc), at("2026-12-08 00:00", utc)},
		{"1h: on the hour", Digest{Every: time.Hour}, at("2026-12-07 14:05", utc),
			at("2026-12-07 14:00", utc), at("2026-12-07 15:00", utc)},
		{"168h: Monday midnight UTC", Digest{Every: 7 * oneDay}, at("2026-12-10 09:00", utc), // a Thursday
			at("2026-12-07 00:00", utc), at("2026-12-14 00:00", utc)},
		{"daily at 08:00, before it", Digest{Every: oneDay, Daily: true, At: 8 * time.Hour}, at("2026-12-07 07:59", utc),
			at("2026-12-06 08:00", utc), at("2026-12-07 08:00", utc)},
		{"daily at 08:00, on it", Digest{Every: oneDay, Daily: true, At: 8 * time.Hour}, at("2026-12-07 08:00", utc),
			at("2026-12-07 08:00", utc), at("2026-12-08 08:00", utc)},
		{"08:00 Paris in winter", Digest{Every: oneDay, Daily: true, At: 8 * time.Hour, Location: paris}, at("2026-12-07 12:00", utc),
			at("2026-12-07 07:00", utc), at("2026-12-08 07:00", utc)},
		{"08:00 Paris across the spring change", Digest{Every: oneDay, Daily: true, At: 8 * time.Hour, Location: paris}, at("2026-03-28 12:00", utc),
			at("2026-03-28 07:00", utc), at("2026-03-29 06:00", utc)},
		{"weekly at 08:00 Paris: Mondays", Digest{Every: 7 * oneDay, Daily: true, At: 8 * time.Hour, Location: paris}, at("2026-12-07 06:59", utc),
			at("2026-11-30 07:00", utc), at("2026-12-07 07:00", utc)},
		{"every 2 days at 00:00", Digest{Every: 2 * oneDay, Daily: true}, at("2026-12-08 01:00", utc),
			at("2026-12-07 00:00", utc), at("2026-12-09 00:00", utc)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.d.due(c.now); !got.Equal(c.due) {
				t.Errorf("due(%v) = %v, want %v", c.now, got.UTC(), c.due)
			}
			if got := c.d.next(c.now); !got.Equal(c.next) {
				t.Errorf("next(%v) = %v, want %v", c.now, got.UTC(), c.next)
			}
		})
	}
}

// wallClock is the time every replica in a test reads, moved by the test. A digest loop
// waits on it; the test sees when every loop is waiting again, i.e. done with a period.
type wallClock struct {
	mu      sync.Mutex
	t       time.Time
	waiters map[chan struct{}]time.Time
	changed chan struct{} // closed when a loop starts waiting
}

func newWallClock(t time.Time) *wallClock {
	return &wallClock{t: t, waiters: map[chan struct{}]time.Time{}, changed: make(chan struct{})}
}

func (c *wallClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *wallClock) wait(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	ch := make(chan struct{})
	c.waiters[ch] = c.t.Add(d)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiters, ch)
		c.mu.Unlock()
		return ctx.Err()
	}
}

// set moves the clock to t and wakes the loops whose wait is over.
func (c *wallClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	for ch, at := range c.waiters {
		if !at.After(t) {
			close(ch)
			delete(c.waiters, ch)
		}
	}
}

// idle waits until n loops wait on the clock: all of them are done with what was due.
func (c *wallClock) idle(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		waiting, changed := len(c.waiters), c.changed
		c.mu.Unlock()
		if waiting >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d digest loops waiting, want %d", waiting, n)
		}
	}
}

// digestReplica starts a bot replica's digest loop on clock; stop ends it, as a pod that
// goes away.
func digestReplica(t *testing.T, e *env, clock *wallClock) (stop func()) {
	t.Helper()
	e.bot.now = clock.now
	e.bot.digest.wait = clock.wait
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.bot.digest.run(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func withDigest(d Digest) envOption {
	return func(c *Config, _ *approvals.Policy) { c.Digest = d }
}

// digests returns the digests posted to the digest channel.
func digests(ws *slacksim.Workspace) []slacksim.Message {
	var out []slacksim.Message
	for _, m := range ws.Channel(digestChannel) {
		if strings.HasPrefix(m.Text, "📊 xvmbot") {
			out = append(out, m)
		}
	}
	return out
}

// Two bot replicas on one NATS, both up at every boundary: each period's digest is
// posted once between them, when the period starts.
func TestDigestIsPostedOncePerPeriodAcrossReplicas(t *testing.T) {
	t.Parallel()
	n := newNATSBus(t)
	fs := newSlack(t)
	daily := withDigest(Digest{Channel: digestChannel, Every: oneDay, Daily: true, At: 8 * time.Hour})
	shared := func(c *Config, _ *approvals.Policy) { c.Digests = n.bus.Digests() }
	// Both started after today's 08:00 digest had been posted by the replicas before them.
	start := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	if ok, err := n.bus.Digests().Claim(context.Background(), digestChannel, time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), "earlier-pod"); err != nil || !ok {
		t.Fatalf("claim today's digest for an earlier pod: %v %v", ok, err)
	}
	clock := newWallClock(start)
	digestReplica(t, n.replica(t, fs, daily, shared), clock)
	digestReplica(t, n.replica(t, fs, daily, shared), clock)
	clock.idle(t, 2)
	if got := digests(fs); len(got) != 0 {
		t.Fatalf("%d digests posted on start, today's was already posted", len(got))
	}

	for i, at := range []time.Time{
		time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC), // not due yet
		time.Date(2026, 12, 8, 8, 0, 0, 0, time.UTC),   // due
		time.Date(2026, 12, 8, 17, 0, 0, 0, time.UTC),  // same period
		time.Date(2026, 12, 9, 8, 0, 1, 0, time.UTC),   // the next one
	} {
		clock.set(at)
		clock.idle(t, 2)
		want := []int{0, 1, 1, 2}[i]
		if got := digests(fs); len(got) != want {
			t.Fatalf("at %v: %d digests posted, want %d", at, len(got), want)
		}
	}
}

// Every replica was down when a period began (a pod restarted more often than the
// period, or an outage): the first bot up afterwards posts that period's digest, once;
// bots that start after it, within the period, do not.
func TestDigestMissedWhileDownIsPostedOnceAfterRestart(t *testing.T) {
	t.Parallel()
	n := newNATSBus(t)
	fs := newSlack(t)
	hourly := withDigest(Digest{Channel: digestChannel, Every: time.Hour})
	shared := func(c *Config, _ *approvals.Policy) { c.Digests = n.bus.Digests() }
	clock := newWallClock(time.Date(2026, 12, 7, 9, 59, 0, 0, time.UTC))

	// The first pod posts 09:00's digest on start (nobody had) and 10:00's when due.
	stop := digestReplica(t, n.replica(t, fs, hourly, shared), clock)
	clock.idle(t, 1)
	clock.set(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	clock.idle(t, 1)
	if got := digests(fs); len(got) != 2 {
		t.Fatalf("%d digests from the first pod, want 2 (09:00 on start, 10:00 when due)", len(got))
	}
	stop()
	// Moves that end before and after 11:00: 11:00's digest, however late, counts the first.
	ended := func(vm string, at time.Time) approvals.Job {
		return approvals.Job{ID: vm, VM: vm, State: approvals.StateSucceeded, EndedAt: at}
	}
	if _, err := n.bus.Requests().Create(context.Background(), &approvals.Request{ID: "xvm-moved", SourceVC: "vc-east", TargetVC: "vc-west",
		State: approvals.StateSucceeded, CreatedAt: time.Date(2026, 12, 7, 10, 20, 0, 0, time.UTC), Jobs: []approvals.Job{
			ended("web-01", time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)), ended("web-02", time.Date(2026, 12, 7, 11, 10, 0, 0, time.UTC)),
		}}); err != nil {
		t.Fatal(err)
	}

	// Down across 11:00; pods start and stop at 11:20, 11:40 and 11:50: a restart loop.
	for _, at := range []time.Time{
		time.Date(2026, 12, 7, 11, 20, 0, 0, time.UTC),
		time.Date(2026, 12, 7, 11, 40, 0, 0, time.UTC),
		time.Date(2026, 12, 7, 11, 50, 0, 0, time.UTC),
	} {
		clock.set(at)
		stop := digestReplica(t, n.replica(t, fs, hourly, shared), clock)
		clock.idle(t, 1)
		stop()
	}
	got := digests(fs)
	if len(got) != 3 {
		t.Fatalf("%d digests after the restarts, want 3: 11:00's, once", len(got))
	}
	if text := got[2].Text; !strings.Contains(text, ": 1 VM moved") {
		t.Errorf("11:00's digest, posted at 11:20, says %q; want the hour up to 11:00: 1 VM moved", text)
	}
}

// With no shared log (a bot keeping its state in this process only), a restart must not
// post again: digests are posted only at the boundaries the process is up for.
func TestDigestWithoutSharedLogIsNotPostedOnStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDigest(Digest{Channel: digestChannel, Every: time.Hour}))
	clock := newWallClock(time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC))
	digestReplica(t, e, clock)
	clock.idle(t, 1)
	if got := digests(e.slack); len(got) != 0 {
		t.Fatalf("%d digests posted on start without a shared log, want 0", len(got))
	}
	clock.set(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	clock.idle(t, 1)
	if got := digests(e.slack); len(got) != 1 {
		t.Fatalf("%d digests posted at 10:00, want 1", len(got))
	}
}
