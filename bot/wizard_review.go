package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
)

// The wizard's review page: submitting the wizard runs the pre-flight and turns the modal
// into the review the channel would show (the same rendering), with "Back" to the filled
// form and, unless it is a check or blocked, "Request approval" as its submit button,
// which posts the request as a typed command does. The choices travel in the review
// view's private_metadata, so that "Back" and "Request approval" need nothing else.
const (
	callbackReview = "xvm_wizard_review"
	actionWizBack  = "xvm_wizard_back"

	// reviewAckWait is how long a submission waits for the pre-flight before it answers
	// with a "checking…" page: Slack drops a view_submission ack after 3 seconds.
	reviewAckWait = 2200 * time.Millisecond
	maxMetadata   = 3000 // Slack's limit on private_metadata
)

// wizardChoices is what the review view carries: the wizard's state without what is
// asked again on the way back (the vCenters' versions and thumbprints).
func (ws wizardState) choices() string {
	ws.VCenters = nil
	b, _ := json.Marshal(ws)
	if len(b) > maxMetadata {
		// Too many VMs to carry: "Back" restores all but the VMs; the review still shows them.
		ws.VMs, ws.Networks, ws.NetTarget = nil, nil, nil
		b, _ = json.Marshal(ws)
	}
	return string(b)
}

func (b *Bot) choicesOf(v slack.View) wizardState {
	var ws wizardState
	_ = json.Unmarshal([]byte(v.PrivateMetadata), &ws)
	if ws.Direction != approvals.Import {
		ws.Direction = approvals.Migrate
	}
	ws.Home = b.planner.Home()
	if ws.NetTarget == nil {
		ws.NetTarget = map[string]string{}
	}
	return ws
}

// RenderWizardReview renders the review page of a wizard submission: the blocks of the
// review the channel shows (without its buttons), "Back", and "Request approval" when the
// request can be made. blocked says the pre-flight found blockers; r is nil while checking
// or when the pre-flight could not run (problem says why).
func RenderWizardReview(ws wizardState, r *approvals.Request, blocked bool, problem string, now time.Time) slack.ModalViewRequest {
	title := "Review"
	if ws.Check {
		title = "Pre-flight check"
	}
	var blocks []slack.Block
	switch {
	case r != nil:
		_, rb := RenderRequest(r, now)
		blocks = withoutButtons(message{Blocks: rb}).Blocks
		// The channel's header names a request or a check; this page is neither yet.
		blocks[0] = slack.NewHeaderBlock(plain(clipRunes(wizardReviewTitle(ws, r), 150)))
	case problem != "":
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":warning: "+escapeText(clipRunes(problem, 2800))), nil, nil))
	default:
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":hourglass_flowing_sand: Checking… the pre-flight is running; this page shows its findings when it is done."), nil, nil))
	}
	canRequest := r != nil && !blocked && !ws.Check
	switch {
	case blocked:
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn("Blocked: go *Back* to change the choices; nothing was requested.")))
	case r != nil && ws.Check:
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn("A check only: nothing was requested.")))
	case canRequest:
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn("*Request approval* posts this request in the channel for approval.")))
	}
	back := slack.NewButtonBlockElement(actionWizBack, "back", plain("Back"))
	blocks = append(blocks, slack.NewActionBlock("wizard_review_actions", back))
	v := slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackReview,
		Title:           plain(title),
		Close:           plain("Cancel"),
		PrivateMetadata: ws.choices(),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
	if canRequest {
		v.Submit = plain("Request approval")
	}
	return v
}

// wizardReviewTitle heads the review page: what is being reviewed, and that nothing has
// been asked for yet.
func wizardReviewTitle(ws wizardState, r *approvals.Request) string {
	what := fmt.Sprintf("cross vCenter %s of %d %s, %s → %s", r.Direction, len(r.VMs), plural(len(r.VMs), "VM"), r.SourceVC, r.TargetVC)
	if ws.Check {
		return "Pre-flight check of a " + what + " (nothing is requested)"
	}
	return "Review of a " + what + " (not requested yet)"
}

// reviewWizard runs the pre-flight of a valid wizard submission and answers with the
// review page, or with a "checking…" page that is updated once the pre-flight is done if
// it takes longer than Slack waits for the ack.
func (b *Bot) reviewWizard(cb slack.InteractionCallback, ws wizardState, cmd Command, src, dst string, started time.Time) any {
	who := invocation{User: cb.User.ID, Channel: ws.Channel}
	// A change of the view: wizard updates still queued are stale now, and so is this
	// review if "Back" is pressed before it is done.
	seq := b.views.changed(cb.View.ID)
	done := make(chan slack.ModalViewRequest, 1)
	var mu sync.Mutex
	late := false // the ack went out with the checking page: update the view instead
	err := b.spawn(workPlan, func(ctx context.Context) {
		v := b.wizardReview(ctx, ws, cmd, src, dst, who)
		mu.Lock()
		if !late {
			done <- v
			mu.Unlock()
			return
		}
		mu.Unlock()
		unlock := b.locks.lock("view:" + cb.View.ID)
		defer unlock()
		if !b.views.latest(cb.View.ID, seq) {
			return // the person went Back meanwhile
		}
		if err := b.slack.updateView(ctx, cb.View.ID, "", v); err != nil {
			b.log.Info("update wizard review", "user", who.User, "err", err)
		}
	})
	if err != nil {
		b.m.commands.WithLabelValues(verbLabel(cmd.Verb), refusalOutcome(err)).Inc()
		return viewErrors(map[string]string{wizVMs: refusalText(err, "Nothing was checked.")})
	}
	timer := time.NewTimer(max(reviewAckWait-time.Since(started), 0))
	defer timer.Stop()
	select {
	case v := <-done:
		return slack.NewUpdateViewSubmissionResponse(&v)
	case <-timer.C:
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case v := <-done:
		return slack.NewUpdateViewSubmissionResponse(&v)
	default:
	}
	late = true
	checking := RenderWizardReview(ws, nil, false, "", b.now())
	return slack.NewUpdateViewSubmissionResponse(&checking)
}

// wizardReview pre-flights the wizard's command and renders its review page, counting
// the command's outcome as a typed check would be counted (a request is counted when
// it is asked for).
func (b *Bot) wizardReview(ctx context.Context, ws wizardState, cmd Command, src, dst string, who invocation) slack.ModalViewRequest {
	ctx, cancel := context.WithTimeout(ctx, wizardPlanTimeout)
	defer cancel()
	plan, err := b.planner.Plan(ctx, moveSpec(cmd, src, dst))
	if err != nil {
		b.log.Warn("wizard pre-flight failed", "user", who.User, "err", err)
		b.m.commands.WithLabelValues(verbLabel(cmd.Verb), outcomeFailed).Inc()
		return RenderWizardReview(ws, nil, true, fmt.Sprintf("Could not check %s: %v", vmNamesText(cmd.VMs), err), b.now())
	}
	if n := len(plan.VMs); n > b.cfg.MaxVMsPerRequest {
		b.m.commands.WithLabelValues(verbLabel(cmd.Verb), outcomeTooLarge).Inc()
		return RenderWizardReview(ws, nil, true, b.tooManyVMs(n, "matches"), b.now())
	}
	r := requestOf(cmd, plan, src, dst, who)
	if f, ok := changeWindows(b.cfg.Windows).finding(dst, b.now()); ok {
		r.Review.Findings = append(r.Review.Findings, f)
	}
	switch {
	case plan.Blocked():
		b.m.commands.WithLabelValues(verbLabel(cmd.Verb), outcomeBlocked).Inc()
	case cmd.Check:
		b.m.commands.WithLabelValues(verbLabel(cmd.Verb), outcomeChecked).Inc()
	}
	return RenderWizardReview(ws, r, plan.Blocked(), "", b.now())
}

// onReviewBack turns the review page back into the wizard, every choice kept.
func (b *Bot) onReviewBack(cb slack.InteractionCallback) {
	view := cb.View
	ws := b.choicesOf(view)
	seq := b.views.changed(view.ID)
	if err := b.spawn(workWizardUpdate, func(ctx context.Context) {
		ictx, cancel := context.WithTimeout(ctx, wizardOpenTimeout)
		for _, in := range b.vcInfos.get(ictx, false) {
			ws.VCenters = append(ws.VCenters, in.ep)
		}
		cancel()
		unlock := b.locks.lock("view:" + view.ID)
		defer unlock()
		if !b.views.latest(view.ID, seq) {
			return
		}
		if err := b.slack.updateView(ctx, view.ID, "", RenderWizard(ws)); err != nil {
			b.log.Info("wizard back", "user", cb.User.ID, "err", err)
		}
	}); err != nil {
		b.tellLater(invocation{User: cb.User.ID, Channel: ws.Channel}, refusalText(err, "The wizard did not go back."))
	}
}

// onReviewSubmission is "Request approval": the request goes down the path of a typed
// command, its pre-flight run again (what it found may have changed since the review).
func (b *Bot) onReviewSubmission(cb slack.InteractionCallback) any {
	ws := b.choicesOf(cb.View)
	back := func(problem string) any {
		// Nothing to show it under on the review page: the review page says it instead.
		v := RenderWizardReview(ws, nil, true, problem, b.now())
		return slack.NewUpdateViewSubmissionResponse(&v)
	}
	if ws.Check {
		return nil
	}
	if problem := b.wizardPlace(ws.Channel, cb.User.ID); problem != "" {
		b.m.commands.WithLabelValues(verbLabel(string(ws.Direction)), outcomeRefused).Inc()
		return back(problem)
	}
	cmd, errs := b.wizardCommand(ws)
	if len(errs) > 0 {
		return back("The choices are incomplete: go Back and complete them.")
	}
	src, dst, problem := b.resolveVCenters(cmd)
	if problem != "" {
		return back(problem)
	}
	who := invocation{User: cb.User.ID, Channel: ws.Channel}
	verb := verbLabel(cmd.Verb)
	if err := b.spawn(workPlan, func(ctx context.Context) {
		b.m.commands.WithLabelValues(verb, b.planAndSubmit(ctx, cmd, src, dst, who)).Inc()
	}); err != nil {
		b.m.commands.WithLabelValues(verb, refusalOutcome(err)).Inc()
		return back(refusalText(err, "Nothing was stored."))
	}
	b.views.closed(cb.View.ID)
	b.log.Info("wizard submitted", "user", who.User, "channel", who.Channel, "direction", cmd.Direction, "vms", len(cmd.VMs), "src_vc", src, "dst_vc", dst)
	return nil
}
