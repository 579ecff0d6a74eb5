package bot

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/vcenter"
)

// Text is escaped before it is clipped: a 1,000-character reason of &<> stays within the
// limit once escaped (clipped first, it grows to 4,300), and no entity is cut in half.
func TestEscapeBeforeClip(t *testing.T) {
	reason := strings.Repeat("&<>", 334)[:maxReasonChars]
	if n := utf8.RuneCountInString(esc(clipRunes(reason, maxReasonChars))); n <= 3000 {
		t.Fatalf("the fixture does not show the problem: clipped then escaped is %d characters", n)
	}
	for _, n := range []int{1000, 2800, 7, 6, 5} {
		got := escClip(reason, n)
		if c := utf8.RuneCountInString(got); c > n {
			t.Errorf("escClip(…, %d) has %d characters", n, c)
		}
		body := strings.TrimSuffix(got, "…")
		if strings.Trim(strings.NewReplacer("&amp;", "", "&lt;", "", "&gt;", "").Replace(body), "") != "" {
			t.Errorf("escClip(…, %d) = %q: a cut entity or a raw & < >", n, got)
		}
	}
	if got := escClip("web & db", 100); got != "web &amp; db" {
		t.Errorf("short text: %q", got)
	}
}

// /xvm vcenters stays one message within Slack's limits however many vCenters there are:
// 50 all show (in shared sections), and past what fits the rest is counted.
func TestVCentersListIsCapped(t *testing.T) {
	mk := func(n int) []vcInfo {
		var infos []vcInfo
		for i := range n {
			ep := vcenter.Endpoint{Name: fmt.Sprintf("vc-%04d", i), Version: "8.0.3 build 24022515", URL: fmt.Sprintf("https://vc-%04d.example.com/sdk", i),
				Thumbprint: "12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78", Reachable: true, Home: i == 0}
			var err error
			if i%7 == 3 {
				err = errors.New(strings.Repeat("<refused & closed> ", 60))
			}
			infos = append(infos, vcInfo{ep: ep, err: err})
		}
		return infos
	}
	text, blocks := RenderVCenters(mk(50))
	checkSlackLimits(t, blocks)
	all := blocksText(blocks)
	for i := range 50 {
		if name := fmt.Sprintf("vc-%04d", i); !strings.Contains(all, name) || !strings.Contains(text, name) {
			t.Errorf("%s is not listed", name)
		}
	}

	_, blocks = RenderVCenters(mk(3000))
	checkSlackLimits(t, blocks)
	all = blocksText(blocks)
	shown := strings.Count(all, "SHA-1 `")
	var more int
	if _, err := fmt.Sscanf(all[strings.LastIndex(all, "…and "):], "…and %d more vCenters", &more); err != nil || shown+more != 3000 {
		t.Errorf("%d vCenters shown and %d said to be more (%v); want 3000 in all", shown, more, err)
	}
}

func blocksText(blocks []slack.Block) string {
	var b strings.Builder
	for _, bl := range blocks {
		if s, ok := bl.(*slack.SectionBlock); ok && s.Text != nil {
			b.WriteString(s.Text.Text + "\n")
		}
	}
	return b.String()
}

// A reject reason full of characters Slack escapes keeps the request message within Block
// Kit's 3,000 characters per section: it is escaped first, then clipped.
func TestRejectReasonFullOfEscapesStaysWithinItsLimit(t *testing.T) {
	r := fxRejected()
	r.Rejection.Reason = strings.Repeat("&<>", 400) // 1,200 runes, 4,800 once escaped
	for _, render := range []func() []slack.Block{
		func() []slack.Block { _, b := RenderRequest(r, fxAt(30*time.Minute)); return b },
		func() []slack.Block { _, b := RenderFinal(r); return b },
	} {
		for _, b := range render() {
			s, ok := b.(*slack.SectionBlock)
			if !ok || s.Text == nil {
				continue
			}
			if n := utf8.RuneCountInString(s.Text.Text); n > 3000 {
				t.Errorf("a section has %d characters, more than Slack takes", n)
			}
			if strings.Contains(s.Text.Text, "&<") {
				t.Errorf("the reason is not escaped: %q", s.Text.Text[:40])
			}
		}
	}
}
