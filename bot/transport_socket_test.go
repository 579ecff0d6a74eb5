package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
)

// socketPeer plays Slack's side of a Socket Mode connection: slacktest serves
// apps.connections.open pointing at /ws, and this handler replaces slacktest's RTM
// websocket with one that says hello, carries envelopes and collects acks.
type socketPeer struct {
	conns chan *websocket.Conn
	acks  chan socketAck
}

type socketAck struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
}

func newSocketPeer() *socketPeer {
	return &socketPeer{conns: make(chan *websocket.Conn, 1), acks: make(chan socketAck, 16)}
}

func (p *socketPeer) route(c slacktest.Customize) {
	c.Handle("/ws", func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		hello := map[string]any{"type": "hello", "num_connections": 1, "connection_info": map[string]string{"app_id": "A0XVM"},
			"debug_info": map[string]any{"host": "slacktest", "approximate_connection_time": 3600}}
		if err := conn.WriteJSON(hello); err != nil {
			return
		}
		p.conns <- conn
		for {
			var a socketAck
			if err := conn.ReadJSON(&a); err != nil {
				return
			}
			p.acks <- a
		}
	})
}

func (p *socketPeer) send(t *testing.T, conn *websocket.Conn, id, typ string, payload json.RawMessage, retry int) socketAck {
	t.Helper()
	env := map[string]any{"type": typ, "envelope_id": id, "payload": payload,
		"accepts_response_payload": typ == "slash_commands", "retry_attempt": retry, "retry_reason": ""}
	if err := conn.WriteJSON(env); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-p.acks:
		if a.EnvelopeID != id {
			t.Fatalf("ack for %q, want %q", a.EnvelopeID, id)
		}
		return a
	case <-time.After(3 * time.Second):
		t.Fatalf("envelope %s not acknowledged within Slack's 3 s", id)
	}
	return socketAck{}
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
	peer := newSocketPeer()
	e := newEnvWith(t, []slacktest.Binder{peer.route})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.RunSocketMode(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunSocketMode: %v", err)
		}
	})

	var conn *websocket.Conn
	select {
	case conn = <-peer.conns:
	case err := <-done:
		t.Fatalf("RunSocketMode returned before connecting: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the bot never opened a Socket Mode connection")
	}

	bad := peer.send(t, conn, "env-bad", "slash_commands", slashPayload(requester, "migrate web-01 to vc-west dsk=thin", "trig.s0"), 0)
	if !strings.Contains(string(bad.Payload), "dsk") || !strings.Contains(string(bad.Payload), `"response_type":"ephemeral"`) {
		t.Fatalf("usage error not in the ack payload: %s", bad.Payload)
	}

	cmd := slashPayload(requester, "migrate web-01,web-02 to vc-west", "trig.s1")
	ack := peer.send(t, conn, "env-1", "slash_commands", cmd, 0)
	if !strings.Contains(string(ack.Payload), "Checking") {
		t.Fatalf("command ack payload %s", ack.Payload)
	}
	peer.send(t, conn, "env-1-retry", "slash_commands", cmd, 1) // Slack re-sends an envelope it thinks was lost
	e.settle()
	all := e.requests()
	if len(all) != 1 {
		t.Fatalf("%d requests stored, want 1", len(all))
	}
	r := all[0]
	if r.MessageTS == "" || len(e.slack.messages()) != 1 {
		t.Fatalf("approval message not posted: %+v", e.slack.messages())
	}

	click := json.RawMessage(clickPayload(approver, testChannel, r.MessageTS, ActionApprove, r.ID, "trig.s2"))
	if a := peer.send(t, conn, "env-2", "interactive", click, 0); len(a.Payload) != 0 && string(a.Payload) != "null" {
		t.Fatalf("interaction ack carries %s", a.Payload)
	}
	e.settle()
	if n := len(e.jobs.published()); n != 2 {
		t.Fatalf("%d jobs published over Socket Mode, want 2", n)
	}
	if got := e.get(r.ID).State; got != "queued" {
		t.Fatalf("request is %s", got)
	}
	if a := e.slack.message(r.MessageTS).actions(); len(a) == 0 || a[0] == ActionApprove {
		t.Fatalf("parent buttons after approval %v", a)
	}
}
