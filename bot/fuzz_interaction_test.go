package bot

import (
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// FuzzInteractionPayload feeds arbitrary interaction payloads (the "payload" form field
// Slack posts to /slack/interactions), correctly signed, through the bot's real HTTP
// handler: whatever Slack — or someone holding the signing secret — sends, the bot must
// neither panic (in the handler or in the work it starts after the ack) nor answer 5xx.
// Seeds live in testdata/fuzz/FuzzInteractionPayload; plain `go test` runs them.
func FuzzInteractionPayload(f *testing.F) {
	for _, s := range []string{
		`{"type":"block_actions","user":{"id":"U0BOSS"},"channel":{"id":"C0OPS"},"container":{"type":"message","message_ts":"1.2","channel_id":"C0OPS"},"actions":[{"type":"button","action_id":"xvm_approve","value":"xvm-aaaaaaaa"}]}`,
		`{"type":"block_actions","user":{"id":"U0BOSS"},"actions":[{"action_id":"xvm_reject","value":""}]}`,
		`{"type":"view_submission","user":{"id":"U0BOSS"},"view":{"callback_id":"xvm_reject","private_metadata":"{}","state":{"values":{}}}}`,
		`{"type":"block_suggestion","action_id":"vm","value":"web","view":{"callback_id":"xvm_wizard"}}`,
		`{"type":"block_actions","view":{"callback_id":"xvm_wizard","state":{"values":{"a":{"b":{"type":"static_select"}}}}},"actions":[{}]}`,
		`null`, `[]`, `{"type":7}`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		e := newEnv(t)
		body := url.Values{"payload": {payload}}.Encode()
		d := e.deliver(PathInteractions, body, slacksim.Sign(testSecret, time.Now(), body))
		if d.status >= http.StatusInternalServerError {
			t.Fatalf("status %d for payload %q: %s", d.status, payload, d.body)
		}
		e.settle() // a panic in the work after the ack crashes the fuzzer here
	})
}
