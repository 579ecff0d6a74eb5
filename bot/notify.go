package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
)

// sendDMs sends each approver of request id (groups' members included, the requester
// left out) a direct message with the request and its buttons, and records where, so
// that later edits of the channel message reach it too. An approver whose DM cannot be
// sent still has the channel message; the failure is logged, not shown to the requester.
func (b *Bot) sendDMs(ctx context.Context, id string) {
	log := b.log.With("request_id", id)
	users, err := b.svc.ApproverUsers(ctx)
	if err != nil {
		log.Warn("some approvers get no DM: their group is not known", "err", err)
	}
	for _, u := range users {
		r, err := b.svc.Get(ctx, id)
		if err != nil {
			log.Error("read request for DMs", "err", err)
			return
		}
		if r.State != approvals.StatePending {
			return // decided meanwhile: nobody needs to be asked any more
		}
		if u == r.Requester {
			continue
		}
		if hasDM(r, u) {
			continue
		}
		ch, err := b.slack.openDM(ctx, u)
		if err != nil {
			log.Warn("open DM with approver", "user", u, "err", err)
			continue
		}
		ts, err := b.slack.post(ctx, ch, "", b.requestMessage(r))
		if err != nil {
			log.Warn("DM approver", "user", u, "err", err)
			continue
		}
		stored, err := b.svc.RecordDM(ctx, id, approvals.DirectMessage{User: u, Channel: ch, TS: ts})
		if err != nil && !errors.Is(err, approvals.ErrUnchanged) {
			log.Error("record approver DM", "user", u, "err", err)
			continue
		}
		if stored != nil && stored.State != approvals.StatePending {
			// Decided between the read and the post: the DM must not offer buttons.
			b.syncDMs(ctx, stored)
		}
	}
}

func hasDM(r *approvals.Request, user string) bool {
	for _, d := range r.DMs {
		if d.User == user {
			return true
		}
	}
	return false
}

// syncDMs edits every approver's DM of r to show what the channel message shows, so a
// decision made in one place is seen in all.
func (b *Bot) syncDMs(ctx context.Context, r *approvals.Request) {
	if r == nil || len(r.DMs) == 0 {
		return
	}
	for _, d := range r.DMs {
		// Within the edit budget like every other edit: at once if it has room, else put
		// off and sent with the request's state changes, before any progress.
		b.show(ctx, r, d.TS, true)
	}
}

// inOwnDM reports whether who clicked in the DM xvmbot sent them for request r: a
// decision there is as good as one on the channel message.
func (b *Bot) inOwnDM(ctx context.Context, r *approvals.Request, who invocation) bool {
	if d := r.DM(who.Channel); d != nil {
		return d.User == who.User
	}
	if r.Notify != approvals.NotifyDM || who.User == "" {
		return false
	}
	// Clicked in the moment between the DM's post and its record: the channel is the
	// person's own DM with the app if Slack names it so (conversations.open answers the
	// same channel for the same person every time).
	ch, err := b.slack.openDM(ctx, who.User)
	return err == nil && ch != "" && ch == who.Channel
}

// remind posts the reminder request r owes now in its thread, mentioning its approvers
// (or, when they were told by DM, in each DM too). Claiming it first makes it once only,
// across restarts and replicas.
func (b *Bot) remind(ctx context.Context, r *approvals.Request) {
	if r.MessageTS == "" {
		return
	}
	claimed, before, err := b.svc.ClaimReminder(ctx, r.ID)
	if err != nil {
		if !errors.Is(err, approvals.ErrUnchanged) {
			b.log.Error("claim reminder", "request_id", r.ID, "err", err)
		}
		return
	}
	msg := asMessage(RenderReminder(claimed))
	if _, err := b.slack.post(ctx, claimed.Channel, claimed.MessageTS, msg); err != nil {
		b.log.Error("post reminder", "request_id", r.ID, "err", err)
	}
	for _, d := range claimed.DMs {
		if _, err := b.slack.post(ctx, d.Channel, d.TS, msg); err != nil {
			b.log.Warn("post reminder in approver DM", "request_id", r.ID, "user", d.User, "err", err)
		}
	}
	b.log.Info("approvers reminded", "request_id", r.ID, "before_expiry", before)
}

// sweepReminders posts the reminders that came due.
func (b *Bot) sweepReminders(ctx context.Context) {
	due, err := b.svc.RemindersDue(ctx)
	if err != nil {
		b.log.Error("reminder sweep", "err", err)
		return
	}
	for _, r := range due {
		b.remind(ctx, r)
		if ctx.Err() != nil {
			return
		}
	}
}

// RenderReminder renders the reminder posted in a pending request's thread: who is
// waited on, how many approvals are missing, and when it expires (in each reader's zone).
func RenderReminder(r *approvals.Request) (text string, blocks []slack.Block) {
	who := "Approvers"
	if mentionsApprovers(r) {
		who = approverMentions(r.AskedOf)
	}
	missing := max(r.Quorum, 1) - len(r.Approvals)
	body := fmt.Sprintf("⏰ %s: request %s still waits for %d more %s and expires %s. Approve or reject it on the message above.",
		who, esc(r.ID), missing, plural(missing, "approval"), clock(r.ExpiresAt))
	text = stripMrkdwn(body)
	return text, []slack.Block{slack.NewSectionBlock(mrkdwn(body), nil, nil)}
}
