package approvals

import (
	"slices"
	"testing"
	"time"
)

// A pending request owes each reminder once, from its moment until it expires; several
// that came due together (a bot that was down) are one reminder, the nearest to expiry.
func TestReminderDue(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 14, 0, 0, 0, time.UTC)
	before := []time.Duration{time.Hour, 15 * time.Minute}
	for _, tt := range []struct {
		name     string
		at       time.Duration // after creation; the request expires at 4h
		reminded []time.Duration
		state    State
		want     time.Duration // 0: none due
	}{
		{"too early", 2 * time.Hour, nil, StatePending, 0},
		{"an hour before", 3*time.Hour + time.Second, nil, StatePending, time.Hour},
		{"posted already", 3*time.Hour + time.Minute, []time.Duration{time.Hour}, StatePending, 0},
		{"the next one", 3*time.Hour + 50*time.Minute, []time.Duration{time.Hour}, StatePending, 15 * time.Minute},
		{"both due after an outage: one", 3*time.Hour + 50*time.Minute, nil, StatePending, 15 * time.Minute},
		{"expired", 4 * time.Hour, nil, StatePending, 0},
		{"decided", 3*time.Hour + time.Minute, nil, StateApproved, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{State: tt.state, CreatedAt: t0, ExpiresAt: t0.Add(4 * time.Hour), Reminded: tt.reminded}
			got, ok := r.ReminderDue(before, t0.Add(tt.at))
			if ok != (tt.want != 0) || got != tt.want {
				t.Fatalf("due %v %v, want %v", got, ok, tt.want)
			}
			if !ok {
				return
			}
			if !r.markReminded(before, got, t0.Add(tt.at)) {
				t.Fatal("the due reminder was not recorded")
			}
			if d, again := r.ReminderDue(before, t0.Add(tt.at)); again {
				t.Fatalf("after recording it, %v is still due (reminded %v)", d, r.Reminded)
			}
			if !slices.Contains(r.Reminded, tt.want) {
				t.Fatalf("reminded %v, want it to hold %v", r.Reminded, tt.want)
			}
		})
	}
}
