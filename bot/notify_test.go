package bot

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
)

const carol = "U0CAROL"

// dmPolicy asks two approvers by DM; the requester, an approver too, is not DMed.
func dmPolicy(_ *Config, p *approvals.Policy) {
	p.Approvers = []string{approver, carol, requester}
	p.Notify = approvals.NotifyDM
}

// dmOf returns the top-level message in user's DM with the app.
func dmOf(t *testing.T, e *env, user string) slacksim.Message {
	t.Helper()
	msgs := e.slack.Channel(slacksim.DMChannel(user))
	if len(msgs) != 1 {
		t.Fatalf("%s has %d DMs from the app, want 1", user, len(msgs))
	}
	return msgs[0]
}

func TestApproversGetADMWithTheButtons(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dmPolicy)
	r, msg := e.submit("migrate web-01 to vc-west")
	for _, u := range []string{approver, carol} {
		dm := dmOf(t, e, u)
		if got := dm.ActionIDs(); !slices.Equal(got, []string{ActionApprove, ActionReject}) {
			t.Errorf("%s's DM offers %v, want approve and reject", u, got)
		}
		if !strings.Contains(dm.Words(), r.ID) {
			t.Errorf("%s's DM does not name the request:\n%s", u, dm.Words())
		}
	}
	if n := len(e.slack.Channel(slacksim.DMChannel(requester))); n != 0 {
		t.Errorf("the requester got %d DMs asking them to approve their own request", n)
	}
	// Told by DM, the approvers are not mentioned in the channel as well: that would
	// notify each of them twice.
	if w := msg.Words(); !strings.Contains(w, "Approvers: each asked by direct message · 1 needed") || strings.Contains(w, "<@"+approver+">") || strings.Contains(msg.Text, "<@"+approver+">") {
		t.Errorf("the channel message mentions the approvers it DMs, or does not say they were asked by DM:\n%s\ntext: %s", w, msg.Text)
	}
	if got := len(e.get(r.ID).DMs); got != 2 {
		t.Errorf("the record holds %d DMs, want 2 (they must be edited after a restart too)", got)
	}
}

// An approval in either place shows in both: the channel message and every DM lose the
// Approve button, and nobody can approve a second time from a stale DM.
func TestDMsFollowTheChannelMessage(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"dm", "channel"} {
		t.Run("approved in the "+where, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, dmPolicy)
			r, msg := e.submit("migrate web-01 to vc-west")
			dm := dmOf(t, e, approver)
			if where == "dm" {
				e.reply(func(ctx context.Context) (slacksim.Reply, error) {
					return e.slack.Click(ctx, approver, dm.Channel, dm.TS, ActionApprove, r.ID)
				})
			} else {
				e.click(approver, msg.TS, ActionApprove, r.ID)
			}
			e.settle()
			if got := e.get(r.ID).State; got != approvals.StateQueued {
				t.Fatalf("request is %s after the approval in the %s, want queued; approver told %+v", got, where, e.ephemeralsTo(approver))
			}
			for name, ts := range map[string]string{"channel message": msg.TS, "approver's DM": dm.TS, "carol's DM": dmOf(t, e, carol).TS} {
				m := e.message(ts)
				if slices.Contains(m.ActionIDs(), ActionApprove) {
					t.Errorf("the %s still offers Approve after the approval in the %s", name, where)
				}
				if !strings.Contains(m.Words(), "*Approved* by <@"+approver+">") {
					t.Errorf("the %s does not say who approved:\n%s", name, m.Words())
				}
			}
		})
	}
}

// Someone else's click in a DM channel is not taken as a decision there.
func TestClickInAnotherDMIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dmPolicy)
	r, _ := e.submit("migrate web-01 to vc-west")
	dm := dmOf(t, e, approver)
	e.reply(func(ctx context.Context) (slacksim.Reply, error) {
		return e.slack.Click(ctx, carol, dm.Channel, dm.TS, ActionApprove, r.ID)
	})
	e.settle()
	if got := e.get(r.ID).State; got != approvals.StatePending {
		t.Fatalf("a click from another person's DM made the request %s", got)
	}
}

// The reminder comes once per configured time before the expiry, in the request's
// thread, naming the approvers, and a restarted bot does not post it again.
func TestReminderOnceBeforeExpiryAcrossRestart(t *testing.T) {
	t.Parallel()
	ws := newSlack(t)
	store := approvals.NewMemoryStore()
	remind := func(_ *Config, p *approvals.Policy) {
		p.Approvers = []string{approver, "S0VMADM"}
		p.ExpireAfter = 4 * time.Hour
		p.RemindBefore = []time.Duration{time.Hour, 15 * time.Minute}
	}
	e := newEnvOn(t, ws, store, remind)
	r, msg := e.submit("migrate web-01 to vc-west")
	reminders := func() []slacksim.Message { return ws.Thread(msg.TS) }
	at := func(e *env, d time.Duration) {
		e.svc.WithClock(func() time.Time { return r.CreatedAt.Add(d) })
		e.bot.sweepExpired(t.Context())
	}
	at(e, 2*time.Hour)
	if n := len(reminders()); n != 0 {
		t.Fatalf("%d reminders two hours before the expiry, want none", n)
	}
	at(e, 3*time.Hour+time.Minute)
	at(e, 3*time.Hour+2*time.Minute)
	got := reminders()
	if len(got) != 1 {
		t.Fatalf("%d reminders an hour before the expiry, want 1", len(got))
	}
	w := got[0].Words()
	for _, want := range []string{"<@" + approver + ">", "<!subteam^S0VMADM>", r.ID, "1 more approval", "<!date^"} {
		if !strings.Contains(w, want) {
			t.Errorf("the reminder does not say %q:\n%s", want, w)
		}
	}
	restarted := newEnvOn(t, ws, store, remind)
	at(restarted, 3*time.Hour+3*time.Minute)
	if n := len(reminders()); n != 1 {
		t.Fatalf("after a restart there are %d reminders, want still 1", n)
	}
	at(restarted, 3*time.Hour+46*time.Minute)
	if n := len(reminders()); n != 2 {
		t.Fatalf("%d reminders 14 minutes before the expiry, want 2", n)
	}
	at(restarted, 4*time.Hour+time.Minute)
	if n := len(reminders()); n != 2 {
		t.Fatalf("an expired request was reminded of: %d reminders", n)
	}
}

// DM edits spend the edit budget like every other edit: with the budget spent, an
// approval leaves the DMs as they were (put off, not sent past Slack's limit), and they
// follow the channel message as soon as there is room.
func TestDMEditsStayWithinTheEditBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dmPolicy, func(c *Config, _ *approvals.Policy) { c.EditsPerMinute = 1 })
	r, msg := e.submit("migrate web-01 to vc-west")
	bossDM, carolDM := dmOf(t, e, approver), dmOf(t, e, carol)
	for e.bot.slack.edits.Allow() {
	}
	updates := e.slack.Calls("chat.update")
	e.click(approver, msg.TS, ActionApprove, r.ID)
	e.settle()
	if got := e.get(r.ID).State; got != approvals.StateQueued {
		t.Fatalf("request %s after approval, want queued", got)
	}
	if n := e.slack.Calls("chat.update") - updates; n != 0 {
		t.Errorf("%d edits sent with the edit budget spent", n)
	}
	if !slices.Contains(e.message(carolDM.TS).ActionIDs(), ActionApprove) {
		t.Fatalf("carol's DM changed with the budget spent")
	}
	e.bot.slack.edits = nil
	e.bot.flushDeferred(context.Background())
	for name, ts := range map[string]string{"channel message": msg.TS, "approver's DM": bossDM.TS, "carol's DM": carolDM.TS} {
		if slices.Contains(e.message(ts).ActionIDs(), ActionApprove) {
			t.Errorf("the %s still offers Approve once the budget has room", name)
		}
	}
}

// A click in an approver's own DM counts even when it comes before the bot recorded that
// DM on the request (the moment between its post and its record): Slack names the
// person's DM with the app, and the click came from there. Someone else's DM still does
// not count.
func TestClickInOwnDMBeforeItIsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dmPolicy)
	r, _ := e.submit("migrate web-01 to vc-west")
	dm := dmOf(t, e, approver)
	// As if the DM had not been recorded yet.
	stored, rev, err := e.bot.svc.Store().Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored.DMs = nil
	if _, err := e.bot.svc.Store().Update(context.Background(), stored, rev); err != nil {
		t.Fatal(err)
	}
	e.reply(func(ctx context.Context) (slacksim.Reply, error) {
		return e.slack.Click(ctx, carol, dm.Channel, dm.TS, ActionApprove, r.ID) // carol, in bob's DM
	})
	e.settle()
	if got := e.get(r.ID).State; got != approvals.StatePending {
		t.Fatalf("a click in someone else's DM decided the request: %s", got)
	}
	e.reply(func(ctx context.Context) (slacksim.Reply, error) {
		return e.slack.Click(ctx, approver, dm.Channel, dm.TS, ActionApprove, r.ID)
	})
	e.settle()
	if got := e.get(r.ID).State; got != approvals.StateQueued {
		t.Fatalf("bob's click in his own DM, not yet recorded, left the request %s; told %+v", got, e.ephemeralsTo(approver))
	}
}
