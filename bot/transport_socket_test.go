package bot

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/bot/slacksim"
)

// sendEnvelope sends one envelope through the workspace's Socket Mode connection and
// returns the ack payload; Slack waits 3 s for an ack.
func sendEnvelope(t *testing.T, ws *slacksim.Workspace, id, typ string, payload json.RawMessage, retry int) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p, err := ws.Envelope(ctx, id, typ, payload, retry)
	if err != nil {
		t.Fatalf("envelope %s not acknowledged within Slack's 3 s: %v", id, err)
	}
	return p
}

// slashPayload is a slash command as a Socket Mode envelope carries it.
func slashPayload(user, text, trigger string) json.RawMessage {
	v, _ := url.ParseQuery(commandBody(user, testChannel, text, trigger))
	m := map[string]string{}
	for k := range v {
		m[k] = v.Get(k)
	}
	b, _ := json.Marshal(m)
	return b
}

func TestSocketModeMigrateAndApprove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.slack.UseSocketMode()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.RunSocketMode(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunSocketMode: %v", err)
		}
	})

	wait, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := e.slack.WaitFor(wait, func() bool {
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("RunSocketMode returned before connecting: %v", err)
		default:
		}
		return e.slack.SocketConnected()
	}); err != nil {
		t.Fatal("the bot never opened a Socket Mode connection")
	}

	bad := sendEnvelope(t, e.slack, "env-bad", "slash_commands", slashPayload(requester, "migrate web-01 to vc-west dsk=thin", "trig.s0"), 0)
	if !strings.Contains(string(bad), "dsk") || !strings.Contains(string(bad), `"response_type":"ephemeral"`) {
		t.Fatalf("usage error not in the ack payload: %s", bad)
	}

	cmd := slashPayload(requester, "migrate web-01,web-02 to vc-west", "trig.s1")
	ack := sendEnvelope(t, e.slack, "env-1", "slash_commands", cmd, 0)
	if !strings.Contains(string(ack), "Checking") {
		t.Fatalf("command ack payload %s", ack)
	}
	sendEnvelope(t, e.slack, "env-1-retry", "slash_commands", cmd, 1) // Slack re-sends an envelope it thinks was lost
	e.settle()
	all := e.requests()
	if len(all) != 1 {
		t.Fatalf("%d requests stored, want 1", len(all))
	}
	r := all[0]
	if r.MessageTS == "" || len(e.slack.Public()) != 1 {
		t.Fatalf("approval message not posted: %+v", e.slack.Public())
	}

	click := json.RawMessage(clickPayload(approver, testChannel, r.MessageTS, ActionApprove, r.ID, "trig.s2"))
	if a := sendEnvelope(t, e.slack, "env-2", "interactive", click, 0); len(a) != 0 && string(a) != "null" {
		t.Fatalf("interaction ack carries %s", a)
	}
	e.settle()
	if n := len(e.jobs.published()); n != 2 {
		t.Fatalf("%d jobs published over Socket Mode, want 2", n)
	}
	if got := e.get(r.ID).State; got != "queued" {
		t.Fatalf("request is %s", got)
	}
	if a := e.message(r.MessageTS).ActionIDs(); len(a) == 0 || a[0] == ActionApprove {
		t.Fatalf("parent buttons after approval %v", a)
	}
}
