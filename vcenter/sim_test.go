package vcenter

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/url"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// stockVC is one of govmomi's stock VPX simulators, good for resolution and
// spec tests; its RelocateVM_Task ignores the ServiceLocator (docs/vsphere-facts.md V2),
// so relocation is tested against xvmsim instead.
type stockVC struct {
	model  *simulator.Model
	server *simulator.Server
	cfg    Config
}

const (
	testUser     = "svc-xvm@vsphere.local"
	testPassword = "s3cret-Pa55word!"
)

func startStockVC(t *testing.T, name, instanceUUID string) *stockVC {
	t.Helper()
	vc, err := newStockVC(name, instanceUUID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vc.close)
	return vc
}

// newStockVC starts a stock simulator, taking its turn with every other simulator the
// tests start (xvmsim.StartSerially); close stops it.
func newStockVC(name, instanceUUID string) (*stockVC, error) {
	m := simulator.VPX()
	m.ServiceContent.About.InstanceUuid = instanceUUID
	vc := &stockVC{model: m}
	err := xvmsim.StartSerially(m, func() error {
		if err := m.Create(); err != nil {
			return err
		}
		m.Service.TLS = new(tls.Config)
		m.Service.Listen = &url.URL{User: url.UserPassword(testUser, testPassword)}
		vc.server = m.Service.NewServer()
		return nil
	})
	if err != nil {
		return nil, err
	}
	u := *vc.server.URL
	u.User = nil
	vc.cfg = Config{
		Name: name, URL: u.String(), Username: testUser, Password: secret.Secret(testPassword),
		Thumbprint: soap.ThumbprintSHA1(vc.server.Certificate()),
	}
	return vc, nil
}

func (vc *stockVC) close() {
	vc.server.Close()
	vc.model.Remove()
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestManager(t *testing.T, cfgs ...Config) (*Manager, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewManager(cfgs, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m, reg
}

// client is a direct govmomi client, for arranging and checking inventory.
func (vc *stockVC) client(t *testing.T) (*govmomi.Client, *find.Finder) {
	t.Helper()
	ctx := context.Background()
	u := *vc.server.URL
	u.User = url.UserPassword(testUser, testPassword)
	c, err := govmomi.NewClient(ctx, &u, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	f := find.NewFinder(c.Client)
	dc, err := f.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	return c, f
}

// mkdirs creates a VM folder path under the datacenter's vmFolder.
func (vc *stockVC) mkdirs(t *testing.T, parts ...string) {
	t.Helper()
	ctx := context.Background()
	_, f := vc.client(t)
	folders, err := f.DefaultFolder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cur := folders
	for _, p := range parts {
		next, err := cur.CreateFolder(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		cur = next
	}
}

func wait(t *testing.T, task *object.Task, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// disconnectCDROMs disconnects the stock VMs' CD-ROMs: the stock model
// connects each to a host drive, which rightly blocks vMotion, and the tests
// using these VMs are about something else.
func (vc *stockVC) disconnectCDROMs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	_, f := vc.client(t)
	vms, err := f.VirtualMachineList(ctx, "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms {
		devices, err := vm.Device(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devices.SelectByType((*types.VirtualCdrom)(nil)) {
			if c := d.GetVirtualDevice().Connectable; c != nil {
				c.Connected, c.StartConnected = false, false
			}
			if err := vm.EditDevice(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
}
