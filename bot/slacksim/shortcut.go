package slacksim

import (
	"context"
	"fmt"
	"time"
)

// ClickEphemeral presses a button of a message only user sees (the ack of a command, an
// ephemeral) in channel: such a message has no timestamp to name it by.
func (w *Workspace) ClickEphemeral(ctx context.Context, user, channel, actionID, value string) (Reply, error) {
	payload := w.interaction("block_actions", user)
	payload["container"] = map[string]any{"type": "message", "channel_id": channel, "is_ephemeral": true}
	payload["trigger_id"] = w.newTrigger(user)
	payload["channel"] = map[string]string{"id": channel, "name": "vm-moves"}
	payload["response_url"] = w.newResponseURL(channel, user)
	payload["actions"] = buttonPress(actionID, "actions", value)
	return w.interact(ctx, "/slack/interactions", payload)
}

// Shortcut runs the app's global shortcut callbackID as user (from the search bar or the
// shortcuts menu): no channel, a trigger to open a modal with.
func (w *Workspace) Shortcut(ctx context.Context, user, callbackID string) (Reply, error) {
	payload := map[string]any{
		"type":        "shortcut",
		"team":        map[string]string{"id": "T0XVM", "domain": "xvm-lab"},
		"user":        map[string]string{"id": user, "username": w.userName(user), "team_id": "T0XVM"},
		"api_app_id":  "A0XVM",
		"token":       "legacy-verification-token-unused",
		"callback_id": callbackID,
		"trigger_id":  w.newTrigger(user),
		"action_ts":   fmt.Sprintf("%d.000002", time.Now().Unix()),
	}
	return w.interact(ctx, "/slack/interactions", payload)
}
