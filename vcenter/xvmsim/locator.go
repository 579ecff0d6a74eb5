package xvmsim

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
)

// target is a validated ServiceLocator: the VC it names and how to reach it.
type target struct {
	vc       *VC
	url      *url.URL
	user     string
	password string
}

// resolveLocator checks a ServiceLocator the way vCenter does before it
// starts a cross-vCenter migration, returning the fault vCenter would report.
func (l *Lab) resolveLocator(loc *types.ServiceLocator) (*target, *types.LocalizedMethodFault) {
	u, err := url.Parse(loc.Url)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, invalidArgument("service.url", "service locator url %q must be an https url of a vCenter", loc.Url)
	}
	var vc *VC
	for _, c := range l.vcs {
		if c.URL.Host == u.Host {
			vc = c
		}
	}
	if vc == nil {
		return nil, invalidArgument("service.url", "no vCenter at %s", u.Host)
	}

	cred, ok := loc.Credential.(*types.ServiceLocatorNamePassword)
	if !ok {
		return nil, invalidArgument("service.credential", "service locator credential must be a username and password, got %T", loc.Credential)
	}

	if tp := normThumbprint(loc.SslThumbprint); tp != normThumbprint(vc.Thumbprint) && tp != normThumbprint(vc.ThumbprintSHA256) {
		return nil, &types.LocalizedMethodFault{
			Fault: &types.SSLVerifyFault{
				SelfSigned: true,
				Thumbprint: vc.Thumbprint,
			},
			LocalizedMessage: fmt.Sprintf("ssl thumbprint %q does not match the certificate of %s", loc.SslThumbprint, u.Host),
		}
	}

	if cred.Username != vc.Username || cred.Password != vc.Password {
		return nil, &types.LocalizedMethodFault{
			Fault:            &types.InvalidLogin{},
			LocalizedMessage: fmt.Sprintf("cannot log in to %s: incorrect user name or password", u.Host),
		}
	}

	if !strings.EqualFold(loc.InstanceUuid, vc.InstanceUUID) {
		return nil, invalidArgument("service.instanceUuid", "instanceUuid %q does not match the vCenter at %s", loc.InstanceUuid, u.Host)
	}

	return &target{vc: vc, url: u, user: cred.Username, password: cred.Password}, nil
}

// normThumbprint accepts the spellings vSphere tools produce: upper or lower
// case, with or without colons.
func normThumbprint(tp string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(tp), ":", ""))
}

func invalidArgument(prop, format string, args ...any) *types.LocalizedMethodFault {
	return &types.LocalizedMethodFault{
		Fault:            &types.InvalidArgument{InvalidProperty: prop},
		LocalizedMessage: fmt.Sprintf(format, args...),
	}
}
