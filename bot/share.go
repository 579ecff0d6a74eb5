package bot

import (
	"context"
	"slices"

	"github.com/slack-go/slack"
)

// ActionShareStats is the button under /xvm stats, which answers privately: it posts the
// same stats in the channel, for everyone there, saying who shared them. Its value is the
// window typed (24h or 7d).
const ActionShareStats = "xvm_share_stats"

// shareActions is the "Share in channel" button of stats for window arg.
func shareActions(arg string) slack.Block {
	return slack.NewActionBlock("stats_share",
		slack.NewButtonBlockElement(ActionShareStats, arg, plain("Share in channel")))
}

// privateStats is the private answer to /xvm stats: the stats and the button.
func privateStats(s Stats, title, arg string) message {
	m := asMessage(RenderStats(s, title))
	m.Blocks = append(m.Blocks, shareActions(arg))
	return m
}

// sharedStats is the stats as posted in the channel by user's click.
func sharedStats(s Stats, title, user string) message {
	m := asMessage(RenderStats(s, title))
	m.Blocks = append(m.Blocks, slack.NewContextBlock("", mrkdwn("Shared by <@"+user+"> with `/xvm stats`")))
	return m
}

// onShareClick posts the stats in the channel the button was clicked in; it reports
// whether the click was that button. The numbers are computed again at the click, so
// what the channel sees is true when it is posted.
func (b *Bot) onShareClick(cb slack.InteractionCallback) bool {
	actions := cb.ActionCallback.BlockActions
	i := slices.IndexFunc(actions, func(a *slack.BlockAction) bool { return a.ActionID == ActionShareStats })
	if i < 0 {
		return false
	}
	arg := actions[i].Value
	who := invocation{User: cb.User.ID, Channel: cmp0(cb.Channel.ID, cb.Container.ChannelID), ResponseURL: cb.ResponseURL}
	if err := b.spawn(VerbStats, func(ctx context.Context) { b.shareStats(ctx, who, arg) }); err != nil {
		b.tellLater(who, refusalText(err, "The stats were not shared."))
	}
	return true
}

func (b *Bot) shareStats(ctx context.Context, who invocation, arg string) {
	if !b.channelAllowed(who.Channel) {
		b.tell(ctx, who, notice("xvmbot does not post in this channel. Share the stats in one of: "+channelList(b.cfg.Channels)+"."))
		return
	}
	window, title := windowOf(arg)
	s, err := b.stats(ctx, window)
	if err != nil {
		b.tell(ctx, who, asMessage(RenderError("Could not compute the stats: "+err.Error(), "")))
		return
	}
	if _, err := b.slack.post(ctx, who.Channel, "", sharedStats(s, title, who.User)); err != nil {
		b.log.Warn("share stats in channel", "channel", who.Channel, "user", who.User, "err", err)
		b.tell(ctx, who, notice("The stats could not be posted in this channel ("+err.Error()+"). Is xvmbot invited? `/invite @xvmbot`"))
	}
}
