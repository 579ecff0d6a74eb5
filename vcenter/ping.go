package vcenter

import (
	"context"
	"crypto/x509"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
)

// Ping makes one cheap round trip (CurrentTime) on the vCenter's session, logging in if
// needed: unlike Info, whose answer may come from the cached session, it proves the
// vCenter answers now. /readyz uses it.
func (m *Manager) Ping(ctx context.Context, name string) error {
	return m.withSession(ctx, name, func(c *vim25.Client, _ *x509.Certificate) error {
		_, err := methods.GetCurrentTime(ctx, c)
		if err != nil {
			return m.scrub(classify(err, name, "", "", StepLogin))
		}
		return nil
	})
}
