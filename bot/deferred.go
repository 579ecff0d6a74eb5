package bot

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// deferredEdits are a request's messages whose last edit was put off because the app's
// edit budget was spent (Config.EditsPerMinute).
type deferredEdits struct {
	since time.Time
	ts    map[string]struct{}
}

// show edits the message at ts (the request's message or one of its jobs' progress
// messages) to what r says now if the edit budget allows it; otherwise the edit is put off,
// and flushDeferred later shows the request as it is then. Nothing shown is lost: a job's
// final state reaches its message however busy Slack is, only later. The caller holds the
// request's lock.
func (b *Bot) show(ctx context.Context, r *approvals.Request, ts string) {
	msg, keep, ok := b.messageAt(r, ts)
	if !ok {
		return
	}
	sent, err := b.slack.tryUpdate(ctx, r.Channel, ts, msg, keep)
	if !sent {
		b.deferEdit(r.ID, ts)
		return
	}
	b.undefer(r.ID, ts)
	if err != nil {
		b.log.Error("edit message", "request_id", r.ID, "ts", ts, "err", err)
	}
}

// keepForEnds is how many edits a progress edit leaves in the budget, so that the end of
// a job is shown at once even while a wave's percentages spend it.
const keepForEnds = 2

// messageAt renders the message of r at ts (the request's own or a job's progress message)
// and says how many edits its sending must leave in the budget.
func (b *Bot) messageAt(r *approvals.Request, ts string) (msg message, keep int, ok bool) {
	if ts == "" {
		return message{}, 0, false
	}
	if ts == r.MessageTS {
		return asMessage(RenderRequest(r, b.now())), keepForEnds, true
	}
	for i := range r.Jobs {
		if j := &r.Jobs[i]; j.ThreadTS == ts {
			if j.State.Final() {
				keep = 0
			} else {
				keep = keepForEnds
			}
			return asMessage(RenderJobProgress(r, j)), keep, true
		}
	}
	return message{}, 0, false
}

func (b *Bot) deferEdit(request, ts string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.deferred[request]
	if d == nil {
		d = &deferredEdits{since: b.now(), ts: map[string]struct{}{}}
		b.deferred[request] = d
	}
	if _, ok := d.ts[ts]; !ok {
		d.ts[ts] = struct{}{}
		b.m.editsDeferred.Inc()
	}
}

func (b *Bot) undefer(request, ts string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := b.deferred[request]; d != nil {
		delete(d.ts, ts)
		if len(d.ts) == 0 {
			delete(b.deferred, request)
		}
	}
}

// Deferred is how many message edits are waiting for the edit budget.
func (b *Bot) Deferred() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, d := range b.deferred {
		n += len(d.ts)
	}
	return n
}

// flushDeferred sends the put-off edits, oldest request first, while the budget allows.
func (b *Bot) flushDeferred(ctx context.Context) {
	b.mu.Lock()
	ids := make([]string, 0, len(b.deferred))
	for id := range b.deferred {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y string) int { return b.deferred[x].since.Compare(b.deferred[y].since) })
	b.mu.Unlock()
	for _, id := range ids {
		if !b.flushRequest(ctx, id) {
			return
		}
	}
}

// flushRequest shows the deferred messages of one request as the request is now. It
// reports false when the budget ran out.
func (b *Bot) flushRequest(ctx context.Context, id string) bool {
	unlock := b.lock(id)
	defer unlock()
	b.mu.Lock()
	var tss []string
	if d := b.deferred[id]; d != nil {
		for ts := range d.ts {
			tss = append(tss, ts)
		}
	}
	b.mu.Unlock()
	if len(tss) == 0 {
		return true
	}
	r, err := b.svc.Get(ctx, id)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		for _, ts := range tss {
			b.undefer(id, ts)
		}
		return true
	case err != nil:
		b.log.Warn("read request for deferred edits", "request_id", id, "err", err)
		return true
	}
	// The request's own message first: it is what the channel sees.
	slices.SortFunc(tss, func(x, y string) int {
		switch {
		case x == r.MessageTS:
			return -1
		case y == r.MessageTS:
			return 1
		}
		return strings.Compare(x, y) // Slack timestamps of one epoch compare as strings
	})
	for _, ts := range tss {
		msg, keep, ok := b.messageAt(r, ts)
		if !ok {
			b.undefer(id, ts)
			continue
		}
		sent, err := b.slack.tryUpdate(ctx, r.Channel, ts, msg, keep)
		if !sent {
			if keep > 0 {
				continue // an end among the rest may still fit
			}
			return false
		}
		b.undefer(id, ts)
		if err != nil {
			b.log.Error("edit deferred message", "request_id", id, "ts", ts, "err", err)
		}
	}
	return true
}
