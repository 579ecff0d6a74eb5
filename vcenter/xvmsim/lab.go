package xvmsim

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Lab is a set of running simulated vCenters.
type Lab struct {
	vcs []*VC
	opt options

	// relocations owns the goroutines of emulated XVM tasks; Close cancels
	// them so that it returns in bounded time.
	relocations sync.WaitGroup
	// structural serialises the emulation's exclusive sections (creates, power-ons
	// and destroys) across vCenters: vcsim's own tasks race on shared datastore
	// objects when two run at once (seen under -race). See gate.go.
	structural sync.Mutex
	mu         sync.Mutex
	closed     bool
	cancels    map[int]context.CancelFunc
	nextCancel int
	closeOnce  sync.Once
	// extraDirs hold storage added after the start (AddDiskScenarios), removed by Close.
	extraDirs []string
}

// VC is one simulated vCenter.
type VC struct {
	Name             string   // "vc-east"
	URL              *url.URL // https://127.0.0.1:PORT/sdk, without userinfo
	Username         string
	Password         string
	Thumbprint       string // SHA-1, colon-separated upper-case hex
	ThumbprintSHA256 string
	InstanceUUID     string
	Datacenter       string

	lab      *Lab
	model    *simulator.Model
	server   *simulator.Server
	front    *frontDoor
	internal *url.URL // the simulator's own listener, behind the front door
	// backstage is the same listener on a path the gate does not hold: the
	// emulation's own inventory changes go through it (see exclusive).
	backstage *url.URL
	// backstageClient is the session exclusive sections use (guarded by lab.structural).
	backstageClient *govmomi.Client
	// gate keeps SOAP requests out while the emulation changes the inventory:
	// readers hold it shared for the length of a request, exclusive holds it
	// for a whole create, power-on or destroy, tasks included.
	gate sync.RWMutex
	// feeder answers the change feeds that follow a container view (feed.go).
	feeder *feeder
	dsDir  string
	cert   *x509.Certificate

	requests atomic.Int64 // SOAP requests served, for tests of caching callers
	// refusedLogins counts Login calls with the wrong credentials: a real vCenter's SSO
	// locks the account after a few, so tests bound how many a caller makes.
	refusedLogins atomic.Int64

	mu         sync.Mutex
	failNext   map[string]types.BaseMethodFault // by VM name: what its next relocation fails with
	refuseTo   map[string]string                // by host MoRef value: why moves onto it are refused
	xvmTotal   int
	xvmByVM    map[string]int
	relocating map[types.ManagedObjectReference]bool
	// moves are the running relocation tasks, by task MoRef value, for CancelTask.
	moves map[string]*moveState
	holds map[string][]*hold // by VM name, see HoldRelocation
	// policies is the storage policy state the pbm simulator does not keep (policy.go).
	policies *policies
	// loseAnswer names the VMs (by MoRef value) whose next relocation's answer is lost.
	loseAnswer map[string]bool
}

// ErrNotFound is returned by FindVM when no VM has the given name.
var ErrNotFound = errors.New("not found")

// refOffset separates the MoRef counters of the simulated vCenters: two
// simulators built the same way hand out identical MoRef values, which would
// let a caller mix up references between vCenters and still "succeed".
const refOffset = 100_000

// starting serialises the start of simulators in the process (see StartSerially).
var starting sync.Mutex

// StartSerially runs start, which creates the govmomi simulator model m (m.Create) and
// starts its server, while no other simulator starts through this package, then gives
// m's resource pools summaries of their own. vcsim writes package-level state while a
// model is built: all its resource pools share one summary, which each
// CreateResourcePool renames, racing with any read of a pool's summary in any other
// simulator of the process (docs/vsphere-facts.md V3). Labs take their turn in Start, so
// tests may start labs in parallel; a test that starts stock simulators next to them
// does it through StartSerially. Once started, simulators are independent of each other.
func StartSerially(m *simulator.Model, start func() error) error {
	starting.Lock()
	defer starting.Unlock()
	if err := start(); err != nil {
		return err
	}
	ownPoolSummaries(m.Map())
	return nil
}

// ownPoolSummaries gives every resource pool of reg a copy of the summary it shares
// with vcsim's template, named after the pool. It runs while the simulator starts,
// before anything but its own set-up reads it.
func ownPoolSummaries(reg *simulator.Registry) {
	for _, e := range reg.All("ResourcePool") {
		p, ok := e.(*simulator.ResourcePool)
		if !ok || p.Summary == nil {
			continue
		}
		own := *p.Summary.GetResourcePoolSummary()
		own.Name = p.Name
		p.Summary = &own
	}
}

// Start starts the default two vCenters, "vc-east" (home) and "vc-west".
// It may be called from parallel tests (see StartSerially).
func Start(ctx context.Context, opts ...Option) (*Lab, error) {
	starting.Lock()
	defer starting.Unlock()
	return start(ctx, opts...)
}

func start(ctx context.Context, opts ...Option) (*Lab, error) {
	opt := defaultOptions()
	for _, o := range opts {
		o(&opt)
	}
	l := &Lab{opt: opt, cancels: map[int]context.CancelFunc{}}

	specs := []struct {
		name string
		inv  inventory
	}{
		{EastVC, eastInventory(opt.extraVMs)},
		{WestVC, westInventory()},
	}
	for i, s := range specs {
		vc, err := l.startVC(ctx, s.name, s.inv, int64(i)*refOffset, l.frontAddr(i))
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("start %s: %w", s.name, err)
		}
		l.vcs = append(l.vcs, vc)
	}
	return l, nil
}

// VC returns the vCenter with the given name, or nil if there is none.
func (l *Lab) VC(name string) *VC {
	for _, v := range l.vcs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// VCs returns every vCenter of the lab, the home one first.
func (l *Lab) VCs() []*VC {
	return append([]*VC(nil), l.vcs...)
}

// Close aborts running emulated relocations and stops every vCenter.
func (l *Lab) Close() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		for _, cancel := range l.cancels {
			cancel()
		}
		l.mu.Unlock()
		l.relocations.Wait()
		for _, v := range l.vcs {
			v.close()
		}
		for _, d := range l.extraDirs {
			_ = os.RemoveAll(d)
		}
	})
}

// goRelocation runs f on a goroutine owned by the lab, with a context that
// Close cancels. It reports false, without running f, once the lab is closed.
func (l *Lab) goRelocation(f func(ctx context.Context)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	id := l.nextCancel
	l.nextCancel++
	l.cancels[id] = cancel
	l.relocations.Add(1)
	go func() {
		defer l.relocations.Done()
		defer func() {
			l.mu.Lock()
			delete(l.cancels, id)
			l.mu.Unlock()
			cancel()
		}()
		f(ctx)
	}()
	return true
}

func (l *Lab) startVC(ctx context.Context, name string, inv inventory, offset int64, frontAddr string) (_ *VC, err error) {
	cert, password, err := l.credentials(name)
	if err != nil {
		return nil, err
	}

	m := simulator.VPX()
	m.Datacenter, m.Cluster, m.ClusterHost, m.Host = 0, 0, 0, 0
	m.Datastore, m.Machine, m.Portgroup, m.Autostart = 0, 0, 0, false
	// The simulator copies the ServiceContent before generating an instance
	// UUID, so without this every simulated vCenter reports the same one.
	m.ServiceContent.About.InstanceUuid = uuid.NewString()
	if v, ok := l.opt.versions[name]; ok {
		m.ServiceContent.About.Version = v
		m.ServiceContent.About.ApiVersion = apiVersion(v)
		m.ServiceContent.About.FullName = "VMware vCenter Server " + v + " build-xvmsim"
	}
	if err := m.Create(); err != nil {
		return nil, err
	}
	vc := &VC{
		Name:         name,
		Username:     Username,
		Password:     password,
		InstanceUUID: m.ServiceContent.About.InstanceUuid,
		Datacenter:   inv.datacenter,
		lab:          l,
		model:        m,
		xvmByVM:      map[string]int{},
		relocating:   map[types.ManagedObjectReference]bool{},
		moves:        map[string]*moveState{},
	}
	vc.feeder = newFeeder(vc)
	defer func() {
		if err != nil {
			vc.close()
		}
	}()

	reg := m.Map()
	if offset > 0 {
		bumpCounter(reg, offset)
	}
	reg.Handler = vc.intercept

	m.Service.TLS = cert
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(vc.Username, vc.Password)}
	m.Service.RegisterEndpoints = true // vAPI REST (tags), see vapi.go
	vc.gateSDK()
	vc.servePBM()
	vc.server = m.Service.NewServer()
	vc.internal = &url.URL{Scheme: "https", Host: vc.server.URL.Host, Path: vc.server.URL.Path}
	vc.backstage = &url.URL{Scheme: "https", Host: vc.server.URL.Host, Path: backstagePath}
	vc.cert = vc.server.Certificate()
	vc.Thumbprint = soap.ThumbprintSHA1(vc.cert)
	vc.ThumbprintSHA256 = soap.ThumbprintSHA256(vc.cert)

	if vc.front, err = newFrontDoor(frontAddr, vc.server.URL.Host); err != nil {
		return nil, err
	}
	vc.URL = &url.URL{Scheme: "https", Host: vc.front.addr(), Path: vc.server.URL.Path}

	if vc.dsDir, err = os.MkdirTemp("", "xvmsim-"+name+"-"); err != nil {
		return nil, err
	}
	c, err := vc.login(ctx, vc.internal)
	if err != nil {
		return nil, err
	}
	defer logout(c)
	inproc, err := vim25.NewClient(ctx, m.Service)
	if err != nil {
		return nil, err
	}
	if err := inv.build(ctx, c, inproc, vc); err != nil {
		return nil, err
	}
	if err := vc.createPolicies(ctx, c.Client); err != nil {
		return nil, err
	}
	ownPoolSummaries(reg)
	return vc, nil
}

// counterBump only exists to push the registry's MoRef counter forward.
type counterBump struct{ Self types.ManagedObjectReference }

func (b *counterBump) Reference() types.ManagedObjectReference { return b.Self }

func bumpCounter(reg *simulator.Registry, n int64) {
	b := &counterBump{Self: types.ManagedObjectReference{Type: "XvmsimCounter", Value: fmt.Sprintf("xvmsimcounter-%d", n)}}
	reg.Put(b)
	_ = reg.AlignCounter()
	reg.Remove(simulator.NewContext(), b.Self)
}

func (v *VC) close() {
	v.lab.structural.Lock()
	if v.backstageClient != nil {
		logout(v.backstageClient)
		v.backstageClient = nil
	}
	v.lab.structural.Unlock()
	if v.front != nil {
		v.front.close()
	}
	if v.server != nil {
		v.server.Close()
	}
	if v.model != nil {
		v.model.Remove()
	}
	if v.dsDir != "" {
		_ = os.RemoveAll(v.dsDir)
	}
}

// Client logs in to the vCenter over SOAP, pinning its certificate thumbprint.
// The caller should call Logout when done.
func (v *VC) Client(ctx context.Context) (*govmomi.Client, error) {
	return v.login(ctx, v.URL)
}

func (v *VC) login(ctx context.Context, u *url.URL) (*govmomi.Client, error) {
	return v.loginAs(ctx, u, v.Username, v.Password)
}

func (v *VC) loginAs(ctx context.Context, u *url.URL, user, password string) (*govmomi.Client, error) {
	sc := soap.NewClient(u, false)
	sc.SetThumbprint(u.Host, v.Thumbprint)
	// Trusting the certificate up front spares the simulator's log a failed
	// handshake per login; the thumbprint pin still applies.
	roots := x509.NewCertPool()
	roots.AddCert(v.cert)
	sc.DefaultTransport().TLSClientConfig.RootCAs = roots
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		sc.CloseIdleConnections()
		return nil, err
	}
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := c.Login(ctx, url.UserPassword(user, password)); err != nil {
		sc.CloseIdleConnections()
		return nil, err
	}
	return c, nil
}

// logout ends the session and drops its keep-alive connections, so that
// short-lived clients leave nothing behind in the simulator or the front door.
func logout(c *govmomi.Client) {
	_ = c.Logout(context.Background())
	c.Client.Client.CloseIdleConnections()
}

// SetDown(true) makes the vCenter unreachable: open connections are cut and
// new ones are closed as soon as they are accepted, as a vCenter whose
// service has stopped would. SetDown(false) restores it.
func (v *VC) SetDown(down bool) {
	v.front.setDown(down)
}

// FailNextRelocation makes the next cross-vCenter relocation of vm (by name) fail with
// fault once its copy is under way (after 25%), rolled back as vCenter does: the VM
// stays in the source and nothing is left in the target. Later relocations run normally.
func (v *VC) FailNextRelocation(vm string, fault types.BaseMethodFault) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.failNext == nil {
		v.failNext = map[string]types.BaseMethodFault{}
	}
	v.failNext[vm] = fault
}

// RefuseVMotionTo makes vCenter refuse cross-vCenter moves onto the host named host
// (in this vCenter) with reason, in its compatibility check and in the relocation
// itself, as it refuses a host whose CPU does not match the VM's in a cluster without
// EVC; an empty reason accepts them again.
func (v *VC) RefuseVMotionTo(host, reason string) error {
	var ref types.ManagedObjectReference
	err := v.edit(func(e *labEdit) error {
		obj, err := e.find("HostSystem", host, "HostSystem")
		if err == nil {
			ref = obj.Reference()
		}
		return err
	})
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.refuseTo == nil {
		v.refuseTo = map[string]string{}
	}
	if reason == "" {
		delete(v.refuseTo, ref.Value)
	} else {
		v.refuseTo[ref.Value] = reason
	}
	return nil
}

// refusal is why moves onto host are refused, "" if they are not.
func (v *VC) refusal(host *types.ManagedObjectReference) string {
	if host == nil {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.refuseTo[host.Value]
}

// injectedFault returns, once, the fault FailNextRelocation set for vm.
func (v *VC) injectedFault(vm string) types.BaseMethodFault {
	v.mu.Lock()
	defer v.mu.Unlock()
	f := v.failNext[vm]
	delete(v.failNext, vm)
	return f
}

// XVMRelocations returns how many cross-vCenter relocations this vCenter, as
// the source, has completed successfully.
func (v *VC) XVMRelocations() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.xvmTotal
}

// XVMRelocationsOf returns how many cross-vCenter relocations of the VM with
// the given name this vCenter, as the source, has completed successfully.
func (v *VC) XVMRelocationsOf(vm string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.xvmByVM[vm]
}

// Requests returns how many vSphere API requests this vCenter has served
// since it started (its own set-up and emulated relocations included); tests
// compare two readings to prove that a cache spared the vCenter a round trip.
func (v *VC) Requests() int64 { return v.requests.Load() }

// RefusedLogins returns how many logins with a wrong user name or password this
// vCenter has refused since it started.
func (v *VC) RefusedLogins() int64 { return v.refusedLogins.Load() }

// apiVersion is the "major.minor" API version of a product version.
func apiVersion(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	// A symbol and a digit keep it plausible for a vSphere password policy.
	return "X1!" + strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "="), nil
}
