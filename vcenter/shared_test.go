package vcenter

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// Starting a lab is most of what a test against it costs, so the tests that only read
// the inventory (plan, pre-flight, list, where, locate) share one, started on first use
// and stopped by TestMain, and run in parallel. A test that changes a lab (a move, a
// toggle, a vCenter set down) starts its own. Each test still has its own Manager.
//
// A test that counts a vCenter's requests on the shared lab does not call t.Parallel:
// the parallel tests wait until every sequential one has ended, so nothing else reaches
// the lab while it counts.

var shared struct {
	once sync.Once
	lab  *xvmsim.Lab
	err  error

	stockOnce sync.Once
	src, dst  *stockVC
	stockErr  error
	// stockReady is set once the stock vCenters are arranged: a failed arrangement
	// fails its test and leaves it unset for the others.
	stockReady bool
}

// sharedLab returns the shared lab and a new Manager for both its vCenters. The caller
// must not change the lab.
func sharedLab(t *testing.T) (*xvmsim.Lab, *Manager, *prometheus.Registry) {
	t.Helper()
	shared.once.Do(func() {
		shared.lab, shared.err = xvmsim.Start(context.Background(), xvmsim.WithTaskDuration(100*time.Millisecond))
	})
	if shared.err != nil {
		t.Fatalf("start the shared lab: %v", shared.err)
	}
	m, reg := newTestManager(t, labConfig(shared.lab, "vc-east"), labConfig(shared.lab, "vc-west"))
	return shared.lab, m, reg
}

// sharedStockVCs is twoStockVCs shared by the tests that only read them: a source and a
// target stock simulator, the target with a folder migrated/web, and a new Manager.
func sharedStockVCs(t *testing.T) (src, dst *stockVC, m *Manager) {
	t.Helper()
	shared.stockOnce.Do(func() {
		shared.stockErr = func() error {
			var err error
			if shared.src, err = newStockVC("vc-a", "11111111-1111-1111-1111-111111111111"); err != nil {
				return err
			}
			if shared.dst, err = newStockVC("vc-b", "22222222-2222-2222-2222-222222222222"); err != nil {
				return err
			}
			shared.src.cfg.Home = true
			return nil
		}()
		if shared.stockErr == nil {
			// Arranged over clients that end with this test; the simulators stay.
			shared.src.disconnectCDROMs(t)
			shared.dst.mkdirs(t, "migrated", "web")
			shared.stockReady = true
		}
	})
	if !shared.stockReady {
		t.Fatalf("start the shared stock vCenters: %v", shared.stockErr)
	}
	m, _ = newTestManager(t, shared.src.cfg, shared.dst.cfg)
	return shared.src, shared.dst, m
}

// closeShared stops what the shared fixtures started.
func closeShared() {
	if shared.lab != nil {
		shared.lab.Close()
	}
	for _, vc := range []*stockVC{shared.src, shared.dst} {
		if vc != nil {
			vc.close()
		}
	}
}
