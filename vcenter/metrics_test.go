package vcenter

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/secret"
)

// Before any relocation, every configured vCenter already has its task results at 0 for
// success, error and every fault kind a task can end in: the third Timedout of a vCenter
// is seen as three by increase(), and XvmVCenterTasksFailing fires on it.
func TestTaskResultsExistForEveryVCenterFromTheStart(t *testing.T) {
	const tp = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	var cfgs []Config
	for i, name := range []string{"vc-east", "vc-west"} {
		cfgs = append(cfgs, Config{Name: name, URL: "https://" + name + ".example.com/sdk", Username: "svc",
			Password: secret.Secret("pw"), Thumbprint: tp, Home: i == 0})
	}
	reg := prometheus.NewRegistry()
	if _, err := NewManager(cfgs, nil, reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]map[string]bool{} // vcenter → results present at 0
	durations := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch f.GetName() {
			case "xvm_vcenter_task_results_total":
				if m.GetCounter().GetValue() != 0 {
					t.Errorf("%v = %v before any task", l, m.GetCounter().GetValue())
				}
				if results[l["vcenter"]] == nil {
					results[l["vcenter"]] = map[string]bool{}
				}
				results[l["vcenter"]][l["result"]] = true
			case "xvm_vcenter_task_duration_seconds":
				durations[l["vcenter"]] = true
			}
		}
	}
	for _, vc := range []string{"vc-east", "vc-west"} {
		for _, r := range []string{"success", "error", "Timedout", "NetworkCopyFault", "VMotionLinkDown", "InsufficientResourcesFault", "ThumbprintMismatch"} {
			if !results[vc][r] {
				t.Errorf("xvm_vcenter_task_results_total{vcenter=%q,result=%q} missing before any task", vc, r)
			}
		}
		for k := range faultTexts {
			if !results[vc][string(k)] {
				t.Errorf("xvm_vcenter_task_results_total{vcenter=%q,result=%q} missing before any task", vc, k)
			}
		}
		if !durations[vc] {
			t.Errorf("xvm_vcenter_task_duration_seconds{vcenter=%q} missing before any task", vc)
		}
	}
}
