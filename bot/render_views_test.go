package bot

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/vcenter"
)

// checkGolden compares v, as indented JSON, with testdata/golden/<name>.json (-update rewrites it).
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (run go test ./bot -run Golden -update and review the diff):\n%s", path, got)
	}
}

func fxEndpoints() []vcenter.Endpoint {
	return []vcenter.Endpoint{
		{Name: "vc-east", Version: "8.0.3 build 24022515", Thumbprint: fxThumbprint, Home: true, Reachable: true},
		{Name: "vc-west", Version: "7.0.3 build 21477706", Thumbprint: "12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78", Reachable: true},
	}
}

// fxHistory is a day of requests: moves on two routes, one pending, one running.
func fxHistory() []*approvals.Request {
	ok := fxSucceeded() // 3 VMs east→west, 5 minutes each
	failed := fxFailed()
	failed.ID = "xvm-f41l3d"
	imp := fxPendingImport()
	imp.ID, imp.State, imp.SourceVC, imp.TargetVC = "xvm-1mp0rt", approvals.StateSucceeded, "vc-west", "vc-east"
	imp.Approvals, imp.DecidedAt, imp.EndedAt = []approvals.Decision{{User: "U0APP1", At: fxAt(time.Hour)}}, fxAt(time.Hour), fxAt(2*time.Hour)
	imp.Jobs = []approvals.Job{{ID: "xvm-1mp0rt-01", VM: imp.VMs[0], State: approvals.StateSucceeded, StartedAt: fxAt(time.Hour), EndedAt: fxAt(time.Hour + 20*time.Minute)}}
	running := fxApproved()
	running.ID = "xvm-runn1n"
	pending := fxPendingWarning()
	old := fxSucceeded()
	old.ID, old.EndedAt = "xvm-0ld000", fxAt(-72*time.Hour)
	for i := range old.Jobs {
		old.Jobs[i].EndedAt = fxAt(-72 * time.Hour)
	}
	old.CreatedAt = fxAt(-73 * time.Hour)
	return []*approvals.Request{old, ok, failed, imp, running, pending}
}

func TestRenderViewsGolden(t *testing.T) {
	t.Parallel()
	now := fxAt(3 * time.Hour)
	stats := ComputeStats(fxHistory(), now, 24*time.Hour)
	stats.Queued = 4
	wizard := wizardState{Direction: approvals.Migrate, Channel: "C0OPS", Home: "vc-east", VCenters: fxEndpoints(), Source: "vc-east"}
	mapped := wizard
	mapped.Target, mapped.VMs, mapped.Compute, mapped.Datastore, mapped.Disk = "vc-west", []string{"web-01", "web-02"}, "cluster:west-prod", "ds-gold", "thin"
	mapped.Networks = []string{"VM Network", "backup"}
	mapped.NetTarget = map[string]string{"VM Network": "app-pg"}
	imp := wizardState{Direction: approvals.Import, Channel: "C0OPS", Home: "vc-east", VCenters: fxEndpoints(), Target: "vc-east"}
	msgs := []struct {
		name   string
		render func() (string, []slack.Block)
	}{
		{"list", func() (string, []slack.Block) { return RenderList(fxHistory(), now) }},
		{"list_empty", func() (string, []slack.Block) { return RenderList(nil, now) }},
		{"vcenters", func() (string, []slack.Block) {
			eps := fxEndpoints()
			eps[1].CertCheck = vcenter.CertPinnedInsecureIgnored // insecure: true next to a thumbprint
			refused := &vcenter.Fault{VCenter: "vc-north", Step: vcenter.StepLogin, Kind: "InvalidLogin",
				Message: "vc-north refused the service account's credentials; xvmbot does not log in again before 09:01 UTC, so that retries do not lock the account"}
			return RenderVCenters([]vcInfo{{ep: eps[0]}, {ep: eps[1]},
				{ep: vcenter.Endpoint{Name: "vc-lab", CertCheck: vcenter.CertUnverified}, err: errors.New("dial tcp 10.0.0.9:443: i/o timeout")},
				{ep: vcenter.Endpoint{Name: "vc-north"}, err: refused}})
		}},
		{"stats_24h", func() (string, []slack.Block) { return RenderStats(stats, "last 24 hours") }},
		{"stats_empty", func() (string, []slack.Block) {
			return RenderStats(ComputeStats(nil, now, 7*24*time.Hour), "last 7 days")
		}},
		{"status_rejected_with_reason", func() (string, []slack.Block) { return asMessage(RenderRequest(fxRejected(), fxNow)).parts() }},
	}
	for _, tc := range msgs {
		t.Run(tc.name, func(t *testing.T) {
			text, blocks := tc.render()
			if text == "" {
				t.Error("empty fallback text")
			}
			checkSlackLimits(t, blocks)
			checkGolden(t, tc.name, goldenMessage{Text: text, Blocks: blocks})
		})
	}
	views := []struct {
		name string
		view slack.ModalViewRequest
	}{
		{"modal_reject", RenderRejectModal(fxPendingMigrate(), modalContext{Request: "xvm-k3m9q2", Channel: "C0OPS", MessageTS: "1764000000.000001"}.encode())},
		{"modal_wizard_migrate", RenderWizard(wizard)},
		{"modal_wizard_import", RenderWizard(imp)},
		{"modal_wizard_networks", RenderWizard(mapped)},
	}
	for _, tc := range views {
		t.Run(tc.name, func(t *testing.T) {
			if n := len(tc.view.Blocks.BlockSet); n > 100 {
				t.Errorf("%d blocks, a modal allows 100", n)
			}
			if utf8len(tc.view.Title.Text) > 24 || utf8len(tc.view.Submit.Text) > 24 || len(tc.view.PrivateMetadata) > 3000 {
				t.Errorf("title, submit or metadata over Slack's limits: %+v", tc.view)
			}
			checkGolden(t, tc.name, tc.view)
		})
	}
}

func utf8len(s string) int { return len([]rune(s)) }

func (m message) parts() (string, []slack.Block) { return m.Text, m.Blocks }

func TestComputeStats(t *testing.T) {
	t.Parallel()
	now := fxAt(3 * time.Hour)
	s := ComputeStats(fxHistory(), now, 24*time.Hour)
	if len(s.Routes) != 2 {
		t.Fatalf("routes %+v", s.Routes)
	}
	east := s.Routes[0]
	// fxSucceeded: 3 succeeded; fxFailed: 2 succeeded, 1 failed; the running one: 1 succeeded so far.
	// The old request is outside the window.
	if east.Source != "vc-east" || east.Target != "vc-west" || east.Succeeded != 6 || east.Failed != 1 {
		t.Errorf("east→west %+v", east)
	}
	if s.Routes[1].Succeeded != 1 || s.Routes[1].Failed != 0 {
		t.Errorf("import route %+v", s.Routes[1])
	}
	if s.Timed != 8 || s.Median != 5*time.Minute || s.P95 != 20*time.Minute {
		t.Errorf("durations: %d timed, median %s, p95 %s", s.Timed, s.Median, s.P95)
	}
	if s.Waiting != 1 {
		t.Errorf("waiting %d, want the one pending request", s.Waiting)
	}
	if s.MovedGB <= 0 {
		t.Errorf("moved %v GB", s.MovedGB)
	}
	if got := ComputeStats(fxHistory(), now, 7*24*time.Hour); got.Routes[0].Succeeded != 9 {
		t.Errorf("7d window east→west %+v", got.Routes[0])
	}
	if !strings.Contains(strings.Join(func() []string { _, b := RenderStats(s, "x"); return []string{string(mustMarshal(t, b))} }(), ""), "p95") {
		t.Error("stats do not show the p95")
	}
}
