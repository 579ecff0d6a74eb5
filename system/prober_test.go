package system

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// labConfig is a valid config of a worker on the lab's vCenters.
func labConfig(t *testing.T, lab *xvmsim.Lab) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP = config.HTTPConfig{OpsListen: "127.0.0.1:0"}
	cfg.NATS.DataDir = filepath.Join(t.TempDir(), "nats")
	cfg.Approvals.Approvers = []string{"U012ABC"}
	cfg.Slack = config.SlackConfig{Mode: "http", BotToken: "xoxb-test", SigningSecret: "s"}
	cfg.HTTP.Listen = "127.0.0.1:0"
	for i, vc := range lab.VCs() {
		cfg.VCenters = append(cfg.VCenters, config.VCenterConfig{Name: vc.Name, URL: vc.URL.String(), Username: vc.Username,
			Password: secret.Secret(vc.Password), Thumbprint: vc.Thumbprint, Home: i == 0})
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// vcenterUp is xvm_vcenter_up of each vCenter as /metrics would show it now.
func vcenterUp(t *testing.T, s *System) map[string]float64 {
	t.Helper()
	families, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	up := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "xvm_vcenter_up" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "vcenter" {
					up[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return up
}

// await polls cond until it holds; the test fails with what was last seen if it has
// not within a minute (a bound against hanging, not a speed claim).
func await(t *testing.T, what string, cond func() (bool, any)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never; last seen %v", what, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The background prober keeps xvm_vcenter_up current with no command or move reaching a
// vCenter: every vCenter has its series from the first probe on; one that stops answering
// shows 0 as soon as /readyz says it is degraded (its session still cached: nothing but
// the probe asked it anything), and 1 again once it is back. /readyz answers from the
// prober's state throughout.
func TestProberKeepsVCenterUpCurrent(t *testing.T) {
	lab, err := xvmsim.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	cfg := labConfig(t, lab)
	s, err := New(t.Context(), cfg, RoleServe, slog.New(slog.DiscardHandler), WithReadyEvery(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	await(t, "every vCenter up without any traffic", func() (bool, any) {
		up := vcenterUp(t, s)
		return up[xvmsim.EastVC] == 1 && up[xvmsim.WestVC] == 1, up
	})

	west := lab.VC(xvmsim.WestVC)
	west.SetDown(true)
	await(t, "vc-west degraded in /readyz", func() (bool, any) {
		rep := s.ready.report()
		return strings.HasPrefix(rep.Checks["vcenter:"+xvmsim.WestVC], "degraded: "), rep
	})
	if up := vcenterUp(t, s); up[xvmsim.WestVC] != 0 || up[xvmsim.EastVC] != 1 {
		t.Errorf("while /readyz says vc-west is degraded, xvm_vcenter_up = %v; want vc-west 0, vc-east 1", up)
	}

	west.SetDown(false)
	await(t, "vc-west ok again in /readyz", func() (bool, any) {
		rep := s.ready.report()
		return rep.Checks["vcenter:"+xvmsim.WestVC] == "ok", rep
	})
	if up := vcenterUp(t, s); up[xvmsim.WestVC] != 1 {
		t.Errorf("once /readyz says vc-west is ok again, xvm_vcenter_up = %v; want vc-west 1", up)
	}
}
