package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// A request above slack.table_above VMs, run through the whole system: its thread holds
// one progress table, edited in place, the failure of the one VM that failed and the
// final reply — no message per VM — within the local Slack's post rate per channel. The
// request message then offers the approver a retry of the failed VM.
func TestLargeRequestThreadHoldsTheTableAndTheFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *config.Config) { c.Slack.TableAbove = 3 })
	h.ws.LimitPosts(1, 5)
	h.lab.VC(xvmsim.EastVC).FailNextRelocation("web-02", &types.NoPermission{PrivilegeId: "Resource.HotMigrate",
		Object: &types.ManagedObjectReference{Type: "ResourcePool", Value: "resgroup-42"}})

	msg := h.request(uReq, "migrate web-01,web-02,web-03,db-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	h.click(uBoss, msg, "xvm_approve")
	thread := h.awaitEnd(msg.TS, approvals.StateFailed)

	var tables, failures, finals int
	var table string
	for _, m := range thread {
		p := h.ws.Plain(m)
		switch {
		case strings.Contains(p, "Progress of "+h.requestID(msg)):
			tables++
			table = p
			if m.Edits == 0 {
				t.Errorf("the table was never edited:\n%s", p)
			}
		case strings.Contains(p, "failed to move"):
			failures++
			if !strings.Contains(p, "web-02") {
				t.Errorf("a failure other than web-02's was posted:\n%s", p)
			}
		case strings.Contains(m.Text+string(m.Blocks), "<@"+uReq+">"):
			finals++
		default:
			t.Errorf("the thread holds a message that is neither the table, a failure nor the final reply:\n%s", p)
		}
	}
	if tables != 1 || failures != 1 || finals != 1 || len(thread) != 3 {
		t.Fatalf("thread: %d tables, %d failures, %d final replies in %d messages; want one of each\n%s",
			tables, failures, finals, len(thread), h.transcript())
	}
	for _, want := range []string{"3 succeeded", "1 failed", "NoPermission", "web-02"} {
		if !strings.Contains(table, want) {
			t.Errorf("the ended table does not say %q:\n%s", want, table)
		}
	}
	if n := h.ws.RateLimited("chat.postMessage"); n != 0 {
		t.Errorf("the local Slack refused %d posts", n)
	}
	if got := h.parent(msg.TS).ActionIDs(); !slices.Equal(got, []string{"xvm_retry"}) {
		t.Errorf("the ended request offers %v, want the retry of its failed VM", got)
	}
	if _, err := h.lab.VC(xvmsim.EastVC).FindVM(h.ctx, "web-02"); err != nil {
		t.Errorf("web-02 left vc-east: %v", err)
	}
}
