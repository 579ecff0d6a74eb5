package bot

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/vcenter"
)

// awaitReview waits until view id shows the review page with the pre-flight's result
// (not the "checking…" page) and returns it.
func awaitReview(ctx context.Context, t *testing.T, e *simEnv, id string) slacksim.View {
	t.Helper()
	var v slacksim.View
	if err := e.ws.WaitFor(ctx, func() bool {
		v, _ = e.ws.View(id)
		return v.Open && v.CallbackID == callbackReview && !strings.Contains(string(v.Blocks), "Checking…")
	}); err != nil {
		v, _ = e.ws.View(id)
		t.Fatalf("no review page: %+v", v)
	}
	return v
}

// openFilledWizard opens the wizard and fills a valid migration of web-01 and web-02.
func openFilledWizard(ctx context.Context, t *testing.T, e *simEnv, command string) slacksim.View {
	t.Helper()
	if _, err := e.ws.Command(ctx, requester, testChannel, command); err != nil {
		t.Fatal(err)
	}
	var view slacksim.View
	if err := e.ws.WaitFor(ctx, func() bool { var ok bool; view, ok = e.ws.OpenView(requester, callbackWizard); return ok }); err != nil {
		t.Fatal(err)
	}
	fill := func(block string, values ...string) {
		t.Helper()
		if _, err := e.ws.Fill(ctx, requester, view.ID, block, values...); err != nil {
			t.Fatal(err)
		}
	}
	fill(wizTarget, "vc-west")
	hash := view.Hash
	fill(wizVMs, "web-01", "web-02")
	if err := e.ws.WaitFor(ctx, func() bool {
		v, _ := e.ws.View(view.ID)
		return v.Hash != hash && strings.Contains(string(v.Blocks), "From VM Network")
	}); err != nil {
		t.Fatal(err)
	}
	fill(wizCompute, "cluster:west-prod")
	fill(wizDatastore, "ds-gold")
	fill(wizNetPrefix+"0", "app-pg")
	fill(wizDisk, "thin")
	fill(wizPriority, "high")
	view, _ = e.ws.View(view.ID)
	return view
}

// A blocked pre-flight keeps the modal open on its review, which says why and offers no
// "Request approval"; "Back" returns to the form with every choice kept.
func TestWizardReviewBlockedGoesBack(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name   string
		socket bool
	}{{"http", false}, {"socket mode", true}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newSimEnv(t, mode.socket)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			view := openFilledWizard(ctx, t, e, "migrate")
			e.planner.mu.Lock()
			e.planner.findings = []vcenter.Finding{{VM: "web-01", Severity: vcenter.Blocker, Message: "CPU of esx-w1 is incompatible"}}
			e.planner.mu.Unlock()
			if errs, err := e.ws.SubmitView(ctx, view.ID); err != nil || len(errs) != 0 {
				t.Fatalf("submission: %v %v", errs, err)
			}
			review := awaitReview(ctx, t, e, view.ID)
			if review.Submit != "" || !strings.Contains(e.ws.ViewPlain(view.ID), "CPU of esx-w1 is incompatible") {
				t.Fatalf("blocked review (submit %q): %s", review.Submit, e.ws.ViewPlain(view.ID))
			}
			if _, err := e.ws.ClickView(ctx, view.ID, actionWizBack); err != nil {
				t.Fatal(err)
			}
			if err := e.ws.WaitFor(ctx, func() bool { v, _ := e.ws.View(view.ID); return v.CallbackID == callbackWizard }); err != nil {
				t.Fatal("Back did not return to the wizard")
			}
			for block, want := range map[string][]string{wizSource: {"vc-east"}, wizTarget: {"vc-west"}, wizVMs: {"web-01", "web-02"},
				wizCompute: {"cluster:west-prod"}, wizDatastore: {"ds-gold"}, wizNetPrefix + "0": {"app-pg"}, wizDisk: {"thin"}, wizPriority: {"high"}} {
				if got := e.ws.Value(view.ID, block); !slices.Equal(got, want) {
					t.Errorf("after Back %s is %v, want %v", block, got, want)
				}
			}
			if all, _ := e.svc.Store().List(ctx); len(all) != 0 {
				t.Fatalf("a blocked review stored %d requests", len(all))
			}
			// Fixed, the same form submits again into a review that can be requested.
			e.planner.mu.Lock()
			e.planner.findings = nil
			e.planner.mu.Unlock()
			if errs, err := e.ws.SubmitView(ctx, view.ID); err != nil || len(errs) != 0 {
				t.Fatalf("second submission: %v %v", errs, err)
			}
			if r := awaitReview(ctx, t, e, view.ID); r.Submit != "Request approval" {
				t.Fatalf("review after the fix offers %q", r.Submit)
			}
		})
	}
}

// A pre-flight slower than Slack's 3-second ack answers with a "checking…" page, which is
// updated into the review once the pre-flight is done.
func TestWizardReviewSlowPreflightChecksFirst(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	view := openFilledWizard(ctx, t, e, "migrate")
	gate := make(chan struct{})
	e.planner.mu.Lock()
	e.planner.gate = gate
	e.planner.mu.Unlock()
	if errs, err := e.ws.SubmitView(ctx, view.ID); err != nil || len(errs) != 0 {
		t.Fatalf("submission: %v %v", errs, err)
	}
	if v, _ := e.ws.View(view.ID); !v.Open || v.CallbackID != callbackReview || !strings.Contains(string(v.Blocks), "Checking…") || v.Submit != "" {
		t.Fatalf("while the pre-flight runs the modal shows %s (submit %q)", v.Blocks, v.Submit)
	}
	close(gate)
	if r := awaitReview(ctx, t, e, view.ID); r.Submit != "Request approval" {
		t.Fatalf("review after a slow pre-flight offers %q", r.Submit)
	}
}

// The review page shows the channel's review (its findings), and only a request that can
// be made offers "Request approval"; every page offers "Back".
func TestRenderWizardReviewGolden(t *testing.T) {
	t.Parallel()
	ws := wizardState{Direction: approvals.Migrate, Channel: "C0OPS", Home: "vc-east", VCenters: fxEndpoints(), Source: "vc-east",
		Target: "vc-west", VMs: []string{"web-01", "web-02"}, Compute: "cluster:west-prod", Datastore: "ds-gold", Disk: "thin",
		Networks: []string{"VM Network"}, NetTarget: map[string]string{"VM Network": "app-pg"}}
	check := ws
	check.Check = true
	// The wizard reviews a request not made yet: no id, no time (as requestOf builds it).
	unasked := func(r *approvals.Request) *approvals.Request {
		r.ID, r.CreatedAt, r.ExpiresAt, r.Jobs = "", time.Time{}, time.Time{}, nil
		return r
	}
	for _, tc := range []struct {
		name   string
		view   slack.ModalViewRequest
		submit string
		shows  string
	}{
		{"modal_review_migrate", RenderWizardReview(ws, unasked(fxPendingMigrate()), false, "", fxNow), "Request approval", "Review of a cross vCenter migrate of 1 VM, vc-east → vc-west (not requested yet)"},
		{"modal_review_blocked", RenderWizardReview(ws, unasked(fxBlocked()), true, "", fxNow), "", "Blocked"},
		{"modal_review_check", RenderWizardReview(check, unasked(fxPendingMigrate()), false, "", fxNow), "", "Pre-flight check of a cross vCenter migrate of 1 VM, vc-east → vc-west (nothing is requested)"},
		{"modal_review_checking", RenderWizardReview(ws, nil, false, "", fxNow), "", "Checking…"},
		{"modal_review_failed", RenderWizardReview(ws, nil, true, "Could not check web-01: vc-west <did not answer>", fxNow), "", `\u0026lt;did not answer\u0026gt;`}, // escaped for mrkdwn
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.view
			submit := ""
			if v.Submit != nil {
				submit = v.Submit.Text
			}
			var buf strings.Builder
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(v.Blocks)
			raw := buf.String()
			if submit != tc.submit || !strings.Contains(raw, tc.shows) || !strings.Contains(raw, actionWizBack) {
				t.Errorf("submit %q, blocks %s", submit, raw)
			}
			if n := len(v.Blocks.BlockSet); n > 100 || utf8len(v.Title.Text) > 24 || len(v.PrivateMetadata) > 3000 {
				t.Errorf("over Slack's limits: %d blocks, title %q, %d bytes of metadata", n, v.Title.Text, len(v.PrivateMetadata))
			}
			checkGolden(t, tc.name, v)
		})
	}
	// The review of the blocked request is the channel's review: the same blocks under
	// its own header.
	_, channel := RenderRequest(unasked(fxBlocked()), fxNow)
	blocked := RenderWizardReview(ws, unasked(fxBlocked()), true, "", fxNow)
	for i, blk := range withoutButtons(message{Blocks: channel}).Blocks {
		if i == 0 {
			if strings.Contains(string(mustJSON(t, blocked.Blocks.BlockSet[0])), "Pre-flight check") {
				t.Errorf("the review page is headed as a check: %s", mustJSON(t, blocked.Blocks.BlockSet[0]))
			}
			continue
		}
		a, _ := json.Marshal(blk)
		b, _ := json.Marshal(blocked.Blocks.BlockSet[i])
		if string(a) != string(b) {
			t.Fatalf("review block %d differs from the channel's: %s vs %s", i, b, a)
		}
	}
}

// "/xvm check migrate" without VMs opens the wizard in check mode: its submission shows
// the review and offers no "Request approval"; nothing is stored or posted.
func TestCheckWizardReviewsOnly(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	view := openFilledWizard(ctx, t, e, "check migrate")
	if view.Title != "Pre-flight check" || view.Submit != "Check" {
		t.Fatalf("check wizard titled %q, submit %q", view.Title, view.Submit)
	}
	if errs, err := e.ws.SubmitView(ctx, view.ID); err != nil || len(errs) != 0 {
		t.Fatalf("submission: %v %v", errs, err)
	}
	review := awaitReview(ctx, t, e, view.ID)
	if review.Submit != "" || !strings.Contains(e.ws.ViewPlain(view.ID), "A check only") || !strings.Contains(e.ws.ViewPlain(view.ID), "web-02") {
		t.Fatalf("check review (submit %q): %s", review.Submit, e.ws.ViewPlain(view.ID))
	}
	if all, _ := e.svc.Store().List(ctx); len(all) != 0 || len(e.ws.Channel(testChannel)) != 0 {
		t.Fatalf("a check stored %d requests or posted in the channel", len(all))
	}
	// Back, and the form is still the check wizard.
	if _, err := e.ws.ClickView(ctx, view.ID, actionWizBack); err != nil {
		t.Fatal(err)
	}
	if err := e.ws.WaitFor(ctx, func() bool { v, _ := e.ws.View(view.ID); return v.CallbackID == callbackWizard && v.Submit == "Check" }); err != nil {
		t.Fatal("Back did not return to the check wizard")
	}
}

func TestRenderCheckWizardGolden(t *testing.T) {
	t.Parallel()
	ws := wizardState{Direction: approvals.Import, Check: true, Channel: "C0OPS", Home: "vc-east", VCenters: fxEndpoints(), Target: "vc-east"}
	checkGolden(t, "modal_wizard_check", RenderWizard(ws))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
