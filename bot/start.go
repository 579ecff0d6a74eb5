package bot

import (
	"context"
	"slices"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
)

// Buttons and the shortcut that start things: the help's "Move VMs…" and "Check a move…"
// open the wizards, as /xvm migrate and /xvm check migrate typed alone would; the global
// shortcut "Move VMs…" (from the search bar or the shortcuts menu) opens the migrate wizard.
const (
	ActionStartMigrate = "xvm_start_migrate"
	ActionStartCheck   = "xvm_start_check"
	// ShortcutMoveVMs is the callback id of the global shortcut in the app's manifest.
	ShortcutMoveVMs = "xvm_move_vms"
)

// helpActions are the help's buttons that start things, under the text.
func helpActions() slack.Block {
	return slack.NewActionBlock("help_start",
		slack.NewButtonBlockElement(ActionStartMigrate, "migrate", plain("Move VMs…")).WithStyle(slack.StylePrimary),
		slack.NewButtonBlockElement(ActionStartCheck, "check", plain("Check a move…")))
}

// withHelpActions adds the start buttons to a help message when the wizard can open.
func (b *Bot) withHelpActions(m message) message {
	if b.inv != nil {
		m.Blocks = append(m.Blocks, helpActions())
	}
	return m
}

// startCommand is the command a start button or the shortcut stands for.
func startCommand(actionID string) (Command, bool) {
	switch actionID {
	case ActionStartMigrate, ShortcutMoveVMs:
		return Command{Verb: VerbMigrate, Direction: approvals.Migrate, Wizard: true}, true
	case ActionStartCheck:
		return Command{Verb: VerbCheck, Direction: approvals.Migrate, Check: true, Wizard: true}, true
	}
	return Command{}, false
}

// onStartClick opens the wizard a help button asks for; it reports whether the click was
// one of them.
func (b *Bot) onStartClick(cb slack.InteractionCallback) bool {
	i := slices.IndexFunc(cb.ActionCallback.BlockActions, func(a *slack.BlockAction) bool {
		_, ok := startCommand(a.ActionID)
		return ok
	})
	if i < 0 {
		return false
	}
	cmd, _ := startCommand(cb.ActionCallback.BlockActions[i].ActionID)
	who := invocation{User: cb.User.ID, Channel: cmp0(cb.Channel.ID, cb.Container.ChannelID), TriggerID: cb.TriggerID, ResponseURL: cb.ResponseURL}
	b.startWizard(cmd, who)
	return true
}

// onShortcut opens the migrate wizard from the global shortcut. A global shortcut comes
// from no channel: the request goes to the first of slack.channels; with none configured
// the wizard cannot say where to post, so a dialog says to type /xvm migrate in a channel.
func (b *Bot) onShortcut(cb slack.InteractionCallback) {
	cmd, ok := startCommand(cb.CallbackID)
	if !ok {
		b.log.Debug("shortcut ignored", "callback_id", cb.CallbackID)
		return
	}
	who := invocation{User: cb.User.ID, TriggerID: cb.TriggerID}
	if len(b.cfg.Channels) > 0 {
		who.Channel = b.cfg.Channels[0]
	}
	if who.Channel == "" || b.inv == nil {
		if err := b.spawn(workWizard, func(ctx context.Context) {
			if _, err := b.slack.openView(ctx, who.TriggerID, shortcutNotice()); err != nil {
				b.log.Warn("shortcut notice", "user", who.User, "err", err)
			}
		}); err != nil {
			b.log.Warn("shortcut not answered: bot overloaded", "user", who.User, "err", err)
		}
		return
	}
	b.startWizard(cmd, who)
}

// startWizard opens the wizard of cmd for who after the ack.
func (b *Bot) startWizard(cmd Command, who invocation) {
	count := func(outcome string) { b.m.commands.WithLabelValues(verbLabel(cmd.Verb), outcome).Inc() }
	if b.inv == nil || who.TriggerID == "" {
		count(outcomeUnavailable)
		return
	}
	if err := b.spawn(workWizard, func(ctx context.Context) { count(b.openWizard(ctx, cmd, who)) }); err != nil {
		count(refusalOutcome(err))
		if who.Channel != "" {
			b.tellLater(who, refusalText(err, "The wizard was not opened."))
		}
	}
}

// shortcutNotice is the dialog of a shortcut xvmbot cannot start a move from.
func shortcutNotice() slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:  slack.VTModal,
		Title: plain("Move VMs"),
		Close: plain("Close"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(mrkdwn(
			"xvmbot posts each request in a channel where its approvers see it, and this shortcut names none. "+
				"Type `/xvm migrate` in that channel to open the wizard there."), nil, nil)}},
	}
}

// cmp0 is the first of a and b that is not "".
func cmp0(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
