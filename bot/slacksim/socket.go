package slacksim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// socketConn is the app's Socket Mode connection.
type socketConn struct {
	conn    *websocket.Conn
	writeMu sync.Mutex
	mu      sync.Mutex
	acks    map[string]chan json.RawMessage
	done    chan struct{}
	once    sync.Once
}

func (s *socketConn) close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.conn.Close()
	})
}

// UseSocketMode delivers commands and clicks as Socket Mode envelopes over the websocket the
// app opens through apps.connections.open.
func (w *Workspace) UseSocketMode() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.httpURL, w.viaSocket = "", true
}

func (w *Workspace) socketMode() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.viaSocket
}

// SocketConnected reports whether the app holds a Socket Mode connection.
func (w *Workspace) SocketConnected() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.socket != nil
}

func (w *Workspace) connectionsOpen(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, map[string]any{"ok": true, "url": "ws://" + w.srv.ServerAddr + "/socket"})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (w *Workspace) socketHandler(rw http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(rw, r, nil)
	if err != nil {
		return
	}
	sc := &socketConn{conn: c, acks: map[string]chan json.RawMessage{}, done: make(chan struct{})}
	hello := map[string]any{"type": "hello", "num_connections": 1,
		"connection_info": map[string]string{"app_id": "A0XVM"},
		"debug_info":      map[string]any{"host": "slacksim", "approximate_connection_time": 3600}}
	if err := sc.write(hello); err != nil {
		_ = c.Close()
		return
	}
	w.mu.Lock()
	if old := w.socket; old != nil {
		old.close()
	}
	w.socket = sc
	w.notify()
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.socket == sc {
			w.socket = nil
		}
		w.mu.Unlock()
		sc.close()
	}()
	for {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := c.ReadJSON(&ack); err != nil {
			return
		}
		sc.mu.Lock()
		ch, ok := sc.acks[ack.EnvelopeID]
		delete(sc.acks, ack.EnvelopeID)
		sc.mu.Unlock()
		if ok {
			ch <- ack.Payload
		}
	}
}

func (s *socketConn) write(v any) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return s.conn.WriteJSON(v)
}

// sendEnvelope sends one envelope and waits for the app's ack (with its payload, if any).
func (w *Workspace) sendEnvelope(ctx context.Context, typ string, payload any, channel, user string) (Reply, error) {
	w.mu.Lock()
	w.envSeq++
	id := fmt.Sprintf("env-%d-%d", time.Now().UnixNano(), w.envSeq)
	w.mu.Unlock()
	start := time.Now()
	p, err := w.Envelope(ctx, id, typ, payload, 0)
	if err != nil {
		return Reply{}, err
	}
	rep := Reply{Status: http.StatusOK, Body: string(p), Latency: time.Since(start)}
	if len(p) > 0 && string(p) != "null" {
		w.recordSentAck(p)
		w.recordAck(channel, user, p)
	}
	return rep, nil
}

// Envelope sends one raw Socket Mode envelope (type slash_commands, interactive, …) with
// the given id and retry attempt, and returns the payload of the app's ack once the app
// acknowledged that id. Tests use it for envelopes Slack re-sends; an ack that never comes
// ends with ctx.
func (w *Workspace) Envelope(ctx context.Context, id, typ string, payload any, retryAttempt int) (json.RawMessage, error) {
	if err := w.WaitFor(ctx, w.SocketConnected); err != nil {
		return nil, fmt.Errorf("slacksim: app never opened a Socket Mode connection: %w", err)
	}
	w.mu.Lock()
	sc := w.socket
	w.mu.Unlock()

	ch := make(chan json.RawMessage, 1)
	sc.mu.Lock()
	sc.acks[id] = ch
	sc.mu.Unlock()
	env := map[string]any{"type": typ, "envelope_id": id, "payload": payload,
		"accepts_response_payload": typ == "slash_commands", "retry_attempt": retryAttempt, "retry_reason": ""}
	if err := sc.write(env); err != nil {
		return nil, fmt.Errorf("slacksim: send envelope: %w", err)
	}
	select {
	case p := <-ch:
		return p, nil
	case <-sc.done:
		return nil, errors.New("slacksim: socket closed before the envelope was acknowledged")
	case <-ctx.Done():
		return nil, fmt.Errorf("slacksim: envelope %s not acknowledged: %w", id, ctx.Err())
	}
}
