package slacksim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	"golang.org/x/time/rate"
)

// Message is one message in the workspace as people see it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // set for replies in a thread
	Text     string
	Blocks   json.RawMessage
	Edits    int    // how many times chat.update changed it
	To       string // the only user who sees it (ephemeral), "" for everyone
	Via      string // chat.postMessage | chat.postEphemeral | response_url | ack
	At       time.Time
}

// Reply is what the app answered to a delivery (slash command or click) at once.
type Reply struct {
	Status int
	Body   string
	// Latency is how long the app took to acknowledge.
	Latency time.Duration
}

// Workspace is a simulated Slack workspace. The zero value is not usable; call New.
type Workspace struct {
	srv *slacktest.Server

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	msgs     []*Message
	byTS     map[string]*Message
	seq      int
	users    map[string]string // id → display name
	groups   map[string][]string
	throttle map[string]throttle
	failing  map[string]bool
	limits   map[string]*rate.Limiter
	// posts limits chat.postMessage per channel, as Slack does (postsRate 0: no limit).
	postsRate  rate.Limit
	postsBurst int
	posts      map[string]*rate.Limiter
	apiCalls   map[string]int
	limited    map[string]int
	responses  int
	sent       []Sent
	// responseTypes are the response_type of each response_url post, in order.
	responseTypes []string
	notIn         map[string]bool // channels the app is not a member of

	// what `xvmbot check` asks (directory.go)
	scopes      string // x-oauth-scopes of every answer; "" leaves the header out
	botToken    string // RequireTokens
	appToken    string
	deactivated map[string]bool
	homes       map[string]*View // App Home tab by user (views.publish)

	// modals
	modals   bool
	views    []*View
	viewSeq  int
	triggers map[string]string // trigger id → user, until a view is opened with it
	trigSeq  int

	// delivery to the app
	httpURL       string
	signingSecret string
	viaSocket     bool
	socket        *socketConn
	envSeq        int
	client        *http.Client
}

type throttle struct {
	n     int
	after time.Duration
}

// New starts a workspace. Close it when done.
func New() *Workspace {
	w := &Workspace{
		changed:     make(chan struct{}),
		byTS:        map[string]*Message{},
		users:       map[string]string{},
		groups:      map[string][]string{},
		throttle:    map[string]throttle{},
		failing:     map[string]bool{},
		limits:      map[string]*rate.Limiter{},
		posts:       map[string]*rate.Limiter{},
		apiCalls:    map[string]int{},
		limited:     map[string]int{},
		notIn:       map[string]bool{},
		triggers:    map[string]string{},
		deactivated: map[string]bool{},
		homes:       map[string]*View{},
		client:      &http.Client{Timeout: 30 * time.Second},
	}
	w.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", w.api("chat.postMessage", w.postMessage))
		c.Handle("/chat.update", w.api("chat.update", w.update))
		c.Handle("/chat.postEphemeral", w.api("chat.postEphemeral", w.postEphemeral))
		c.Handle("/usergroups.users.list", w.api("usergroups.users.list", w.groupMembers))
		c.Handle("/apps.connections.open", w.api("apps.connections.open", w.connectionsOpen))
		c.Handle("/auth.test", w.api("auth.test", w.authTest))
		c.Handle("/views.open", w.api("views.open", w.viewsOpen))
		c.Handle("/views.update", w.api("views.update", w.viewsUpdate))
		c.Handle("/views.push", w.api("views.push", w.viewsPush))
		c.Handle("/views.publish", w.api("views.publish", w.viewsPublish))
		c.Handle("/users.info", w.api("users.info", w.usersInfo))
		c.Handle("/usergroups.list", w.api("usergroups.list", w.userGroupsList))
		c.Handle("/conversations.open", w.api("conversations.open", w.conversationsOpen))
		c.Handle("/response/", w.responseURL)
		c.Handle("/socket", w.socketHandler)
	})
	w.srv.Start()
	return w
}

// APIURL is the Web API base URL to give the app (slack.OptionAPIURL).
func (w *Workspace) APIURL() string { return w.srv.GetAPIURL() }

// Close stops the server.
func (w *Workspace) Close() {
	w.mu.Lock()
	sc := w.socket
	w.mu.Unlock()
	if sc != nil {
		sc.close()
	}
	w.srv.Stop()
}

// AddUser names a user, so transcripts read "@alice" instead of "<@U01>".
func (w *Workspace) AddUser(id, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.users[id] = name
}

// SetGroup sets the members of a user group (usergroups.users.list).
func (w *Workspace) SetGroup(id string, members ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.groups[id] = members
}

// Throttle makes the next n calls of method answer 429 with Retry-After: retryAfter in
// whole seconds, rounded up (0 asks the app to retry at once).
func (w *Workspace) Throttle(method string, n int, retryAfter time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.throttle[method] = throttle{n: n, after: retryAfter}
}

// Fail makes every call of method answer 503 service_unavailable, as when Slack does not
// serve it, until Recover.
func (w *Workspace) Fail(method string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failing[method] = true
}

// Recover undoes Fail: method answers again.
func (w *Workspace) Recover(method string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.failing, method)
}

// Limit makes method rate-limited as Slack's tiers are: at most perMinute calls a minute
// after a burst of burst; a call beyond that answers 429 with Retry-After (whole seconds,
// as Slack sends it) and is counted in RateLimited.
func (w *Workspace) Limit(method string, perMinute float64, burst int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.limits[method] = rate.NewLimiter(rate.Limit(perMinute/60), burst)
}

// LimitPosts makes chat.postMessage refuse, as Slack does (docs/slack-facts.md S3), more
// than perSecond posts a second in any one channel after a burst of burst: a post beyond
// that answers 429 with Retry-After: 1, is not posted, and is counted in
// RateLimited("chat.postMessage").
func (w *Workspace) LimitPosts(perSecond float64, burst int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.postsRate, w.postsBurst = rate.Limit(perSecond), burst
	w.posts = map[string]*rate.Limiter{}
}

// postAllowed reports whether channel takes one more post now under LimitPosts.
func (w *Workspace) postAllowed(channel string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.postsRate == 0 {
		return true
	}
	l := w.posts[channel]
	if l == nil {
		l = rate.NewLimiter(w.postsRate, w.postsBurst)
		w.posts[channel] = l
	}
	if l.Allow() {
		return true
	}
	w.limited["chat.postMessage"]++
	return false
}

// RateLimited returns how many calls of method were answered 429 (Throttle or Limit).
func (w *Workspace) RateLimited(method string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.limited[method]
}

// Calls returns how many times the app called a Web API method (429s included);
// "response_url" counts posts to response URLs.
func (w *Workspace) Calls(method string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.apiCalls[method]
}

// UseHTTP delivers commands and clicks as signed HTTP requests to the app at baseURL
// (which serves /slack/commands and /slack/interactions).
func (w *Workspace) UseHTTP(baseURL, signingSecret string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.httpURL, w.signingSecret, w.viaSocket = strings.TrimRight(baseURL, "/"), signingSecret, false
}

func (w *Workspace) api(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.apiCalls[method]++
		t := w.throttle[method]
		limited := t.n > 0
		retry := t.after
		if limited {
			t.n--
			w.throttle[method] = t
		} else if l := w.limits[method]; l != nil && !l.Allow() {
			limited, retry = true, time.Second
		}
		if limited {
			w.limited[method]++
		}
		failing := w.failing[method]
		if w.scopes != "" {
			rw.Header().Set("X-OAuth-Scopes", w.scopes)
		}
		w.mu.Unlock()
		if failing {
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = rw.Write([]byte(`{"ok":false,"error":"service_unavailable"}`))
			return
		}
		if limited {
			rw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
			rw.WriteHeader(http.StatusTooManyRequests)
			_, _ = rw.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
			return
		}
		if w.authorized(method, rw, r) {
			h(rw, r)
		}
	}
}

func (w *Workspace) nextTS() string {
	w.seq++
	return fmt.Sprintf("1764000000.%06d", w.seq)
}

func (w *Workspace) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

func form(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		v := url.Values{}
		for k, val := range m {
			switch x := val.(type) {
			case string:
				v.Set(k, x)
			default:
				b, _ := json.Marshal(x)
				v.Set(k, string(b))
			}
		}
		return v, nil
	}
	return url.ParseQuery(string(body))
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}

func (w *Workspace) postMessage(rw http.ResponseWriter, r *http.Request) {
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	if !w.postAllowed(v.Get("channel")) {
		rw.Header().Set("Retry-After", "1")
		rw.WriteHeader(http.StatusTooManyRequests)
		_, _ = rw.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
		return
	}
	w.mu.Lock()
	m := &Message{Channel: v.Get("channel"), TS: w.nextTS(), ThreadTS: v.Get("thread_ts"), Text: v.Get("text"),
		Blocks: rawBlocks(v.Get("blocks")), Via: "chat.postMessage", At: time.Now()}
	w.msgs = append(w.msgs, m)
	w.byTS[m.TS] = m
	w.sent = append(w.sent, Sent{Method: m.Via, Text: m.Text, Blocks: m.Blocks})
	w.notify()
	w.mu.Unlock()
	writeJSON(rw, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (w *Workspace) update(rw http.ResponseWriter, r *http.Request) {
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent = append(w.sent, Sent{Method: "chat.update", Text: v.Get("text"), Blocks: rawBlocks(v.Get("blocks"))})
	m, ok := w.byTS[v.Get("ts")]
	if !ok || m.Channel != v.Get("channel") {
		writeJSON(rw, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	m.Text, m.Blocks = v.Get("text"), rawBlocks(v.Get("blocks"))
	m.Edits++
	w.notify()
	writeJSON(rw, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
}

func (w *Workspace) postEphemeral(rw http.ResponseWriter, r *http.Request) {
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	notIn := w.notIn[v.Get("channel")]
	w.mu.Unlock()
	if notIn {
		writeJSON(rw, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	w.addEphemeral(v.Get("channel"), v.Get("user"), v.Get("text"), rawBlocks(v.Get("blocks")), "chat.postEphemeral")
	writeJSON(rw, map[string]any{"ok": true, "message_ts": fmt.Sprintf("%d.000000", time.Now().Unix())})
}

func (w *Workspace) addEphemeral(channel, user, text string, blocks json.RawMessage, via string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := &Message{Channel: channel, To: user, Text: text, Blocks: blocks, Via: via, At: time.Now()}
	w.msgs = append(w.msgs, m)
	if via != "ack" {
		w.sent = append(w.sent, Sent{Method: via, Text: text, Blocks: blocks})
	}
	w.notify()
}

func rawBlocks(s string) json.RawMessage {
	if s == "" || s == "null" {
		return nil
	}
	return json.RawMessage(s)
}

func (w *Workspace) groupMembers(rw http.ResponseWriter, r *http.Request) {
	v, err := form(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	members, ok := w.groups[v.Get("usergroup")]
	w.mu.Unlock()
	if !ok {
		writeJSON(rw, map[string]any{"ok": false, "error": "no_such_subteam"})
		return
	}
	writeJSON(rw, map[string]any{"ok": true, "users": members})
}

func (w *Workspace) authTest(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, map[string]any{"ok": true, "url": "https://xvm-lab.slack.com/", "team": "xvm-lab", "user": "xvmbot",
		"team_id": "T0XVM", "user_id": "U0XVMBOT", "bot_id": "B0XVMBOT"})
}

// responseURL records what the app posts to a slash command's or click's response_url.
func (w *Workspace) responseURL(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	w.apiCalls["response_url"]++
	w.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	// /response/<channel>/<user>/<n>
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/response/"), "/")
	if len(parts) < 2 {
		http.Error(rw, "bad response url", http.StatusNotFound)
		return
	}
	var msg struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.responseTypes = append(w.responseTypes, msg.ResponseType)
	w.mu.Unlock()
	if msg.ResponseType == "in_channel" {
		w.mu.Lock()
		m := &Message{Channel: parts[0], TS: w.nextTS(), Text: msg.Text, Blocks: msg.Blocks, Via: "response_url", At: time.Now()}
		w.msgs = append(w.msgs, m)
		w.byTS[m.TS] = m
		w.sent = append(w.sent, Sent{Method: "response_url", Text: m.Text, Blocks: m.Blocks})
		w.notify()
		w.mu.Unlock()
	} else {
		w.addEphemeral(parts[0], parts[1], msg.Text, msg.Blocks, "response_url")
	}
	_, _ = rw.Write([]byte("ok"))
}

func (w *Workspace) newResponseURL(channel, user string) string {
	w.mu.Lock()
	w.responses++
	n := w.responses
	w.mu.Unlock()
	return fmt.Sprintf("http://%s/response/%s/%s/%d", w.srv.ServerAddr, channel, user, n)
}

// Command sends `/xvm text` from user in channel, as Slack would, and returns the app's
// immediate acknowledgement. An ack body with text is recorded as an ephemeral reply.
func (w *Workspace) Command(ctx context.Context, user, channel, text string) (Reply, error) {
	cmd := slack.SlashCommand{
		Token: "legacy-verification-token-unused", TeamID: "T0XVM", TeamDomain: "xvm-lab",
		ChannelID: channel, ChannelName: "vm-moves", UserID: user, UserName: w.userName(user),
		Command: "/xvm", Text: text, ResponseURL: w.newResponseURL(channel, user),
		TriggerID: w.newTrigger(user), APIAppID: "A0XVM",
	}
	if w.socketMode() {
		return w.sendEnvelope(ctx, "slash_commands", cmd, channel, user)
	}
	f := url.Values{}
	for k, v := range map[string]string{
		"token": cmd.Token, "team_id": cmd.TeamID, "team_domain": cmd.TeamDomain, "channel_id": cmd.ChannelID,
		"channel_name": cmd.ChannelName, "user_id": cmd.UserID, "user_name": cmd.UserName, "command": cmd.Command,
		"text": cmd.Text, "response_url": cmd.ResponseURL, "trigger_id": cmd.TriggerID, "api_app_id": cmd.APIAppID,
	} {
		f.Set(k, v)
	}
	return w.deliver(ctx, "/slack/commands", f.Encode(), channel, user, nil)
}

// Click presses a button (action id and value) on the message ts in channel as user.
func (w *Workspace) Click(ctx context.Context, user, channel, ts, actionID, value string) (Reply, error) {
	w.mu.Lock()
	m, ok := w.byTS[ts]
	w.mu.Unlock()
	if !ok {
		return Reply{}, fmt.Errorf("no message %s to click on", ts)
	}
	payload := w.interaction("block_actions", user)
	payload["container"] = map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false}
	payload["trigger_id"] = w.newTrigger(user)
	payload["channel"] = map[string]string{"id": channel, "name": "vm-moves"}
	payload["message"] = map[string]any{"type": "message", "ts": ts, "text": m.Text, "blocks": m.Blocks}
	payload["response_url"] = w.newResponseURL(channel, user)
	payload["actions"] = buttonPress(actionID, "actions", value)
	return w.interactIn(ctx, "/slack/interactions", payload, channel, user)
}

// Sign returns Slack's v0 signature headers for body at time ts.
func Sign(secret string, ts time.Time, body string) http.Header {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = mac.Write([]byte("v0:" + stamp + ":" + body))
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

// Deliver posts a raw body to the app with the given headers (nil: correctly signed now);
// tests use it for forged, stale and retried requests.
func (w *Workspace) Deliver(ctx context.Context, path, body string, header http.Header) (Reply, error) {
	return w.deliver(ctx, path, body, "", "", header)
}

func (w *Workspace) deliver(ctx context.Context, path, body, channel, user string, header http.Header) (Reply, error) {
	w.mu.Lock()
	base, secret := w.httpURL, w.signingSecret
	w.mu.Unlock()
	if base == "" {
		return Reply{}, errors.New("slacksim: no delivery configured (UseHTTP or ServeSocketMode)")
	}
	if header == nil {
		header = Sign(secret, time.Now(), body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	req.Header = header
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rep := Reply{Status: resp.StatusCode, Body: string(b), Latency: time.Since(start)}
	w.recordSentAck(b)
	if resp.StatusCode == http.StatusOK && channel != "" {
		w.recordAck(channel, user, b)
	}
	return rep, nil
}

// recordAck records an acknowledgement that carries a message as the ephemeral reply
// Slack would show the person.
func (w *Workspace) recordAck(channel, user string, body []byte) {
	var msg struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if len(body) == 0 || json.Unmarshal(body, &msg) != nil || (msg.Text == "" && len(msg.Blocks) == 0) {
		return
	}
	w.addEphemeral(channel, user, msg.Text, msg.Blocks, "ack")
}

// recordSentAck keeps an acknowledgement that carries a message in Sent, whoever sent the
// delivery and however the app answered it.
func (w *Workspace) recordSentAck(body []byte) {
	var msg struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if len(body) == 0 || json.Unmarshal(body, &msg) != nil || (msg.Text == "" && len(msg.Blocks) == 0) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent = append(w.sent, Sent{Method: "ack", Text: msg.Text, Blocks: rawBlocks(string(msg.Blocks))})
}

func (w *Workspace) userName(id string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n, ok := w.users[id]; ok {
		return n
	}
	return strings.ToLower(id)
}

// WaitFor blocks until cond (called with the workspace unlocked, after each change) holds.
func (w *Workspace) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slacksim: condition not met: %w", ctx.Err())
		case <-ch:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Messages returns a copy of every message, in the order they first appeared.
func (w *Workspace) Messages() []Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Message, len(w.msgs))
	for i, m := range w.msgs {
		out[i] = *m
	}
	return out
}

// Message returns the message with timestamp ts.
func (w *Workspace) Message(ts string) (Message, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.byTS[ts]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// Channel returns the top-level messages everyone sees in channel.
func (w *Workspace) Channel(channel string) []Message {
	var out []Message
	for _, m := range w.Messages() {
		if m.Channel == channel && m.To == "" && m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

// Thread returns the replies to the message ts.
func (w *Workspace) Thread(ts string) []Message {
	var out []Message
	for _, m := range w.Messages() {
		if m.ThreadTS == ts && m.To == "" {
			out = append(out, m)
		}
	}
	return out
}

// Ephemerals returns the messages only user saw.
func (w *Workspace) Ephemerals(user string) []Message {
	var out []Message
	for _, m := range w.Messages() {
		if m.To == user {
			out = append(out, m)
		}
	}
	return out
}

// Public returns the messages everyone sees, top-level and in threads, in posting order.
func (w *Workspace) Public() []Message {
	var out []Message
	for _, m := range w.Messages() {
		if m.To == "" {
			out = append(out, m)
		}
	}
	return out
}

// Sent is one text and its blocks as the app sent them, by any method (chat.postMessage,
// chat.update, chat.postEphemeral, response_url, ack): what a person may read, including
// versions later edited away.
type Sent struct {
	Method string
	Text   string
	Blocks json.RawMessage
}

// Sent returns every text the app sent so far, each edit apart, in order.
func (w *Workspace) Sent() []Sent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.sent)
}

// ResponseTypes returns the response_type of every response_url post so far ("" where the
// app left it out), in order.
func (w *Workspace) ResponseTypes() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.responseTypes)
}

// RemoveApp makes the app not a member of channel: chat.postEphemeral there answers
// channel_not_found, as Slack does.
func (w *Workspace) RemoveApp(channel string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notIn[channel] = true
}
