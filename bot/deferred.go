package bot

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// Slack allows an app about 50 message edits a minute (chat.update, Tier 3), and a wave's
// progress would ask for several times that; each 429 would stall whatever waits for it.
// So every edit of a request's messages is sent at once only if the app's edit budget
// (Config.EditsPerMinute) has room; otherwise it is put off, and the sender below shows
// the message later as the request is then. Nothing waits for the budget, and nothing
// shown is lost, only later. Put-off edits go out in this order: a request's own message
// whose state changed (approved, queued, ended: what people may do next), then the rest,
// oldest request first.

// keepForEnds is how many edits a progress edit leaves in the budget, so that the end of
// a job or a request is shown at once even while a wave's percentages spend it.
const keepForEnds = 2

// deferredEdits are a request's messages whose last edit was put off.
type deferredEdits struct {
	since  time.Time
	ts     map[string]struct{}
	urgent bool // the request's own message changed state
}

// show edits the message at ts (the request's own or one of its jobs' progress messages)
// to what r says now if the edit budget has room, and puts it off otherwise. urgent marks
// a change of the request's state. The caller holds the request's lock if it renders from
// a record events may be changing.
func (b *Bot) show(ctx context.Context, r *approvals.Request, ts string, urgent bool) {
	render, keep, ok := b.editOf(r, ts, urgent)
	if !ok {
		return
	}
	if !b.slack.canEdit(keep) {
		if b.deferEdit(r.ID, ts, urgent) {
			b.m.editsDeferred.Inc()
		}
		return
	}
	b.undefer(r.ID, ts)
	if err := b.slack.edit(ctx, r.Channel, ts, render()); err != nil {
		b.log.Error("edit message", "request_id", r.ID, "ts", ts, "err", err)
	}
}

// editOf finds the message of r at ts (false if r has none there) and says how many edits
// sending it must leave in the budget; render renders it, once the budget has room.
func (b *Bot) editOf(r *approvals.Request, ts string, urgent bool) (render func() message, keep int, ok bool) {
	if ts == "" {
		return nil, 0, false
	}
	if ts == r.MessageTS {
		if !urgent {
			keep = keepForEnds
		}
		return func() message { return b.requestMessage(r) }, keep, true
	}
	for i := range r.Jobs {
		if j := &r.Jobs[i]; j.ThreadTS == ts {
			if !j.State.Final() {
				keep = keepForEnds
			}
			return func() message { return asMessage(RenderJobProgress(r, j)) }, keep, true
		}
	}
	return nil, 0, false
}

func (b *Bot) deferEdit(request, ts string, urgent bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.deferred[request]
	if d == nil {
		d = &deferredEdits{since: b.now(), ts: map[string]struct{}{}}
		b.deferred[request] = d
	}
	d.urgent = d.urgent || urgent
	if _, ok := d.ts[ts]; ok {
		return false
	}
	d.ts[ts] = struct{}{}
	return true
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

// deferredCount is how many message edits are waiting for the edit budget.
func (b *Bot) deferredCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, d := range b.deferred {
		n += len(d.ts)
	}
	return n
}

// flushDeferred sends put-off edits while the budget has room: requests whose state
// changed first, then the oldest.
func (b *Bot) flushDeferred(ctx context.Context) {
	if !b.slack.hasRoom() {
		return
	}
	b.mu.Lock()
	ids := make([]string, 0, len(b.deferred))
	for id := range b.deferred {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y string) int {
		dx, dy := b.deferred[x], b.deferred[y]
		if dx.urgent != dy.urgent {
			if dx.urgent {
				return -1
			}
			return 1
		}
		return dx.since.Compare(dy.since)
	})
	b.mu.Unlock()
	for _, id := range ids {
		if !b.flushRequest(ctx, id) {
			return
		}
	}
}

// flushRequest shows the put-off messages of one request as the request is now. It
// reports false when the budget has no room left.
func (b *Bot) flushRequest(ctx context.Context, id string) bool {
	unlock := b.lock(id)
	defer unlock()
	b.mu.Lock()
	var tss []string
	urgent := false
	if d := b.deferred[id]; d != nil {
		for ts := range d.ts {
			tss = append(tss, ts)
		}
		urgent = d.urgent
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
		b.log.Warn("read request for put-off edits", "request_id", id, "err", err)
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
		render, keep, ok := b.editOf(r, ts, urgent)
		if !ok {
			b.undefer(id, ts)
			continue
		}
		if !b.slack.canEdit(keep) {
			if keep > 0 {
				continue // an end among the rest may still fit
			}
			return false
		}
		b.undefer(id, ts)
		if err := b.slack.edit(ctx, r.Channel, ts, render()); err != nil {
			b.log.Error("edit put-off message", "request_id", id, "ts", ts, "err", err)
		}
	}
	if urgent {
		b.mu.Lock()
		if d := b.deferred[id]; d != nil {
			d.urgent = false
		}
		b.mu.Unlock()
	}
	return true
}

// resyncWindow is how long after its end a request's messages are shown again when the
// bot starts.
const resyncWindow = 30 * time.Minute

// resyncMessages puts off an edit of the messages that may show less than their request
// knows: edits put off before the bot stopped lived only in its memory. When the bot
// starts, the request message of every request not yet ended or ended within resyncWindow,
// and the progress message of each of their jobs that ended, are shown again as they are,
// within the budget. A running job's message is shown again by its next progress event.
// A final reply the bot stopped before posting is posted now.
func (b *Bot) resyncMessages(ctx context.Context) {
	all, err := b.svc.Store().List(ctx)
	if err != nil {
		b.log.Warn("list requests to show again after start", "err", err)
		return
	}
	now, n := b.now(), 0
	for _, r := range all {
		if r.FinalReplyDue {
			unlock := b.lock(r.ID)
			if cur, err := b.svc.Get(ctx, r.ID); err == nil && cur.FinalReplyDue {
				b.log.Info("posting a final reply the bot stopped before posting", "request_id", r.ID)
				b.postFinalReply(ctx, cur)
			}
			unlock()
		}
		if r.MessageTS == "" || r.State.Final() && now.Sub(r.EndedAt) > resyncWindow {
			continue
		}
		b.deferEdit(r.ID, r.MessageTS, false)
		n++
		for _, j := range r.Jobs {
			if j.ThreadTS != "" && j.State.Final() {
				b.deferEdit(r.ID, j.ThreadTS, false)
				n++
			}
		}
	}
	if n > 0 {
		b.log.Info("showing recent requests' messages again after start", "messages", n)
	}
}
