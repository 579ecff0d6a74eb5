package bot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
)

// /xvm stats answers only the person who asked, with a "Share in channel" button; the
// button posts the stats in the channel for everyone, saying who shared them.
func TestStatsArePrivateUntilShared(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.submit("migrate web-01 to vc-west")
	public := len(e.slack.Public())
	e.command(approver, "stats 7d")
	e.settle()
	if n := len(e.slack.Public()); n != public {
		t.Fatalf("/xvm stats posted in the channel (%d public messages, had %d)", n, public)
	}
	var private slacksim.Message
	for _, m := range e.ephemeralsTo(approver) {
		if strings.Contains(m.Text, "last 7 days") {
			private = m
		}
	}
	if private.Text == "" {
		t.Fatalf("no private stats for the asker: %+v", e.ephemeralsTo(approver))
	}
	if a := private.ActionIDs(); len(a) != 1 || a[0] != ActionShareStats {
		t.Fatalf("the private stats offer %v, want Share in channel", a)
	}

	e.reply(func(ctx context.Context) (slacksim.Reply, error) {
		return e.slack.ClickEphemeral(ctx, approver, testChannel, ActionShareStats, "7d")
	})
	e.settle()
	pub := e.slack.Public()
	if len(pub) != public+1 {
		t.Fatalf("Share in channel posted %d messages, want 1", len(pub)-public)
	}
	shared := e.slack.Plain(pub[len(pub)-1])
	for _, want := range []string{"last 7 days", "Approvals waiting", "Shared by"} {
		if !strings.Contains(shared, want) {
			t.Errorf("the shared stats do not read %q:\n%s", want, shared)
		}
	}
	if a := pub[len(pub)-1].ActionIDs(); len(a) != 0 {
		t.Errorf("the shared stats still offer buttons %v", a)
	}
}

// The private answer to /xvm stats, and the stats as shared in the channel.
func TestRenderStatsShareGolden(t *testing.T) {
	t.Parallel()
	s := ComputeStats([]*approvals.Request{fxSucceeded(), fxFailed()}, fxAt(3*time.Hour), 24*time.Hour)
	priv := privateStats(s, "last 24 hours", "24h")
	checkSlackLimits(t, priv.Blocks)
	checkGolden(t, "stats_private", goldenMessage(priv))
	shared := sharedStats(s, "last 24 hours", "U0BOSS")
	checkGolden(t, "stats_shared", goldenMessage(shared))
}
