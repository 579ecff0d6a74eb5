package slacksim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// OpenHome is user opening the app's Home tab: Slack sends the app_home_opened event
// (Events API), over the Socket Mode connection or to the app's /slack/events, signed.
func (w *Workspace) OpenHome(ctx context.Context, user string) (Reply, error) {
	w.mu.Lock()
	home, ok := w.homes[user]
	var view map[string]any
	if ok {
		view = map[string]any{"id": home.ID, "type": "home", "hash": home.Hash}
	}
	w.mu.Unlock()
	event := map[string]any{"type": "app_home_opened", "user": user, "channel": "D0HOME" + user, "tab": "home",
		"event_ts": fmt.Sprintf("%d.000100", time.Now().Unix())}
	if view != nil {
		event["view"] = view
	}
	payload := map[string]any{
		"token": "legacy-verification-token-unused", "team_id": "T0XVM", "api_app_id": "A0XVM",
		"type": "event_callback", "event_id": fmt.Sprintf("Ev%d", time.Now().UnixNano()), "event_time": time.Now().Unix(),
		"event": event,
	}
	if w.socketMode() {
		return w.sendEnvelope(ctx, "events_api", payload, "", "")
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return Reply{}, err
	}
	h := Sign(w.secret(), time.Now(), string(b))
	h.Set("Content-Type", "application/json")
	return w.deliver(ctx, "/slack/events", string(b), "", "", h)
}

// ClickHome presses a button (action id and value) of the Home tab the app published for
// user: a block_actions payload whose container is the view, with no channel or message.
func (w *Workspace) ClickHome(ctx context.Context, user, actionID, value string) (Reply, error) {
	w.mu.Lock()
	home, ok := w.homes[user]
	var id, hash string
	if ok {
		id, hash = home.ID, home.Hash
	}
	w.mu.Unlock()
	if !ok {
		return Reply{}, fmt.Errorf("slacksim: %s has no Home tab to click on", user)
	}
	payload := w.interaction("block_actions", user)
	payload["container"] = map[string]any{"type": "view", "view_id": id}
	payload["trigger_id"] = w.newTrigger(user)
	payload["view"] = map[string]any{"id": id, "type": "home", "hash": hash}
	payload["actions"] = buttonPress(actionID, "home", value)
	return w.interact(ctx, "/slack/interactions", payload)
}

func (w *Workspace) secret() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.signingSecret
}
