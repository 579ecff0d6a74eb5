package bot

import (
	"encoding/json"
	"errors"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// Names as Slack sends them in a command's text: a typed @channel arrives as <!channel>,
// a mention as <@U123>, and & < > as entities.
const (
	nastyChannel = "<!channel>"
	nastyMention = "<@U123>"
	nastyChars   = "a&amp;&lt;&gt;b" // the name a&<>b
)

// controlSequence is anything Slack's mrkdwn turns into a mention, a link or a command.
var controlSequence = regexp.MustCompile(`<[^<>]*>`)

// mrkdwnTexts returns every text of a sent message that Slack reads as mrkdwn: the
// top-level text and each mrkdwn text object (plain_text objects show as typed).
func mrkdwnTexts(s slacksim.Sent) []string {
	out := []string{s.Text}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				if t, ok := x["text"].(string); ok {
					out = append(out, t)
				}
			}
			for _, vv := range x {
				walk(vv)
			}
		case []any:
			for _, vv := range x {
				walk(vv)
			}
		}
	}
	var blocks any
	if len(s.Blocks) > 0 {
		if err := json.Unmarshal(s.Blocks, &blocks); err != nil {
			out = append(out, "unreadable blocks: "+err.Error())
		}
	}
	walk(blocks)
	return out
}

// Everything a user typed or a vCenter named reaches Slack escaped, on every path: only
// the bot's own mentions (the people involved, the allowed channels) stay live.
func TestSuppliedTextNeverReachesSlackAsMarkup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	vms := nastyChannel + "," + nastyMention + "," + nastyChars
	// Times are the bot's own too: a date whose fallback it wrote (digits, -, : and UTC).
	own := regexp.MustCompile(`^<(@U0[A-Z0-9]+|#C[A-Z0-9]+|!subteam\^S[A-Z0-9]+|!date\^[0-9]+\^\{date_short_pretty\} at \{time\}\|[0-9: -]+ UTC)>$`)

	// Typed paths answered in the ack or after it.
	e.planner.findings = []vcenter.Finding{{Severity: vcenter.Warning, VM: "<!here>", Message: "datastore <!everyone> is 91% full", Hint: "see <https://evil.example|docs>"}}
	for _, text := range []string{
		"help " + nastyChannel,
		"teleport " + nastyMention,
		"migrate " + vms + " to vc-west folder=" + nastyChars + " network=" + nastyChannel,
		"check migrate " + vms + " to vc-west",
		"import " + vms + " from vc-west",
		"status " + nastyChannel,
		"cancel " + nastyMention,
		"undo " + nastyChannel,
		"undo " + nastyChars,
		"migrate web-01 to " + nastyChannel,
		"list",
		"stats",
		"vcenters",
	} {
		e.command(requester, text)
	}
	e.settle()
	all := e.requests()
	if len(all) != 2 {
		t.Fatalf("%d requests stored from the typed commands, want 2 (the migrate and the import)", len(all))
	}
	r := all[0]
	if r.Direction != approvals.Migrate {
		r = all[1]
	}
	if !slices.Contains(r.VMs, "<!channel>") || !slices.Contains(r.VMs, "a&<>b") {
		t.Fatalf("the names did not reach the request as typed: %q", r.VMs)
	}

	// A planner failure quoting names, an undo of a job that did not move, clicks, and the
	// thread of a move whose vCenter task fails with names in its messages.
	e.planner.findings, e.planner.err = nil, errors.New(`vm "<!channel>" not found in vc-east`)
	e.command(requester, "migrate "+nastyChannel+" to vc-west")
	e.settle()
	e.planner.err = nil
	e.command(requester, "undo "+r.Jobs[0].ID)
	e.click(stranger, r.MessageTS, ActionApprove, r.ID)
	e.click(approver, r.MessageTS, ActionApprove, r.ID)
	e.settle()
	r = e.get(r.ID)
	started := event(r, 0, events.EventStarted, 0)
	e.handle(started)
	progress := event(r, 0, events.EventProgress, 40)
	progress.Message = "retrying: host <!channel> busy"
	e.handle(progress)
	failed := event(r, 0, events.EventFailed, 0)
	failed.Error, failed.Message, failed.Fault, failed.Hint = "<@U123> denied", "datastore <!here> full", "NoDiskSpace <x>", "free space on <!channel>"
	e.handle(failed)
	ok := event(r, 1, events.EventSucceeded, 100)
	ok.Warning = "tag <!channel> not copied"
	ok.Origin = &move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "<!channel>", Datastore: "<@U123>", Folder: nastyChars}}
	e.handle(ok)
	e.handle(event(r, 2, events.EventCancelled, 0))
	e.command(requester, "undo "+r.Jobs[1].ID) // the way back, named by the vCenter
	e.command(requester, "status "+r.Jobs[0].ID)
	e.settle()

	sent := e.slack.Sent()
	// Each path above answered (so the check below read what it says).
	var said strings.Builder
	for _, s := range sent {
		said.WriteString(strings.Join(mrkdwnTexts(s), "\n"))
	}
	for _, path := range []string{"no command", "unknown command", "Checking", "Pre-flight check", "There is no request",
		"There is no job", "Checking the way back", "did not move", "Could not check", "not an approver",
		"failed to move", "retrying: host", "tag &lt;!channel&gt; not copied", "Unknown vCenter", "Requests:", "vCenters", "📊"} {
		if !strings.Contains(said.String(), path) {
			t.Errorf("no message says %q: that path was not driven", path)
		}
	}
	escaped := 0
	for _, s := range sent {
		for _, text := range mrkdwnTexts(s) {
			for _, seq := range controlSequence.FindAllString(text, -1) {
				if !own.MatchString(seq) {
					t.Errorf("%s sent %q as markup in:\n%s", s.Method, seq, text)
				}
			}
			if strings.Contains(text, "&<>") {
				t.Errorf("%s sent a raw & < > in:\n%s", s.Method, text)
			}
			if strings.Contains(text, "&lt;!channel&gt;") || strings.Contains(text, "&lt;@U123&gt;") {
				escaped++
			}
		}
	}
	// The names did reach Slack, escaped, on many of those paths.
	if escaped < 20 {
		t.Fatalf("only %d texts of %d messages show the supplied names escaped", escaped, len(sent))
	}
}
