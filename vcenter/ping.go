package vcenter

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
)

// Ping makes one cheap round trip (CurrentTime) on the vCenter's session, logging in if
// needed: unlike Info, whose answer may come from the cached session, it proves the
// vCenter answers now. /readyz's prober calls it for every vCenter in the background,
// and its answer is xvm_vcenter_up: a vCenter that stops answering shows 0 at the next
// probe, even while its session is still cached, and every vCenter has the series from
// the first probe on, before any command or move reaches it.
func (m *Manager) Ping(ctx context.Context, name string) error {
	err := m.withSession(ctx, name, func(c *vim25.Client, _ *x509.Certificate) error {
		_, err := methods.GetCurrentTime(ctx, c)
		if err != nil {
			return m.scrub(classify(err, name, "", "", StepLogin))
		}
		return nil
	})
	if _, known := m.conns[name]; known && !errors.Is(err, context.Canceled) { // shutting down says nothing of the vCenter
		up := 0.0
		if err == nil {
			up = 1
		}
		m.metrics.up.WithLabelValues(name).Set(up)
	}
	return err
}
