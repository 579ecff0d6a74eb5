package xvmsim

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// side is one vCenter as a caller of the vSphere API sees it.
type side struct {
	vc     *VC
	c      *govmomi.Client
	finder *find.Finder
}

func open(t *testing.T, ctx context.Context, vc *VC) *side {
	t.Helper()
	c, err := vc.Client(ctx)
	if err != nil {
		t.Fatalf("login to %s: %v", vc.Name, err)
	}
	t.Cleanup(func() { logout(c) })
	finder := find.NewFinder(c.Client, true)
	dc, err := finder.Datacenter(ctx, vc.Datacenter)
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(dc)
	return &side{vc: vc, c: c, finder: finder}
}

func (s *side) ref(t *testing.T, ctx context.Context, kind, path string) *types.ManagedObjectReference {
	t.Helper()
	var (
		r   object.Reference
		err error
	)
	switch kind {
	case "host":
		r, err = s.finder.HostSystem(ctx, path)
	case "pool":
		r, err = s.finder.ResourcePool(ctx, path)
	case "datastore":
		r, err = s.finder.Datastore(ctx, path)
	case "folder":
		r, err = s.finder.Folder(ctx, "vm/"+path)
	}
	if err != nil {
		t.Fatalf("find %s %s in %s: %v", kind, path, s.vc.Name, err)
	}
	ref := r.Reference()
	return &ref
}

func (s *side) vm(t *testing.T, ctx context.Context, name string) *object.VirtualMachine {
	t.Helper()
	cv, err := view.NewManager(s.c.Client).CreateContainerView(ctx, s.c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cv.Destroy(ctx) }()
	refs, err := cv.Find(ctx, []string{"VirtualMachine"}, property.Match{"name": name})
	if err != nil || len(refs) != 1 {
		t.Fatalf("find vm %s in %s: %v %v", name, s.vc.Name, refs, err)
	}
	return object.NewVirtualMachine(s.c.Client, refs[0])
}

func (s *side) backing(t *testing.T, ctx context.Context, network string) types.BaseVirtualDeviceBackingInfo {
	t.Helper()
	n, err := s.finder.Network(ctx, network)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.EthernetCardBackingInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func locator(vc *VC) *types.ServiceLocator {
	return &types.ServiceLocator{
		InstanceUuid:  vc.InstanceUUID,
		Url:           vc.URL.String(),
		SslThumbprint: vc.Thumbprint,
		Credential:    &types.ServiceLocatorNamePassword{Username: vc.Username, Password: vc.Password},
	}
}

// xvmSpec builds what a caller would send to move vm to vc-west: every disk on ds, every
// NIC edited onto the given target networks in order.
func xvmSpec(t *testing.T, ctx context.Context, src *side, vm *object.VirtualMachine, dst *side, folder, pool, host, ds string, fmtDisk func(*types.VirtualDiskFlatVer2BackingInfo), networks ...string) types.VirtualMachineRelocateSpec {
	t.Helper()
	return xvmPlace(t, ctx, dst, folder, pool, host, ds, networks...).spec(t, ctx, vm, fmtDisk)
}

// xvmTarget is where xvmSpec sends VMs, looked up once: each finder lookup walks the
// inventory, which a test moving many VMs to one place need not repeat.
type xvmTarget struct {
	service                       types.ServiceLocator
	folder, pool, host, datastore types.ManagedObjectReference
	backings                      []types.BaseVirtualDeviceBackingInfo
}

func xvmPlace(t *testing.T, ctx context.Context, dst *side, folder, pool, host, ds string, networks ...string) *xvmTarget {
	t.Helper()
	x := &xvmTarget{
		service:   *locator(dst.vc),
		folder:    *dst.ref(t, ctx, "folder", folder),
		pool:      *dst.ref(t, ctx, "pool", pool),
		host:      *dst.ref(t, ctx, "host", host),
		datastore: *dst.ref(t, ctx, "datastore", ds),
	}
	for _, n := range networks {
		x.backings = append(x.backings, dst.backing(t, ctx, n))
	}
	return x
}

// spec is what a caller would send to move vm to x: every disk on its datastore in the
// format fmtDisk sets, every NIC edited onto its networks in order. Each spec has its own
// copies of x's references, so that a test may change one.
func (x *xvmTarget) spec(t *testing.T, ctx context.Context, vm *object.VirtualMachine, fmtDisk func(*types.VirtualDiskFlatVer2BackingInfo)) types.VirtualMachineRelocateSpec {
	t.Helper()
	service, folder, pool, host, ds := x.service, x.folder, x.pool, x.host, x.datastore
	spec := types.VirtualMachineRelocateSpec{Service: &service, Folder: &folder, Pool: &pool, Host: &host, Datastore: &ds}
	devices, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		b := &types.VirtualDiskFlatVer2BackingInfo{DiskMode: string(types.VirtualDiskModePersistent)}
		fmtDisk(b)
		spec.Disk = append(spec.Disk, types.VirtualMachineRelocateSpecDiskLocator{
			DiskId: d.GetVirtualDevice().Key, Datastore: ds, DiskBackingInfo: b,
		})
	}
	for i, d := range devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
		if i >= len(x.backings) {
			break
		}
		d.GetVirtualDevice().Backing = x.backings[i]
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: d,
		})
	}
	return spec
}

func thin(b *types.VirtualDiskFlatVer2BackingInfo) { b.ThinProvisioned = types.NewBool(true) }
func eager(b *types.VirtualDiskFlatVer2BackingInfo) {
	b.ThinProvisioned = types.NewBool(false)
	b.EagerlyScrub = types.NewBool(true)
}

// relocate moves vm as spec says and waits for the task, calling progress (may be nil)
// on every new percentage.
func relocate(ctx context.Context, vm *object.VirtualMachine, spec types.VirtualMachineRelocateSpec, progress func(int32)) (*types.TaskInfo, error) {
	t, err := vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority)
	if err != nil {
		return nil, err
	}
	return WaitTask(ctx, vm.Client(), t.Reference(), progress)
}

func TestCrossVCenterRelocate(t *testing.T) {
	t.Parallel()
	// One lab for both moves: they move different VMs onto different hosts.
	l := startLab(t)
	for _, tc := range []struct {
		name       string
		vm         string
		folder     string
		pool, host string
		ds         string
		format     func(*types.VirtualDiskFlatVer2BackingInfo)
		networks   []string
		want       VMPlacement
	}{
		{
			name: "web to distributed portgroup, thin", vm: "web-01",
			folder: WestWebFolder, pool: WestCluster + "/Resources/" + WestPool, host: WestHost2, ds: WestGold,
			format: thin, networks: []string{WestAppPortgroup},
			want: VMPlacement{
				Folder: WestWebFolder, Pool: WestPool, Host: WestHost2, Cluster: WestCluster, PowerState: "poweredOn",
				Datastores: []string{WestGold},
				Disks:      []DiskInfo{{Datastore: WestGold, Thin: true, CapacityKB: diskKB}},
				NICs:       []NICInfo{{Network: WestAppPortgroup, Distributed: true}},
			},
		},
		{
			name: "db to distributed and standard portgroups, eager", vm: "db-01",
			folder: WestDBFolder, pool: WestCluster + "/Resources", host: WestHost3, ds: WestSilver,
			format: eager, networks: []string{WestDBPortgroup, StandardPortgroup},
			want: VMPlacement{
				Folder: WestDBFolder, Pool: "Resources", Host: WestHost3, Cluster: WestCluster, PowerState: "poweredOff",
				Datastores: []string{WestSilver},
				Disks: []DiskInfo{
					{Datastore: WestSilver, EagerScrub: true, CapacityKB: diskKB},
					{Datastore: WestSilver, EagerScrub: true, CapacityKB: diskKB},
				},
				NICs: []NICInfo{{Network: WestDBPortgroup, Distributed: true}, {Network: StandardPortgroup}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
			before, err := east.vc.FindVM(ctx, tc.vm)
			if err != nil {
				t.Fatal(err)
			}
			movesBefore := east.vc.XVMRelocations()

			vm := east.vm(t, ctx, tc.vm)
			spec := xvmSpec(t, ctx, east, vm, west, tc.folder, tc.pool, tc.host, tc.ds, tc.format, tc.networks...)
			// The move stays at 50% until the watcher has seen a percentage between 0 and
			// 100, however late a loaded machine runs the emulation's own work.
			_, release := east.vc.HoldRelocation(tc.vm, 50)
			defer release()
			var seen []int32
			info, err := relocate(ctx, vm, spec, func(p int32) {
				seen = append(seen, p)
				if p > 0 && p < 100 {
					release()
				}
			})
			if err != nil {
				t.Fatalf("relocate %s to %s: %v", tc.vm, WestVC, err)
			}
			if !slices.ContainsFunc(seen, func(p int32) bool { return p > 0 && p < 100 }) {
				t.Errorf("watcher saw progress %v, want a value strictly between 0 and 100", seen)
			}

			got, err := west.vc.FindVM(ctx, tc.vm)
			if err != nil {
				t.Fatalf("%s not in %s after relocation: %v", tc.vm, WestVC, err)
			}
			if ref, ok := info.Result.(types.ManagedObjectReference); !ok || ref != west.vm(t, ctx, tc.vm).Reference() {
				t.Errorf("task result %v, want the VM's MoRef in %s", info.Result, WestVC)
			}
			want := tc.want
			want.Name, want.UUID, want.InstanceUUID = tc.vm, before.UUID, before.InstanceUUID
			want.Ref = got.Ref // the target's own managed object id for the VM
			for i := range want.NICs {
				want.NICs[i].MAC = before.NICs[i].MAC
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("placement in %s:\n got %+v\nwant %+v", WestVC, *got, want)
			}

			if _, err := east.vc.FindVM(ctx, tc.vm); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s still in %s (err %v)", tc.vm, EastVC, err)
			}
			if n, m := east.vc.XVMRelocations()-movesBefore, east.vc.XVMRelocationsOf(tc.vm); n != 1 || m != 1 {
				t.Errorf("XVMRelocations grew by %d, of %s = %d, want 1 and 1", n, tc.vm, m)
			}
			if n := west.vc.XVMRelocations(); n != 0 {
				t.Errorf("target counted %d relocations as source", n)
			}
		})
	}
}

// TestMinStepHoldsEveryPercentage: with WithMinStep, a task of no set duration still
// lasts at least one minimum step per percentage it reports (a lower bound, which a slow
// machine can only exceed).
func TestMinStepHoldsEveryPercentage(t *testing.T) {
	t.Parallel()
	const minStep = 100 * time.Millisecond
	l := startLab(t, WithTaskDuration(0), WithMinStep(minStep))
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	vm := east.vm(t, ctx, "web-02")
	spec := xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, thin, WestAppPortgroup)
	began := time.Now()
	if _, err := relocate(ctx, vm, spec, nil); err != nil {
		t.Fatalf("relocate: %v", err)
	}
	if took, least := time.Since(began), 5*minStep; took < least {
		t.Errorf("relocation took %v, want at least %v: five percentages held %v each", took, least, minStep)
	}
}

func TestCrossVCenterRelocateRejected(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	vm := east.vm(t, ctx, "web-02")
	// The spec is built once (each finder lookup walks the inventory) and each case
	// changes a copy of it.
	valid := xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, thin, WestAppPortgroup)
	sourceHost := east.ref(t, ctx, "host", EastHost1)
	good := func() types.VirtualMachineRelocateSpec {
		s := valid
		service := *valid.Service
		s.Service = &service
		s.Disk = slices.Clone(valid.Disk)
		s.DeviceChange = slices.Clone(valid.DeviceChange)
		return s
	}
	unknown := func(kind string) *types.ManagedObjectReference {
		return &types.ManagedObjectReference{Type: kind, Value: kind + "-424242"}
	}

	for _, tc := range []struct {
		name   string
		mutate func(*types.VirtualMachineRelocateSpec)
		want   types.BaseMethodFault
	}{
		{"wrong thumbprint", func(s *types.VirtualMachineRelocateSpec) { s.Service.SslThumbprint = east.vc.Thumbprint }, &types.SSLVerifyFault{}},
		{"no thumbprint", func(s *types.VirtualMachineRelocateSpec) { s.Service.SslThumbprint = "" }, &types.SSLVerifyFault{}},
		{"wrong password", func(s *types.VirtualMachineRelocateSpec) {
			s.Service.Credential = &types.ServiceLocatorNamePassword{Username: Username, Password: east.vc.Password}
		}, &types.InvalidLogin{}},
		{"wrong instance uuid", func(s *types.VirtualMachineRelocateSpec) { s.Service.InstanceUuid = east.vc.InstanceUUID }, &types.InvalidArgument{}},
		{"http url", func(s *types.VirtualMachineRelocateSpec) { s.Service.Url = "http://" + west.vc.URL.Host + "/sdk" }, &types.InvalidArgument{}},
		{"unknown vcenter", func(s *types.VirtualMachineRelocateSpec) { s.Service.Url = "https://127.0.0.1:1/sdk" }, &types.InvalidArgument{}},
		{"missing host", func(s *types.VirtualMachineRelocateSpec) { s.Host = nil }, &types.InvalidArgument{}},
		{"missing pool", func(s *types.VirtualMachineRelocateSpec) { s.Pool = nil }, &types.InvalidArgument{}},
		{"missing datastore", func(s *types.VirtualMachineRelocateSpec) { s.Datastore = nil }, &types.InvalidArgument{}},
		{"host of the source", func(s *types.VirtualMachineRelocateSpec) { s.Host = sourceHost }, &types.ManagedObjectNotFound{}},
		{"unknown folder", func(s *types.VirtualMachineRelocateSpec) { s.Folder = unknown("Folder") }, &types.ManagedObjectNotFound{}},
		{"unknown disk datastore", func(s *types.VirtualMachineRelocateSpec) { s.Disk[0].Datastore = *unknown("Datastore") }, &types.ManagedObjectNotFound{}},
		{"nic left on a source network", func(s *types.VirtualMachineRelocateSpec) { s.DeviceChange = nil }, &types.InvalidArgument{}},
		{"target down", func(*types.VirtualMachineRelocateSpec) { west.vc.SetDown(true) }, &types.HostCommunication{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer west.vc.SetDown(false)
			spec := good()
			tc.mutate(&spec)
			_, err := relocate(ctx, vm, spec, nil)
			var te task.Error
			if !errors.As(err, &te) {
				t.Fatalf("relocate: err = %v, want a task error", err)
			}
			if reflect.TypeOf(te.Fault()) != reflect.TypeOf(tc.want) {
				t.Errorf("fault = %T (%s), want %T", te.Fault(), te.LocalizedMessage, tc.want)
			}
			if te.LocalizedMessage == "" {
				t.Error("fault has no message")
			}
			west.vc.SetDown(false)
			if _, err := east.vc.FindVM(ctx, "web-02"); err != nil {
				t.Errorf("web-02 no longer in %s: %v", EastVC, err)
			}
			if _, err := west.vc.FindVM(ctx, "web-02"); !errors.Is(err, ErrNotFound) {
				t.Errorf("web-02 in %s after a failed relocation (err %v)", WestVC, err)
			}
		})
	}
	if n := east.vc.XVMRelocations(); n != 0 {
		t.Errorf("XVMRelocations = %d after only failures", n)
	}

	// The source still works normally: the same VM moves once everything is right.
	if _, err := relocate(ctx, vm, good(), nil); err != nil {
		t.Fatalf("relocate after failures: %v", err)
	}
	if n := east.vc.XVMRelocationsOf("web-02"); n != 1 {
		t.Errorf("XVMRelocationsOf(web-02) = %d, want 1", n)
	}
}

func TestConcurrentRelocationOfOneVM(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	vm := east.vm(t, ctx, "web-03")
	spec := xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, thin, WestAppPortgroup)

	// The first relocation stays at 10% until the second has been tried.
	_, release := east.vc.HoldRelocation("web-03", 10)
	defer release()
	first, err := vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority)
	if err != nil {
		t.Fatal(err)
	}
	second, err := vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority)
	if err == nil {
		release()
		_, err = WaitTask(ctx, vm.Client(), second.Reference(), nil)
	}
	if err == nil {
		t.Error("second relocation of a VM being relocated succeeded")
	}
	release()
	if _, err := WaitTask(ctx, vm.Client(), first.Reference(), nil); err != nil {
		t.Fatalf("first relocation: %v", err)
	}
	if n := east.vc.XVMRelocationsOf("web-03"); n != 1 {
		t.Errorf("XVMRelocationsOf(web-03) = %d, want exactly 1", n)
	}
}

func TestSameVCenterRelocate(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east := open(t, ctx, l.VC(EastVC))
	vm := east.vm(t, ctx, "web-01")

	for _, tc := range []struct {
		name string
		spec types.VirtualMachineRelocateSpec
		want types.BaseMethodFault
	}{
		{"unknown host", types.VirtualMachineRelocateSpec{Host: &types.ManagedObjectReference{Type: "HostSystem", Value: "host-424242"}}, &types.ManagedObjectNotFound{}},
		{"unknown datastore", types.VirtualMachineRelocateSpec{Datastore: &types.ManagedObjectReference{Type: "Datastore", Value: "datastore-424242"}}, &types.ManagedObjectNotFound{}},
		{"unknown pool", types.VirtualMachineRelocateSpec{Pool: &types.ManagedObjectReference{Type: "ResourcePool", Value: "resgroup-424242"}}, &types.ManagedObjectNotFound{}},
		{"unknown folder", types.VirtualMachineRelocateSpec{Folder: &types.ManagedObjectReference{Type: "Folder", Value: "group-v424242"}}, &types.ManagedObjectNotFound{}},
		{"datastore given as a host", types.VirtualMachineRelocateSpec{Datastore: east.ref(t, ctx, "host", EastHost2)}, &types.InvalidArgument{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := relocate(ctx, vm, tc.spec, nil)
			if !fault.Is(err, tc.want) {
				t.Fatalf("relocate: err = %v, want %T", err, tc.want)
			}
		})
	}

	// A valid same-vCenter move still goes through the stock simulator.
	host := east.ref(t, ctx, "host", EastHost3)
	if _, err := relocate(ctx, vm, types.VirtualMachineRelocateSpec{Host: host}, nil); err != nil {
		t.Fatalf("relocate within %s: %v", EastVC, err)
	}
	var got mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"runtime.host"}, &got); err != nil {
		t.Fatal(err)
	}
	if *got.Runtime.Host != *host {
		t.Errorf("host after relocate = %s, want %s", got.Runtime.Host, host)
	}
	if n := east.vc.XVMRelocations(); n != 0 {
		t.Errorf("same-vCenter relocation counted as XVM: %d", n)
	}
}

func TestCloseAbortsRunningRelocation(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	vm := east.vm(t, ctx, "web-01")
	spec := xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, thin, WestAppPortgroup)
	// The relocation stops under way (the VM exists in the target) and stays there:
	// only Close can end it.
	under, release := l.VC(EastVC).HoldRelocation("web-01", 25)
	defer release()
	if _, err := vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority); err != nil {
		t.Fatal(err)
	}
	select {
	case <-under:
	case <-ctx.Done():
		t.Fatal("the relocation never got under way")
	}

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		l.Close()
	}()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return while a relocation was running")
	}
	if n := l.VC(EastVC).XVMRelocations(); n != 0 {
		t.Errorf("aborted relocation counted: %d", n)
	}
}

// CancelTask on a relocation, as vCenter does it: while the copy runs, the task ends
// cancelled and the VM stays in the source; once the VM has left the source, the cancel
// is refused (NotSupported: the task is no longer cancelable) and the task finishes its
// move; once it has ended, a cancel is refused with InvalidState. The relocation is held at
// each of the two moments while the cancel is sent.
func TestCancelRelocation(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	// start relocates name, cancels it once it is held at pct, and returns the cancel's
	// error and the task's end.
	start := func(name string, pct int32) (cancelable bool, cancelErr error, err error) {
		reached, release := east.vc.HoldRelocation(name, pct)
		defer release()
		vm := east.vm(t, ctx, name)
		spec := xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, thin, WestAppPortgroup)
		task, err := vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-reached:
		case <-ctx.Done():
			t.Fatalf("the relocation of %s never reached %d%%", name, pct)
		}
		var tk mo.Task
		if err := property.DefaultCollector(east.c.Client).RetrieveOne(ctx, task.Reference(), []string{"info"}, &tk); err != nil {
			t.Fatal(err)
		}
		cancelErr = task.Cancel(ctx)
		release()
		_, err = WaitTask(ctx, east.c.Client, task.Reference(), nil)
		return tk.Info.Cancelable, cancelErr, err
	}

	t.Run("during the copy", func(t *testing.T) {
		cancelable, cancelErr, err := start("web-01", 25)
		if !cancelable {
			t.Error("the task says it is not cancelable during the copy")
		}
		if cancelErr != nil {
			t.Fatalf("cancel refused during the copy: %v", cancelErr)
		}
		if !fault.Is(err, &types.RequestCanceled{}) {
			t.Fatalf("task ended with %v, want RequestCanceled", err)
		}
		if _, err := east.vc.FindVM(ctx, "web-01"); err != nil {
			t.Errorf("web-01 left the source: %v", err)
		}
		if _, err := west.vc.FindVM(ctx, "web-01"); !errors.Is(err, ErrNotFound) {
			t.Errorf("web-01 left behind in the target (err %v)", err)
		}
	})
	t.Run("after the switch-over", func(t *testing.T) {
		cancelable, cancelErr, err := start("web-02", SwitchedOver)
		if cancelable {
			t.Error("the task says it is cancelable after the switch-over")
		}
		if n := east.vc.XVMRelocationsOf("web-02"); n != 1 {
			t.Errorf("web-02 counted %d times as relocated at the switch-over, want 1", n)
		}
		if !fault.Is(cancelErr, &types.NotSupported{}) {
			t.Fatalf("cancel after the switch-over: %v, want NotSupported", cancelErr)
		}
		if err != nil {
			t.Fatalf("task ended with %v, want success", err)
		}
		if _, err := west.vc.FindVM(ctx, "web-02"); err != nil {
			t.Errorf("web-02 not in the target: %v", err)
		}
	})
}
