package bot

import (
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
)

// The review's storage field names the storage policy asked for, or the one every VM
// keeps by name, and each disk's own.
func TestReviewShowsTheStoragePolicy(t *testing.T) {
	t.Parallel()
	storage := func(r *approvals.Request) string {
		for _, f := range placementFields(r) {
			if strings.HasPrefix(f.Text, "*Storage*") {
				return f.Text
			}
		}
		t.Fatal("no storage field")
		return ""
	}
	asked := &approvals.Request{Placement: move.Placement{Datastore: "ds-gold", Policy: "gold-policy",
		Disks: []move.Disk{{Disk: 2, Datastore: "ds-silver", Policy: "silver-policy"}}}}
	got := storage(asked)
	for _, want := range []string{"VM storage policy: gold-policy", "Hard disk 2: ds-silver · Same format as source · silver-policy"} {
		if !strings.Contains(got, want) {
			t.Errorf("storage field %q lacks %q", got, want)
		}
	}
	kept := &approvals.Request{Review: approvals.Review{Placement: move.Placement{Datastore: "ds-gold", Policy: "gold-policy"}}}
	if got := storage(kept); !strings.Contains(got, "VM storage policy: gold-policy (kept by name)") {
		t.Errorf("storage field %q does not say the policy is kept by name", got)
	}
	if got := storage(&approvals.Request{Placement: move.Placement{Datastore: "ds-gold"}}); strings.Contains(got, "policy") {
		t.Errorf("storage field %q speaks of a policy no one asked for or keeps", got)
	}
}
