package slacksim

import (
	"context"
	"net/http"
	"testing"

	"github.com/slack-go/slack"
)

// A modal pushed onto another stacks on it (the one below stays open, as in Slack), the
// App Home tab shows what was last published, and a push with nothing open is refused.
func TestViewsPushAndPublish(t *testing.T) {
	ctx := context.Background()
	w := New()
	defer w.Close()
	w.EnableModals()
	w.AddUser("U1", "alice")
	api := slack.New("xoxb-test", slack.OptionAPIURL(w.APIURL()))
	modal := func(cb string) slack.ModalViewRequest {
		return slack.ModalViewRequest{Type: slack.VTModal, CallbackID: cb, Title: &slack.TextBlockObject{Type: "plain_text", Text: cb}}
	}

	if _, err := api.PushViewContext(ctx, w.newTrigger("U1"), modal("alone")); err == nil {
		t.Fatal("views.push with no modal open succeeded; Slack refuses it")
	}
	below, err := api.OpenViewContext(ctx, w.newTrigger("U1"), modal("wizard"))
	if err != nil {
		t.Fatal(err)
	}
	top, err := api.PushViewContext(ctx, w.newTrigger("U1"), modal("review"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := w.View(top.View.ID)
	if v.Under != below.View.ID || !v.Open {
		t.Fatalf("pushed view = %+v, want it open on %s", v, below.View.ID)
	}
	if v, ok := w.OpenView("U1", "wizard"); !ok || v.ID != below.View.ID {
		t.Fatalf("the view below the pushed one is not open any more")
	}

	home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(&slack.TextBlockObject{Type: "mrkdwn", Text: "Waiting for my approval"}, nil, nil)}}}
	first, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home})
	if err != nil {
		t.Fatal(err)
	}
	home.Blocks.BlockSet[0] = slack.NewSectionBlock(&slack.TextBlockObject{Type: "mrkdwn", Text: "Nothing waits for you"}, nil, nil)
	hash := "stale"
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home, Hash: &hash}); err == nil {
		t.Fatal("publish with a stale hash succeeded")
	}
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home, Hash: &first.View.Hash}); err != nil {
		t.Fatal(err)
	}
	got, ok := w.HomeView("U1")
	if !ok || got.Updates != 1 || PlainText(got.Blocks, "", nil) != "Nothing waits for you" {
		t.Fatalf("home tab = %+v (%q), want the second version", got, PlainText(got.Blocks, "", nil))
	}
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U404", View: home}); err == nil {
		t.Fatal("publish for an unknown user succeeded")
	}
}

// What `xvmbot check` reads: users and groups, the scopes header, and tokens checked.
func TestDirectoryScopesAndTokens(t *testing.T) {
	ctx := context.Background()
	w := New()
	defer w.Close()
	w.AddUser("U1", "alice")
	w.AddUser("U2", "bob")
	w.AddUser("S1", "vm-admins")
	w.SetGroup("S1", "U1", "U2")
	w.Deactivate("U2")
	w.SetScopes("commands", "chat:write")
	w.RequireTokens("xoxb-good", "xapp-good")

	var scopes string
	api := slack.New("xoxb-good", slack.OptionAPIURL(w.APIURL()), slack.OptionOnResponseHeaders(func(_ string, h http.Header) {
		scopes = h.Get("X-OAuth-Scopes")
	}))
	if _, err := api.AuthTestContext(ctx); err != nil || scopes != "commands,chat:write" {
		t.Fatalf("auth.test: %v, scopes %q", err, scopes)
	}
	if _, err := slack.New("xoxb-bad", slack.OptionAPIURL(w.APIURL())).AuthTestContext(ctx); err == nil {
		t.Fatal("auth.test with a wrong token succeeded")
	}
	u, err := api.GetUserInfoContext(ctx, "U2")
	if err != nil || u.Name != "bob" || !u.Deleted {
		t.Fatalf("users.info U2 = %+v, %v; want bob, deactivated", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U404"); err == nil {
		t.Fatal("users.info of an unknown user succeeded")
	}
	gs, err := api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeUsers(true))
	if err != nil || len(gs) != 1 || gs[0].ID != "S1" || gs[0].Handle != "vm-admins" || len(gs[0].Users) != 2 {
		t.Fatalf("usergroups.list = %+v, %v", gs, err)
	}
	app := func(tok string) error {
		_, _, err := slack.New("", slack.OptionAppLevelToken(tok), slack.OptionAPIURL(w.APIURL())).StartSocketModeContext(ctx)
		return err
	}
	if err := app("xapp-good"); err != nil {
		t.Fatalf("apps.connections.open with the app token: %v", err)
	}
	if err := app("xoxb-good"); err == nil {
		t.Fatal("apps.connections.open with the bot token succeeded")
	}
}
