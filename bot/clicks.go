package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// onInteraction handles an interaction up to its ack and returns the ack's payload (nil:
// an empty ack). Clicks on messages answer after the ack (Slack ignores the body of a
// block_actions ack); option requests and modal submissions are answered in the ack
// itself. The payload only says which request and which button: who may do what is
// decided by the approvals service against the stored record.
func (b *Bot) onInteraction(cb slack.InteractionCallback) any {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if cb.View.CallbackID == callbackWizard {
			b.onWizardAction(cb)
			return nil
		}
		if cb.View.CallbackID == callbackReview {
			b.onReviewBack(cb)
			return nil
		}
		b.onClick(cb, nil)
	case slack.InteractionTypeBlockSuggestion:
		return b.onSuggestion(cb)
	case slack.InteractionTypeViewSubmission:
		return b.onViewSubmission(cb)
	case slack.InteractionTypeShortcut:
		b.onShortcut(cb)
	default:
		b.log.Debug("interaction ignored", "type", cb.Type)
	}
	return nil
}

// onClickDelivery is onInteraction for a click on a message or in a modal; replayed says,
// after the ack, whether another delivery of the click was handled already.
func (b *Bot) onClickDelivery(cb slack.InteractionCallback, replayed func(ctx context.Context) bool) {
	if cb.View.CallbackID == callbackWizard {
		b.onWizardAction(cb) // (only the modal's view changes)
		return
	}
	if cb.View.CallbackID == callbackReview {
		b.onReviewBack(cb)
		return
	}
	if b.onStartClick(cb) || b.onShareClick(cb) {
		return
	}
	b.onClick(cb, replayed)
}

// onClick handles the buttons of a request message. A click is one action: that is what
// Slack sends when a person presses a button. A payload that carries more was not made by
// a click; its first request button is handled and the rest are only logged, so that one
// delivery can never cost more than one decision.
//
// replayed (nil: never) is asked after the ack, before the click's work: a click that
// another delivery already handled does nothing more (an approval is decided in the ack,
// and counted once by the record whatever the deliveries).
func (b *Bot) onClick(cb slack.InteractionCallback, replayed func(ctx context.Context) bool) {
	who := invocation{User: cb.User.ID, Channel: cb.Channel.ID, TriggerID: cb.TriggerID, ResponseURL: cb.ResponseURL,
		MessageTS: cb.Container.MessageTs}
	if who.Channel == "" {
		who.Channel = cb.Container.ChannelID
	}
	actions := cb.ActionCallback.BlockActions
	i := slices.IndexFunc(actions, func(a *slack.BlockAction) bool {
		switch a.ActionID {
		case ActionApprove, ActionReject, ActionCancel, ActionRetry:
			return true
		}
		return false
	})
	if len(actions) > 1 {
		b.log.Warn("click payload with more than one action: only the first request button is handled",
			"user", who.User, "actions", len(actions), "handled", i >= 0)
	}
	if i < 0 {
		b.log.Debug("click without a request button ignored", "user", who.User, "actions", len(actions))
		return
	}
	a := actions[i]
	id := strings.TrimSpace(a.Value)
	home := fromHome(cb)
	if home {
		who = b.homeInvocation(who, id)
	}
	// The place in the queue is taken before anything is decided: a click whose work
	// cannot be queued is refused whole and the request stays as it was.
	slot, err := b.reserve(a.ActionID)
	if err != nil {
		b.refuseClick(a.ActionID, id, who, err)
		return
	}
	var (
		fn       func(ctx context.Context)
		approved bool // this click completed the approval: its work queues the jobs
	)
	switch a.ActionID {
	case ActionApprove:
		// The decision is stored before the click is acknowledged, so a bot that dies
		// right after the ack cannot lose an approval the approver saw go through;
		// what follows (messages, queueing) resumes after a restart.
		fn, approved = b.decideApproval(id, who)
	case ActionReject:
		fn = func(ctx context.Context) { b.askRejectReason(ctx, id, who) }
	case ActionCancel:
		fn = func(ctx context.Context) { b.cancel(ctx, id, who) }
	case ActionRetry:
		fn = func(ctx context.Context) { b.retry(ctx, id, who) }
	}
	if home {
		// The tab shows the decision once it is made.
		decide := fn
		fn = func(ctx context.Context) { decide(ctx); b.publishHome(ctx, who.User) }
	}
	work := fn
	switch {
	case replayed != nil && approved:
		// Exactly one click completes an approval (the record's compare-and-swap decides),
		// so whatever another delivery of it did, this one's jobs must be queued: they are,
		// while the shared log records the delivery, which a replay then finds handled.
		work = func(ctx context.Context) {
			var logging sync.WaitGroup
			logging.Go(func() { replayed(ctx) })
			defer logging.Wait()
			fn(ctx)
		}
	case replayed != nil:
		work = func(ctx context.Context) {
			if !replayed(ctx) {
				fn(ctx)
			}
		}
	}
	slot.submit(task{what: a.ActionID, fn: work})
}

// misplaced says why a decision on request id cannot come from where who is ("" if it
// can): a request is decided on its own message, in its own channel, which must be one
// where xvmbot takes requests. A click or dialog naming the request from anywhere else
// changes nothing. A request that cannot be read is left to the decision, which says so.
func (b *Bot) misplaced(ctx context.Context, id string, who invocation) string {
	// Where a request is decided is in its head: its VMs and jobs are not read here.
	r, err := b.svc.Head(ctx, id)
	if err == nil && b.inOwnDM(ctx, r, who) {
		return ""
	}
	if !b.channelAllowed(who.Channel) {
		return "xvmbot does not take requests or decisions in this channel: nothing was changed. Ask in one of: " + channelList(b.cfg.Channels) + "."
	}
	if err != nil || r.Channel == who.Channel {
		return ""
	}
	b.log.Warn("decision from another channel than the request's refused", "request_id", id, "user", who.User,
		"channel", who.Channel, "request_channel", r.Channel)
	return escf("Request %s is decided in <#%s>, on its own message: ", id, r.Channel) + "nothing was changed."
}

// refuseMisplaced tells the person why their decision changed nothing.
func (b *Bot) refuseMisplaced(ctx context.Context, who invocation, problem string) {
	b.m.approvals.WithLabelValues(decisionDenied).Inc()
	b.tell(ctx, who, notice(problem))
}

// refuseClick tells the person that their click changed nothing. Slack ignores the body of
// a block_actions ack, so the answer is an ephemeral message sent on the notices pool.
func (b *Bot) refuseClick(actionID, id string, who invocation, err error) {
	b.log.Warn("click refused", "action_id", actionID, "request_id", id, "user", who.User, "err", err)
	rid := escapeText(id)
	var outcome string
	switch actionID {
	case ActionApprove:
		outcome = fmt.Sprintf("Your approval of %s was *not* counted: the request is still pending.", rid)
	case ActionReject:
		outcome = fmt.Sprintf("Your rejection of %s was *not* recorded: the request is still pending.", rid)
	case ActionCancel:
		outcome = fmt.Sprintf("%s was *not* cancelled.", rid)
	case ActionRetry:
		outcome = fmt.Sprintf("The failed VMs of %s were *not* asked again.", rid)
	}
	b.tellLater(who, refusalText(err, outcome))
}

// onViewSubmission routes a modal's submission by its callback id.
func (b *Bot) onViewSubmission(cb slack.InteractionCallback) any {
	switch cb.View.CallbackID {
	case callbackReject:
		return b.onRejectSubmission(cb)
	case callbackWizard:
		return b.onWizardSubmission(cb)
	case callbackReview:
		return b.onReviewSubmission(cb)
	}
	b.log.Debug("view submission ignored", "callback_id", cb.View.CallbackID)
	return nil
}

// approve counts one approval; the click that completes the quorum queues the jobs.
func (b *Bot) approve(ctx context.Context, id string, who invocation) {
	if problem := b.misplaced(ctx, id, who); problem != "" {
		b.refuseMisplaced(ctx, who, problem)
		return
	}
	r, won, err := b.svc.Approve(ctx, id, who.User)
	b.afterApproval(ctx, id, who, r, won, err)
}

// decideApproval counts an approval now (bounded: Slack waits 3 s for the ack) and returns
// the rest of the work, and whether this click completed the approval; if the store is too
// slow, the whole approval runs after the ack.
func (b *Bot) decideApproval(id string, who invocation) (func(context.Context), bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if problem := b.misplaced(ctx, id, who); problem != "" {
		return func(ctx context.Context) { b.refuseMisplaced(ctx, who, problem) }, false
	}
	r, won, err := b.svc.Approve(ctx, id, who.User)
	if err != nil && ctx.Err() != nil {
		return func(ctx context.Context) { b.approve(ctx, id, who) }, false
	}
	return func(ctx context.Context) { b.afterApproval(ctx, id, who, r, won, err) }, won && err == nil
}

// afterApproval tells people what an approval decided and queues the jobs of the one
// that completed the quorum.
func (b *Bot) afterApproval(ctx context.Context, id string, who invocation, r *approvals.Request, won bool, err error) {
	log := b.log.With("request_id", id, "user", who.User)
	if err != nil {
		b.m.approvals.WithLabelValues(decisionOf(err)).Inc()
		log.Info("approval refused", "err", err)
		if errors.Is(err, approvals.ErrExpired) || (r != nil && r.State == approvals.StateExpired) {
			// Whoever discovered the expiry (this click, an earlier one, the sweep) the
			// message must stop offering buttons.
			b.refreshParent(ctx, r)
		}
		b.tell(ctx, who, notice(b.decisionProblem("approve", id, r, err)))
		return
	}
	b.m.approvals.WithLabelValues(decisionApproved).Inc()
	r = b.adoptMessage(ctx, r, who)
	if !won {
		log.Info("approval counted", "approvals", len(r.Approvals), "quorum", r.Quorum)
		b.refreshParent(ctx, r)
		return
	}
	log.Info("request approved", "approvers", strings.Join(r.Approvers(), ","))
	b.queue(ctx, r)
}

// queue publishes one job per VM of an approved request, marks it queued and shows it.
// If publishing fails the request stays approved and the re-publish loop tries again;
// publishing twice is harmless (stable job ids, Nats-Msg-Id).
//
// The jobs are built from the request's signed approval, never from the record's other
// fields, and each carries its own signed grant: a record that was set to approved in the
// store, without an approval signed by a trusted key, queues nothing.
func (b *Bot) queue(ctx context.Context, r *approvals.Request) {
	log := b.log.With("request_id", r.ID)
	a, err := b.cfg.Keys.OpenApproval(r)
	if err != nil {
		b.reportForged(ctx, r, err)
		return
	}
	// Signed and published a part at a time: the jobs of a 5,000-VM request with their
	// grants are about 10 MB, held at once for nothing.
	now := b.now()
	for lo := 0; lo < len(a.VMs); lo += queuePart {
		jobs, err := b.jobsOfVMs(a, lo, min(lo+queuePart, len(a.VMs)), now)
		if err != nil {
			b.reportForged(ctx, r, err)
			return
		}
		for _, j := range jobs {
			if err := b.jobs.PublishJob(ctx, j); err != nil {
				log.Error("publish job; will retry", "job_id", j.ID, "err", err)
				b.refreshParent(ctx, r)
				return
			}
		}
	}
	// Events of these jobs may already be arriving: take the request's lock so the message
	// is never rendered from a record older than what HandleEvent showed.
	unlock := b.locks.lock(r.ID)
	defer unlock()
	queued, err := b.svc.MarkQueued(ctx, r.ID)
	switch {
	case errors.Is(err, approvals.ErrUnchanged): // queued by a re-publish, or running already
	case err != nil:
		log.Error("mark request queued", "err", err)
	default:
		log.Info("request queued", "jobs", len(queued.Jobs))
	}
	if queued != nil {
		r = queued
	}
	b.refreshParent(ctx, r)
}

// adoptMessage covers a click that lands between posting a request's message and storing
// its timestamp: the (signed) click names the message it came from, so the record learns
// it there and the decision is shown and its thread used, instead of being lost.
func (b *Bot) adoptMessage(ctx context.Context, r *approvals.Request, who invocation) *approvals.Request {
	if r == nil || r.MessageTS != "" || who.MessageTS == "" || who.Channel != r.Channel {
		return r
	}
	stored, err := b.svc.RecordMessage(ctx, r.ID, who.MessageTS)
	if stored != nil && err == nil || errors.Is(err, approvals.ErrUnchanged) {
		return stored
	}
	b.log.Warn("store request message ts from a click", "request_id", r.ID, "err", err)
	r.MessageTS = who.MessageTS
	return r
}

// jobsOf builds the work-queue messages of an approved request from its signed approval:
// one per VM, ids stable, each with its grant signed for that VM alone.
func (b *Bot) jobsOf(r *approvals.Request, now time.Time) ([]events.Job, error) {
	a, err := b.cfg.Keys.OpenApproval(r)
	if err != nil {
		return nil, err
	}
	return b.jobsOfVMs(a, 0, len(a.VMs), now)
}

// queuePart is how many jobs queue signs and publishes at a time.
const queuePart = 100

// jobsOfVMs is jobsOf for the approved VMs lo to hi (excluded) of a.
func (b *Bot) jobsOfVMs(a *approvals.Approval, lo, hi int, now time.Time) ([]events.Job, error) {
	part := *a
	part.VMs = a.VMs[lo:hi]
	seals, err := b.cfg.Signer.Grants(&part)
	if err != nil {
		return nil, fmt.Errorf("sign the jobs of %s: %w", a.RequestID, err)
	}
	out := make([]events.Job, 0, len(part.VMs))
	for i, vm := range part.VMs {
		seal, err := json.Marshal(seals[i])
		if err != nil {
			return nil, fmt.Errorf("encode the grant of %s: %w", vm.Job, err)
		}
		out = append(out, jobOf(a.Terms, vm, seal, now))
	}
	return out, nil
}

// jobOf is the work-queue message of one approved VM. A worker compares every field with
// the grant the message carries: what is written here must say what the grant says.
func jobOf(t approvals.Terms, vm approvals.ApprovedVM, grant []byte, now time.Time) events.Job {
	return events.Job{
		V:           events.SchemaVersion,
		ID:          vm.Job,
		RequestID:   t.RequestID,
		Direction:   string(t.Direction),
		VM:          vm.Name,
		SourceVC:    t.Source.Name,
		TargetVC:    t.Target.Name,
		Placement:   t.Placement.Clone(),
		RequestedBy: t.RequestedBy,
		ApprovedBy:  slices.Clone(t.Approvers),
		QueuedAt:    now,
		Approval:    grant,
	}
}

// reportForged says, once per request and process, that a record marked approved carries
// no approval the bot can verify: nothing of it is queued, and people must hear why.
func (b *Bot) reportForged(ctx context.Context, r *approvals.Request, err error) {
	if !b.said.first(r.ID) {
		return
	}
	b.m.approvals.WithLabelValues(decisionUnverified).Inc()
	b.log.Warn("request marked approved without a valid signed approval: nothing queued", "request_id", r.ID,
		"reason", approvals.ReasonOf(err), "err", err)
	if r.MessageTS == "" {
		return
	}
	text := fmt.Sprintf("⛔ %s is marked approved, but it carries no approval xvmbot can verify (%s): nothing was queued "+
		"and nothing will move. Its record was changed outside xvmbot: tell whoever runs xvmbot and its NATS server.",
		escapeText(r.ID), escapeText(refusalWords(err)))
	if _, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(text, nil)); err != nil {
		b.log.Error("post forged-approval notice", "request_id", r.ID, "err", err)
	}
}

// requestMessage renders a request's summary as it stands now; a record that claims an
// approval it cannot show is rendered as not verified.
func (b *Bot) requestMessage(r *approvals.Request) message {
	if err := b.verifyApproval(r); err != nil {
		return asMessage(RenderUnverified(r, refusalWords(err)))
	}
	now := b.now()
	return asMessage(RenderRequest(changeWindows(b.cfg.Windows).current(r, now), now))
}

// verifyApproval checks a record that says it was approved against its signed approval:
// nil for a record that makes no such claim, or whose approval a trusted key signed.
func (b *Bot) verifyApproval(r *approvals.Request) error {
	switch r.State {
	case approvals.StatePending, approvals.StateRejected, approvals.StateExpired:
		return nil
	case approvals.StateCancelled:
		if len(r.Approvals) < max(r.Quorum, 1) {
			return nil // withdrawn before anyone approved it
		}
	}
	_, err := b.cfg.Keys.OpenApproval(r)
	return err
}

// refusalWords is the detail of a refusal, or the error itself.
func refusalWords(err error) string {
	var rf *approvals.Refusal
	if errors.As(err, &rf) {
		return rf.Detail
	}
	return err.Error()
}

func (b *Bot) reject(ctx context.Context, id string, who invocation, reason string) {
	r, err := b.svc.Reject(ctx, id, who.User, reason)
	if err != nil {
		b.m.approvals.WithLabelValues(decisionOf(err)).Inc()
		b.log.Info("rejection refused", "request_id", id, "user", who.User, "err", err)
		b.tell(ctx, who, notice(b.decisionProblem("reject", id, r, err)))
		return
	}
	b.m.approvals.WithLabelValues(decisionRejected).Inc()
	b.log.Info("request rejected", "request_id", id, "user", who.User)
	b.showRejection(ctx, r, who)
}

func (b *Bot) cancel(ctx context.Context, id string, who invocation) {
	if problem := b.misplaced(ctx, id, who); problem != "" {
		b.refuseMisplaced(ctx, who, problem)
		return
	}
	r, err := b.svc.Cancel(ctx, id, who.User, "")
	if err != nil {
		b.m.approvals.WithLabelValues(decisionOf(err)).Inc()
		b.log.Info("cancel refused", "request_id", id, "user", who.User, "err", err)
		b.tell(ctx, who, notice(b.decisionProblem("cancel", id, r, err)))
		return
	}
	b.m.approvals.WithLabelValues(decisionCancelled).Inc()
	b.log.Info("request cancelled", "request_id", id, "user", who.User)
	b.stopJobs(ctx, r, who.User)
	b.refreshParent(ctx, b.adoptMessage(ctx, r, who))
}

// stopJobs makes a cancellation real where the work happens: every job of the request
// that has not ended is marked on the bus, so no worker starts it, and a running one has
// its vCenter task cancelled. Jobs of a request that was never approved were never
// published and need nothing.
func (b *Bot) stopJobs(ctx context.Context, r *approvals.Request, by string) {
	if len(r.Approvals) < max(r.Quorum, 1) {
		return
	}
	for _, j := range r.Jobs {
		if j.State == approvals.StateSucceeded || j.State == approvals.StateFailed {
			continue
		}
		state, err := b.jobs.CancelJob(ctx, j.ID, by)
		if err != nil {
			b.log.Error("cancel job", "request_id", r.ID, "job_id", j.ID, "err", err)
			continue
		}
		b.log.Info("job cancel requested", "request_id", r.ID, "job_id", j.ID, "state", state)
	}
}

// decisionOf is the metric label of a refused decision.
func decisionOf(err error) string {
	switch {
	case errors.Is(err, approvals.ErrAlreadyDecided), errors.Is(err, approvals.ErrAlreadyCounted):
		return decisionDuplicate
	case errors.Is(err, approvals.ErrExpired):
		return decisionExpired
	}
	return decisionDenied
}

// decisionProblem says in plain words why a decision was not taken. r is the record as
// the service last read it (may be nil).
func (b *Bot) decisionProblem(verb, id string, r *approvals.Request, err error) string {
	id = escapeText(id) // from a button value or a typed argument
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		return fmt.Sprintf("There is no request %s.", id)
	case errors.Is(err, approvals.ErrNotUser):
		return fmt.Sprintf("Only Slack users (IDs starting with U or W) can %s a request: nothing was changed on %s.", verb, id)
	case errors.Is(err, approvals.ErrGroupUnavailable):
		return fmt.Sprintf("xvmbot cannot check the members of the approver groups right now (Slack's usergroups.users.list does not answer), "+
			"and you are not an approver by name, so you cannot %s %s yet: nothing was changed. Try again in a few minutes; "+
			"approvers listed by name can still decide. Approvers: %s.", verb, id, b.approverList())
	case errors.Is(err, approvals.ErrNotApprover):
		return fmt.Sprintf("You are not an approver, so you cannot %s %s. Approvers: %s.", verb, id, b.approverList())
	case errors.Is(err, approvals.ErrSelfApproval):
		return fmt.Sprintf("You asked for %s, so you cannot approve it yourself: another approver must.", id)
	case errors.Is(err, approvals.ErrNoIdentity):
		return fmt.Sprintf("%s cannot be approved: it does not record which VM objects it moves (it was made by an older xvmbot, "+
			"or a VM was not found). Cancel it and ask again.", id)
	case errors.Is(err, approvals.ErrNoSigner):
		return fmt.Sprintf("%s was not approved: xvmbot has no approval signing key configured, so no approval can be made. "+
			"Tell whoever runs xvmbot (its log says what to set).", id)
	case errors.Is(err, approvals.ErrBlocked):
		return fmt.Sprintf("%s cannot be approved: its pre-flight checks found a blocker (see the request). Fix it, run `/xvm check`, and ask again.", id)
	case errors.Is(err, approvals.ErrNotAllowed):
		return fmt.Sprintf("Only the requester or an approver can %s %s.", verb, id)
	case errors.Is(err, approvals.ErrAlreadyCounted):
		if r != nil {
			return fmt.Sprintf("Your approval of %s is already counted (%d of %d).", id, len(r.Approvals), max(r.Quorum, 1))
		}
		return fmt.Sprintf("Your approval of %s is already counted.", id)
	case errors.Is(err, approvals.ErrExpired):
		return fmt.Sprintf("%s has expired: nothing was approved. Ask again with a new command.", id)
	case errors.Is(err, approvals.ErrAlreadyDecided), errors.Is(err, approvals.ErrTransition):
		return fmt.Sprintf("%s was %s.", id, decidedBy(r))
	}
	return fmt.Sprintf("Could not %s %s: %s. Try again in a moment.", verb, id, escapeText(err.Error()))
}

// decidedBy describes how a request was decided, e.g. "already approved by <@U1>".
func decidedBy(r *approvals.Request) string {
	if r == nil {
		return "already decided"
	}
	switch r.State {
	case approvals.StateRejected:
		if r.Rejection != nil {
			return "already rejected by <@" + r.Rejection.User + ">"
		}
	case approvals.StateCancelled:
		if r.Cancellation != nil {
			return "already cancelled by <@" + r.Cancellation.User + ">"
		}
	case approvals.StateExpired:
		return "already expired"
	case approvals.StateApproved, approvals.StateQueued, approvals.StateRunning, approvals.StateSucceeded, approvals.StateFailed:
		return "already approved by " + mentionList(r.Approvers()) + " (now " + string(r.State) + ")"
	}
	return "already " + string(r.State)
}

func (b *Bot) approverList() string {
	const show = 8
	var out []string
	approvers := b.svc.Policy().Approvers
	for _, a := range approvers[:min(len(approvers), show)] {
		if approvals.IsGroupID(a) {
			out = append(out, "<!subteam^"+a+">")
		} else {
			out = append(out, "<@"+a+">")
		}
	}
	if len(out) == 0 {
		return "none configured"
	}
	if len(approvers) > show {
		out = append(out, fmt.Sprintf("and %d more", len(approvers)-show))
	}
	return strings.Join(out, ", ")
}

func mentionList(users []string) string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = "<@" + u + ">"
	}
	return strings.Join(out, ", ")
}
