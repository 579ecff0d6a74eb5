package bot

import (
	"sync"
	"time"
)

// editThrottle spaces the edits of each progress message (and of a request's own
// message) at least every apart, and remembers which messages a running job's progress
// events would edit, so that a percentage nobody would see is not even stored.
type editThrottle struct {
	every time.Duration // negative: no throttling
	now   func() time.Time

	mu      sync.Mutex
	edited  map[string]time.Time  // message ts → its last edit
	running map[string]runningJob // job id → its messages, while it runs
}

// runningJob is what the bot knows of a job it has seen running: the messages a progress
// event would edit.
type runningJob struct{ threadTS, parentTS string }

func newEditThrottle(every time.Duration, now func() time.Time) *editThrottle {
	return &editThrottle{every: every, now: now, edited: map[string]time.Time{}, running: map[string]runningJob{}}
}

// due reports whether the message at ts may be edited now, and if so records the edit.
func (t *editThrottle) due(ts string) bool {
	if ts == "" {
		return false
	}
	if t.every < 0 {
		return true
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dueLocked(ts, now) {
		return false
	}
	t.edited[ts] = now
	return true
}

func (t *editThrottle) dueLocked(ts string, now time.Time) bool {
	last, ok := t.edited[ts]
	return !ok || now.Sub(last) >= t.every
}

// idle reports whether a progress event of job would change nothing the bot shows: the
// job is known to run, and neither its progress message nor the request message is due
// for an edit.
func (t *editThrottle) idle(job string) bool {
	if t.every < 0 {
		return false
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.running[job]
	return ok && k.threadTS != "" && k.parentTS != "" && !t.dueLocked(k.threadTS, now) && !t.dueLocked(k.parentTS, now)
}

// markEdited records an edit of the message at ts made now.
func (t *editThrottle) markEdited(ts string) {
	if ts == "" {
		return
	}
	now := t.now()
	t.mu.Lock()
	t.edited[ts] = now
	t.mu.Unlock()
}

// forget drops what is known of the message at ts: it will not be edited again.
func (t *editThrottle) forget(ts string) {
	t.mu.Lock()
	delete(t.edited, ts)
	t.mu.Unlock()
}

// started records the messages of a job that runs.
func (t *editThrottle) started(job string, k runningJob) {
	t.mu.Lock()
	t.running[job] = k
	t.mu.Unlock()
}

// ended forgets a job that no longer runs.
func (t *editThrottle) ended(job string) {
	t.mu.Lock()
	delete(t.running, job)
	t.mu.Unlock()
}
