package bot

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/events"
)

// DeliveryLog remembers which Slack deliveries (slash commands, clicks, modal submissions)
// were handled, for every bot replica and across restarts. *events.Deliveries keeps it in
// a NATS KV bucket.
type DeliveryLog interface {
	// Claim records key for holder and reports whether holder has it: true for the first
	// claim of key, and for a claim repeated by the same holder (whose first answer was
	// lost); false once another holder has it. The log keeps keys for longer than
	// Slack's five-minute replay window.
	Claim(ctx context.Context, key, holder string) (bool, error)
}

var _ DeliveryLog = (*events.Deliveries)(nil)

// How long the shared log is waited for. In the ack it must leave room for a decision's
// own 2 s within Slack's 3; after the ack a delivery waits for the log a while longer,
// so that NATS reconnecting (a second or two after a restart) costs nobody a click.
const (
	claimInAck           = 500 * time.Millisecond
	claimAttempt         = 2 * time.Second
	claimRetryEvery      = 250 * time.Millisecond
	defaultClaimPatience = 20 * time.Second
)

// errDeliveryUnchecked: whether a delivery was handled before could not be checked, so it
// was not handled.
var errDeliveryUnchecked = errors.New("delivery log unavailable")

// deliveryGuard makes each Slack delivery (a trigger id, or a hash of the body) handled
// once: Slack retries, duplicate envelopes and replays of a signed request are caught by
// what this process has seen and, when a DeliveryLog is set, by claims in that log, which
// every replica shares and which outlives a restart.
type deliveryGuard struct {
	log      DeliveryLog // nil: this process only
	patience time.Duration
	logger   *slog.Logger
	now      func() time.Time
	instance string        // names this process's claims in the shared log
	claims   atomic.Uint64 // claims made, for unique holders

	mu   sync.Mutex
	seen map[string]time.Time // keys handled here, and when
}

func newDeliveryGuard(log DeliveryLog, logger *slog.Logger, now func() time.Time) *deliveryGuard {
	return &deliveryGuard{log: log, patience: defaultClaimPatience, logger: logger, now: now, instance: rand.Text(),
		seen: map[string]time.Time{}}
}

// holder names one handling of one delivery in the shared log: unique to this process
// and this delivery, so that a claim retried after its answer was lost is recognised as
// this handling's, not taken for another replica's.
func (g *deliveryGuard) holder() string {
	return fmt.Sprintf("%s-%d", g.instance, g.claims.Add(1))
}

// first reports, within the ack, whether key is seen for the first time. What this
// process has seen answers at once; anything else is claimed for holder in the shared
// log. An error means the log did not answer in time: the delivery is then neither
// handled nor dropped, and later decides.
func (g *deliveryGuard) first(key, holder string) (bool, error) {
	if key == "" {
		return true, nil
	}
	if g.seenRecently(key) {
		return false, nil
	}
	if g.log == nil {
		return g.remember(key), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), claimInAck)
	defer cancel()
	first, err := g.log.Claim(ctx, key, holder)
	if err != nil {
		return false, fmt.Errorf("%w: %w", errDeliveryUnchecked, err)
	}
	// The shared log decides, not this process's memory: it may already hold key from a
	// Slack retry that found this very claim.
	g.remember(key)
	return first, nil
}

// later claims key for holder after the ack, retrying while the log does not answer, for
// up to patience. If it never answers the delivery is not handled and the caller says
// so: a request made twice cannot be taken back, while a refusal only costs the person a
// retry (and NATS trouble that keeps the log away keeps the request records away too).
func (g *deliveryGuard) later(ctx context.Context, key, holder string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, g.patience)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, claimAttempt)
		first, err := g.log.Claim(actx, key, holder)
		acancel()
		if err == nil {
			g.remember(key)
			return first, nil
		}
		t := time.NewTimer(claimRetryEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			g.logger.Error("delivery not handled: the delivery log did not answer", "err", err)
			return false, fmt.Errorf("%w: %w", errDeliveryUnchecked, err)
		case <-t.C:
		}
	}
}

// firstHere reports whether this process sees key for the first time, and remembers it.
func (g *deliveryGuard) firstHere(key string) bool {
	return key == "" || g.remember(key)
}

// claim claims key for holder in the shared log after the ack (see later); without a
// shared log, this process's memory has decided already.
func (g *deliveryGuard) claim(ctx context.Context, key, holder string) (bool, error) {
	if g.log == nil || key == "" {
		return true, nil
	}
	return g.later(ctx, key, holder)
}

func (g *deliveryGuard) seenRecently(key string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.seen[key]
	return ok && now.Sub(at) < dedupeFor
}

// remember records key as seen by this process; it reports false if it already was.
func (g *deliveryGuard) remember(key string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if at, ok := g.seen[key]; ok && now.Sub(at) < dedupeFor {
		return false
	}
	if len(g.seen) > 1024 {
		for k, at := range g.seen {
			if now.Sub(at) >= dedupeFor {
				delete(g.seen, k)
			}
		}
	}
	g.seen[key] = now
	return true
}

// uncheckedText tells a person their command or click was not acted on because the bot
// could not check that it was not a repeat; outcome says what that leaves as it was.
func uncheckedText(outcome string) string {
	return strings.Join(nonEmpty("xvmbot could not check that this was not already done: its store (NATS) did not answer, so it did nothing.",
		outcome, "Please try again in a minute."), " ")
}

// handleCommand is what both transports do with a slash command: handle it once, however
// often Slack delivers it, and return the ack's body (nil: an empty ack). The ack is
// decided from what this process has seen; the shared log is asked after the ack, by
// the verbs that store something, before they do (a write to the log is a disk sync on
// an embedded NATS: it stays off the ack's path, which answers, checks and reads only).
func (b *Bot) handleCommand(sc slack.SlashCommand, key, retry string) json.RawMessage {
	if !b.deliveries.firstHere(key) {
		b.log.Info("duplicate slash command ignored", "retry", retry, "user", sc.UserID)
		return nil
	}
	holder := b.deliveries.holder()
	once := func(ctx context.Context, who invocation, outcome string) bool {
		first, err := b.deliveries.claim(ctx, key, holder)
		switch {
		case err != nil:
			b.m.commands.WithLabelValues(verbLabel(firstWord(sc.Text)), outcomeUnavailable).Inc()
			b.tell(ctx, who, notice(uncheckedText(outcome)))
			return false
		case !first:
			b.log.Info("replayed slash command ignored: another delivery of it was handled", "retry", retry, "user", sc.UserID)
			return false
		}
		return true
	}
	return b.commandAck(b.onCommand(sc, once), sc)
}

// handleInteraction is what both transports do with an interaction: handle it once and
// return the ack's payload (nil: an empty ack). Option requests change nothing and repeat
// as people type: they are never deduplicated. A click whose delivery the shared log does
// not confirm in the ack waits for it after the ack; a modal submission, which must be
// answered in the ack, is refused in the dialog and can be submitted again.
func (b *Bot) handleInteraction(cb slack.InteractionCallback, key, retry string) any {
	if cb.Type == slack.InteractionTypeBlockSuggestion {
		return b.onInteraction(cb)
	}
	if cb.Type == slack.InteractionTypeBlockActions {
		// A button's decision is idempotent in the record itself (an approval already
		// counted, a request already decided), so the ack asks only this process's memory
		// and stays fast; after the ack, the shared log says whether another delivery of
		// this click was handled (a replay to another replica, or after a restart), and
		// then nothing more is done or said.
		if !b.deliveries.firstHere(key) {
			b.log.Info("duplicate interaction ignored", "retry", retry, "user", cb.User.ID)
			return nil
		}
		holder := b.deliveries.holder()
		b.onClickDelivery(cb, func(ctx context.Context) bool {
			first, err := b.deliveries.claim(ctx, key, holder)
			if err == nil && !first {
				b.log.Info("replayed click ignored: another delivery of it was handled", "retry", retry, "user", cb.User.ID)
				return true
			}
			return false // (unknown: the decision is idempotent, so it is said)
		})
		return nil
	}
	holder := b.deliveries.holder()
	first, err := b.deliveries.first(key, holder)
	switch {
	case err != nil:
		return b.refuseUnchecked(cb)
	case !first:
		b.log.Info("duplicate interaction ignored", "retry", retry, "user", cb.User.ID)
		return nil
	}
	return b.onInteraction(cb)
}

// refuseUnchecked answers, in the dialog, a modal submission that was not handled because
// the delivery log did not answer in the ack.
func (b *Bot) refuseUnchecked(cb slack.InteractionCallback) any {
	b.log.Error("modal submission not handled: the delivery log did not answer", "user", cb.User.ID, "callback_id", cb.View.CallbackID)
	switch cb.View.CallbackID {
	case callbackReject:
		return viewErrors(map[string]string{blockReason: uncheckedText("Your rejection was not recorded.")})
	case callbackWizard:
		return viewErrors(map[string]string{wizVMs: uncheckedText("Nothing was stored.")})
	}
	return nil
}
