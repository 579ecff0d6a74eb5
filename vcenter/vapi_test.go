package vcenter

import (
	"context"
	"crypto/x509"
	"reflect"
	"testing"

	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vim25"
)

// keptVAPISession is the id of the vAPI session m keeps for vCenter vcName ("" if none).
func keptVAPISession(t *testing.T, m *Manager, vcName string) string {
	t.Helper()
	cn, err := m.conn(vcName)
	if err != nil {
		t.Fatal(err)
	}
	cn.vapi.mu.Lock()
	defer cn.vapi.mu.Unlock()
	if cn.vapi.rc == nil {
		return ""
	}
	return cn.vapi.rc.SessionID()
}

// vapiSessionAlive asks the vCenter whether the vAPI session id is still valid.
func vapiSessionAlive(ctx context.Context, t *testing.T, m *Manager, vcName, id string) bool {
	t.Helper()
	alive := false
	err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		rc := rest.NewClient(c)
		rc.SessionID(id)
		s, err := rc.Session(ctx)
		alive = s != nil
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return alive
}

// Tags are read (and copied) on one vAPI session per vCenter, kept between moves: a login
// and a logout per read made four session requests per move. A session vCenter ended
// (vAPI sessions idle out) is replaced on the next read, which still succeeds, and Close
// ends the kept one.
func TestTagsUseOneKeptVAPISession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	want := &Metadata{Tags: []Tag{{Category: "app", Name: "shop"}}, Attributes: map[string]string{"owner": "team-web"}}
	labMetadata(t, lab, "vc-east", "web-02", want.Tags[0], "owner", "team-web")

	read := func() {
		t.Helper()
		md, err := m.ReadMetadata(ctx, "vc-east", "web-02")
		if err != nil {
			t.Fatalf("ReadMetadata: %v", err)
		}
		if !reflect.DeepEqual(md, want) {
			t.Fatalf("ReadMetadata = %+v, want %+v", md, want)
		}
	}
	read()
	first := keptVAPISession(t, m, "vc-east")
	if first == "" {
		t.Fatal("no vAPI session kept after reading tags")
	}
	read()
	if again := keptVAPISession(t, m, "vc-east"); again != first {
		t.Fatalf("the second read made vAPI session %q; want the kept %q", again, first)
	}

	// The vCenter ends the session: the next read logs in again, and succeeds.
	err := m.withSession(ctx, "vc-east", func(c *vim25.Client, _ *x509.Certificate) error {
		rc := rest.NewClient(c)
		rc.SessionID(first)
		return rc.Logout(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	read()
	second := keptVAPISession(t, m, "vc-east")
	if second == "" || second == first {
		t.Fatalf("after the session ended, kept %q (was %q); want a new one", second, first)
	}
	if !vapiSessionAlive(ctx, t, m, "vc-east", second) {
		t.Fatal("the kept session is not valid in the vCenter")
	}

	m.Close(ctx)
	lm, _ := newTestManager(t, labConfig(lab, "vc-east")) // one of its own, to ask after Close
	if vapiSessionAlive(ctx, t, lm, "vc-east", second) {
		t.Error("Close left the kept vAPI session open in the vCenter")
	}
}
