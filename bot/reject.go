package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
)

// Callback ids of the bot's modals, and the ids of their inputs.
const (
	callbackReject = "xvm_reject_reason"
	blockReason    = "reason"
	actionReason   = "reason"
	maxReasonChars = 1000
	// submitTimeout bounds the work done inside a view_submission ack (Slack waits 3 s).
	submitTimeout = 2 * time.Second
)

// modalContext travels in a modal's private_metadata: which request (or channel) the
// modal belongs to. It is only a pointer: every decision is checked again on submission.
type modalContext struct {
	Request   string `json:"request,omitempty"`
	Channel   string `json:"channel"`
	MessageTS string `json:"message_ts,omitempty"`
	Direction string `json:"direction,omitempty"` // wizard: migrate | import
	Check     bool   `json:"check,omitempty"`     // wizard: pre-flight only
	// Networks are the source networks the wizard shows one select for, in order.
	Networks []string `json:"networks,omitempty"`
}

func (m modalContext) encode() string {
	b, _ := json.Marshal(m)
	return string(b)
}

func decodeModalContext(s string) modalContext {
	var m modalContext
	_ = json.Unmarshal([]byte(s), &m)
	return m
}

// askRejectReason answers a click on Reject: an approver gets the reason dialog, anybody
// else is told privately why not (no dialog is opened for them). Should the dialog not
// open (the trigger expired, the workspace does not offer modals), the request is
// rejected without a reason rather than leaving the approver's decision unrecorded.
func (b *Bot) askRejectReason(ctx context.Context, id string, who invocation) {
	log := b.log.With("request_id", id, "user", who.User)
	if problem := b.misplaced(ctx, id, who); problem != "" {
		b.refuseMisplaced(ctx, who, problem)
		return
	}
	r, err := b.svc.MayReject(ctx, id, who.User)
	if err != nil {
		b.m.approvals.WithLabelValues(decisionOf(err)).Inc()
		log.Info("rejection refused", "err", err)
		if errors.Is(err, approvals.ErrExpired) {
			b.sweepExpired(ctx)
		}
		b.tell(ctx, who, notice(b.decisionProblem("reject", id, r, err)))
		return
	}
	mc := modalContext{Request: r.ID, Channel: who.Channel, MessageTS: who.MessageTS}
	if _, err := b.slack.openView(ctx, who.TriggerID, RenderRejectModal(r, mc.encode())); err != nil {
		log.Warn("reason dialog did not open; rejecting without a reason", "err", err)
		b.reject(ctx, id, who, "")
	}
}

// onRejectSubmission records a rejection with its reason, inside the ack: a refusal (not
// an approver, already decided, expired) is shown in the dialog itself.
func (b *Bot) onRejectSubmission(cb slack.InteractionCallback) any {
	mc := decodeModalContext(cb.View.PrivateMetadata)
	reason := strings.TrimSpace(stateValue(cb.View.State, blockReason, actionReason).Value)
	if reason == "" {
		return viewErrors(map[string]string{blockReason: "Say why the request is rejected: the requester reads it."})
	}
	reason = clipRunes(reason, maxReasonChars)
	who := invocation{User: cb.User.ID, Channel: mc.Channel, MessageTS: mc.MessageTS}
	ctx, cancel := context.WithTimeout(context.Background(), submitTimeout)
	defer cancel()
	if problem := b.misplaced(ctx, mc.Request, who); problem != "" {
		b.m.approvals.WithLabelValues(decisionDenied).Inc()
		return viewErrors(map[string]string{blockReason: stripMrkdwn(problem)})
	}
	// As with Approve, the place for the follow-up is taken before the decision is stored:
	// a rejection the message would never show is not made.
	slot, err := b.reserve(workRejected)
	if err != nil {
		b.log.Warn("rejection refused: not queued", "request_id", mc.Request, "user", who.User, "err", err)
		return viewErrors(map[string]string{blockReason: refusalText(err, "Your rejection was not recorded.")})
	}
	r, err := b.svc.Reject(ctx, mc.Request, who.User, reason)
	if err != nil {
		slot.release()
		b.m.approvals.WithLabelValues(decisionOf(err)).Inc()
		b.log.Info("rejection refused", "request_id", mc.Request, "user", who.User, "err", err)
		return viewErrors(map[string]string{blockReason: stripMrkdwn(b.decisionProblem("reject", mc.Request, r, err))})
	}
	b.m.approvals.WithLabelValues(decisionRejected).Inc()
	b.log.Info("request rejected", "request_id", r.ID, "user", who.User)
	slot.submit(task{what: workRejected, fn: func(ctx context.Context) { b.showRejection(ctx, r, who) }})
	return nil
}

// showRejection edits the request message (the reason shows, the buttons go) and tells
// the requester in the thread.
func (b *Bot) showRejection(ctx context.Context, r *approvals.Request, who invocation) {
	r = b.adoptMessage(ctx, r, who)
	b.refreshParent(ctx, r)
	if r.MessageTS == "" {
		return
	}
	if _, err := b.slack.post(ctx, r.Channel, r.MessageTS, asMessage(RenderFinal(r))); err != nil {
		b.log.Error("post rejection reply", "request_id", r.ID, "err", err)
	}
}

// RenderRejectModal renders the dialog that asks an approver why they reject a request.
// metadata is carried back with the submission.
func RenderRejectModal(r *approvals.Request, metadata string) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("e.g. change freeze until Monday"), actionReason)
	input.Multiline = true
	input.MaxLength = maxReasonChars
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackReject,
		Title:           plain("Reject request"),
		Submit:          plain("Reject"),
		Close:           plain("Keep it"),
		PrivateMetadata: metadata,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*%s* by <@%s>: %s %s → %s.\n%s will not happen; <@%s> is told why.",
				esc(requestTitle(r)), r.Requester, countVMs(len(requestVMs(r))), esc(sourceName(r)), esc(targetName(r)),
				capitalize(string(r.Direction)), r.Requester)), nil, nil),
			slack.NewInputBlock(blockReason, plain("Reason"), nil, input),
		}},
	}
}

// stateValue returns what the person entered in one input of a view.
func stateValue(st *slack.ViewState, blockID, actionID string) slack.BlockAction {
	if st == nil {
		return slack.BlockAction{}
	}
	return st.Values[blockID][actionID]
}

// viewErrors is a view_submission ack that shows errors under the named blocks.
func viewErrors(errs map[string]string) *slack.ViewSubmissionResponse {
	for k, v := range errs {
		errs[k] = clipRunes(v, 150)
	}
	return slack.NewErrorsViewSubmissionResponse(errs)
}
