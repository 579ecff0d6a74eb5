package slacksim

import (
	"net/http"
	"strings"
)

// DMChannel is the ID of the direct message channel between the app and user, as
// conversations.open answers it here.
func DMChannel(user string) string { return "D" + strings.TrimLeft(user, "UW") }

// conversationsOpen opens the app's DM with one user (users=U…): Slack answers the same
// channel every time for the same user.
func (w *Workspace) conversationsOpen(rw http.ResponseWriter, r *http.Request) {
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	users := strings.Split(v.Get("users"), ",")
	if v.Get("users") == "" || len(users) != 1 {
		writeJSON(rw, map[string]any{"ok": false, "error": "users_list_not_supplied"})
		return
	}
	writeJSON(rw, map[string]any{"ok": true, "channel": map[string]any{"id": DMChannel(users[0]), "is_im": true, "user": users[0]}})
}
