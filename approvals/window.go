package approvals

import (
	"fmt"
	"strings"
	"time"
)

// Window is a recurring change window in which moves into a vCenter may start: every day
// ("daily 01:00-05:00") or once a week, possibly across midnight ("sat 22:00-sun 04:00").
// Moves already running when a window closes finish; vMotion is not interrupted.
type Window struct {
	daily      bool
	start, end int // minutes since the start of the week (weekly) or the day (daily)
	loc        *time.Location
	text       string
}

// String returns the window as written.
func (w Window) String() string { return w.text }

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
)

// ParseWindow reads "daily HH:MM-HH:MM" or "ddd HH:MM-[ddd ]HH:MM" in the given location.
func ParseWindow(s string, loc *time.Location) (Window, error) {
	if loc == nil {
		loc = time.UTC
	}
	w := Window{loc: loc, text: s}
	bad := func(why string) (Window, error) {
		return Window{}, fmt.Errorf("window %q: %s (write \"daily 01:00-05:00\" or \"sat 22:00-sun 04:00\")", s, why)
	}
	from, to, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "-")
	if !ok {
		return bad("no '-' between start and end")
	}
	fromF, toF := strings.Fields(from), strings.Fields(to)
	if len(fromF) != 2 || len(toF) < 1 || len(toF) > 2 {
		return bad("expected a day and a time on each side")
	}
	clock := func(hm string) (int, bool) {
		t, err := time.Parse("15:04", hm)
		if err != nil {
			return 0, false
		}
		return t.Hour()*60 + t.Minute(), true
	}
	startMin, ok1 := clock(fromF[1])
	endMin, ok2 := clock(toF[len(toF)-1])
	if !ok1 || !ok2 {
		return bad("times must be HH:MM")
	}
	if fromF[0] == "daily" {
		if len(toF) != 1 {
			return bad("a daily window ends with a time only")
		}
		w.daily, w.start, w.end = true, startMin, endMin
		if w.end <= w.start {
			w.end += minutesPerDay
		}
		return w, nil
	}
	startDay, ok := weekdays[fromF[0][:min(3, len(fromF[0]))]]
	if !ok {
		return bad("unknown day " + fromF[0])
	}
	endDay := startDay
	if len(toF) == 2 {
		if endDay, ok = weekdays[toF[0][:min(3, len(toF[0]))]]; !ok {
			return bad("unknown day " + toF[0])
		}
	}
	w.start = int(startDay)*minutesPerDay + startMin
	w.end = int(endDay)*minutesPerDay + endMin
	if w.end <= w.start {
		w.end += minutesPerWeek
	}
	return w, nil
}

// open reports whether t falls in the window.
func (w Window) open(t time.Time) bool {
	t = t.In(w.loc)
	period, m := minutesPerWeek, int(t.Weekday())*minutesPerDay+t.Hour()*60+t.Minute()
	if w.daily {
		period, m = minutesPerDay, t.Hour()*60+t.Minute()
	}
	for _, x := range []int{m, m + period} { // a window may wrap past the period's end
		if x >= w.start && x < w.end {
			return true
		}
	}
	return false
}

// NextStart returns t if it falls in one of the windows, else when the next one opens.
// No windows means always open.
func NextStart(ws []Window, t time.Time) time.Time {
	if len(ws) == 0 {
		return t
	}
	// Minute steps over one week are cheap (≤ 10,080 checks) and obviously right.
	at := t
	for range minutesPerWeek + 1 {
		for _, w := range ws {
			if w.open(at) {
				if at.Equal(t) {
					return t
				}
				return at.Truncate(time.Minute)
			}
		}
		at = at.Add(time.Minute).Truncate(time.Minute)
	}
	return t
}
