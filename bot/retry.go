package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/xvmbot/xvmbot/approvals"
)

// retry answers a click on "Retry failed VMs": an approver asks again for the VMs of an
// ended request that failed without moving. The jobs of the request's approval are over
// (a worker refuses a job that ended), so the retry is a new request — same direction,
// vCenters and placement, only those VMs, pre-flighted again — that needs approval like
// any other; the approver who asked cannot approve it alone unless self-approval is
// allowed. Anyone else's click changes nothing and is told why.
func (b *Bot) retry(ctx context.Context, id string, who invocation) {
	if problem := b.misplaced(ctx, id, who); problem != "" {
		b.refuseMisplaced(ctx, who, problem)
		return
	}
	log := b.log.With("request_id", id, "user", who.User)
	ok, err := b.svc.IsApprover(ctx, who.User)
	if !ok {
		if err == nil {
			err = approvals.ErrNotApprover
		}
		b.m.approvals.WithLabelValues(decisionDenied).Inc()
		log.Info("retry refused", "err", err)
		b.tell(ctx, who, notice(b.decisionProblem("retry the failed VMs of", id, nil, err)))
		return
	}
	r, err := b.svc.Get(ctx, id)
	if err != nil {
		b.tell(ctx, who, notice(lookupProblem(id, err)))
		return
	}
	mine, err := b.svc.ReserveRetry(ctx, id, who.User)
	var taken *approvals.RetryTakenError
	switch {
	case errors.Is(err, approvals.ErrNothingToRetry):
		b.tell(ctx, who, notice(escf("%s has no VM that failed without moving (it is %s): there is nothing to retry.", id, string(r.State))))
		return
	case errors.As(err, &taken) && taken.By.Reserved():
		b.tell(ctx, who, notice(escf("The failed VMs of %s are being asked again right now; see the channel in a moment.", id)))
		return
	case errors.As(err, &taken):
		b.tell(ctx, who, notice(escf("%s already asks again for the failed VMs of %s: see `/xvm status %s`.", taken.By.Request, id, taken.By.Request)))
		return
	case err != nil:
		b.tell(ctx, who, asMessage(RenderError(fmt.Sprintf("Could not ask again for the failed VMs of %s: %v. Try again in a moment.", id, err), "")))
		return
	}
	vms := r.RetryVMs()
	log.Info("retry of the failed VMs asked", "vms", len(vms))
	cmd := Command{Verb: string(r.Direction), Direction: r.Direction, VMs: vms, From: r.SourceVC, To: r.TargetVC,
		Placement: r.Placement.Clone(), RetryOf: r.ID}
	if outcome := b.planAndSubmit(ctx, cmd, cmd.From, cmd.To, who); outcome != outcomeSubmitted {
		if err := b.svc.ReleaseRetry(ctx, id, mine); err != nil {
			log.Error("release the retry", "err", err)
		}
		return
	}
	// The request's message stops offering the retry and names the one asked.
	unlock := b.locks.lock(id)
	defer unlock()
	if cur, err := b.svc.Get(ctx, id); err == nil {
		b.refreshParent(ctx, cur)
	}
}
