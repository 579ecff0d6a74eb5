package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// End-to-end tests of the Slack experience: modals, the approval policy and the life of a
// request, on the same real components as e2e_test.go.

var transports = []struct {
	name string
	opts []harnessOpt
}{{"http", nil}, {"socket mode", []harnessOpt{socketMode}}}

// stoppable is a system the test can stop (and replace) before the test ends.
type stoppable struct {
	sys  *system.System
	stop func()
}

// newStoppableHarness is newHarness with lab options and a system the test may stop.
func newStoppableHarness(t *testing.T, labOpts []xvmsim.Option, opts ...harnessOpt) (*harness, *config.Config, *stoppable) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	lab, err := xvmsim.Start(ctx, append([]xvmsim.Option{xvmsim.WithTaskDuration(600 * time.Millisecond)}, labOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	ws := slacksim.New()
	t.Cleanup(ws.Close)
	ws.EnableModals()
	ws.SetGroup(gOps, uOps)
	for id, n := range map[string]string{uReq: "alice", uBoss: "bob", uOps: "carol", uNope: "dave"} {
		ws.AddUser(id, n)
	}
	h := &harness{t: t, ctx: ctx, lab: lab, ws: ws, signing: "test-signing-" + randomHex(8)}
	cfg := h.config(opts...)
	st := h.startStoppable(cfg)
	h.sys = st.sys
	return h, cfg, st
}

// startStoppable starts a system on cfg and points the workspace at it.
func (h *harness) startStoppable(cfg *config.Config) *stoppable {
	h.t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{h.t}, nil))
	}
	sys, err := system.New(h.ctx, cfg, system.RoleServe, logger)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	stopped := false
	st := &stoppable{sys: sys}
	st.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("system run: %v", err)
		}
	}
	h.t.Cleanup(st.stop)
	if cfg.Slack.Mode == "http" {
		h.ws.UseHTTP("http://"+sys.SlackAddr(), h.signing)
	} else {
		h.ws.UseSocketMode()
	}
	return st
}

// rejectWithReason clicks Reject as user, fills the reason in the dialog and submits it.
func (h *harness) rejectWithReason(user string, m slacksim.Message, reason string) map[string]string {
	h.t.Helper()
	h.click(user, m, "xvm_reject")
	var view slacksim.View
	h.await("the reason dialog for "+user, func() bool {
		var ok bool
		view, ok = h.ws.OpenView(user, "xvm_reject_reason")
		return ok
	})
	if _, err := h.ws.Fill(h.ctx, user, view.ID, "reason", reason); err != nil {
		h.t.Fatal(err)
	}
	errs, err := h.ws.SubmitView(h.ctx, view.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return errs
}

func (h *harness) command(user, text string) {
	h.t.Helper()
	rep, err := h.ws.Command(h.ctx, user, chan1, text)
	if err != nil || rep.Status != http.StatusOK {
		h.t.Fatalf("command %q: %v %+v", text, err, rep)
	}
}

func TestRejectWithReasonEndToEnd(t *testing.T) {
	for _, mode := range transports {
		t.Run(mode.name, func(t *testing.T) {
			h, _, _ := newStoppableHarness(t, nil, mode.opts...)
			msg := h.request(uReq, "migrate web-02 to vc-west cluster=west-prod datastore=ds-silver network=app-pg")

			// A stranger gets no dialog, only a private answer.
			n := len(h.ws.Ephemerals(uNope))
			h.click(uNope, msg, "xvm_reject")
			h.awaitEphemeral(uNope, n, "not an approver")
			if _, ok := h.ws.OpenView(uNope, "xvm_reject_reason"); ok {
				t.Fatal("a reason dialog opened for a non-approver")
			}

			if errs := h.rejectWithReason(uBoss, msg, "change freeze until Monday"); len(errs) != 0 {
				t.Fatalf("rejection refused in the dialog: %v", errs)
			}
			h.await("the rejection with its reason", func() bool {
				p := h.ws.Plain(h.parent(msg.TS))
				return strings.Contains(p, "Rejected") && strings.Contains(p, "@bob") && strings.Contains(p, "change freeze until Monday") &&
					!strings.Contains(string(h.parent(msg.TS).Blocks), `"xvm_approve"`)
			})
			h.awaitEnd(msg.TS, approvals.StateRejected)
			rec, err := h.sys.Approvals().Get(h.ctx, h.requestID(msg))
			if err != nil || rec.Rejection == nil || rec.Rejection.User != uBoss || rec.Rejection.Reason != "change freeze until Monday" {
				t.Fatalf("stored rejection %+v (%v)", rec, err)
			}
			if _, err := h.lab.VC("vc-east").FindVM(h.ctx, "web-02"); err != nil {
				t.Errorf("rejected web-02 left vc-east: %v", err)
			}
		})
	}
}

func TestQuorumOfTwoForProductionVCenter(t *testing.T) {
	h, _, _ := newStoppableHarness(t, nil, func(c *config.Config) { c.Approvals.QuorumByVCenter = map[string]int{"vc-west": 2} })
	msg := h.request(uReq, "migrate web-03 to vc-west cluster=west-prod datastore=ds-silver network=app-pg")
	if p := h.ws.Plain(msg); !strings.Contains(p, "0 of 2 approvals") {
		t.Fatalf("the request does not say two approvals are needed:\n%s", p)
	}
	h.click(uBoss, msg, "xvm_approve")
	h.await("one approval of two shown", func() bool {
		p := h.ws.Plain(h.parent(msg.TS))
		return strings.Contains(p, "1 of 2 approvals") && strings.Contains(p, "@bob")
	})
	n := len(h.ws.Ephemerals(uBoss))
	h.click(uBoss, msg, "xvm_approve") // the same approver twice counts once
	h.awaitEphemeral(uBoss, n, "already counted")
	if q := h.jobsPublished(); q != 0 || h.lab.VC("vc-east").XVMRelocations() != 0 {
		t.Fatalf("a move started with one approval of two")
	}
	h.click(uOps, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	p := h.ws.Plain(h.parent(msg.TS))
	if !strings.Contains(p, "@bob") || !strings.Contains(p, "@carol") {
		t.Errorf("the summary does not name both approvers:\n%s", p)
	}
	if !strings.Contains(p, "moved") || !strings.Contains(p, "Took") {
		t.Errorf("the finished summary does not state duration and data moved:\n%s", p)
	}
}

func TestExpiryRemovesTheButtons(t *testing.T) {
	h, _, _ := newStoppableHarness(t, nil, func(c *config.Config) { c.Approvals.ExpireAfter = time.Second })
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	if !strings.Contains(h.ws.Plain(msg), "Expires 20") {
		t.Errorf("the request does not say when it expires:\n%s", h.ws.Plain(msg))
	}
	time.Sleep(1100 * time.Millisecond) // the deadline itself is what is tested
	n := len(h.ws.Ephemerals(uBoss))
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEphemeral(uBoss, n, "expired")
	h.await("the expired request without buttons", func() bool {
		p := h.parent(msg.TS)
		return strings.Contains(h.ws.Plain(p), "Expired") && !strings.Contains(string(p.Blocks), `"xvm_`)
	})
	if h.lab.VC("vc-east").XVMRelocations() != 0 {
		t.Error("an expired request moved a VM")
	}
}

func TestCancelOnlyByRequesterOrApprover(t *testing.T) {
	h, _, _ := newStoppableHarness(t, nil)
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	id := h.requestID(msg)
	n := len(h.ws.Ephemerals(uNope))
	h.command(uNope, "cancel "+id)
	h.awaitEphemeral(uNope, n, "only the requester or an approver")
	n = len(h.ws.Ephemerals(uReq))
	h.command(uReq, "cancel "+id)
	h.awaitEphemeral(uReq, n, "cancelled")
	h.await("the cancelled request", func() bool {
		p := h.parent(msg.TS)
		return strings.Contains(h.ws.Plain(p), "Cancelled") && strings.Contains(h.ws.Plain(p), "@alice") && !strings.Contains(string(p.Blocks), `"xvm_approve"`)
	})
	rec, _ := h.sys.Approvals().Get(h.ctx, id)
	if rec.State != approvals.StateCancelled || rec.Cancellation == nil || rec.Cancellation.User != uReq {
		t.Fatalf("stored %+v", rec)
	}
}

func TestListAndStatusAfterRestart(t *testing.T) {
	h, cfg, first := newStoppableHarness(t, nil)
	done := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	h.click(uBoss, done, "xvm_approve")
	h.awaitEnd(done.TS, approvals.StateSucceeded)
	waiting := h.request(uReq, "migrate web-02 to vc-west cluster=west-prod datastore=ds-silver network=app-pg")
	rejected := h.request(uReq, "migrate web-03 to vc-west cluster=west-prod datastore=ds-silver network=app-pg")
	h.rejectWithReason(uBoss, rejected, "wrong cluster")
	h.awaitEnd(rejected.TS, approvals.StateRejected)

	first.stop()
	second := h.startStoppable(cfg) // same NATS data dir
	h.sys = second.sys

	n := len(h.ws.Ephemerals(uOps))
	h.command(uOps, "list")
	list := h.awaitEphemeral(uOps, n, "waiting for approval")
	for _, id := range []string{h.requestID(done), h.requestID(waiting), h.requestID(rejected)} {
		if !strings.Contains(list, id) {
			t.Errorf("list after restart lacks %s:\n%s", id, list)
		}
	}
	n = len(h.ws.Ephemerals(uOps))
	h.command(uOps, "status "+h.requestID(rejected))
	status := h.awaitEphemeral(uOps, n, "rejected")
	if !strings.Contains(status, "@bob") || !strings.Contains(status, "wrong cluster") {
		t.Errorf("status after restart does not say who rejected and why:\n%s", status)
	}
	n = len(h.ws.Ephemerals(uOps))
	h.command(uOps, "status "+h.requestID(done))
	status = h.awaitEphemeral(uOps, n, "succeeded")
	if !strings.Contains(status, "@bob") || !strings.Contains(status, "web-01") {
		t.Errorf("status after restart does not show the approval and the VM:\n%s", status)
	}
	// Stats are computed from the durable records too (answered privately, with a
	// button to share them in the channel).
	n = len(h.ws.Ephemerals(uOps))
	h.command(uOps, "stats 7d")
	if st := h.awaitEphemeral(uOps, n, "last 7 days"); !strings.Contains(st, "vc-east → vc-west: ✅ 1 succeeded") || !strings.Contains(st, "1 request") {
		t.Errorf("stats after restart:\n%s", st)
	}
}

func TestThreeHundredVMsStayWithinBlockKitLimits(t *testing.T) {
	h, _, _ := newStoppableHarness(t, []xvmsim.Option{xvmsim.WithExtraVMs(300)}, func(c *config.Config) { c.Limits.MaxConcurrent = 2 })
	msg := h.request(uReq, "migrate bulk-* to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	var blocks []map[string]any
	if err := json.Unmarshal(msg.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	if len(blocks) > 50 || len(msg.Blocks) >= 12000 {
		t.Fatalf("approval message has %d blocks, %d bytes of blocks", len(blocks), len(msg.Blocks))
	}
	for _, b := range blocks {
		if txt, ok := b["text"].(map[string]any); ok && len([]rune(txt["text"].(string))) > 3000 {
			t.Fatalf("a section text over 3000 characters")
		}
	}
	if !strings.Contains(h.ws.Plain(msg), "(300)") {
		t.Errorf("the review does not count 300 VMs:\n%s", h.ws.Plain(msg))
	}
	h.click(uBoss, msg, "xvm_approve")
	id := h.requestID(msg)
	h.await("300 jobs", func() bool {
		r, err := h.sys.Approvals().Get(h.ctx, id)
		return err == nil && (r.State == approvals.StateQueued || r.State == approvals.StateRunning) && len(r.Jobs) == 300
	})
	// Bound the test: cancel what has not started.
	h.command(uReq, "cancel "+id)
	h.await("the cancellation", func() bool {
		r, _ := h.sys.Approvals().Get(h.ctx, id)
		return r.State == approvals.StateCancelled || r.State.Final()
	})
	p := h.parent(msg.TS)
	if err := json.Unmarshal(p.Blocks, &blocks); err != nil || len(blocks) > 50 || len(p.Blocks) >= 12000 {
		t.Fatalf("summary after approval: %d blocks, %d bytes (%v)", len(blocks), len(p.Blocks), err)
	}
}

// Slack allows an app about 50 chat.update calls a minute. A wave whose moves report
// progress every few hundred milliseconds stays within that with the default edit budget:
// Slack rate-limits nothing, and every VM's progress message still ends at its end.
func TestWaveStaysWithinSlacksEditLimit(t *testing.T) {
	const vms = 8
	h, _, _ := newStoppableHarness(t, []xvmsim.Option{xvmsim.WithExtraVMs(vms)})
	h.ws.Limit("chat.update", 50, 10)
	msg := h.request(uReq, "migrate bulk-* to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	ended := func() (n int, stale []string) {
		for _, m := range h.ws.Thread(msg.TS) {
			p := h.ws.Plain(m)
			switch {
			case !strings.Contains(p, "Job "):
			case strings.Contains(p, "100%") && !strings.Contains(p, "🔄"):
				n++
			default:
				stale = append(stale, p)
			}
		}
		return n, stale
	}
	h.await("every VM's progress message at its end", func() bool { n, _ := ended(); return n == vms })
	if n, stale := ended(); n != vms || len(stale) > 0 {
		t.Errorf("%d of %d progress messages at their end; not: %q", n, vms, stale)
	}
	if n := h.ws.RateLimited("chat.update"); n != 0 {
		t.Errorf("Slack rate-limited %d of %d chat.update calls", n, h.ws.Calls("chat.update"))
	}
}

func TestRateLimitStormDuringProgress(t *testing.T) {
	h, _, _ := newStoppableHarness(t, nil)
	msg := h.request(uReq, "migrate web-01,web-02 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	h.ws.Throttle("chat.update", 3, time.Second)
	h.click(uBoss, msg, "xvm_approve")
	thread := h.awaitEnd(msg.TS, approvals.StateSucceeded)
	if h.ws.Calls("chat.update") < 4 {
		t.Errorf("only %d chat.update calls: the storm was not met", h.ws.Calls("chat.update"))
	}
	progress := map[string]int{}
	finals := 0
	for _, m := range thread {
		p := h.ws.Plain(m)
		for _, vm := range []string{"web-01", "web-02"} {
			if strings.Contains(p, "Job ") && strings.Contains(p, vm) {
				progress[vm]++
				if !strings.Contains(p, "100%") {
					t.Errorf("progress of %s did not end at 100%%: %s", vm, p)
				}
			}
		}
		if strings.Contains(m.Text+string(m.Blocks), "<@"+uReq+">") {
			finals++
		}
	}
	if progress["web-01"] != 1 || progress["web-02"] != 1 || finals != 1 {
		t.Errorf("progress messages %v and %d final replies; want one each:\n%s", progress, finals, h.transcript())
	}
	// The summary is an edit too: one the storm refused is sent again later, so it may
	// arrive after the final reply (awaitEnd's "succeeded" also matches "0 succeeded").
	h.await("the summary to show both VMs succeeded", func() bool {
		return strings.Contains(h.ws.Plain(h.parent(msg.TS)), "2 succeeded")
	})
}

func TestWizardModalEndToEnd(t *testing.T) {
	for _, mode := range transports {
		t.Run(mode.name, func(t *testing.T) {
			h, _, _ := newStoppableHarness(t, nil, mode.opts...)
			h.command(uReq, "migrate")
			var view slacksim.View
			h.await("the wizard", func() bool {
				var ok bool
				view, ok = h.ws.OpenView(uReq, "xvm_wizard")
				return ok
			})
			fill := func(block string, values ...string) {
				t.Helper()
				if _, err := h.ws.Fill(h.ctx, uReq, view.ID, block, values...); err != nil {
					t.Fatal(err)
				}
			}
			suggest := func(block, query string) []string {
				t.Helper()
				got, err := h.ws.Suggest(h.ctx, uReq, view.ID, block, query)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			fill("dst_vc", "vc-west")
			if got := suggest("vms", "web-0"); !slices.Contains(got, "web-01") {
				t.Fatalf("VM search in vc-east offered %v", got)
			}
			hash := view.Hash
			fill("vms", "web-01")
			h.await("one network select per source network", func() bool {
				v, _ := h.ws.View(view.ID)
				return v.Hash != hash && strings.Contains(string(v.Blocks), `"net_0"`)
			})
			if got := suggest("compute", "west"); !slices.Contains(got, "cluster:west-prod") {
				t.Fatalf("compute search in vc-west offered %v", got)
			}
			fill("compute", "cluster:west-prod")
			if got := suggest("datastore", ""); !slices.Contains(got, "ds-gold") {
				t.Fatalf("datastores of west-prod: %v", got)
			}
			fill("datastore", "ds-gold")
			if got := suggest("net_0", "app"); !slices.Contains(got, "app-pg") {
				t.Fatalf("portgroups of west-prod: %v", got)
			}
			fill("net_0", "app-pg")
			fill("disk", "thin")
			if errs, err := h.ws.SubmitView(h.ctx, view.ID); err != nil || len(errs) != 0 {
				t.Fatalf("submission refused: %v %v", errs, err)
			}
			// The modal turns into the pre-flight's review; nothing is posted before
			// "Request approval".
			h.await("the review page in the modal", func() bool {
				v, _ := h.ws.View(view.ID)
				return v.Open && v.CallbackID == "xvm_wizard_review" && v.Submit == "Request approval"
			})
			if n := len(h.ws.Channel(chan1)); n != 0 {
				t.Fatalf("%d messages posted before Request approval", n)
			}
			if errs, err := h.ws.SubmitView(h.ctx, view.ID); err != nil || len(errs) != 0 {
				t.Fatalf("request approval refused: %v %v", errs, err)
			}
			var msg slacksim.Message
			h.await("the review posted for approval", func() bool {
				ch := h.ws.Channel(chan1)
				if len(ch) > 0 && strings.Contains(string(ch[0].Blocks), `"xvm_approve"`) {
					msg = ch[0]
					return true
				}
				return false
			})
			h.click(uBoss, msg, "xvm_approve")
			h.awaitEnd(msg.TS, approvals.StateSucceeded)
			got, err := h.lab.VC("vc-west").FindVM(h.ctx, "web-01")
			if err != nil || got.Cluster != "west-prod" || got.Datastores[0] != "ds-gold" || got.NICs[0].Network != "app-pg" || !got.Disks[0].Thin {
				t.Fatalf("web-01 in vc-west: %+v (%v)", got, err)
			}
		})
	}
}
