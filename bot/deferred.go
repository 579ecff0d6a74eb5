package bot

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
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

// putOffEdits are the messages whose last edit was put off, by request, and the order in
// which they go out: a request whose own message changed state first, then the oldest.
type putOffEdits struct {
	now func() time.Time

	mu        sync.Mutex
	byRequest map[string]*putOff
}

// putOff are one request's messages whose last edit was put off.
type putOff struct {
	since  time.Time
	ts     map[string]struct{}
	urgent bool // the request's own message changed state
}

func newPutOffEdits(now func() time.Time) *putOffEdits {
	return &putOffEdits{now: now, byRequest: map[string]*putOff{}}
}

// add puts off the edit of the message at ts of request; urgent marks a change of the
// request's state. It reports false if that message was already waiting.
func (p *putOffEdits) add(request, ts string, urgent bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.byRequest[request]
	if d == nil {
		d = &putOff{since: p.now(), ts: map[string]struct{}{}}
		p.byRequest[request] = d
	}
	d.urgent = d.urgent || urgent
	if _, ok := d.ts[ts]; ok {
		return false
	}
	d.ts[ts] = struct{}{}
	return true
}

// remove takes the message at ts of request off the list: it was shown.
func (p *putOffEdits) remove(request, ts string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.byRequest[request]; d != nil {
		delete(d.ts, ts)
		if len(d.ts) == 0 {
			delete(p.byRequest, request)
		}
	}
}

// count is how many message edits are waiting.
func (p *putOffEdits) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, d := range p.byRequest {
		n += len(d.ts)
	}
	return n
}

// requests lists the requests with waiting edits in the order they go out: those whose
// state changed first, then the oldest.
func (p *putOffEdits) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.byRequest))
	for id := range p.byRequest {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y string) int {
		dx, dy := p.byRequest[x], p.byRequest[y]
		if dx.urgent != dy.urgent {
			if dx.urgent {
				return -1
			}
			return 1
		}
		return dx.since.Compare(dy.since)
	})
	return ids
}

// of returns the waiting messages of request and whether its own message changed state.
func (p *putOffEdits) of(request string) (tss []string, urgent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.byRequest[request]; d != nil {
		for ts := range d.ts {
			tss = append(tss, ts)
		}
		urgent = d.urgent
	}
	return tss, urgent
}

// calm records that request's change of state was shown.
func (p *putOffEdits) calm(request string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.byRequest[request]; d != nil {
		d.urgent = false
	}
}

// show edits the message at ts (the request's own or one of its jobs' progress messages)
// to what r says now if the edit budget has room, and puts it off otherwise. urgent marks
// a change of the request's state. The caller holds the request's lock if it renders from
// a record events may be changing.
func (b *Bot) show(ctx context.Context, r *approvals.Request, ts string, urgent bool) {
	render, channel, keep, ok := b.editOf(r, ts, urgent)
	if !ok {
		return
	}
	if !b.slack.canEdit(keep) {
		if b.putOff.add(r.ID, ts, urgent) {
			b.m.editsDeferred.Inc()
		}
		return
	}
	b.putOff.remove(r.ID, ts)
	if err := b.slack.edit(ctx, channel, ts, render()); err != nil {
		b.log.Error("edit message", "request_id", r.ID, "ts", ts, "err", err)
	}
}

// editOf finds the message of r at ts (false if r has none there): the channel it is in,
// how many edits sending it must leave in the budget, and render, which renders it once
// the budget has room. An approver's DM is the request's message in another channel.
func (b *Bot) editOf(r *approvals.Request, ts string, urgent bool) (render func() message, channel string, keep int, ok bool) {
	if ts == "" {
		return nil, "", 0, false
	}
	if ts == r.MessageTS {
		if !urgent {
			keep = keepForEnds
		}
		return func() message { return b.requestMessage(r) }, r.Channel, keep, true
	}
	for _, d := range r.DMs {
		if d.TS == ts {
			// A DM changes with the request's decision or state, which the approver
			// must see at once: like the channel message's urgent edits, it keeps nothing.
			return func() message { return b.requestMessage(r) }, d.Channel, 0, true
		}
	}
	if ts == r.TableTS {
		if !urgent && !r.State.Final() {
			keep = keepForEnds
		}
		return func() message { return asMessage(RenderTable(r, b.now())) }, r.Channel, keep, true
	}
	for i := range r.Jobs {
		if j := &r.Jobs[i]; j.ThreadTS == ts {
			if !j.State.Final() {
				keep = keepForEnds
			}
			return func() message { return asMessage(RenderJobProgress(r, j)) }, r.Channel, keep, true
		}
	}
	return nil, "", 0, false
}

// flushDeferred sends put-off edits while the budget has room: requests whose state
// changed first, then the oldest.
func (b *Bot) flushDeferred(ctx context.Context) {
	if !b.slack.hasRoom() {
		return
	}
	for _, id := range b.putOff.requests() {
		if !b.flushRequest(ctx, id) {
			return
		}
	}
}

// flushRequest shows the put-off messages of one request as the request is now. It
// reports false when the budget has no room left.
func (b *Bot) flushRequest(ctx context.Context, id string) bool {
	unlock := b.locks.lock(id)
	defer unlock()
	tss, urgent := b.putOff.of(id)
	if len(tss) == 0 {
		return true
	}
	// The head, then the request's view caught up with it (a whole read only without
	// one, or when the request ended): a flush runs every few hundred milliseconds while
	// edits wait for the budget.
	h, err := b.svc.Head(ctx, id)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		for _, ts := range tss {
			b.putOff.remove(id, ts)
		}
		return true
	case err != nil:
		b.log.Warn("read request for put-off edits", "request_id", id, "err", err)
		return true
	}
	r, ok := b.shown(ctx, h)
	if !ok {
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
		render, channel, keep, ok := b.editOf(r, ts, urgent)
		if !ok {
			b.putOff.remove(id, ts)
			continue
		}
		if !b.slack.canEdit(keep) {
			if keep > 0 {
				continue // an end among the rest may still fit
			}
			return false
		}
		b.putOff.remove(id, ts)
		if err := b.slack.edit(ctx, channel, ts, render()); err != nil {
			b.log.Error("edit put-off message", "request_id", id, "ts", ts, "err", err)
		}
	}
	if urgent {
		b.putOff.calm(id)
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
			unlock := b.locks.lock(r.ID)
			if cur, err := b.svc.Get(ctx, r.ID); err == nil && cur.FinalReplyDue {
				b.log.Info("posting a final reply the bot stopped before posting", "request_id", r.ID)
				b.postFinalReply(ctx, cur)
			}
			unlock()
		}
		if r.MessageTS == "" || r.State.Final() && now.Sub(r.EndedAt) > resyncWindow {
			continue
		}
		b.putOff.add(r.ID, r.MessageTS, false)
		n++
		if r.TableTS != "" {
			b.putOff.add(r.ID, r.TableTS, false)
			n++
		}
		for _, j := range r.Jobs {
			if j.ThreadTS != "" && j.State.Final() {
				b.putOff.add(r.ID, j.ThreadTS, false)
				n++
			}
		}
	}
	if n > 0 {
		b.log.Info("showing recent requests' messages again after start", "messages", n)
	}
}
