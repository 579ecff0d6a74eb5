package slacksim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestWebAPIKeepsTheChannel(t *testing.T) {
	w := New()
	defer w.Close()
	w.AddUser("U1", "alice")
	api := slack.New("xoxb-test", slack.OptionAPIURL(w.APIURL()))

	_, ts, err := api.PostMessage("C1", slack.MsgOptionText("hello <@U1>", false))
	if err != nil {
		t.Fatal(err)
	}
	_, ts2, err := api.PostMessage("C1", slack.MsgOptionText("second", false))
	if err != nil || ts2 == ts {
		t.Fatalf("timestamps must be unique: %s %s %v", ts, ts2, err)
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("in thread", false), slack.MsgOptionTS(ts)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("edited", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessage("C1", "999.000", slack.MsgOptionText("x", false)); err == nil {
		t.Fatal("updating a message that does not exist must fail")
	}
	m, _ := w.Message(ts)
	if m.Text != "edited" || m.Edits != 1 || len(w.Channel("C1")) != 2 || len(w.Thread(ts)) != 1 {
		t.Fatalf("channel state wrong: %+v, %d top-level, %d in thread", m, len(w.Channel("C1")), len(w.Thread(ts)))
	}
	if got := w.Plain(w.Channel("C1")[1]); got != "second" {
		t.Fatalf("plain = %q", got)
	}

	w.Throttle("chat.update", 1, time.Second)
	_, _, _, err = api.UpdateMessage("C1", ts, slack.MsgOptionText("again", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("want a 429 with Retry-After 1s, got %v", err)
	}
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("again", false)); err != nil {
		t.Fatalf("throttle must end: %v", err)
	}
}

func TestSignedDeliveryVerifies(t *testing.T) {
	const secret = "s3cr3t"
	var got slack.SlashCommand
	app := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sv, err := slack.NewSecretsVerifier(r.Header, secret)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		_, _ = sv.Write(body)
		if err := sv.Ensure(); err != nil {
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		got, _ = slack.SlashCommandParse(r)
		_, _ = rw.Write([]byte(`{"text":"on it"}`))
	}))
	defer app.Close()
	w := New()
	defer w.Close()
	w.UseHTTP(app.URL, secret)
	rep, err := w.Command(context.Background(), "U1", "C1", "migrate web-01 to vc-west")
	if err != nil || rep.Status != 200 {
		t.Fatalf("delivery: %v %+v", err, rep)
	}
	if got.Text != "migrate web-01 to vc-west" || got.UserID != "U1" || got.ResponseURL == "" {
		t.Fatalf("app saw %+v", got)
	}
	if e := w.Ephemerals("U1"); len(e) != 1 || e[0].Text != "on it" {
		t.Fatalf("ack not recorded as ephemeral: %+v", e)
	}
	// A forged signature is what the app must reject.
	rep, err = w.Deliver(context.Background(), "/slack/commands", "text=x", Sign("wrong", time.Now(), "text=x"))
	if err != nil || rep.Status != http.StatusUnauthorized {
		t.Fatalf("forged request: %v %+v", err, rep)
	}
	// response_url posts become ephemeral replies.
	resp, err := http.Post(got.ResponseURL, "application/json", strings.NewReader(`{"text":"later"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e := w.Ephemerals("U1"); len(e) != 2 || e[1].Text != "later" {
		t.Fatalf("response_url not recorded: %+v", e)
	}
}

func TestSocketModeEnvelopes(t *testing.T) {
	w := New()
	defer w.Close()
	w.UseSocketMode()
	api := slack.New("xoxb-test", slack.OptionAPIURL(w.APIURL()), slack.OptionAppLevelToken("xapp-test"))
	sm := socketmode.New(api)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: both goroutines end with ctx
	defer cancel()
	wg.Add(2)
	go func() { defer wg.Done(); _ = sm.RunContext(ctx) }()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sm.Events:
				if ev.Type == socketmode.EventTypeSlashCommand {
					cmd, _ := ev.Data.(slack.SlashCommand)
					sm.Ack(*ev.Request, map[string]string{"text": "got " + cmd.Text})
				}
			}
		}
	}()
	rep, err := w.Command(ctx, "U1", "C1", "help")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]string
	if err := json.Unmarshal([]byte(rep.Body), &p); err != nil || p["text"] != "got help" {
		t.Fatalf("ack payload %q: %v", rep.Body, err)
	}
}

func TestFailingMethodAnswersUntilRecovered(t *testing.T) {
	w := New()
	defer w.Close()
	w.SetGroup("S1", "U1")
	api := slack.New("xoxb-test", slack.OptionAPIURL(w.APIURL()))
	w.Fail("usergroups.users.list")
	if m, err := api.GetUserGroupMembers("S1"); err == nil {
		t.Fatalf("a failing method answered %v", m)
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("other methods still answer", false)); err != nil {
		t.Fatal(err)
	}
	w.Recover("usergroups.users.list")
	if m, err := api.GetUserGroupMembers("S1"); err != nil || len(m) != 1 || m[0] != "U1" {
		t.Fatalf("after Recover: %v %v", m, err)
	}
}

func TestSentKeepsEveryVersionAndRefusals(t *testing.T) {
	w := New()
	defer w.Close()
	w.RemoveApp("C0OUT")
	api := slack.New("xoxb-test", slack.OptionAPIURL(w.APIURL()))
	btn := slack.NewButtonBlockElement("xvm_approve", "r1", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false))
	_, ts, err := api.PostMessage("C1", slack.MsgOptionText("first", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("req", btn)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("second", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeral("C0OUT", "U1", slack.MsgOptionText("hidden", false)); err == nil || err.Error() != "channel_not_found" {
		t.Fatalf("ephemeral in a channel without the app: %v", err)
	}
	sent := w.Sent()
	if len(sent) != 2 || sent[0].Method != "chat.postMessage" || sent[0].Text != "first" || sent[1].Method != "chat.update" || sent[1].Text != "second" {
		t.Fatalf("sent = %+v", sent)
	}
	first := Message{Text: sent[0].Text, Blocks: sent[0].Blocks}
	if a := first.ActionIDs(); len(a) != 1 || a[0] != "xvm_approve" || !strings.Contains(first.Words(), "Approve") {
		t.Fatalf("actions %v, words %q", a, first.Words())
	}
	if m, _ := w.Message(ts); len(m.ActionIDs()) != 0 || len(w.Public()) != 1 {
		t.Fatalf("the edit kept buttons %v, or public messages are %d", m.ActionIDs(), len(w.Public()))
	}

	w.Throttle("chat.postMessage", 1, 0)
	_, _, err = api.PostMessage("C1", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 0 || w.RateLimited("chat.postMessage") != 1 || w.Calls("chat.postMessage") != 2 {
		t.Fatalf("want a 429 with Retry-After 0 counted, got %v (%d limited, %d calls)", err, w.RateLimited("chat.postMessage"), w.Calls("chat.postMessage"))
	}
}

// Posts above the channel rate are refused as Slack refuses them (429, Retry-After) and
// not posted; another channel has a rate of its own.
func TestPostsAboveTheChannelRateAreRefused(t *testing.T) {
	w := New()
	defer w.Close()
	w.LimitPosts(1, 3)
	api := slack.New("xoxb-test", slack.OptionAPIURL(w.APIURL()))
	refused := 0
	for range 6 {
		_, _, err := api.PostMessage("C1", slack.MsgOptionText("burst", false))
		var rl *slack.RateLimitedError
		switch {
		case errors.As(err, &rl) && rl.RetryAfter == time.Second:
			refused++
		case err != nil:
			t.Fatalf("want a post or a 429 with Retry-After 1s, got %v", err)
		}
	}
	// (A post may fit in as the bucket refills while the burst is sent.)
	if refused < 2 || len(w.Channel("C1"))+refused != 6 || w.RateLimited("chat.postMessage") != refused {
		t.Fatalf("%d of 6 posts refused, %d posted, %d counted", refused, len(w.Channel("C1")), w.RateLimited("chat.postMessage"))
	}
	if _, _, err := api.PostMessage("C2", slack.MsgOptionText("elsewhere", false)); err != nil {
		t.Fatalf("another channel is refused too: %v", err)
	}
}
