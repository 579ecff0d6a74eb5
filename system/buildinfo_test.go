package system

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// What the release build stamps is what `xvmbot version` prints and xvm_build_info
// reports; an unstamped build says it is a development build of the next release.
func TestBuildInfo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		stamp  Stamp
		print  string
		labels map[string]string
	}{
		{"release", Stamp{Version: "v0.2.0", Commit: "0123abc", Date: "2026-12-07T13:00:00Z", TreeState: "clean"},
			"xvmbot 0.2.0 (revision 0123abc, built 2026-12-07T13:00:00Z, ",
			map[string]string{"version": "0.2.0", "revision": "0123abc", "date": "2026-12-07T13:00:00Z", "dirty": "false"}},
		{"dirty tree", Stamp{Version: "0.2.0-next", Commit: "0123abc", Date: "2026-12-07T13:00:00Z", TreeState: "dirty"},
			"xvmbot 0.2.0-next (revision 0123abc, dirty, built 2026-12-07T13:00:00Z, ",
			map[string]string{"version": "0.2.0-next", "dirty": "true"}},
		{"go build", Stamp{Commit: "0123abc", Date: "2026-12-07T13:00:00Z", TreeState: "clean"},
			"xvmbot " + ReleaseVersion + "-dev (revision 0123abc, built",
			map[string]string{"version": ReleaseVersion + "-dev"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ReadBuild(tc.stamp)
			if got := b.String(); !strings.HasPrefix(got, tc.print) {
				t.Errorf("xvmbot version prints %q, want it to start %q", got, tc.print)
			}
			reg := prometheus.NewRegistry()
			registerBuildInfo(reg, b)
			mfs, err := reg.Gather()
			if err != nil || len(mfs) != 1 || mfs[0].GetName() != "xvm_build_info" || len(mfs[0].GetMetric()) != 1 {
				t.Fatalf("gathered %v, %v: want one xvm_build_info series", mfs, err)
			}
			m := mfs[0].GetMetric()[0]
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range tc.labels {
				if got[k] != v {
					t.Errorf("xvm_build_info{%s=%q}, want %q (all: %v)", k, got[k], v, got)
				}
			}
			if got["goversion"] == "" || m.GetGauge().GetValue() != 1 {
				t.Errorf("xvm_build_info %v = %v", got, m.GetGauge().GetValue())
			}
		})
	}
}
