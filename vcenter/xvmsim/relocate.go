package xvmsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// relocate performs a cross-vCenter relocation of vmRef from v to the vCenter
// named by spec.Service. The VM leaves the source only once it runs in the
// target; any earlier failure leaves the source untouched and removes what
// was created in the target.
//
// began is when the task started (its info.startTime): the task lasts the lab's task
// duration from then.
func (v *VC) relocate(ctx context.Context, began time.Time, progress func(int32), mv *moveState, vmRef types.ManagedObjectReference, spec types.VirtualMachineRelocateSpec) (types.ManagedObjectReference, *types.LocalizedMethodFault) {
	cancelled := mv.isCancelled
	var none types.ManagedObjectReference
	// The percentages reported, spread evenly over the lab's task duration.
	progressSteps := []int32{10, 25, 50, 75, 90}
	// The task takes the lab's task duration from the call, whatever the emulation's own
	// work costs (logins, reads, the create in the target): each step ends at a fixed
	// time after the start, so that a task's length is what tests and benchmarks set.
	step := v.lab.opt.taskDuration / time.Duration(len(progressSteps))
	// A step never ends sooner than the lab's minimum step after its percentage was
	// reported (WithMinStep), so that a watcher can see it.
	var reported time.Time
	stepEnd := func(i int) <-chan time.Time {
		end := began.Add(time.Duration(i) * step)
		if earliest := reported.Add(v.lab.opt.minStep); earliest.After(end) {
			end = earliest
		}
		return time.After(time.Until(end))
	}
	report := func(p int32) {
		progress(p)
		reported = time.Now()
	}

	tgt, lf := v.lab.resolveLocator(spec.Service)
	if lf != nil {
		return none, lf
	}
	if why := tgt.vc.refusal(spec.Host); why != "" {
		return none, &types.LocalizedMethodFault{Fault: &types.MigrationFault{}, LocalizedMessage: why}
	}
	for _, req := range []struct {
		ref  *types.ManagedObjectReference
		prop string
	}{{spec.Host, "host"}, {spec.Pool, "pool"}, {spec.Datastore, "datastore"}} {
		if req.ref == nil {
			return none, invalidArgument(req.prop, "%s is required for a cross vCenter migration", req.prop)
		}
	}

	// The emulator reaches its own vCenter behind the front door: a source
	// marked down still finishes what it started, like vCenter's own services.
	src, err := v.login(ctx, v.internal)
	if err != nil {
		return none, asFault(err, "log in to source %s", v.Name)
	}
	defer logout(src)
	var vm mo.VirtualMachine
	if err := src.RetrieveOne(ctx, vmRef, []string{"name", "config", "runtime.powerState"}, &vm); err != nil || vm.Config == nil {
		return none, &types.LocalizedMethodFault{Fault: &types.ManagedObjectNotFound{Obj: vmRef}, LocalizedMessage: fmt.Sprintf("vm %s not found", vmRef.Value)}
	}
	if lf := v.refusesMove(tgt.vc, &vm, *spec.Host); lf != nil {
		return none, lf
	}

	dst, err := tgt.vc.loginAs(ctx, tgt.url, tgt.user, tgt.password)
	if err != nil {
		return none, asFault(err, "connect to target %s", tgt.url.Host)
	}
	defer logout(dst)

	plan, lf := planTarget(ctx, dst, &vm, spec, sourceURLs(ctx, src, &vm))
	if lf != nil {
		return none, lf
	}
	report(progressSteps[0])
	v.holdAt(ctx, vm.Name, progressSteps[0])

	var newRef types.ManagedObjectReference
	err = tgt.vc.exclusive(ctx, func(c *govmomi.Client) error {
		newRef, lf = plan.create(ctx, c)
		if lf != nil {
			return nil
		}
		err := renameTo(ctx, c.Client, newRef, vm.Name)
		if err == nil && len(plan.segments) > 0 {
			err = tgt.vc.heldEdit(func(e *labEdit) error { return e.putOnSegments(newRef, plan.segments) })
		}
		if err != nil {
			lf = asFault(err, "finish %s in target", vm.Name)
			_ = destroy(ctx, object.NewVirtualMachine(c.Client, newRef))
		}
		return nil
	})
	if err != nil {
		return none, asFault(err, "create %s in target", vm.Name)
	}
	if lf != nil {
		return none, lf
	}
	rollback := func(lf *types.LocalizedMethodFault) (types.ManagedObjectReference, *types.LocalizedMethodFault) {
		_ = tgt.vc.exclusive(context.Background(), func(c *govmomi.Client) error {
			return destroy(context.Background(), object.NewVirtualMachine(c.Client, newRef))
		})
		return none, lf
	}

	for i, p := range progressSteps[1:] {
		select {
		case <-ctx.Done():
			return rollback(&types.LocalizedMethodFault{Fault: &types.RequestCanceled{}, LocalizedMessage: "the vCenter is shutting down"})
		case <-stepEnd(i + 1):
		}
		// CancelTask marks the task cancelled; like vCenter, the move is rolled back
		// while it can still be, i.e. until the VM leaves the source.
		if cancelled() {
			return rollback(&types.LocalizedMethodFault{Fault: &types.RequestCanceled{}, LocalizedMessage: "The task was canceled by a user"})
		}
		if i == 1 {
			if f := v.injectedFault(vm.Name); f != nil {
				return rollback(&types.LocalizedMethodFault{Fault: f, LocalizedMessage: fmt.Sprintf("%T injected by the lab", f)})
			}
		}
		report(p)
		v.holdAt(ctx, vm.Name, p)
	}

	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
		err := tgt.vc.exclusive(ctx, func(c *govmomi.Client) error {
			return runTask(ctx, c.Client, object.NewVirtualMachine(c.Client, newRef).PowerOn)
		})
		if err != nil {
			return rollback(asFault(err, "power on %s in target", vm.Name))
		}
	}
	if !mv.commit() {
		return rollback(&types.LocalizedMethodFault{Fault: &types.RequestCanceled{}, LocalizedMessage: "The task was canceled by a user"})
	}
	// Switch-over: the VM leaves the source during the last step, as in vCenter, where the
	// task completes after the source copy is gone; from here on it cannot be cancelled.
	err = v.exclusive(ctx, func(c *govmomi.Client) error {
		return destroy(ctx, object.NewVirtualMachine(c.Client, vmRef))
	})
	if err != nil {
		return rollback(asFault(err, "remove %s from source", vm.Name))
	}
	tgt.vc.policies.relocated(newRef, spec, diskKeys(vm.Config.Hardware.Device), newDiskKeys(ctx, dst, newRef))
	v.policies.forget(vmRef)
	v.countRelocation(vm.Name)
	v.holdAt(ctx, vm.Name, SwitchedOver)
	reported = time.Now() // the switch-over is a step too: it lasts at least the minimum step
	select {
	case <-ctx.Done():
	case <-stepEnd(len(progressSteps)):
	}
	return newRef, nil
}

// runTask starts a task and waits for it to end, polling (see WaitTask).
func runTask(ctx context.Context, c *vim25.Client, start func(context.Context) (*object.Task, error)) error {
	_, err := startAndWait(ctx, c, start)
	return err
}

func startAndWait(ctx context.Context, c *vim25.Client, start func(context.Context) (*object.Task, error)) (*types.TaskInfo, error) {
	t, err := start(ctx)
	if err != nil {
		return nil, err
	}
	return waitTask(ctx, c, t.Reference(), nil, time.Millisecond, 2*time.Millisecond)
}

// destroy powers vm off if needed and deletes it with its disks. The VM's client must
// be a backstage one, inside an exclusive section.
func destroy(ctx context.Context, vm *object.VirtualMachine) error {
	c := vm.Client()
	state, err := vm.PowerState(ctx)
	if err != nil {
		return err
	}
	if state == types.VirtualMachinePowerStatePoweredOn {
		if err := runTask(ctx, c, vm.PowerOff); err != nil {
			return err
		}
	}
	info, err := startAndWait(ctx, c, vm.Destroy)
	if err != nil {
		return err
	}
	return waitFileDeletions(ctx, c, info.Task)
}

// fileDeletion is the description of the task in which vcsim's Destroy deletes the VM's
// files. Destroy starts it and does not wait for it.
const fileDeletion = "FileManager.deleteDatastoreFile"

// waitFileDeletions waits for the file deletions started after the task after to end.
// vcsim's Destroy task ends while its file deletion still runs, and that deletion reads
// the datastore without the datastore's lock: left running past the exclusive section,
// it races with the next create or destroy.
func waitFileDeletions(ctx context.Context, c *vim25.Client, after types.ManagedObjectReference) error {
	pc := property.DefaultCollector(c)
	var tm mo.TaskManager
	if err := pc.RetrieveOne(ctx, *c.ServiceContent.TaskManager, []string{"recentTask"}, &tm); err != nil {
		return err
	}
	// Recent tasks are listed oldest first; vCenter keeps the last 200.
	// When after is no longer listed (i = -1), every listed task is looked at.
	i := slices.Index(tm.RecentTask, after)
	if i == len(tm.RecentTask)-1 {
		return nil
	}
	var tasks []mo.Task
	if err := pc.Retrieve(ctx, tm.RecentTask[i+1:], []string{"info"}, &tasks); err != nil {
		return err
	}
	for _, t := range tasks {
		if t.Info.DescriptionId != fileDeletion || t.Info.State == types.TaskInfoStateSuccess || t.Info.State == types.TaskInfoStateError {
			continue
		}
		// Its outcome is Destroy's business (vcsim ignores it too); only its end matters.
		if _, err := waitTask(ctx, c, t.Self, nil, time.Millisecond, 2*time.Millisecond); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// asFault turns a client-side error into the fault the task reports: the
// remote fault when there is one, otherwise a communication failure, which
// is what vCenter reports when it cannot reach its peer.
func asFault(err error, format string, args ...any) *types.LocalizedMethodFault {
	msg := fmt.Sprintf(format, args...) + ": " + err.Error()
	var f types.BaseMethodFault
	if _, ok := fault.As(err, &f); ok && f != nil {
		return &types.LocalizedMethodFault{Fault: f, LocalizedMessage: msg}
	}
	if errors.Is(err, context.Canceled) {
		return &types.LocalizedMethodFault{Fault: &types.RequestCanceled{}, LocalizedMessage: msg}
	}
	return &types.LocalizedMethodFault{Fault: &types.HostCommunication{}, LocalizedMessage: msg}
}

// targetPlan is everything needed to create the VM in the target, resolved
// and checked before anything is created there.
type targetPlan struct {
	config       types.VirtualMachineConfigSpec
	folder, pool types.ManagedObjectReference
	host         types.ManagedObjectReference
	dc           *object.Datacenter
	// dirs are the datastores, other than the VM's home one, that need a
	// directory for its disks.
	dirs []string
	// segments are the NICs (by position) that go on NSX segments: created without a
	// backing, given theirs once the VM exists (see nsx.go).
	segments map[int]*types.VirtualEthernetCardOpaqueNetworkBackingInfo
}

func planTarget(ctx context.Context, dst *govmomi.Client, vm *mo.VirtualMachine, spec types.VirtualMachineRelocateSpec, srcURL map[types.ManagedObjectReference]string) (*targetPlan, *types.LocalizedMethodFault) {
	names := map[types.ManagedObjectReference]string{}
	exists := func(ref types.ManagedObjectReference) *types.LocalizedMethodFault {
		if _, ok := names[ref]; ok {
			return nil
		}
		name, err := entityName(ctx, dst, ref)
		if err != nil {
			return &types.LocalizedMethodFault{
				Fault:            &types.ManagedObjectNotFound{Obj: ref},
				LocalizedMessage: fmt.Sprintf("%s %s not found in the target vCenter", ref.Type, ref.Value),
			}
		}
		names[ref] = name
		return nil
	}

	plan := &targetPlan{host: *spec.Host, pool: *spec.Pool, segments: map[int]*types.VirtualEthernetCardOpaqueNetworkBackingInfo{}}
	for _, ref := range []types.ManagedObjectReference{*spec.Host, *spec.Pool, *spec.Datastore} {
		if lf := exists(ref); lf != nil {
			return nil, lf
		}
	}
	dc, err := find.NewFinder(dst.Client, false).DefaultDatacenter(ctx)
	if err != nil {
		return nil, asFault(err, "find the target datacenter")
	}
	plan.dc = dc
	if spec.Folder != nil {
		if lf := exists(*spec.Folder); lf != nil {
			return nil, lf
		}
		plan.folder = *spec.Folder
	} else {
		folders, err := dc.Folders(ctx)
		if err != nil {
			return nil, asFault(err, "find the target vm folder")
		}
		plan.folder = folders.VmFolder.Reference()
	}

	locators := map[int32]types.VirtualMachineRelocateSpecDiskLocator{}
	datastores := []types.ManagedObjectReference{*spec.Datastore}
	for _, d := range spec.Disk {
		if lf := exists(d.Datastore); lf != nil {
			return nil, lf
		}
		locators[d.DiskId] = d
		datastores = append(datastores, d.Datastore)
	}
	rules, lf := readRules(ctx, dst, fileName(vm.Name), *spec.Host, datastores, srcURL)
	if lf != nil {
		return nil, lf
	}
	edits := map[int32]types.BaseVirtualDeviceBackingInfo{}
	for _, c := range spec.DeviceChange {
		dc := c.GetVirtualDeviceConfigSpec()
		if dc.Operation != types.VirtualDeviceConfigSpecOperationEdit || dc.Device == nil {
			continue
		}
		if nic, ok := dc.Device.(types.BaseVirtualEthernetCard); ok {
			edits[nic.GetVirtualEthernetCard().Key] = nic.GetVirtualEthernetCard().Backing
		}
	}

	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return nil, asFault(err, "create a disk controller")
	}
	devices = append(devices, scsi)
	var change []types.BaseVirtualDeviceConfigSpec
	change = append(change, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: scsi})

	ndisk, nnic := 0, 0
	for _, d := range vm.Config.Hardware.Device {
		switch dev := d.(type) {
		case *types.VirtualDisk:
			pd, lf := rules.planDisk(dev, locators[dev.Key], *spec.Datastore, ndisk)
			if lf != nil {
				return nil, lf
			}
			ndisk++
			if ds := pd.datastore; !pd.existing && ds != names[*spec.Datastore] && !slices.Contains(plan.dirs, ds) {
				plan.dirs = append(plan.dirs, ds)
			}
			devices.AssignController(pd.disk, scsi.(types.BaseVirtualController))
			devices = append(devices, pd.disk)
			op := types.VirtualDeviceConfigSpecFileOperationCreate
			if pd.existing {
				op = "" // the file is there already: the target VM uses it
			}
			change = append(change, &types.VirtualDeviceConfigSpec{
				Operation:     types.VirtualDeviceConfigSpecOperationAdd,
				FileOperation: op,
				Device:        pd.disk,
			})
		case types.BaseVirtualEthernetCard:
			card := dev.GetVirtualEthernetCard()
			backing := card.Backing
			if b, ok := edits[card.Key]; ok {
				backing = b
			}
			label := fmt.Sprintf("network adapter %d", card.Key)
			if card.DeviceInfo != nil {
				label = card.DeviceInfo.GetDescription().Label
			}
			if lf := checkNetwork(ctx, dst, backing, label); lf != nil {
				return nil, lf
			}
			// The same card, with the same MAC, now on the target's network.
			card.Key = devices.NewKey()
			card.Backing = backing
			if seg, ok := backing.(*types.VirtualEthernetCardOpaqueNetworkBackingInfo); ok {
				plan.segments[nnic], card.Backing = seg, nil
			}
			nnic++
			card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
			card.DeviceInfo = nil
			card.UnitNumber = nil
			card.ExternalId = ""
			devices = append(devices, d)
			change = append(change, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d})
		}
	}

	c := vm.Config
	plan.config = types.VirtualMachineConfigSpec{
		Name:         fileName(vm.Name),
		Uuid:         c.Uuid,
		InstanceUuid: c.InstanceUuid,
		GuestId:      c.GuestId,
		NumCPUs:      c.Hardware.NumCPU,
		MemoryMB:     int64(c.Hardware.MemoryMB),
		Annotation:   c.Annotation,
		Files:        &types.VirtualMachineFileInfo{VmPathName: "[" + names[*spec.Datastore] + "]"},
		DeviceChange: change,
	}
	return plan, nil
}

// checkNetwork fails like vCenter's network compatibility check when a NIC
// would land on a network the target does not have.
func checkNetwork(ctx context.Context, dst *govmomi.Client, backing types.BaseVirtualDeviceBackingInfo, nic string) *types.LocalizedMethodFault {
	missing := func(what string) *types.LocalizedMethodFault {
		return invalidArgument("spec.deviceChange", "%s: %s is not available in the target vCenter", nic, what)
	}
	switch b := backing.(type) {
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		pgRef := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
		var pg mo.DistributedVirtualPortgroup
		if err := dst.RetrieveOne(ctx, pgRef, []string{"name", "config.distributedVirtualSwitch"}, &pg); err != nil || pg.Config.DistributedVirtualSwitch == nil {
			return missing(fmt.Sprintf("distributed portgroup %s", b.Port.PortgroupKey))
		}
		var dvs mo.DistributedVirtualSwitch
		if err := dst.RetrieveOne(ctx, *pg.Config.DistributedVirtualSwitch, []string{"uuid"}, &dvs); err != nil || dvs.Uuid != b.Port.SwitchUuid {
			return missing(fmt.Sprintf("distributed switch %s", b.Port.SwitchUuid))
		}
		return nil
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.Network != nil {
			var n mo.Network
			if err := dst.RetrieveOne(ctx, *b.Network, []string{"name"}, &n); err != nil || (b.DeviceName != "" && n.Name != b.DeviceName) {
				return missing(fmt.Sprintf("network %q (%s)", b.DeviceName, b.Network.Value))
			}
			return nil
		}
		finder := find.NewFinder(dst.Client)
		dc, err := finder.DefaultDatacenter(ctx)
		if err != nil {
			return asFault(err, "find the target datacenter")
		}
		if _, err := finder.SetDatacenter(dc).Network(ctx, b.DeviceName); err != nil {
			return missing(fmt.Sprintf("network %q", b.DeviceName))
		}
		return nil
	case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
		cv, err := view.NewManager(dst.Client).CreateContainerView(ctx, dst.ServiceContent.RootFolder, []string{"OpaqueNetwork"}, true)
		if err != nil {
			return asFault(err, "list the target's segments")
		}
		defer func() { _ = cv.Destroy(context.Background()) }()
		var segs []mo.OpaqueNetwork
		if err := cv.Retrieve(ctx, []string{"OpaqueNetwork"}, []string{"summary"}, &segs); err != nil {
			return asFault(err, "list the target's segments")
		}
		for _, seg := range segs {
			if s, ok := seg.Summary.(*types.OpaqueNetworkSummary); ok && s.OpaqueNetworkId == b.OpaqueNetworkId && s.OpaqueNetworkType == b.OpaqueNetworkType {
				return nil
			}
		}
		return missing(fmt.Sprintf("segment %s (%s)", b.OpaqueNetworkId, b.OpaqueNetworkType))
	default:
		return missing(fmt.Sprintf("backing %T", backing))
	}
}

func (p *targetPlan) create(ctx context.Context, dst *govmomi.Client) (types.ManagedObjectReference, *types.LocalizedMethodFault) {
	folder := object.NewFolder(dst.Client, p.folder)
	pool := object.NewResourcePool(dst.Client, p.pool)
	host := object.NewHostSystem(dst.Client, p.host)
	dc := object.NewDatacenter(dst.Client, p.dc.Reference())
	for _, ds := range p.dirs {
		if err := vmDirectory(ctx, dst.Client, dc, ds, p.config.Name); err != nil {
			return types.ManagedObjectReference{}, asFault(err, "create the directory of %s on %s", p.config.Name, ds)
		}
	}
	info, err := startAndWait(ctx, dst.Client, func(ctx context.Context) (*object.Task, error) {
		return folder.CreateVM(ctx, p.config, pool, host)
	})
	if err != nil {
		return types.ManagedObjectReference{}, asFault(err, "create %s in target", p.config.Name)
	}
	return info.Result.(types.ManagedObjectReference), nil
}

// newDiskKeys are the disk keys of the VM created in the target, in device order (nil if
// they cannot be read: its policies are then not recorded).
func newDiskKeys(ctx context.Context, dst *govmomi.Client, ref types.ManagedObjectReference) []int32 {
	var vm mo.VirtualMachine
	if err := dst.RetrieveOne(ctx, ref, []string{"config.hardware.device"}, &vm); err != nil || vm.Config == nil {
		return nil
	}
	return diskKeys(vm.Config.Hardware.Device)
}
