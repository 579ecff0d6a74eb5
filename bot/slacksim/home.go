package slacksim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
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
	payload := map[string]any{
		"type":       "block_actions",
		"team":       map[string]string{"id": "T0XVM", "domain": "xvm-lab"},
		"user":       map[string]string{"id": user, "name": w.userName(user), "username": w.userName(user), "team_id": "T0XVM"},
		"api_app_id": "A0XVM",
		"token":      "legacy-verification-token-unused",
		"container":  map[string]any{"type": "view", "view_id": id},
		"trigger_id": w.newTrigger(user),
		"view":       map[string]any{"id": id, "type": "home", "hash": hash},
		"actions": []map[string]any{{
			"type": "button", "action_id": actionID, "block_id": "home", "value": value,
			"text": map[string]any{"type": "plain_text", "text": actionID}, "action_ts": fmt.Sprintf("%d.000001", time.Now().Unix()),
		}},
	}
	if w.socketMode() {
		return w.sendEnvelope(ctx, "interactive", payload, "", "")
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return Reply{}, err
	}
	return w.deliver(ctx, "/slack/interactions", url.Values{"payload": {string(b)}}.Encode(), "", "", nil)
}

func (w *Workspace) secret() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.signingSecret
}
