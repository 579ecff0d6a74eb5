package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EventHandler handles one event on the bot side. Delivery is at least once: the same
// event (same ID) can arrive again after a restart or a nak, so handlers dedupe by ID.
type EventHandler = func(ctx context.Context, e Event) error

const (
	// eventsPrefetch is small on purpose: the server hands out one event at a time
	// (botMaxAckPending) anyway.
	eventsPrefetch = 16
	// eventRetryBase and eventRetryMax space out redeliveries of an event the bot could
	// not handle (Slack down, rate limited) instead of spinning on it.
	eventRetryBase = time.Second
	eventRetryMax  = 30 * time.Second
	// eventHeartbeatMost is how long a bot says it is still handling one event: a
	// handler stuck longer (a Slack call that never returns) lets the event go to
	// another bot after EventAckWait, as it would if the bot had died.
	eventHeartbeatMost = 2 * time.Minute
)

// RunEvents feeds the bot's durable consumer to h until ctx is done. Events published
// while the bot was down are delivered when it starts; acked events are not delivered
// again. h returning nil acks the event; an error naks it so it comes back (after a
// short, growing delay, at most botMaxDeliver times); a malformed event is terminated.
// Events are handed over one at a time, in stream order, so a request's events arrive
// in the order they were published. Returns nil when ctx is done.
func (b *Bus) RunEvents(ctx context.Context, h EventHandler) error {
	if h == nil {
		return errors.New("run events: nil handler")
	}
	if b.bot == nil {
		return errors.New("run events: this bus was opened for a worker, which does not read events")
	}
	it, err := b.bot.Messages(jetstream.PullMaxMessages(eventsPrefetch))
	if err != nil {
		return fmt.Errorf("run events: %w", err)
	}
	defer it.Stop()
	keepCtx, stopKeeping := context.WithCancel(ctx)
	keeping := make(chan struct{})
	go func() { defer close(keeping); b.keepMemoryBuckets(keepCtx, memoryBucketCheckEvery) }()
	defer func() { stopKeeping(); <-keeping }()
	b.logger.InfoContext(ctx, "event consumer started", "consumer", ConsumerBot)
	defer b.logger.Info("event consumer stopped", "consumer", ConsumerBot)

	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		switch {
		case ctx.Err() != nil:
			if msg != nil {
				b.settle(ctx, b.logger, kindEvent, outcomeNak, func(context.Context) error { return msg.Nak() })
			}
			return nil
		case errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConnectionClosed) ||
			errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("run events: %w", err)
		case err != nil:
			// Missing heartbeats while NATS is away and the like: the iterator re-pulls
			// by itself; pace the log lines.
			b.logger.WarnContext(ctx, "next event", "err", err)
			if !sleepCtx(ctx, fetchErrorBackoff) {
				return nil
			}
			continue
		}
		b.handleEvent(ctx, msg, h)
	}
}

func (b *Bus) handleEvent(ctx context.Context, msg jetstream.Msg, h EventHandler) {
	var attempt uint64
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	log := b.logger.With("subject", msg.Subject(), "attempt", attempt)
	var e Event
	if err := json.Unmarshal(msg.Data(), &e); err != nil {
		log.ErrorContext(ctx, "malformed event dropped", "err", err, "bytes", len(msg.Data()))
		b.settle(ctx, log, kindEvent, outcomeTerm, func(context.Context) error { return msg.TermWithReason("malformed event json") })
		return
	}
	log = log.With("event_id", e.ID, "event_type", string(e.Type), "job_id", e.JobID, "request_id", e.RequestID)

	err := b.handleWithHeartbeat(ctx, log, msg, h, e)
	switch {
	case err == nil:
		b.settle(ctx, log, kindEvent, outcomeAck, msg.DoubleAck)
	case ctx.Err() != nil:
		// Shutdown: hand it back now so the next bot gets it at once, not after AckWait.
		log.InfoContext(ctx, "event handed back at shutdown", "err", err)
		b.settle(ctx, log, kindEvent, outcomeNak, func(context.Context) error { return msg.Nak() })
	default:
		delay := min(eventRetryBase*time.Duration(max(attempt, 1)), eventRetryMax)
		if attempt >= botMaxDeliver {
			log.ErrorContext(ctx, "event dropped after its last attempt", "err", err, "max_deliver", botMaxDeliver)
		} else {
			log.WarnContext(ctx, "event handler failed; will be redelivered", "err", err, "delay", delay)
		}
		b.settle(ctx, log, kindEvent, outcomeNak, func(context.Context) error { return msg.NakWithDelay(delay) })
	}
}

// handleWithHeartbeat calls h with e, telling NATS every EventAckWait/3, for at most
// eventHeartbeatMost, that msg is still being handled: the short EventAckWait that lets a
// dead bot's event move on in seconds must not take a live bot's event while Slack is slow.
func (b *Bus) handleWithHeartbeat(ctx context.Context, log *slog.Logger, msg jetstream.Msg, h EventHandler, e Event) error {
	hbCtx, cancel := context.WithTimeout(ctx, eventHeartbeatMost)
	defer cancel()
	defer heartbeat(hbCtx, log, "event heartbeat", b.cfg.EventAckWait/3, func() error { return msg.InProgress() })()
	return callEventHandler(ctx, h, e)
}

func callEventHandler(ctx context.Context, h EventHandler, e Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("event handler panic: %v", r)
		}
	}()
	return h(ctx, e)
}
