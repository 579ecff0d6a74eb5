package vcenter

import (
	"context"
	"fmt"
	"net/url"
	"sync"

	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vim25"
)

// vapiSession is the vAPI (REST) session a conn keeps for tags: logging in and out for
// every read and copy made four session requests per move, each a session that vCenter
// creates and SSO validates, and they ran beside the moves' own calls.
type vapiSession struct {
	mu sync.Mutex
	rc *rest.Client  // nil: none yet, or dropped
	of *vim25.Client // the SOAP client rc was made from
}

// get returns the kept session made from c, logging one in when there is none (fresh is
// then true). A session made from an earlier SOAP client (the vCenter session was made
// again) is logged out and replaced.
func (s *vapiSession) get(ctx context.Context, c *vim25.Client, user *url.Userinfo) (rc *rest.Client, fresh bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc != nil && s.of == c {
		return s.rc, false, nil
	}
	if s.rc != nil {
		_ = s.rc.Logout(context.WithoutCancel(ctx))
		s.rc = nil
	}
	rc = rest.NewClient(c)
	if err := rc.Login(ctx, user); err != nil {
		return nil, false, err
	}
	s.rc, s.of = rc, c
	return rc, true, nil
}

// drop forgets rc if it is still the kept session, so that the next get logs in again.
func (s *vapiSession) drop(rc *rest.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc == rc {
		s.rc = nil
	}
}

// logout ends the kept session, if any.
func (s *vapiSession) logout(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rc == nil {
		return nil
	}
	err := s.rc.Logout(ctx)
	s.rc = nil
	return err
}

// withVAPI runs fn on the vAPI session kept for vCenter vcName, made from its SOAP client
// c. vCenter ends idle vAPI sessions on its own, so a failure on a kept session is tried
// once more on a new one (what fn does must bear that: reads, and copies that leave what
// is there alone).
func (m *Manager) withVAPI(ctx context.Context, vcName string, c *vim25.Client, fn func(*rest.Client) error) error {
	cn, err := m.conn(vcName)
	if err != nil {
		return err
	}
	user := url.UserPassword(cn.cfg.Username, cn.cfg.Password.Reveal())
	login := func() (*rest.Client, bool, error) {
		rc, fresh, err := cn.vapi.get(ctx, c, user)
		if err != nil {
			return nil, false, fmt.Errorf("vAPI login to %s as %s: %w", vcName, cn.cfg.Username, err)
		}
		return rc, fresh, nil
	}
	rc, fresh, err := login()
	if err != nil {
		return err
	}
	err = fn(rc)
	if err == nil || fresh || ctx.Err() != nil {
		return err
	}
	m.log.Debug("vAPI call failed on the kept session; trying once more on a new one", "vcenter", vcName, "err", m.scrub(err))
	cn.vapi.drop(rc)
	if rc, _, err = login(); err != nil {
		return err
	}
	return fn(rc)
}
