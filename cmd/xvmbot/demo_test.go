package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/bot/slacksim"
)

// An edit printed by the demo names the message it changes: edits arrive late and out of
// order, and "✅ Succeeded" under "bob clicks [Reject]" must not read as the rejection's.
func TestDemoNamesTheMessageEachEditBelongsTo(t *testing.T) {
	ctx := context.Background()
	ws := slacksim.New()
	defer ws.Close()
	api := slack.New("xoxb-demo", slack.OptionAPIURL(ws.APIURL()))
	_, parent, err := api.PostMessageContext(ctx, demoChannel, slack.MsgOptionText("*Cross vCenter migrate request xvm-abcd1234*\n⏳ Waiting for approval", false))
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := api.PostMessageContext(ctx, demoChannel, slack.MsgOptionText("`web-01` · vc-east → vc-west\n🔄 Running 0%", false), slack.MsgOptionTS(parent))
	if err != nil {
		t.Fatal(err)
	}
	ws.AddUser(bob, "bob")
	_, dm, err := api.PostMessageContext(ctx, slacksim.DMChannel(bob), slack.MsgOptionText("*Cross vCenter migrate request xvm-abcd1234*\n• `web-01` · powered on\n⏳ *Waiting for approval*", false))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d := &demo{out: &out, ws: ws, shown: map[string]int{}, last: map[string]string{}, first: map[string]string{}}
	d.flush()
	out.Reset()
	for _, u := range []struct{ ts, text string }{
		{reply, "`web-01` · vc-east → vc-west\n✅ Succeeded 100%"},
		{parent, "*Cross vCenter migrate request xvm-abcd1234*\n❌ Rejected by @bob"},
		{dm, "*Cross vCenter migrate request xvm-abcd1234*\n• `web-01` · powered off\n❌ *Rejected* by @bob"},
	} {
		ch := demoChannel
		if u.ts == dm {
			ch = slacksim.DMChannel(bob)
		}
		if _, _, _, err := api.UpdateMessageContext(ctx, ch, u.ts, slack.MsgOptionText(u.text, false)); err != nil {
			t.Fatal(err)
		}
	}
	d.flush()
	for _, want := range []string{
		"    ↳ xvmbot edits \"`web-01` · vc-east → vc-west\" in xvm-abcd1234's thread: ✅ Succeeded 100%",
		"xvmbot edits the request xvm-abcd1234: ❌ Rejected by @bob",
		// An approver's DM is named as such, and its edit shows the decision, not the
		// first line that changed.
		"\nxvmbot edits bob's DM of xvm-abcd1234: ❌ *Rejected* by @bob\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, out.String())
		}
	}
}
