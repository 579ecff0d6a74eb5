package bot

import (
	"encoding/json"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
)

func TestMigrateCommandIsAckedThenPostedForApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.command(requester, "migrate web-01,web-02 to vc-west datastore=ds-west-1")
	if d.status != http.StatusOK {
		t.Fatalf("status %d: %s", d.status, d.body)
	}
	if d.latency > time.Second {
		t.Fatalf("ack took %s", d.latency)
	}
	var ack struct {
		ResponseType string `json:"response_type"`
	}
	if err := json.Unmarshal([]byte(d.body), &ack); err != nil || ack.ResponseType != "ephemeral" {
		t.Fatalf("ack body %q: %v", d.body, err)
	}
	e.settle()

	all := e.requests()
	if len(all) != 1 {
		t.Fatalf("%d requests stored", len(all))
	}
	r := all[0]
	if r.SourceVC != "vc-east" || r.TargetVC != "vc-west" || r.Requester != requester || r.Channel != testChannel ||
		!slices.Equal(r.VMs, []string{"web-01", "web-02"}) || r.Placement.Datastore != "ds-west-1" || r.Review.Target.Name != "vc-west" {
		t.Fatalf("stored request %+v", r)
	}
	msg := e.message(r.MessageTS)
	if msg.Channel != testChannel || msg.ThreadTS != "" {
		t.Fatalf("approval message %+v", msg)
	}
	if got := msg.ActionIDs(); !slices.Contains(got, ActionApprove) || !slices.Contains(got, ActionReject) {
		t.Fatalf("approval message buttons %v, want approve and reject", got)
	}
	if !strings.Contains(msg.Words(), "web-01") {
		t.Fatalf("approval message does not name the VM:\n%s", msg.Words())
	}
}

func TestUnsignedOrStaleRequestsAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := commandBody(requester, testChannel, "migrate web-01 to vc-west", "trig.x")
	tests := []struct {
		name   string
		header func() http.Header
	}{
		{"no signature", func() http.Header {
			h := slacksim.Sign(testSecret, time.Now(), body)
			h.Del("X-Slack-Signature")
			return h
		}},
		{"wrong secret", func() http.Header { return slacksim.Sign("not-the-secret", time.Now(), body) }},
		{"body tampered", func() http.Header { return slacksim.Sign(testSecret, time.Now(), body+"&text=x") }},
		{"stale timestamp", func() http.Header { return slacksim.Sign(testSecret, time.Now().Add(-6*time.Minute), body) }},
		{"future timestamp", func() http.Header { return slacksim.Sign(testSecret, time.Now().Add(6*time.Minute), body) }},
		{"garbage timestamp", func() http.Header {
			h := slacksim.Sign(testSecret, time.Now(), body)
			h.Set("X-Slack-Request-Timestamp", "yesterday")
			return h
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{PathCommands, PathInteractions} {
				if d := e.deliver(path, body, tt.header()); d.status != http.StatusUnauthorized {
					t.Fatalf("%s: status %d, want 401", path, d.status)
				}
			}
		})
	}
	e.settle()
	if n := len(e.requests()); n != 0 {
		t.Fatalf("%d requests stored from unsigned deliveries", n)
	}
	if n := len(e.slack.Public()); n != 0 {
		t.Fatalf("%d messages posted from unsigned deliveries", n)
	}
	if len(e.planner.specs) != 0 {
		t.Fatal("planner called for an unsigned delivery")
	}
}

func TestSlackRetryOfACommandMakesOneRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := commandBody(requester, testChannel, "migrate web-01 to vc-west", "trig.retry")
	if d := e.deliver(PathCommands, body, slacksim.Sign(testSecret, time.Now(), body)); d.status != http.StatusOK {
		t.Fatalf("first delivery: %d", d.status)
	}
	for i := 1; i <= 2; i++ {
		h := slacksim.Sign(testSecret, time.Now(), body)
		h.Set("X-Slack-Retry-Num", strconv.Itoa(i))
		h.Set("X-Slack-Retry-Reason", "http_timeout")
		if d := e.deliver(PathCommands, body, h); d.status != http.StatusOK {
			t.Fatalf("retry %d: %d", i, d.status)
		}
	}
	e.settle()
	if n := len(e.requests()); n != 1 {
		t.Fatalf("%d requests stored, want 1", n)
	}
	if n := len(e.slack.Public()); n != 1 {
		t.Fatalf("%d messages posted, want 1", n)
	}
}

func TestAckLatencyIsMeasured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.command(requester, "help")
	e.settle()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "xvm_slack_ack_seconds" {
			for _, m := range mf.GetMetric() {
				if m.GetHistogram().GetSampleCount() > 0 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatal("xvm_slack_ack_seconds has no sample")
	}
}

func TestParseInteractionMatchesSlackGo(t *testing.T) {
	t.Parallel()
	text, blocks := RenderRequest(&approvals.Request{ID: "xvm-k3m9q2ab", Direction: approvals.Migrate, VMs: []string{"web-01"},
		SourceVC: "vc-east", TargetVC: "vc-west", Requester: requester, Channel: testChannel, State: approvals.StatePending,
		Quorum: 1, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}, time.Now())
	msg, err := json.Marshal(map[string]any{"type": "message", "ts": "1764000000.000001", "text": text, "blocks": blocks})
	if err != nil {
		t.Fatal(err)
	}
	withMessage := strings.Replace(clickPayload(approver, testChannel, "1764000000.000001", ActionApprove, "xvm-k3m9q2ab", "trig.1"),
		`"message":{"text":"request","ts":"1764000000.000001","type":"message"}`, `"message":`+string(msg)+`,"original_message":`+string(msg), 1)
	if !strings.Contains(withMessage, `"original_message"`) {
		t.Fatal("the click payload was not given its message")
	}
	tests := map[string]string{
		"click with the message's blocks": withMessage,
		"block actions with state": `{"type":"block_actions","user":{"id":"U0BOSS"},"state":{"values":{"b":{"a":{"type":"static_select","selected_option":{"value":"x"}}}}},` +
			`"actions":[{"action_id":"xvm_approve","value":"xvm-1"}]}`,
		"view submission":   `{"type":"view_submission","user":{"id":"U0BOSS"},"view":{"id":"V1","callback_id":"xvm_reject_reason","private_metadata":"{}","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}],"state":{"values":{"reason":{"reason":{"type":"plain_text_input","value":"no"}}}}}}`,
		"block suggestion":  `{"type":"block_suggestion","action_id":"vm","value":"web","view":{"callback_id":"xvm_wizard"}}`,
		"dialog submission": `{"type":"dialog_submission","user":{"id":"U1"},"state":"kept","submission":{"a":"b"}}`,
		"null":              `null`,
		"not an object":     `[]`,
		"wrong type":        `{"type":7}`,
		"empty":             ``,
	}
	for name, payload := range tests {
		t.Run(name, func(t *testing.T) {
			req := func() *http.Request {
				r, _ := http.NewRequest(http.MethodPost, PathInteractions, strings.NewReader(url.Values{"payload": {payload}}.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			}
			want, wantErr := slack.InteractionCallbackParse(req())
			got, err := parseInteraction(req())
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("error %v, slack-go's %v", err, wantErr)
			}
			if name == "click with the message's blocks" && (len(want.Message.Blocks.BlockSet) == 0 || len(want.OriginalMessage.Blocks.BlockSet) == 0) {
				t.Fatal("slack-go did not decode the message: the comparison would prove nothing")
			}
			want.Message, want.OriginalMessage = slack.Message{}, slack.Message{}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("parsed\n%+v\nslack-go parses\n%+v", got, want)
			}
		})
	}
}
