package vcenter

import (
	"testing"
	"time"
)

// follow polls a task whose progress moves at a steady rate from 0 to 100 over d, the way
// waitTask does, and returns how many looks it took and how long after the end the last
// one came.
func follow(d time.Duration) (looks int, late time.Duration) {
	t0 := time.Unix(0, 0)
	now, delay := t0, pollMin/2
	var p taskPace
	for {
		looks++
		elapsed := now.Sub(t0)
		if elapsed >= d {
			return looks, elapsed - d
		}
		pct := int(100 * elapsed / d)
		delay = p.next(now, pct, delay)
		now = now.Add(delay)
	}
}

func TestTaskPaceSeesTheEndSoonWithFewLooks(t *testing.T) {
	for _, tc := range []struct {
		task      time.Duration
		maxLate   time.Duration
		maxLooks  int
		wantLooks int // at least: a long task is still looked at once a second
	}{
		{500 * time.Millisecond, pollMin, 12, 3},
		{5 * time.Second, pollMin, 20, 5},
		{30 * time.Minute, pollMax, 30*60 + 10, 30 * 60 / 2},
	} {
		looks, late := follow(tc.task)
		if late > tc.maxLate {
			t.Errorf("%v task: end seen %v late, want at most %v", tc.task, late, tc.maxLate)
		}
		if looks > tc.maxLooks || looks < tc.wantLooks {
			t.Errorf("%v task: %d looks, want %d..%d", tc.task, looks, tc.wantLooks, tc.maxLooks)
		}
		t.Logf("%v task: %d looks, end seen %v late", tc.task, looks, late)
	}
}

// A task stuck short of its end (vCenter's switch-over can sit at 99%) is looked at less
// and less often, never more than once a second, and never faster than pollMin.
func TestTaskPaceBacksOffWhenBehind(t *testing.T) {
	var p taskPace
	t0 := time.Unix(0, 0)
	delay := p.next(t0, 0, pollMin/2)
	delay = p.next(t0.Add(100*time.Millisecond), 99, delay)
	if delay != pollMin {
		t.Fatalf("one percent left at a 100ms pace: next look in %v, want %v", delay, pollMin)
	}
	now := t0.Add(100 * time.Millisecond)
	var delays []time.Duration
	for range 12 {
		now = now.Add(delay)
		delay = p.next(now, 99, delay)
		delays = append(delays, delay)
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] < delays[i-1] || delays[i] > pollMax {
			t.Fatalf("delays while stuck %v: want growing up to %v", delays, pollMax)
		}
	}
	if delays[len(delays)-1] != pollMax {
		t.Fatalf("delays while stuck %v: want %v in the end", delays, pollMax)
	}
}
