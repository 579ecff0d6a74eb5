package events

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// Of many replicas claiming one period's digest at once, exactly one posts it; a newer
// period is claimed once again, an older one never, and the claim holds through a bus
// opened anew (a restart) however long after.
func TestDigestPeriodIsClaimedOnce(t *testing.T) {
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)
	day1 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)

	race := func(period time.Time) (winners []string) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				holder := fmt.Sprintf("bot-%d", i)
				first, err := tb.Digests().Claim(ctx, "C0OPS", period, holder)
				if err != nil {
					t.Errorf("claim: %v", err)
				}
				if first {
					mu.Lock()
					winners = append(winners, holder)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return winners
	}
	w1 := race(day1)
	if len(w1) != 1 {
		t.Fatalf("%d replicas won the digest of %v, want 1: %v", len(w1), day1, w1)
	}
	if w2 := race(day2); len(w2) != 1 {
		t.Fatalf("%d replicas won the digest of %v, want 1: %v", len(w2), day2, w2)
	}

	again, err := NewBus(ctx, tb.nc, BusConfig{}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what    string
		channel string
		period  time.Time
		holder  string
		want    bool
	}{
		{"the claimed period, after a restart", "C0OPS", day2, "bot-restarted", false},
		{"an older period", "C0OPS", day1, "bot-restarted", false},
		{"the first winner, for its old period", "C0OPS", day1, w1[0], false},
		{"another channel's", "C0OTHER", day2, "bot-restarted", true},
		{"the next period", "C0OPS", day2.Add(24 * time.Hour), "bot-restarted", true},
		{"the same holder again", "C0OPS", day2.Add(24 * time.Hour), "bot-restarted", true},
	} {
		first, err := again.Digests().Claim(ctx, c.channel, c.period, c.holder)
		if err != nil || first != c.want {
			t.Errorf("%s: first=%v err=%v, want first=%v", c.what, first, err, c.want)
		}
	}
}
