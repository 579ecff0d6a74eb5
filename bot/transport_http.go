package bot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/slack-go/slack"
)

// Paths of the HTTP transport, as configured in the Slack app (Request URLs).
const (
	PathCommands     = "/slack/commands"
	PathInteractions = "/slack/interactions"
	// PathOptions is the Options Load URL: Slack asks it for the choices of the wizard's
	// searchable selects (block_suggestion).
	PathOptions = "/slack/options"
)

// Handler serves Slack's signed HTTP requests: slash commands at PathCommands,
// interactions at PathInteractions and option requests at PathOptions. Every request must carry a valid v0 signature made
// with the signing secret and a timestamp less than five minutes old; otherwise it is
// answered 401 and nothing is done. Valid requests are acknowledged at once; the work
// follows on the Bot's work pool, which Run waits for (or is refused at once, in the ack
// or an ephemeral message, when the pool is full). Retries (X-Slack-Retry-Num) and duplicates
// of a request already handled are acknowledged and ignored.
func (b *Bot) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+PathCommands, b.verified(b.serveCommand))
	mux.Handle("POST "+PathInteractions, b.verified(b.serveInteraction))
	mux.Handle("POST "+PathOptions, b.verified(b.serveInteraction))
	mux.Handle("POST "+PathEvents, b.verified(b.serveEvent))
	return mux
}

// verified checks the signature over the raw body, then hands the request (with its body
// restored) and the body to next.
func (b *Bot) verified(next func(w http.ResponseWriter, r *http.Request, body []byte, start time.Time)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		sv, err := slack.NewSecretsVerifier(r.Header, b.cfg.SigningSecret.Reveal())
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		if err != nil {
			b.log.Warn("slack request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next(w, r, body, start)
	}
}

func (b *Bot) serveCommand(w http.ResponseWriter, r *http.Request, body []byte, start time.Time) {
	defer b.observeAck("command", start)
	sc, err := slack.SlashCommandParse(r)
	if err != nil {
		http.Error(w, "malformed slash command", http.StatusBadRequest)
		return
	}
	reply := b.handleCommand(sc, deliveryKey(sc.TriggerID, body), r.Header.Get("X-Slack-Retry-Num"))
	if reply == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(reply)
}

func (b *Bot) serveInteraction(w http.ResponseWriter, r *http.Request, body []byte, start time.Time) {
	defer b.observeAck("interaction", start)
	cb, err := parseInteraction(r)
	if err != nil {
		http.Error(w, "malformed interaction payload", http.StatusBadRequest)
		return
	}
	reply := b.handleInteraction(cb, deliveryKey(cb.TriggerID, body), r.Header.Get("X-Slack-Retry-Num"))
	if reply == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	raw, err := json.Marshal(reply)
	if err != nil {
		b.log.Error("encode interaction ack", "type", cb.Type, "err", err)
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
}

// parseInteraction decodes an interaction payload as slack.InteractionCallbackParse does,
// except for the message the button was on (message, original_message), which is kept
// undecoded: xvmbot never reads it (a click is checked against the stored request), and
// decoding its Block Kit was most of the CPU that acknowledging a click cost.
func parseInteraction(r *http.Request) (slack.InteractionCallback, error) {
	if err := r.ParseForm(); err != nil {
		return slack.InteractionCallback{}, err
	}
	payload := r.PostForm.Get("payload")
	if payload == "" {
		return slack.InteractionCallback{}, errors.New("payload is empty")
	}
	type fields slack.InteractionCallback // the fields without their UnmarshalJSON
	var tmp struct {
		*fields
		Type            slack.InteractionType `json:"type"`
		Message         json.RawMessage       `json:"message"`          // shadows fields.Message
		OriginalMessage json.RawMessage       `json:"original_message"` // shadows fields.OriginalMessage
	}
	var cb slack.InteractionCallback
	tmp.fields = (*fields)(&cb)
	if err := json.Unmarshal([]byte(payload), &tmp); err != nil {
		return slack.InteractionCallback{}, err
	}
	cb.Type = tmp.Type
	// What (*slack.InteractionCallback).UnmarshalJSON does after decoding the fields.
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if len(cb.RawState) > 0 {
			if err := json.Unmarshal(cb.RawState, &cb.BlockActionState); err != nil {
				return slack.InteractionCallback{}, err
			}
		}
	case slack.InteractionTypeDialogSubmission:
		cb.State = string(cb.RawState)
	}
	return cb, nil
}

// ackReply is the body of a slash command ack that answers the user privately.
type ackReply struct {
	ResponseType string        `json:"response_type"`
	Text         string        `json:"text"`
	Blocks       []slack.Block `json:"blocks,omitempty"`
}

// maxAckBytes keeps an ack under Socket Mode's 20 KB limit, above which Slack drops it silently.
const maxAckBytes = 19 * 1024

// commandAck encodes the immediate reply to a command. A reply too big for an ack is sent
// with chat.postEphemeral instead.
func (b *Bot) commandAck(msg *message, sc slack.SlashCommand) json.RawMessage {
	if msg == nil {
		return nil
	}
	raw, err := json.Marshal(ackReply{ResponseType: slack.ResponseTypeEphemeral, Text: msg.Text, Blocks: msg.Blocks})
	if err == nil && len(raw) <= maxAckBytes {
		return raw
	}
	who := invocation{User: sc.UserID, Channel: sc.ChannelID}
	m := *msg
	if err := b.spawn(workReply, func(ctx context.Context) { b.tell(ctx, who, m) }); err != nil {
		b.log.Warn("reply too big for the ack not sent", "user", who.User, "err", err)
		return b.commandAck(replyOf(notice(refusalText(err, ""))), sc)
	}
	return nil
}

func (b *Bot) observeAck(kind string, start time.Time) {
	b.m.ack.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}

// deliveryKey identifies one user action across Slack's retries: its trigger id, or the
// hash of the payload when there is none.
func deliveryKey(triggerID string, payload []byte) string {
	if triggerID != "" {
		return "t:" + triggerID
	}
	sum := sha256.Sum256(payload)
	return "h:" + hex.EncodeToString(sum[:])
}
