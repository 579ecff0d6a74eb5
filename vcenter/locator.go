package vcenter

import (
	"crypto/x509"
	"net/url"

	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// serviceLocator tells the source vCenter how to reach the target: its SDK
// URL (service_url when the source sees the target at another address than xvmbot
// does), instance UUID exactly as the target reports it, the target's service
// account, and the SHA-1 thumbprint of the certificate xvmbot itself verified,
// so the source trusts exactly what xvmbot checked.
func serviceLocator(target Config, targetURL *url.URL, instanceUUID string, peer *x509.Certificate) *types.ServiceLocator {
	if u, err := target.locatorURL(); err == nil && target.ServiceURL != "" { // validated by NewManager
		targetURL = u
	}
	loc := &types.ServiceLocator{
		InstanceUuid: instanceUUID,
		Url:          targetURL.String(),
		Credential: &types.ServiceLocatorNamePassword{
			Username: target.Username,
			Password: target.Password.Reveal(),
		},
	}
	if peer != nil {
		loc.SslThumbprint = soap.ThumbprintSHA1(peer)
	}
	return loc
}
