package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// A storage policy chosen, checked, applied and undone. db-01 is under vc-east's
// silver-policy. A check of gold-policy on ds-silver is refused before approval (vc-west's
// gold-policy fits only ds-gold); the move under gold-policy, with Hard disk 2 on
// ds-silver under silver-policy, is reviewed, approved, and leaves db-01 in vc-west
// under those policies, as vc-west's storage policy service reports. Its undo asks for
// silver-policy back and gets it.
func TestStoragePolicyChosenCheckedAppliedAndUndone(t *testing.T) {
	h := newHarness(t)
	east, west := h.lab.VC(xvmsim.EastVC), h.lab.VC(xvmsim.WestVC)
	if err := east.SetPolicy(h.ctx, "db-01", xvmsim.SilverPolicy); err != nil {
		t.Fatal(err)
	}
	const where = `db-01 to vc-west cluster=west-prod folder=migrated/db network=east-app-pg:db-pg,"VM Network":"VM Network"`

	// Checked: a datastore the policy does not fit is a blocker naming both.
	n := len(h.ws.Ephemerals(uReq))
	if rep, err := h.ws.Command(h.ctx, uReq, chan1, "check migrate "+where+" datastore=ds-silver policy=gold-policy"); err != nil || rep.Status != http.StatusOK {
		t.Fatalf("check: %v %+v", err, rep)
	}
	h.awaitAnswer(uReq, n, "storage policy gold-policy does not fit datastore ds-silver")
	// And a policy vc-west does not have is refused, naming those it has.
	if rep, err := h.ws.Command(h.ctx, uReq, chan1, "check migrate "+where+" datastore=ds-gold policy=platinum"); err != nil || rep.Status != http.StatusOK {
		t.Fatalf("check: %v %+v", err, rep)
	}
	h.awaitAnswer(uReq, n, "storage policy platinum not found in vc-west", "gold-policy, silver-policy")

	// Chosen and applied.
	msg := h.request(uReq, "migrate "+where+" datastore=ds-gold policy=gold-policy disk2=ds-silver::silver-policy")
	review := h.ws.Plain(msg)
	for _, want := range []string{"VM storage policy: gold-policy", "Hard disk 2: ds-silver", "silver-policy"} {
		if !strings.Contains(review, want) {
			t.Errorf("the review does not show %q:\n%s", want, review)
		}
	}
	h.click(uBoss, msg, "xvm_approve")
	h.awaitEnd(msg.TS, approvals.StateSucceeded)
	home, disks, err := west.Policies(h.ctx, "db-01")
	if err != nil {
		t.Fatal(err)
	}
	if home != xvmsim.GoldPolicy || !slices.Equal(disks, []string{xvmsim.GoldPolicy, xvmsim.SilverPolicy}) {
		t.Errorf("db-01 in vc-west is under %q, disks %q; want gold-policy, Hard disk 2 silver-policy", home, disks)
	}

	// Undone: the way back names the source policy, and db-01 is under it again.
	back := h.request(uReq, "undo "+h.requestID(msg)+"-01")
	if review := h.ws.Plain(back); !strings.Contains(review, "VM storage policy: silver-policy") {
		t.Errorf("the undo request does not ask for silver-policy back:\n%s", review)
	}
	h.click(uBoss, back, "xvm_approve")
	h.awaitEnd(back.TS, approvals.StateSucceeded)
	home, disks, err = east.Policies(h.ctx, "db-01")
	if err != nil {
		t.Fatal(err)
	}
	if home != xvmsim.SilverPolicy || !slices.Equal(disks, []string{xvmsim.SilverPolicy, xvmsim.SilverPolicy}) {
		t.Errorf("after undo db-01 in vc-east is under %q, disks %q; want silver-policy for all, as before", home, disks)
	}
}
