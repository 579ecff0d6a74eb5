package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/xvmbot/xvmbot/approvals"
)

// PathEvents is the Events API Request URL (HTTP mode): Slack posts the app_home_opened
// event there, and its url_verification challenge when the URL is set.
const PathEvents = "/slack/events"

// maxHomeListed caps each part of the App Home tab; the rest are counted, and /xvm list
// shows them all. 10 requests waiting take 20 blocks: the tab stays far below Slack's 100
// (docs/slack-facts.md S1).
const maxHomeListed = 10

// homeWork names the App Home's work in the pool's metrics.
const homeWork = "home"

// serveEvent answers the Events API: the URL's verification challenge, and the events the
// app subscribes to (app_home_opened), acknowledged at once with the work after the ack.
func (b *Bot) serveEvent(w http.ResponseWriter, _ *http.Request, body []byte, start time.Time) {
	defer b.observeAck("event", start)
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		http.Error(w, "malformed event", http.StatusBadRequest)
		return
	}
	if ev.Type == slackevents.URLVerification {
		var ch slackevents.ChallengeResponse
		if err := json.Unmarshal(body, &ch); err != nil {
			http.Error(w, "malformed challenge", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(ch.Challenge))
		return
	}
	b.onEvent(ev)
	w.WriteHeader(http.StatusOK)
}

// onEvent handles one Events API event, from either transport.
func (b *Bot) onEvent(ev slackevents.EventsAPIEvent) {
	if ev.Type != slackevents.CallbackEvent {
		return
	}
	if e, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok && e.Tab == "home" && e.User != "" {
		b.refreshHome(e.User)
	}
}

// refreshHome publishes user's App Home tab after the ack, on the work pool; a pool too
// full to take it leaves the tab as it was (it is published again when next opened).
func (b *Bot) refreshHome(user string) {
	slot, err := b.reserve(homeWork)
	if err != nil {
		b.log.Warn("app home not refreshed: bot overloaded", "user", user, "err", err)
		return
	}
	slot.submit(task{what: homeWork, fn: func(ctx context.Context) { b.publishHome(ctx, user) }})
}

// publishHome builds and publishes user's App Home tab from the stored requests.
func (b *Bot) publishHome(ctx context.Context, user string) {
	all, err := b.svc.Store().List(ctx)
	if err != nil {
		b.log.Error("app home: list requests", "user", user, "err", err)
		return
	}
	waiting, err := b.svc.AwaitingDecision(ctx, user, all)
	if err != nil {
		// Groups that could not be resolved count for nobody; the rest is still right.
		b.log.Warn("app home: approver groups", "user", user, "err", err)
	}
	view := RenderHome(user, all, waiting, b.homeNotes.get(user, b.now()), b.now())
	if err := b.slack.publishView(ctx, user, view); err != nil {
		b.log.Error("app home: views.publish", "user", user, "err", err)
	}
}

// RenderHome renders user's App Home tab: what the bot last had to tell them about a
// click on the tab (note, if any); the requests waiting for their approval, with
// Approve and Reject buttons that decide as on the request's message; their own requests,
// newest first, with Cancel while one can be cancelled; and what runs now. Each part
// lists maxHomeListed and counts the rest.
func RenderHome(user string, all, waiting []*approvals.Request, note string, now time.Time) slack.HomeTabViewRequest {
	newest := func(rs []*approvals.Request) []*approvals.Request {
		out := slices.Clone(rs)
		slices.SortStableFunc(out, func(a, b *approvals.Request) int { return b.CreatedAt.Compare(a.CreatedAt) })
		return out
	}
	var mine, running []*approvals.Request
	for _, r := range all {
		if r.Requester == user {
			mine = append(mine, r)
		}
		switch r.State {
		case approvals.StateApproved, approvals.StateQueued, approvals.StateRunning:
			running = append(running, r)
		}
	}
	var blocks []slack.Block
	if note != "" {
		// The note is the bot's own text (already mrkdwn, its quotes escaped where written).
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipEscaped(note, maxSectionChars)), nil, nil), slack.NewDividerBlock())
	}
	blocks = append(blocks, slack.NewHeaderBlock(plain(fmt.Sprintf("⏳ Waiting for my approval (%d)", len(waiting)))))
	waiting = newest(waiting)
	for i, r := range waiting {
		if i == maxHomeListed {
			break
		}
		blocks = append(blocks,
			slack.NewSectionBlock(mrkdwn(clipEscaped(homeLine(r, now), maxSectionChars)), nil, nil),
			slack.NewActionBlock("home_decide_"+r.ID,
				slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve")).WithStyle(slack.StylePrimary),
				slack.NewButtonBlockElement(ActionReject, r.ID, plain("Reject")).WithStyle(slack.StyleDanger)))
	}
	blocks = append(blocks, homeRest(len(waiting), "Nothing waits for your approval.")...)

	blocks = append(blocks, slack.NewDividerBlock(), slack.NewHeaderBlock(plain(fmt.Sprintf("📋 My requests (%d)", len(mine)))))
	mine = newest(mine)
	for i, r := range mine {
		if i == maxHomeListed {
			break
		}
		var cancel *slack.Accessory
		switch r.State {
		case approvals.StatePending, approvals.StateApproved, approvals.StateQueued, approvals.StateRunning:
			cancel = slack.NewAccessory(slack.NewButtonBlockElement(ActionCancel, r.ID, plain("Cancel")))
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipEscaped(homeLine(r, now), maxSectionChars)), nil, cancel))
	}
	blocks = append(blocks, homeRest(len(mine), "You have asked for no move yet: `/xvm migrate` or `/xvm import`.")...)

	blocks = append(blocks, slack.NewDividerBlock(), slack.NewHeaderBlock(plain(fmt.Sprintf("🔄 Running now (%d)", len(running)))))
	var lines []string
	for i, r := range newest(running) {
		if i == maxHomeListed {
			break
		}
		lines = append(lines, homeLine(r, now))
	}
	if len(lines) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipEscaped(strings.Join(lines, "\n"), maxSectionChars)), nil, nil))
	}
	blocks = append(blocks, homeRest(len(running), "No move runs now.")...)
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// homeLine is one request as the App Home lists it: as /xvm list does.
func homeLine(r *approvals.Request, now time.Time) string { return listLine(r, now) }

// homeRest closes a part of the tab: what was left out and where to see it, or what an
// empty part means; nothing when the part is listed whole.
func homeRest(n int, empty string) []slack.Block {
	switch {
	case n == 0:
		return []slack.Block{slack.NewContextBlock("", mrkdwn(empty))}
	case n > maxHomeListed:
		return []slack.Block{slack.NewContextBlock("", mrkdwn(fmt.Sprintf("Showing the newest %d of %d; `/xvm list` shows every request.", maxHomeListed, n)))}
	}
	return nil
}

// fromHome: the click came from a button of the App Home tab.
func fromHome(cb slack.InteractionCallback) bool {
	return cb.View.Type == slack.VTHomeTab || cb.Container.Type == "view" && cb.View.Type == slack.VTHomeTab
}

// homeInvocation places a click on the App Home tab where the request it names is
// decided: its own message in its own channel (the tab is the clicker's own, and the
// policy still decides who may approve). A request that cannot be read stays unplaced:
// the decision then says it cannot be found.
func (b *Bot) homeInvocation(who invocation, id string) invocation {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := b.svc.Get(ctx, id)
	if err != nil {
		return who
	}
	who.Channel, who.MessageTS = r.Channel, r.MessageTS
	who.Home = true
	return who
}

// homeNoteFor is how long a note stays on a person's Home tab: long enough to be read
// when the tab is published again by the decision that follows it.
const homeNoteFor = 2 * time.Minute

// homeNotes keeps, per person, the last thing the bot had to tell them about a click on
// their Home tab, until homeNoteFor has passed.
type homeNotes struct {
	mu sync.Mutex
	m  map[string]homeNote
}

type homeNote struct {
	text string
	at   time.Time
}

func newHomeNotes() *homeNotes { return &homeNotes{m: map[string]homeNote{}} }

func (h *homeNotes) set(user, text string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m[user] = homeNote{text: text, at: now}
}

// get returns user's note while it is fresh, and forgets the notes that are not.
func (h *homeNotes) get(user string, now time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for u, n := range h.m {
		if now.Sub(n.at) > homeNoteFor {
			delete(h.m, u)
		}
	}
	return h.m[user].text
}
