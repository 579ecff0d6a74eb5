package bot

import (
	"context"
	"sync"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// A large request's table and message show the whole request: every job's state, its
// failures, its VMs and findings. Read whole, a request kept in parts is its head, its
// chunks and one key per job that started (5,000 for a datacenter exit), so reading it
// for each edit cost the bot work that grew with the request, several times a second, and
// a wave of N moves O(N²): at 5,000 VMs the bot fell minutes behind its wave
// (BENCHMARKS.md, "One request of 5,000 VMs, end to end on a stock NATS").
//
// So the bot keeps a view of each large request it shows while it is in flight: the
// whole request read once, then kept current by what each event's report returns (the
// job as stored, and the head: the request's state and its tally of the jobs) and by
// reading again, one by one, the jobs the head's tally says started or ended elsewhere
// (another replica handled their events: approvals.Service.CatchUp). A running job's
// percentage reported to another replica is not in the tally, so the view is read whole
// again at most every viewRereadEvery; and the request's end (its last table, its message,
// the final reply) is always shown from a whole read. Views are short-lived: a request's
// view is dropped when it ends, when unused for viewIdle, and the least used when the views
// hold more than maxViewVMs VMs between them.

const (
	viewRereadEvery = 30 * time.Second
	viewIdle        = 5 * time.Minute
	// maxViewVMs bounds the memory the views take by the VMs they hold: as many as four
	// requests of the default limits.max_vms_per_request. Many teams' smaller waves at
	// once each keep their view; a count of views instead would have the fifth wave's
	// views take turns, each event of an evicted one reading its request whole again.
	// The view just read is kept whatever its size.
	maxViewVMs = 4 * DefaultMaxVMsPerRequest
	// catchUpMost is how many jobs a view reads one by one to catch up; beyond that one
	// whole read is cheaper.
	catchUpMost = 256
)

// requestViews are the views of the large requests in flight, by request id. The map is
// guarded by mu; a view's request is read and changed only under its request's lock
// (Bot.locks), as every event of it and every edit of its messages is.
type requestViews struct {
	mu   sync.Mutex
	byID map[string]*requestView
}

type requestView struct {
	r    *approvals.Request // whole
	read time.Time          // when r was last read whole
	used time.Time
}

func newRequestViews() *requestViews { return &requestViews{byID: map[string]*requestView{}} }

// get returns the view of request id, if any, and marks it used at now.
func (v *requestViews) get(id string, now time.Time) *requestView {
	v.mu.Lock()
	defer v.mu.Unlock()
	w := v.byID[id]
	if w != nil {
		w.used = now
	}
	return w
}

// put keeps r, read whole at now, as the view of its request, and drops the views unused
// for viewIdle and the least used while the others hold more than maxViewVMs VMs.
func (v *requestViews) put(r *approvals.Request, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.byID[r.ID] = &requestView{r: r, read: now, used: now}
	vms := 0
	for id, w := range v.byID {
		if now.Sub(w.used) >= viewIdle {
			delete(v.byID, id)
			continue
		}
		vms += len(w.r.VMs)
	}
	for vms > maxViewVMs && len(v.byID) > 1 {
		var oldest string
		for id, w := range v.byID {
			if id != r.ID && (oldest == "" || w.used.Before(v.byID[oldest].used)) {
				oldest = id
			}
		}
		vms -= len(v.byID[oldest].r.VMs)
		delete(v.byID, oldest)
	}
}

// drop forgets the view of request id.
func (v *requestViews) drop(id string) {
	v.mu.Lock()
	delete(v.byID, id)
	v.mu.Unlock()
}

// note puts job j, as a report of this replica left it stored, in the view of request id,
// if there is one.
func (v *requestViews) note(id string, j *approvals.Job) {
	if j == nil {
		return
	}
	v.mu.Lock()
	w := v.byID[id]
	v.mu.Unlock()
	if w != nil {
		w.r.PutJob(*j)
	}
}

// size is how many views are kept.
func (v *requestViews) size() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.byID)
}

// shown returns the whole request of h, its head (or the request itself, if stored
// whole) as just read or returned by a report, to show in Slack: the view of a large
// request in flight, caught up with h, or else the request as read whole now. ok is false
// if the request could not be read whole: h itself is returned then. The caller holds the
// request's lock.
func (b *Bot) shown(ctx context.Context, h *approvals.Request) (r *approvals.Request, ok bool) {
	if h.Jobs != nil || h.Tally == nil {
		return h, true
	}
	if h.State.Final() || !b.tabled(h) {
		b.reqViews.drop(h.ID)
		return b.readWhole(ctx, h)
	}
	now := b.now()
	if w := b.reqViews.get(h.ID, now); w != nil && now.Sub(w.read) < viewRereadEvery {
		caught, err := b.svc.CatchUp(ctx, w.r, h, catchUpMost)
		if err != nil {
			b.log.Warn("catch up with the request; reading it whole", "request_id", h.ID, "err", err)
		}
		if caught {
			return w.r, true
		}
	}
	r, ok = b.readWhole(ctx, h)
	if ok {
		b.reqViews.put(r, now)
	}
	return r, ok
}

// shownOnce is shown, called at most once, when first needed; a request that cannot be
// read whole is shown as h.
func (b *Bot) shownOnce(ctx context.Context, h *approvals.Request) func() *approvals.Request {
	var r *approvals.Request
	return func() *approvals.Request {
		if r == nil {
			r, _ = b.shown(ctx, h)
		}
		return r
	}
}
