package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
)

// The App Home tab of an approver, of a requester with many requests, and of someone with
// nothing to do, as Slack gets it.
func TestRenderHomeGolden(t *testing.T) {
	t.Parallel()
	pending := fxPendingMigrate()
	running := fxApproved()
	running.ID, running.CreatedAt = "xvm-r2unnn", fxAt(-time.Hour)
	all := []*approvals.Request{pending, running, fxFailed()}
	all[2].ID, all[2].CreatedAt = "xvm-f4iled", fxAt(-2*time.Hour)
	view := RenderHome("U0APP1", all, []*approvals.Request{pending}, "", fxNow)
	checkHomeLimits(t, view.Blocks.BlockSet)
	checkGolden(t, "home_approver", view)

	checkGolden(t, "home_empty", RenderHome("U0NOBODY", all, nil, "", fxNow))
	// A click on the tab that the bot refused is answered on the tab, above the lists.
	noted := RenderHome("U0REQ", all, nil, "⚠️ You asked for xvm-k3m9q2, so you cannot approve it yourself: another approver must.", fxNow)
	checkHomeLimits(t, noted.Blocks.BlockSet)
	checkGolden(t, "home_note", noted)
}

// Each part of the tab lists the newest maxHomeListed and says how many it left out.
func TestRenderHomeCapsEachPart(t *testing.T) {
	t.Parallel()
	var all []*approvals.Request
	for i := range 14 {
		r := fxPendingMigrate()
		r.ID, r.CreatedAt = fmt.Sprintf("xvm-n%05d", i), fxAt(time.Duration(i)*time.Minute)
		all = append(all, r)
	}
	view := RenderHome("U0REQ", all, all, "", fxNow)
	checkHomeLimits(t, view.Blocks.BlockSet)
	raw := string(mustMarshal(t, view))
	for _, want := range []string{"Waiting for my approval (14)", "My requests (14)", "Showing the newest 10 of 14; `/xvm list` shows every request.", "xvm-n00013"} {
		if !strings.Contains(raw, want) {
			t.Errorf("the tab does not read %q", want)
		}
	}
	if strings.Contains(raw, "xvm-n00003") {
		t.Error("the tab lists an older request than the 10 newest")
	}
}

func checkHomeLimits(t *testing.T, blocks []slack.Block) {
	t.Helper()
	if len(blocks) > 100 {
		t.Errorf("%d blocks; a Home tab allows 100", len(blocks))
	}
}

// Over either transport, opening the Home tab publishes it: the approver sees the request
// waiting for them with its buttons, the requester sees it under their requests with
// Cancel (and not as theirs to approve); Approve on the tab decides as on the message,
// which is updated, and the tab is published again without it.
func TestAppHome(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"http", "socket"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.slack.AddUser(approver, "boss")
			e.slack.AddUser(requester, "alice")
			r, _ := e.submit("migrate web-01 to vc-west")
			var open func(user string) slacksim.Reply
			var click func(user, action, value string)
			switch transport {
			case "http":
				open = func(user string) slacksim.Reply {
					e.slack.UseHTTP(e.http.URL, testSecret)
					rep, err := e.slack.OpenHome(context.Background(), user)
					if err != nil {
						t.Fatal(err)
					}
					return rep
				}
				click = func(user, action, value string) {
					e.slack.UseHTTP(e.http.URL, testSecret)
					if _, err := e.slack.ClickHome(context.Background(), user, action, value); err != nil {
						t.Fatal(err)
					}
				}
			case "socket":
				runSocket(t, e)
				open = func(user string) slacksim.Reply {
					rep, err := e.slack.OpenHome(context.Background(), user)
					if err != nil {
						t.Fatal(err)
					}
					return rep
				}
				click = func(user, action, value string) {
					if _, err := e.slack.ClickHome(context.Background(), user, action, value); err != nil {
						t.Fatal(err)
					}
				}
			}
			home := func(user string) string {
				t.Helper()
				if rep := open(user); rep.Status != http.StatusOK {
					t.Fatalf("app_home_opened answered %d %s", rep.Status, rep.Body)
				}
				e.settle()
				v, ok := e.slack.HomeView(user)
				if !ok {
					t.Fatalf("no Home tab published for %s", user)
				}
				return string(v.Blocks)
			}

			boss := home(approver)
			for _, want := range []string{"Waiting for my approval (1)", r.ID, `"action_id":"xvm_approve"`, `"action_id":"xvm_reject"`} {
				if !strings.Contains(boss, want) {
					t.Errorf("the approver's tab does not show %q:\n%s", want, boss)
				}
			}
			alice := home(requester)
			for _, want := range []string{"Waiting for my approval (0)", "My requests (1)", `"action_id":"xvm_cancel"`} {
				if !strings.Contains(alice, want) {
					t.Errorf("the requester's tab does not show %q:\n%s", want, alice)
				}
			}
			if strings.Contains(alice, `"action_id":"xvm_approve"`) {
				t.Errorf("the requester is offered to approve their own request:\n%s", alice)
			}

			// A click the bot refuses is answered on the tab it came from, not privately
			// in the request's channel, where the person is not looking.
			before := len(e.slack.Ephemerals(requester))
			click(requester, ActionApprove, r.ID)
			e.settle()
			if got := e.get(r.ID).State; got != approvals.StatePending {
				t.Fatalf("the requester's own Approve on the Home tab left the request %s", got)
			}
			if n := len(e.slack.Ephemerals(requester)); n != before {
				t.Errorf("the refusal of a Home tab click went to the channel (%d private notes, was %d)", n, before)
			}
			if v, _ := e.slack.HomeView(requester); !strings.Contains(string(v.Blocks), "cannot approve it yourself") {
				t.Errorf("the requester's tab does not say why the click was refused:\n%s", v.Blocks)
			}

			click(approver, ActionApprove, r.ID)
			e.settle()
			if got := e.get(r.ID).State; got != approvals.StateQueued {
				t.Fatalf("after Approve on the Home tab the request is %s", got)
			}
			if a := e.message(r.MessageTS).ActionIDs(); len(a) > 0 && a[0] == ActionApprove {
				t.Errorf("the channel message still offers Approve: %v", a)
			}
			v, _ := e.slack.HomeView(approver)
			if after := string(v.Blocks); !strings.Contains(after, "Waiting for my approval (0)") || !strings.Contains(after, "Running now (1)") {
				t.Errorf("the approver's tab was not published again after the decision:\n%s", after)
			}
		})
	}
}

// The Events API URL answers Slack's verification challenge, and only when signed.
func TestEventsURLVerification(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body, _ := json.Marshal(map[string]string{"type": "url_verification", "challenge": "c-123", "token": "unused"})
	h := slacksim.Sign(testSecret, time.Now(), string(body))
	h.Set("Content-Type", "application/json")
	if d := e.deliver(PathEvents, string(body), h); d.status != http.StatusOK || d.body != "c-123" {
		t.Errorf("challenge answered %d %q", d.status, d.body)
	}
	if d := e.deliver(PathEvents, string(body), http.Header{"Content-Type": {"application/json"}}); d.status != http.StatusUnauthorized {
		t.Errorf("unsigned challenge answered %d", d.status)
	}
}

// runSocket runs the bot over Socket Mode until the test ends.
func runSocket(t *testing.T, e *env) {
	t.Helper()
	e.slack.UseSocketMode()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.RunSocketMode(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunSocketMode: %v", err)
		}
	})
	wait, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := e.slack.WaitFor(wait, e.slack.SocketConnected); err != nil {
		t.Fatal("the bot never opened a Socket Mode connection")
	}
}
