package bot

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Every approval decision is a series at 0 from the start: XvmApprovalsExpired asks for
// increase(xvm_approvals_total{decision="expired"}), which a series born at 1 would not
// show, so the first request to expire would page nobody.
func TestApprovalDecisionsExistFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	newMetrics(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "xvm_approvals_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "decision" {
					seen[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, d := range []string{"approved", "rejected", "denied", "duplicate", "expired", "cancelled", "unverified"} {
		if v, ok := seen[d]; !ok || v != 0 {
			t.Errorf("xvm_approvals_total{decision=%q} before any click: present=%v value=%v, want a series at 0", d, ok, v)
		}
	}
}
