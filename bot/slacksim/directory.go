package slacksim

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// What `xvmbot check` asks a workspace: who the people and groups are (users.info,
// usergroups.list), which scopes a token has (the x-oauth-scopes header Slack sets on
// every answer) and whether the tokens are the workspace's.

// SetScopes makes every Web API answer carry x-oauth-scopes: scopes, as Slack's do. Without
// it the header is left out.
func (w *Workspace) SetScopes(scopes ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.scopes = strings.Join(scopes, ",")
}

// RequireTokens makes the workspace check tokens: Web API calls answer invalid_auth unless
// they carry bot, and apps.connections.open unless it carries app. Without it any token goes.
func (w *Workspace) RequireTokens(bot, app string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.botToken, w.appToken = bot, app
}

// Deactivate marks a user as deactivated (users.info answers deleted: true).
func (w *Workspace) Deactivate(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deactivated[id] = true
}

// authorized checks the request's token against RequireTokens; false means it answered.
func (w *Workspace) authorized(method string, rw http.ResponseWriter, r *http.Request) bool {
	w.mu.Lock()
	want := w.botToken
	if method == "apps.connections.open" {
		want = w.appToken
	}
	w.mu.Unlock()
	if want == "" || method == "response_url" {
		return true
	}
	got, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer { // a form post carries it as token=; the handler reads the body again
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if v, err := url.ParseQuery(string(b)); err == nil {
			got = v.Get("token")
		}
	}
	if got == want {
		return true
	}
	writeJSON(rw, map[string]any{"ok": false, "error": "invalid_auth"})
	return false
}

func (w *Workspace) usersInfo(rw http.ResponseWriter, r *http.Request) {
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	id := v.Get("user")
	w.mu.Lock()
	name, ok := w.users[id]
	_, isGroup := w.groups[id]
	deleted := w.deactivated[id]
	w.mu.Unlock()
	if !ok || isGroup {
		writeJSON(rw, map[string]any{"ok": false, "error": "user_not_found"})
		return
	}
	writeJSON(rw, map[string]any{"ok": true, "user": map[string]any{"id": id, "team_id": "T0XVM", "name": name,
		"real_name": name, "deleted": deleted, "is_bot": id == "U0XVMBOT", "profile": map[string]any{"display_name": name}}})
}

func (w *Workspace) userGroupsList(rw http.ResponseWriter, r *http.Request) {
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	withUsers := v.Get("include_users") == "true"
	w.mu.Lock()
	defer w.mu.Unlock()
	groups := []map[string]any{}
	for id, members := range w.groups {
		g := map[string]any{"id": id, "team_id": "T0XVM", "is_usergroup": true, "handle": w.userNameLocked(id),
			"name": w.userNameLocked(id), "user_count": len(members)}
		if withUsers {
			g["users"] = members
		}
		groups = append(groups, g)
	}
	writeJSON(rw, map[string]any{"ok": true, "usergroups": groups})
}
