package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"
)

// slackAPI is the part of the Slack Web API the bot calls.
type slackAPI interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slack.MsgOption) (string, error)
	AuthTestContext(ctx context.Context) (*slack.AuthTestResponse, error)
	OpenViewContext(ctx context.Context, triggerID string, view slack.ModalViewRequest) (*slack.ViewResponse, error)
	UpdateViewContext(ctx context.Context, view slack.ModalViewRequest, externalID, hash, viewID string) (*slack.ViewResponse, error)
	OpenConversationContext(ctx context.Context, params *slack.OpenConversationParameters) (*slack.Channel, bool, bool, error)
	PublishViewContext(ctx context.Context, req slack.PublishViewContextRequest) (*slack.ViewResponse, error)
}

var _ slackAPI = (*slack.Client)(nil)

// Retry bounds for Slack calls. A final message must not be dropped because Slack asked us
// to slow down, but a handler must not wait forever either.
const (
	slackMaxAttempts = 6
	slackMaxWait     = 30 * time.Second // longest single Retry-After honoured
	slackServerRetry = 500 * time.Millisecond
)

// slackClient wraps the Web API: it counts every attempt, honours 429 Retry-After and
// retries 5xx a bounded number of times. It never sees or logs a token: the token lives
// inside *slack.Client.
type slackClient struct {
	api     slackAPI
	webhook *http.Client // response_url posts
	m       *metrics
	log     *slog.Logger
	// edits is the app's chat.update budget (nil: none). Slack allows about 50 edits a
	// minute per app and workspace (Tier 3); a wave's progress messages would ask for
	// several times that, and every 429 stalls the event that caused it.
	edits *rate.Limiter
	// posts paces chat.postMessage per channel (nil: not paced).
	posts *channelPacer
	// now is the clock the edit budget refills by; wait pauses before a retry, or ends
	// early with ctx's error. Tests give both a clock of their own.
	now  func() time.Time
	wait func(ctx context.Context, d time.Duration) error
}

func newSlackClient(api slackAPI, m *metrics, logger *slog.Logger, edits *rate.Limiter) *slackClient {
	return &slackClient{api: api, webhook: &http.Client{Timeout: 20 * time.Second}, m: m, log: logger, edits: edits,
		now: time.Now, wait: sleep}
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// message is the text fallback and Block Kit blocks of one message.
type message struct {
	Text   string
	Blocks []slack.Block
}

func (msg message) options() []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(msg.Text, false)}
	if len(msg.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(msg.Blocks...))
	}
	return opts
}

// post sends a message to a channel, in the thread of threadTS when it is set, and returns
// its ts. Posts are paced per channel; one in a thread leaves room for postFirst's.
func (c *slackClient) post(ctx context.Context, channel, threadTS string, msg message) (string, error) {
	return c.postPaced(ctx, channel, threadTS, msg, threadTS == "")
}

// postFirst is post for what people wait on (a final reply): it goes before the posts of
// threads waiting for the channel's pace.
func (c *slackClient) postFirst(ctx context.Context, channel, threadTS string, msg message) (string, error) {
	return c.postPaced(ctx, channel, threadTS, msg, true)
}

func (c *slackClient) postPaced(ctx context.Context, channel, threadTS string, msg message, first bool) (string, error) {
	if err := c.posts.take(ctx, channel, first); err != nil {
		return "", fmt.Errorf("slack chat.postMessage: %w", err)
	}
	opts := msg.options()
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	var ts string
	err := c.call(ctx, "chat.postMessage", func() (err error) {
		_, ts, err = c.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

// canEdit takes one edit from the budget if that leaves at least keep in it, and reports
// whether it did; the caller then sends the edit (edit).
func (c *slackClient) canEdit(keep int) bool {
	if c.edits == nil {
		return true
	}
	now := c.now()
	return c.edits.TokensAt(now) >= float64(1+keep) && c.edits.AllowN(now, 1)
}

// hasRoom reports whether the budget has room for an edit now, without taking it.
func (c *slackClient) hasRoom() bool { return c.edits == nil || c.edits.TokensAt(c.now()) >= 1 }

// edit replaces the message at ts; the caller has taken its place in the budget (canEdit).
func (c *slackClient) edit(ctx context.Context, channel, ts string, msg message) error {
	opts := msg.options()
	if len(msg.Blocks) == 0 {
		// Without blocks Slack would keep the old ones, buttons included.
		opts = append(opts, slack.MsgOptionBlocks())
	}
	return c.call(ctx, "chat.update", func() error {
		_, _, _, err := c.api.UpdateMessageContext(ctx, channel, ts, opts...)
		return err
	})
}

// ephemeral shows a message to one user in a channel.
func (c *slackClient) ephemeral(ctx context.Context, channel, user string, msg message) error {
	return c.call(ctx, "chat.postEphemeral", func() error {
		_, err := c.api.PostEphemeralContext(ctx, channel, user, msg.options()...)
		return err
	})
}

// respond answers privately through a response_url, which works where the bot is not a
// channel member (chat.postEphemeral does not). Slack allows 5 uses in 30 minutes.
func (c *slackClient) respond(ctx context.Context, responseURL string, msg message) error {
	wm := &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: msg.Text}
	if len(msg.Blocks) > 0 {
		wm.Blocks = &slack.Blocks{BlockSet: msg.Blocks}
	}
	return c.call(ctx, "response_url", func() error {
		return slack.PostWebhookCustomHTTPContext(ctx, responseURL, c.webhook, wm)
	})
}

// openView opens a modal with the trigger of a command or click (valid for 3 s, so it is
// not retried after a rate limit that would outlive it) and returns the view's id.
func (c *slackClient) openView(ctx context.Context, triggerID string, view slack.ModalViewRequest) (string, error) {
	var id string
	err := c.callOnce("views.open", func() error {
		resp, err := c.api.OpenViewContext(ctx, triggerID, view)
		if resp != nil {
			id = resp.ID
		}
		return err
	})
	return id, err
}

// updateView replaces an open modal; hash (if set) refuses the update when the person
// changed the view meanwhile.
func (c *slackClient) updateView(ctx context.Context, viewID, hash string, view slack.ModalViewRequest) error {
	return c.call(ctx, "views.update", func() error {
		_, err := c.api.UpdateViewContext(ctx, view, "", hash, viewID)
		return err
	})
}

// publishView publishes user's App Home tab (views.publish).
func (c *slackClient) publishView(ctx context.Context, user string, view slack.HomeTabViewRequest) error {
	return c.call(ctx, "views.publish", func() error {
		_, err := c.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view})
		return err
	})
}

// callOnce is one attempt of fn, counted like call's.
func (c *slackClient) callOnce(method string, fn func() error) error {
	err := fn()
	if err == nil {
		c.m.apiCalls.WithLabelValues(method, "ok").Inc()
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		c.m.apiCalls.WithLabelValues(method, "ratelimited").Inc()
	} else {
		c.m.apiCalls.WithLabelValues(method, "error").Inc()
	}
	return fmt.Errorf("slack %s: %w", method, err)
}

// openDM opens (or finds) the direct message channel between the bot and user.
func (c *slackClient) openDM(ctx context.Context, user string) (string, error) {
	var id string
	err := c.call(ctx, "conversations.open", func() error {
		ch, _, _, err := c.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
		if ch != nil {
			id = ch.ID
		}
		return err
	})
	return id, err
}

// authTest checks the bot token.
func (c *slackClient) authTest(ctx context.Context) (*slack.AuthTestResponse, error) {
	var resp *slack.AuthTestResponse
	err := c.call(ctx, "auth.test", func() (err error) {
		resp, err = c.api.AuthTestContext(ctx)
		return err
	})
	return resp, err
}

// call runs fn, retrying rate limits (after Slack's Retry-After) and server errors.
func (c *slackClient) call(ctx context.Context, method string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			c.m.apiCalls.WithLabelValues(method, "ok").Inc()
			return nil
		}
		var wait time.Duration
		var rl *slack.RateLimitedError
		var sc slack.StatusCodeError
		switch {
		case errors.As(err, &rl):
			c.m.apiCalls.WithLabelValues(method, "ratelimited").Inc()
			wait = min(max(rl.RetryAfter, 100*time.Millisecond), slackMaxWait)
		case errors.As(err, &sc) && sc.Code >= 500:
			c.m.apiCalls.WithLabelValues(method, "error").Inc()
			wait = slackServerRetry * time.Duration(attempt)
		default:
			c.m.apiCalls.WithLabelValues(method, "error").Inc()
			return fmt.Errorf("slack %s: %w", method, err)
		}
		if attempt >= slackMaxAttempts {
			return fmt.Errorf("slack %s: giving up after %d attempts: %w", method, attempt, err)
		}
		c.log.Debug("slack call retried", "method", method, "attempt", attempt, "wait", wait, "err", err)
		if err := c.wait(ctx, wait); err != nil {
			return fmt.Errorf("slack %s: %w", method, err)
		}
	}
}
