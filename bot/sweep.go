package bot

import (
	"context"

	"github.com/xvmbot/xvmbot/approvals"
)

// sweepExpired expires pending requests past their deadline and takes the buttons off
// their messages, so nobody approves a stale plan.
func (b *Bot) sweepExpired(ctx context.Context) {
	expired, err := b.svc.ExpireDue(ctx)
	if err != nil {
		b.log.Error("expiry sweep", "err", err)
	}
	for _, r := range expired {
		b.m.approvals.WithLabelValues(decisionExpired).Inc()
		b.log.Info("request expired", "request_id", r.ID)
		b.refreshParent(ctx, r)
	}
	b.sweepReminders(ctx)
}

// republishApproved queues again the jobs of requests that were approved but never
// marked queued (the publish failed, or the process died in between).
func (b *Bot) republishApproved(ctx context.Context) {
	all, err := b.svc.ListHeads(ctx)
	if err != nil {
		b.log.Error("list requests for re-publish", "err", err)
		return
	}
	now := b.now()
	for _, r := range all {
		if r.State != approvals.StateApproved || now.Sub(r.DecidedAt) < republishAfter {
			continue
		}
		r = b.whole(ctx, r)
		b.log.Info("re-publishing jobs of approved request", "request_id", r.ID)
		b.queue(ctx, r)
		if ctx.Err() != nil {
			return
		}
	}
}
