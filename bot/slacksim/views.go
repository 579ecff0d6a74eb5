package slacksim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// View is a modal the app opened, as the workspace keeps it.
type View struct {
	ID         string
	Hash       string
	User       string // who sees it (the person whose trigger opened it)
	CallbackID string
	Metadata   string          // private_metadata
	Title      string          // title text
	Submit     string          // the submit button's text ("": none)
	Blocks     json.RawMessage // the blocks as last opened or updated
	Open       bool            // false once submitted and closed
	Under      string          // views.push: the id of the view it was pushed onto
	Updates    int             // views.update calls that changed it
	// Errors are the inline errors the app answered the last submission with.
	Errors map[string]string
	state  map[string]map[string]any // block_id → action_id → element state
}

// EnableModals makes the workspace serve views.open, views.update and views.push. Without
// it those methods answer 404, as for an app that cannot use modals.
func (w *Workspace) EnableModals() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.modals = true
}

func (w *Workspace) modalsEnabled(rw http.ResponseWriter) bool {
	w.mu.Lock()
	on := w.modals
	w.mu.Unlock()
	if !on {
		http.NotFound(rw, nil)
	}
	return on
}

// viewJSON is the part of a view the workspace reads.
type viewJSON struct {
	Type            string            `json:"type"`
	CallbackID      string            `json:"callback_id"`
	PrivateMetadata string            `json:"private_metadata"`
	Title           map[string]any    `json:"title"`
	Submit          map[string]any    `json:"submit"`
	Blocks          []json.RawMessage `json:"blocks"`
}

func (w *Workspace) viewsOpen(rw http.ResponseWriter, r *http.Request) { w.openView(rw, r, false) }

// viewsPush puts a view on top of the modal its user has open; submitting or closing it
// goes back to the one below, which stays open.
func (w *Workspace) viewsPush(rw http.ResponseWriter, r *http.Request) { w.openView(rw, r, true) }

func (w *Workspace) openView(rw http.ResponseWriter, r *http.Request, push bool) {
	if !w.modalsEnabled(rw) {
		return
	}
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var vj viewJSON
	if err := json.Unmarshal([]byte(v.Get("view")), &vj); err != nil {
		writeJSON(rw, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	user, ok := w.triggers[v.Get("trigger_id")]
	if !ok {
		writeJSON(rw, map[string]any{"ok": false, "error": "invalid_trigger_id"})
		return
	}
	under := ""
	if push {
		for i := len(w.views) - 1; i >= 0; i-- {
			if w.views[i].Open && w.views[i].User == user {
				under = w.views[i].ID
				break
			}
		}
		if under == "" {
			writeJSON(rw, map[string]any{"ok": false, "error": "not_found"}) // nothing open to push onto
			return
		}
	}
	delete(w.triggers, v.Get("trigger_id")) // a trigger opens one view
	w.viewSeq++
	view := &View{ID: fmt.Sprintf("V%06d", w.viewSeq), User: user, Open: true, Under: under, state: map[string]map[string]any{}}
	w.applyView(view, vj)
	w.views = append(w.views, view)
	w.notify()
	writeJSON(rw, map[string]any{"ok": true, "view": map[string]any{"id": view.ID, "hash": view.Hash, "callback_id": view.CallbackID}})
}

func (w *Workspace) viewsUpdate(rw http.ResponseWriter, r *http.Request) {
	if !w.modalsEnabled(rw) {
		return
	}
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var vj viewJSON
	if err := json.Unmarshal([]byte(v.Get("view")), &vj); err != nil {
		writeJSON(rw, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	view := w.viewByID(v.Get("view_id"))
	switch {
	case view == nil || !view.Open:
		writeJSON(rw, map[string]any{"ok": false, "error": "not_found"})
		return
	case v.Get("hash") != "" && v.Get("hash") != view.Hash:
		writeJSON(rw, map[string]any{"ok": false, "error": "hash_conflict"})
		return
	}
	w.applyView(view, vj)
	view.Updates++
	w.notify()
	writeJSON(rw, map[string]any{"ok": true, "view": map[string]any{"id": view.ID, "hash": view.Hash}})
}

// applyView replaces a view's content; what the person entered stays for blocks that are
// still there (as in Slack), and initial options fill the rest.
func (w *Workspace) applyView(view *View, vj viewJSON) {
	view.CallbackID, view.Metadata = vj.CallbackID, vj.PrivateMetadata
	view.Title, _ = vj.Title["text"].(string)
	view.Submit, _ = vj.Submit["text"].(string)
	view.Blocks, _ = json.Marshal(vj.Blocks)
	w.viewSeq++
	view.Hash = fmt.Sprintf("h%06d", w.viewSeq)
	kept := map[string]map[string]any{}
	for _, raw := range vj.Blocks {
		in, ok := inputOf(raw)
		if !ok {
			continue
		}
		if old, ok := view.state[in.BlockID][in.actionID()]; ok {
			kept[in.BlockID] = map[string]any{in.actionID(): old}
			continue
		}
		if st := in.initialState(); st != nil {
			kept[in.BlockID] = map[string]any{in.actionID(): st}
		}
	}
	view.state = kept
}

// inputBlock is an input block of a view.
type inputBlock struct {
	Type           string `json:"type"`
	BlockID        string `json:"block_id"`
	DispatchAction bool   `json:"dispatch_action"`
	Element        struct {
		Type           string            `json:"type"`
		ActionID       string            `json:"action_id"`
		InitialOption  json.RawMessage   `json:"initial_option"`
		InitialOptions []json.RawMessage `json:"initial_options"`
		Options        []json.RawMessage `json:"options"`
	} `json:"element"`
}

func inputOf(raw json.RawMessage) (inputBlock, bool) {
	var in inputBlock
	if json.Unmarshal(raw, &in) != nil || in.Type != "input" {
		return in, false
	}
	return in, true
}

func (in inputBlock) actionID() string { return in.Element.ActionID }

func (in inputBlock) multi() bool { return strings.HasPrefix(in.Element.Type, "multi_") }

func (in inputBlock) initialState() map[string]any {
	switch {
	case in.multi() && len(in.Element.InitialOptions) > 0:
		return map[string]any{"type": in.Element.Type, "selected_options": in.Element.InitialOptions}
	case len(in.Element.InitialOption) > 0:
		return map[string]any{"type": in.Element.Type, "selected_option": in.Element.InitialOption}
	}
	return nil
}

func (w *Workspace) viewByID(id string) *View {
	for _, v := range w.views {
		if v.ID == id {
			return v
		}
	}
	return nil
}

func (v *View) copy() View {
	out := *v
	out.state = nil
	return out
}

// Views returns every view the app opened, in order.
func (w *Workspace) Views() []View {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]View, len(w.views))
	for i, v := range w.views {
		out[i] = v.copy()
	}
	return out
}

// OpenView returns the newest open view user sees with the given callback id.
func (w *Workspace) OpenView(user, callbackID string) (View, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.views) - 1; i >= 0; i-- {
		if v := w.views[i]; v.Open && v.User == user && v.CallbackID == callbackID {
			return v.copy(), true
		}
	}
	return View{}, false
}

// View returns the view with the given id.
func (w *Workspace) View(id string) (View, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v := w.viewByID(id); v != nil {
		return v.copy(), true
	}
	return View{}, false
}

// Value returns what is entered in a view's input block: the chosen option values, or the text.
func (w *Workspace) Value(viewID, blockID string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.viewByID(viewID)
	if v == nil {
		return nil
	}
	var out []string
	for _, st := range v.state[blockID] {
		b, _ := json.Marshal(st)
		var s struct {
			Value           string                   `json:"value"`
			SelectedOption  *struct{ Value string }  `json:"selected_option"`
			SelectedOptions []struct{ Value string } `json:"selected_options"`
		}
		_ = json.Unmarshal(b, &s)
		switch {
		case s.SelectedOption != nil:
			out = append(out, s.SelectedOption.Value)
		case s.SelectedOptions != nil:
			for _, o := range s.SelectedOptions {
				out = append(out, o.Value)
			}
		case s.Value != "":
			out = append(out, s.Value)
		}
	}
	return out
}

// Fill enters values in a view's input block as user: text for a text input, option
// values for a select (several for a multi-select). If the block dispatches actions, the
// app is sent the block_actions interaction Slack would send, and its reply returned.
func (w *Workspace) Fill(ctx context.Context, user, viewID, blockID string, values ...string) (Reply, error) {
	w.mu.Lock()
	v := w.viewByID(viewID)
	if v == nil || !v.Open {
		w.mu.Unlock()
		return Reply{}, fmt.Errorf("slacksim: no open view %s", viewID)
	}
	in, ok := findInput(v.Blocks, blockID)
	if !ok {
		w.mu.Unlock()
		return Reply{}, fmt.Errorf("slacksim: view %s has no input block %q", viewID, blockID)
	}
	opt := func(val string) map[string]any {
		return map[string]any{"text": map[string]any{"type": "plain_text", "text": val}, "value": val}
	}
	var st map[string]any
	switch {
	case strings.HasSuffix(in.Element.Type, "_input"):
		st = map[string]any{"type": in.Element.Type, "value": strings.Join(values, "\n")}
	case in.multi():
		opts := []map[string]any{}
		for _, val := range values {
			opts = append(opts, opt(val))
		}
		st = map[string]any{"type": in.Element.Type, "selected_options": opts}
	default:
		if len(values) == 0 {
			st = map[string]any{"type": in.Element.Type, "selected_option": nil}
		} else {
			st = map[string]any{"type": in.Element.Type, "selected_option": opt(values[0])}
		}
	}
	v.state[blockID] = map[string]any{in.actionID(): st}
	w.notify()
	dispatch := in.DispatchAction
	var payload map[string]any
	if dispatch {
		payload = w.viewPayloadLocked(v, "block_actions")
		action := map[string]any{"type": in.Element.Type, "action_id": in.actionID(), "block_id": blockID,
			"action_ts": fmt.Sprintf("%d.000002", time.Now().Unix())}
		for k, val := range st {
			if k != "type" {
				action[k] = val
			}
		}
		payload["actions"] = []any{action}
		payload["trigger_id"] = w.newTriggerLocked(user)
		payload["container"] = map[string]any{"type": "view", "view_id": v.ID}
	}
	w.mu.Unlock()
	if !dispatch {
		return Reply{Status: http.StatusOK}, nil
	}
	return w.interact(ctx, "/slack/interactions", payload)
}

func findInput(blocks json.RawMessage, blockID string) (inputBlock, bool) {
	var raws []json.RawMessage
	_ = json.Unmarshal(blocks, &raws)
	for _, raw := range raws {
		if in, ok := inputOf(raw); ok && in.BlockID == blockID {
			return in, true
		}
	}
	return inputBlock{}, false
}

// viewPayloadLocked is the common part of an interaction that comes from a view.
func (w *Workspace) viewPayloadLocked(v *View, typ string) map[string]any {
	return map[string]any{
		"type":       typ,
		"team":       map[string]string{"id": "T0XVM", "domain": "xvm-lab"},
		"user":       map[string]string{"id": v.User, "name": w.userNameLocked(v.User), "username": w.userNameLocked(v.User), "team_id": "T0XVM"},
		"api_app_id": "A0XVM",
		"token":      "legacy-verification-token-unused",
		"view": map[string]any{
			"id": v.ID, "team_id": "T0XVM", "type": "modal", "callback_id": v.CallbackID, "private_metadata": v.Metadata,
			"hash": v.Hash, "blocks": v.Blocks, "state": map[string]any{"values": v.state}, "app_id": "A0XVM",
			"title": map[string]any{"type": "plain_text", "text": v.Title},
		},
	}
}

func (w *Workspace) userNameLocked(id string) string {
	if n, ok := w.users[id]; ok {
		return n
	}
	return strings.ToLower(id)
}

func (w *Workspace) newTriggerLocked(user string) string {
	w.trigSeq++
	t := fmt.Sprintf("trigger-%d-%d", time.Now().UnixNano(), w.trigSeq)
	w.triggers[t] = user
	return t
}

// newTrigger issues a trigger id for an action of user; views.open accepts it once.
func (w *Workspace) newTrigger(user string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.newTriggerLocked(user)
}

// interact sends an interaction payload over the configured transport.
func (w *Workspace) interact(ctx context.Context, path string, payload map[string]any) (Reply, error) {
	return w.interactIn(ctx, path, payload, "", "")
}

// interactIn is interact for an interaction made in channel by user, whose replies (the
// ack's response, a response_url) are recorded there.
func (w *Workspace) interactIn(ctx context.Context, path string, payload map[string]any, channel, user string) (Reply, error) {
	if w.socketMode() {
		return w.sendEnvelope(ctx, "interactive", payload, channel, user)
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return Reply{}, err
	}
	return w.deliver(ctx, path, url.Values{"payload": {string(b)}}.Encode(), channel, user, nil)
}

// interaction is what every interaction payload of user carries: its type, the team, the
// user and the app.
func (w *Workspace) interaction(typ, user string) map[string]any {
	return map[string]any{
		"type":       typ,
		"team":       map[string]string{"id": "T0XVM", "domain": "xvm-lab"},
		"user":       map[string]string{"id": user, "name": w.userName(user), "username": w.userName(user), "team_id": "T0XVM"},
		"api_app_id": "A0XVM",
		"token":      "legacy-verification-token-unused",
	}
}

// buttonPress is the actions list of a click on button actionID (value) in block blockID.
func buttonPress(actionID, blockID, value string) []map[string]any {
	return []map[string]any{{
		"type": "button", "action_id": actionID, "block_id": blockID, "value": value,
		"text": map[string]any{"type": "plain_text", "text": actionID}, "action_ts": fmt.Sprintf("%d.000001", time.Now().Unix()),
	}}
}

// Suggest types query into a searchable select of a view and returns the option values
// the app offered (option groups flattened), through the Options Load URL (/slack/options)
// or a Socket Mode envelope.
func (w *Workspace) Suggest(ctx context.Context, user, viewID, blockID, query string) ([]string, error) {
	values, _, err := w.SuggestGroups(ctx, user, viewID, blockID, query)
	return values, err
}

// SuggestGroups is Suggest that also returns the labels of the option groups offered,
// what a person reads above the options.
func (w *Workspace) SuggestGroups(ctx context.Context, user, viewID, blockID, query string) (values, groups []string, err error) {
	w.mu.Lock()
	v := w.viewByID(viewID)
	if v == nil || !v.Open {
		w.mu.Unlock()
		return nil, nil, fmt.Errorf("slacksim: no open view %s", viewID)
	}
	in, ok := findInput(v.Blocks, blockID)
	if !ok {
		w.mu.Unlock()
		return nil, nil, fmt.Errorf("slacksim: view %s has no input block %q", viewID, blockID)
	}
	payload := w.viewPayloadLocked(v, "block_suggestion")
	payload["action_id"], payload["block_id"], payload["value"] = in.actionID(), blockID, query
	payload["container"] = map[string]any{"type": "view", "view_id": v.ID}
	w.mu.Unlock()
	rep, err := w.interact(ctx, "/slack/options", payload)
	if err != nil {
		return nil, nil, err
	}
	if rep.Status != http.StatusOK {
		return nil, nil, fmt.Errorf("slacksim: options request answered %d", rep.Status)
	}
	var resp struct {
		Options []struct {
			Value string `json:"value"`
		} `json:"options"`
		OptionGroups []struct {
			Label struct {
				Text string `json:"text"`
			} `json:"label"`
			Options []struct {
				Value string `json:"value"`
			} `json:"options"`
		} `json:"option_groups"`
	}
	if rep.Body != "" && rep.Body != "null" {
		if err := json.Unmarshal([]byte(rep.Body), &resp); err != nil {
			return nil, nil, fmt.Errorf("slacksim: options answer %q: %w", rep.Body, err)
		}
	}
	for _, o := range resp.Options {
		values = append(values, o.Value)
	}
	for _, g := range resp.OptionGroups {
		groups = append(groups, g.Label.Text)
		for _, o := range g.Options {
			values = append(values, o.Value)
		}
	}
	return values, groups, nil
}

// SubmitView presses a view's submit button as its user. If the app answers with inline
// errors the view stays open and the errors are returned (and kept in View.Errors);
// otherwise the view closes.
func (w *Workspace) SubmitView(ctx context.Context, viewID string) (map[string]string, error) {
	w.mu.Lock()
	v := w.viewByID(viewID)
	if v == nil || !v.Open {
		w.mu.Unlock()
		return nil, fmt.Errorf("slacksim: no open view %s", viewID)
	}
	payload := w.viewPayloadLocked(v, "view_submission")
	payload["trigger_id"] = w.newTriggerLocked(v.User)
	w.mu.Unlock()
	rep, err := w.interact(ctx, "/slack/interactions", payload)
	if err != nil {
		return nil, err
	}
	if rep.Status != http.StatusOK {
		return nil, fmt.Errorf("slacksim: view submission answered %d: %s", rep.Status, rep.Body)
	}
	var ack struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
		View           *viewJSON         `json:"view"`
	}
	if rep.Body != "" && rep.Body != "null" {
		if err := json.Unmarshal([]byte(rep.Body), &ack); err != nil {
			return nil, fmt.Errorf("slacksim: view submission ack %q: %w", rep.Body, err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.notify()
	if ack.ResponseAction == "errors" {
		if len(ack.Errors) == 0 {
			return nil, errors.New("slacksim: response_action errors without errors")
		}
		v.Errors = ack.Errors
		return ack.Errors, nil
	}
	if ack.ResponseAction == "update" {
		if ack.View == nil {
			return nil, errors.New("slacksim: response_action update without a view")
		}
		// The same view, open, with new content (and a new hash).
		w.applyView(v, *ack.View)
		v.Errors = nil
		v.Updates++
		return nil, nil
	}
	v.Errors, v.Open = nil, false
	return nil, nil
}

// viewsPublish sets a user's App Home tab (views.publish); the last one published is
// what the user sees.
func (w *Workspace) viewsPublish(rw http.ResponseWriter, r *http.Request) {
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var vj viewJSON
	if err := json.Unmarshal([]byte(v.Get("view")), &vj); err != nil || vj.Type != "home" {
		writeJSON(rw, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	user := v.Get("user_id")
	if _, ok := w.users[user]; !ok || user == "" {
		writeJSON(rw, map[string]any{"ok": false, "error": "user_not_found"})
		return
	}
	home, ok := w.homes[user]
	switch {
	case !ok:
		w.viewSeq++
		home = &View{ID: fmt.Sprintf("V%06d", w.viewSeq), User: user, Open: true, state: map[string]map[string]any{}}
		w.homes[user] = home
	case v.Get("hash") != "" && v.Get("hash") != home.Hash:
		writeJSON(rw, map[string]any{"ok": false, "error": "hash_conflict"})
		return
	default:
		home.Updates++
	}
	w.applyView(home, vj)
	w.notify()
	writeJSON(rw, map[string]any{"ok": true, "view": map[string]any{"id": home.ID, "hash": home.Hash, "type": "home"}})
}

// HomeView returns the App Home tab the app last published for user.
func (w *Workspace) HomeView(user string) (View, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.homes[user]; ok {
		return v.copy(), true
	}
	return View{}, false
}

// ViewPlain renders a view as its user sees it: the title, then each block, an input as
// "label: what is entered" (option values, or the text typed), and the inline errors.
func (w *Workspace) ViewPlain(id string) string {
	v, ok := w.View(id)
	if !ok {
		return ""
	}
	var raws []json.RawMessage
	_ = json.Unmarshal(v.Blocks, &raws)
	lines := []string{"┌ " + v.Title}
	names := w.Names()
	for _, raw := range raws {
		if in, ok := inputOf(raw); ok {
			var label struct {
				Label struct{ Text string } `json:"label"`
			}
			_ = json.Unmarshal(raw, &label)
			entered := strings.Join(w.Value(id, in.BlockID), ", ")
			if entered == "" {
				entered = "—"
			}
			line := "│ " + label.Label.Text + ": " + entered
			if e := v.Errors[in.BlockID]; e != "" {
				line += "   ⚠ " + e
			}
			lines = append(lines, line)
			continue
		}
		b, _ := json.Marshal([]json.RawMessage{raw})
		for l := range strings.SplitSeq(PlainText(b, "", names), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, "│ "+l)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// ClickView presses a button (by action id) in an open view as its user: the app is sent
// the block_actions interaction Slack would send, and its reply returned.
func (w *Workspace) ClickView(ctx context.Context, viewID, actionID string) (Reply, error) {
	w.mu.Lock()
	v := w.viewByID(viewID)
	if v == nil || !v.Open {
		w.mu.Unlock()
		return Reply{}, fmt.Errorf("slacksim: no open view %s", viewID)
	}
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(v.Blocks, &blocks)
	var action map[string]any
	for _, b := range blocks {
		for _, el := range b.Elements {
			if b.Type == "actions" && el.Type == "button" && el.ActionID == actionID {
				action = map[string]any{"type": "button", "action_id": el.ActionID, "block_id": b.BlockID, "value": el.Value,
					"action_ts": fmt.Sprintf("%d.000003", time.Now().Unix())}
			}
		}
	}
	if action == nil {
		w.mu.Unlock()
		return Reply{}, fmt.Errorf("slacksim: view %s has no button %q", viewID, actionID)
	}
	payload := w.viewPayloadLocked(v, "block_actions")
	payload["actions"] = []any{action}
	payload["trigger_id"] = w.newTriggerLocked(v.User)
	payload["container"] = map[string]any{"type": "view", "view_id": v.ID}
	w.mu.Unlock()
	return w.interact(ctx, "/slack/interactions", payload)
}
