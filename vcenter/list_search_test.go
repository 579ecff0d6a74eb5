package vcenter

import (
	"context"
	"fmt"
	"testing"

	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// The wizard's search finds a VM by any part of its name ("01" finds web-01), names that
// start with what was typed first.
func TestListMatchesSubstrings(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	opts, err := m.List(context.Background(), xvmsim.EastVC, KindVMs, "02", Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if got := labels(opts); got != "web-02" {
		t.Errorf("VMs matching 02: %q, want web-02", got)
	}
	opts, err = m.List(context.Background(), xvmsim.WestVC, KindPortgroups, "PG", Scope{Cluster: xvmsim.WestCluster})
	if err != nil {
		t.Fatal(err)
	}
	if got := labels(opts); got != "app-pg,db-pg" {
		t.Errorf("portgroups matching PG: %q, want app-pg,db-pg", got)
	}
}

func TestSearchPutsPrefixesFirstAndCaps(t *testing.T) {
	t.Parallel()
	all := []Option{{Label: "old-web"}, {Label: "web-01"}, {Label: "db"}}
	if got := labels(search(all, "WEB")); got != "web-01,old-web" {
		t.Errorf("search web: %q", got)
	}
	var many []Option
	for i := range MaxOptions + 50 {
		many = append(many, Option{Label: fmt.Sprintf("x-%03d", i)}, Option{Label: fmt.Sprintf("%03d-x", i)})
	}
	got := search(many, "x")
	if len(got) != MaxOptions || got[0].Label != "x-000" {
		t.Errorf("%d options, first %q; want %d starting with the prefix matches", len(got), got[0].Label, MaxOptions)
	}
}
