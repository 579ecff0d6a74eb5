package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"
)

// RunSocketMode connects to Slack over Socket Mode with the app-level token and serves
// slash commands and interactions through the same handlers as the HTTP transport,
// acknowledging each envelope by its id as soon as it is read. It returns when ctx ends
// (nil) or when the connection cannot be made or kept (the error).
func (b *Bot) RunSocketMode(ctx context.Context) error {
	if b.cfg.AppToken.IsZero() {
		return errors.New("socket mode: no app-level token")
	}
	api := slack.New(b.cfg.BotToken.Reveal(), b.slackOptions()...)
	client := socketmode.New(api, socketmode.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return client.RunContext(gctx) })
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case evt := <-client.Events:
				if err := b.onSocketEvent(gctx, client, evt); err != nil {
					return err
				}
			}
		}
	})
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("socket mode: %w", err)
}

func (b *Bot) onSocketEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event) error {
	start := time.Now()
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.log.Debug("socket mode connecting")
	case socketmode.EventTypeConnected:
		b.log.Info("socket mode connected")
	case socketmode.EventTypeHello, socketmode.EventTypeDisconnect:
		b.log.Debug("socket mode", "event", evt.Type)
	case socketmode.EventTypeInvalidAuth:
		return errors.New("slack refused the app-level token (invalid_auth)")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeErrorBadMessage:
		b.log.Warn("socket mode trouble", "event", evt.Type, "detail", fmt.Sprint(evt.Data))
	case socketmode.EventTypeSlashCommand:
		sc, ok := evt.Data.(slack.SlashCommand)
		if !ok || evt.Request == nil {
			return nil
		}
		var payload any
		if raw := b.handleCommand(sc, deliveryKey(sc.TriggerID, evt.Request.Payload), strconv.Itoa(evt.Request.RetryAttempt)); raw != nil {
			payload = raw
		}
		b.ack(ctx, client, evt.Request, payload)
		b.observeAck("command", start)
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || evt.Request == nil {
			return nil
		}
		payload := b.handleInteraction(cb, deliveryKey(cb.TriggerID, evt.Request.Payload), strconv.Itoa(evt.Request.RetryAttempt))
		b.ack(ctx, client, evt.Request, payload)
		b.observeAck("interaction", start)
	case socketmode.EventTypeEventsAPI:
		// The work is taken (its place in the pool reserved) before the ack, as a
		// command's is; it runs after.
		if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			b.onEvent(ev)
		}
		if evt.Request != nil {
			b.ack(ctx, client, evt.Request, nil)
		}
		b.observeAck("event", start)
	default:
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			b.ack(ctx, client, evt.Request, nil) // nothing for us, but Slack wants every envelope acked
		}
	}
	return nil
}

func (b *Bot) ack(ctx context.Context, client *socketmode.Client, req *socketmode.Request, payload any) {
	if err := client.AckCtx(ctx, req.EnvelopeID, payload); err != nil {
		b.log.Error("socket mode ack", "envelope_id", req.EnvelopeID, "err", err)
	}
}
