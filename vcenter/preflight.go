package vcenter

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sync/errgroup"

	"github.com/xvmbot/xvmbot/move"
)

// checkDevices adds a Blocker for every device that keeps vCenter from
// migrating the VM: hardware of one particular host (PCI passthrough other than a
// vGPU, which checkVGPUs checks against the target host; USB,
// serial or parallel ports on the host's ports, a host CD/DVD drive), a
// device on the vSphere Client's machine, or an ISO only the source host
// can read. It reports whether it found any.
//
// A powered-off VM moves cold, and vCenter lets a disconnected device of the
// host go with it (only warning when the target host has no backing of that
// name). What it cannot do is connect it on the target host: a device set to
// connect at power-on is a Warning, said before the move instead of found
// missing at the first start.
func (r *resolver) checkDevices(vm string, power types.VirtualMachinePowerState, devices object.VirtualDeviceList) bool {
	blocked := false
	off := power == types.VirtualMachinePowerStatePoweredOff
	block := func(d types.BaseVirtualDevice, what, hint string) {
		r.block(vm, fmt.Sprintf("%s of %s %s; vMotion cannot move it", deviceLabel(devices, d), vm, what), hint)
		blocked = true
	}
	warnAtPowerOn := func(d types.BaseVirtualDevice, what, hint string) {
		r.add(Warning, vm, fmt.Sprintf("%s of %s %s and is set to connect at power-on; %s moves powered off, but the device will not connect on the target host when it starts",
			deviceLabel(devices, d), vm, what, vm), hint)
	}
	const disconnect = "disconnect it (edit the VM's settings) before the move, and reconnect it in the target if needed"
	const unplug = "untick Connect At Power On or remove the device (edit the VM's settings), and give it a device of the target host after the move if it needs one"
	// hostPort reports a port backed by the host's own device: a blocker while it is
	// connected, a warning while it is only set to connect at power-on.
	hostPort := func(d types.BaseVirtualDevice, connected, later bool, what, otherwise string) {
		switch {
		case connected:
			block(d, what, disconnect+", or "+otherwise)
		case later:
			warnAtPowerOn(d, what, unplug+", or "+otherwise)
		}
	}
	for _, d := range devices {
		// A device counts when it is connected now or will be at power-on:
		// either way the target host would have to provide it.
		conn := d.GetVirtualDevice().Connectable
		connected := conn == nil || conn.Connected || (conn.StartConnected && !off)
		// later: the VM is off and the device will try to connect when it starts.
		later := !connected && conn.StartConnected
		switch dev := d.(type) {
		case *types.VirtualPCIPassthrough:
			if _, vgpu := dev.Backing.(*types.VirtualPCIPassthroughVmiopBackingInfo); vgpu {
				continue // checkVGPUs, once the target host is chosen: it must offer the profile
			}
			name := ""
			if b, ok := dev.Backing.(types.BaseVirtualDeviceDeviceBackingInfo); ok && b.GetVirtualDeviceDeviceBackingInfo().DeviceName != "" {
				name = " (" + b.GetVirtualDeviceDeviceBackingInfo().DeviceName + ")"
			}
			if _, dynamic := dev.Backing.(*types.VirtualPCIPassthroughDynamicBackingInfo); dynamic && off {
				// Dynamic DirectPath I/O names a device model, not a host's device:
				// ESXi picks a free one of that model at power-on, on whichever host
				// the VM starts. Powered off, the VM is bound to no host.
				r.add(Warning, vm, fmt.Sprintf("%s of %s is a dynamic DirectPath I/O device%s; %s moves powered off, and will only start on a target host with a free device of that model",
					deviceLabel(devices, d), vm, name, vm),
					"make sure the target cluster has hosts with that device free, or remove it before the move")
				continue
			}
			if off {
				// Kept a blocker even cold: the backing names the source host's PCI
				// address and system id, and ESXi refuses to power the VM on anywhere
				// else with it. Whether vCenter refuses the cold move itself is not
				// known here; either way the VM would arrive unable to start.
				r.block(vm, fmt.Sprintf("%s of %s is a PCI passthrough device%s bound to its current host's hardware; moved powered off, %s would not start on a target host",
					deviceLabel(devices, d), vm, name, vm),
					"remove the device (edit the VM's settings), move the VM, then add a passthrough device of the target host")
				blocked = true
				continue
			}
			block(d, "is a PCI passthrough device"+name+" tied to its current host",
				"power the VM off and remove the device, move it, then add the target host's device")
		case *types.VirtualUSB:
			switch {
			case connected:
				block(d, "is a connected USB device", disconnect)
			case later:
				warnAtPowerOn(d, "is a USB device of its host", unplug)
			}
		case *types.VirtualSerialPort:
			if _, ok := dev.Backing.(*types.VirtualSerialPortDeviceBackingInfo); ok {
				hostPort(d, connected, later, "uses the host's serial port "+deviceName(dev.Backing), "back it with a file or network URI")
			}
		case *types.VirtualParallelPort:
			if _, ok := dev.Backing.(*types.VirtualParallelPortDeviceBackingInfo); ok {
				hostPort(d, connected, later, "uses the host's parallel port "+deviceName(dev.Backing), "back it with a file")
			}
		case *types.VirtualCdrom:
			if !connected && !later {
				continue
			}
			var what, hint string
			laterWhat := "" // what, worded to go before "and is set to connect", when it differs
			switch b := dev.Backing.(type) {
			case *types.VirtualCdromRemotePassthroughBackingInfo, *types.VirtualCdromRemoteAtapiBackingInfo:
				what, hint = "a client device", disconnect
			case *types.VirtualCdromAtapiBackingInfo, *types.VirtualCdromPassthroughBackingInfo:
				what, hint = "the host's drive "+deviceName(b), disconnect
			case *types.VirtualCdromIsoBackingInfo:
				if strings.HasPrefix(strings.TrimSpace(b.FileName), "[]") || !strings.HasPrefix(strings.TrimSpace(b.FileName), "[") {
					what, hint = b.FileName+", an ISO on the host's own disk", disconnect+", or use an ISO on a datastore"
					laterWhat = b.FileName + " (an ISO on the host's own disk)"
				} else if connected {
					continue // checkISOs, once the target host is chosen: it must mount the datastore
				} else {
					r.add(Warning, vm, fmt.Sprintf("%s of %s is set to connect to %s at power-on; it will only connect if the target host mounts the same datastore",
						deviceLabel(devices, d), vm, b.FileName), "untick Connect At Power On, or copy the ISO to a datastore of the target and point the drive at it after the move")
					continue
				}
			default:
				continue
			}
			if connected {
				block(d, "is connected to "+what, hint)
			} else {
				warnAtPowerOn(d, "uses "+cmp.Or(laterWhat, what), unplug)
			}
		}
	}
	return blocked
}

func deviceName(b types.BaseVirtualDeviceBackingInfo) string {
	if d, ok := b.(types.BaseVirtualDeviceDeviceBackingInfo); ok {
		return d.GetVirtualDeviceDeviceBackingInfo().DeviceName
	}
	return ""
}

// diskUsage adds up, per disk, the files of its chain (snapshots included):
// what a thin copy needs.
func diskUsage(l *types.VirtualMachineFileLayoutEx) map[int32]int64 {
	out := map[int32]int64{}
	if l == nil {
		return out
	}
	size := make(map[int32]int64, len(l.File))
	for _, f := range l.File {
		size[f.Key] = f.Size
	}
	for _, d := range l.Disk {
		for _, unit := range d.Chain {
			for _, k := range unit.FileKey {
				out[d.Key] += size[k]
			}
		}
	}
	return out
}

// diskNeed is what the VM's disks take on the target datastore in the
// requested format: thin disks what they use now, thick ones their size.
// grow is what thin disks could grow to on top of that.
func diskNeed(svm *sourceVM, disk *types.VirtualDisk, format move.DiskFormat) (need, grow int64) {
	capacity := disk.CapacityInBytes
	if capacity == 0 {
		capacity = disk.CapacityInKB * 1024
	}
	thin := format == move.Thin
	if format == move.Same || format == "" {
		b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		thin = ok && isTrue(b.ThinProvisioned)
	}
	if thin {
		used := svm.used[disk.Key]
		return used, max(capacity-used, 0)
	}
	return capacity, 0
}

// minMajor and minMinor are the oldest vCenter and ESXi release that does
// cross vCenter vMotion through the API (6.5).
const minMajor, minMinor = 6, 5

// checkVersion blocks when a vCenter is older than 6.5.
func (r *resolver) checkVersion(ep Endpoint, version string) {
	major, minor, ok := parseVersion(version)
	switch {
	case !ok:
		r.add(Warning, "", fmt.Sprintf("%s reports version %q, which xvmbot cannot read", ep.Name, version),
			"cross vCenter vMotion needs vCenter 6.5 or later on both sides; check the version in the vSphere Client")
	case major < minMajor || (major == minMajor && minor < minMinor):
		r.block("", fmt.Sprintf("%s runs vCenter %s; cross vCenter vMotion needs 6.5 or later on both sides", ep.Name, version),
			"upgrade "+ep.Name+", or move the VMs another way (e.g. export and import as OVF)")
	}
}

func parseVersion(v string) (major, minor int, ok bool) {
	parts := strings.Split(strings.TrimSpace(v), ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

// checkRelocateWorkers bounds the requests that start compatibility checks at once,
// and checkBatch the checks running at once on the source vCenter: each is a task
// there, and a bulk plan may have thousands.
const (
	checkRelocateWorkers = 4
	checkBatch           = 64
)

// checkRelocate asks the source vCenter to check the exact relocation
// Relocate would start, for every VM not already ruled out, and turns what
// it reports into findings. A check that cannot run at all is a Warning,
// not a failed plan: the checks above have been made, and vCenter's own
// check is advice (docs/vsphere-facts.md V1: passing it is no proof either).
func (r *resolver) checkRelocate(ctx context.Context, c *vim25.Client, srcVMs map[string]*sourceVM, loc *types.ServiceLocator) {
	if r.plan.placement == nil || r.requestBlocked() {
		return // nothing would be started anyway
	}
	if c.ServiceContent.VmProvisioningChecker == nil {
		r.add(Warning, "", fmt.Sprintf("%s offers no compatibility check (VmProvisioningChecker)", r.spec.Source),
			"the checks above still apply; watch the first move closely")
		return
	}
	var jobs []*checkJob
	for _, v := range r.plan.VMs {
		vp := r.plan.vms[v.Name]
		if vp == nil || srcVMs[v.Name] == nil || srcVMs[v.Name].blocked {
			continue
		}
		jobs = append(jobs, &checkJob{name: v.Name, vp: vp})
	}
	for _, j := range jobs {
		j.vm, j.spec = j.vp.ref, buildRelocateSpec(*r.plan.placement, j.vp, r.spec.DiskFormat, loc)
	}
	// The other hosts a job may start on when the planned one is busy are checked too,
	// with the request's first VM, when they differ from the planned host in CPU or ESXi
	// build: in a cluster of mixed CPUs (no EVC) one of them may refuse what the planned
	// host accepts, and a move spilled onto it would fail. Hosts like the planned one
	// are judged as it is, at no cost.
	var others []*checkJob
	if len(jobs) > 0 {
		others = make([]*checkJob, len(r.unlike))
		for i, h := range r.unlike {
			pl := *r.plan.placement
			pl.Host = r.plan.others[h]
			others[i] = &checkJob{name: h, vp: jobs[0].vp, vm: jobs[0].vp.ref, spec: buildRelocateSpec(pl, jobs[0].vp, r.spec.DiskFormat, loc)}
		}
	}
	relocationChecker{c}.checkAll(ctx, append(slices.Clone(jobs), others...))
	if len(jobs) > 0 {
		r.dropRefusedHosts(others, jobs[0].name)
	}
	failed := 0
	var firstErr error
	for _, j := range jobs {
		if j.err != nil {
			failed++
			if firstErr == nil {
				firstErr = j.err
			}
			continue
		}
		for _, res := range j.res {
			for _, e := range res.Error {
				r.block(j.name, fmt.Sprintf("%s's compatibility check refuses %s: %s", r.spec.Source, j.name, checkText(e)),
					"fix what vCenter names, or choose another host or cluster")
				srcVMs[j.name].blocked = true
			}
			for _, w := range res.Warning {
				r.add(Warning, j.name, fmt.Sprintf("%s's compatibility check warns about %s: %s", r.spec.Source, j.name, checkText(w)),
					"vCenter lets the move go ahead; fix what the warning names first if it matters for this VM (a slow link, a device, a setting of the target host)")
			}
		}
	}
	if failed > 0 {
		r.add(Warning, "", fmt.Sprintf("%s's compatibility check could not run for %d VM(s): %v", r.spec.Source, failed, firstErr),
			"the checks above still apply; vCenter checks again when the move starts")
	}
}

// dropRefusedHosts takes the other hosts whose compatibility check refused the
// request's first VM out of the plan's other hosts, and says so: the moves will not
// spread onto them. A check that could not run leaves the host in (vCenter checks again
// when a move starts).
func (r *resolver) dropRefusedHosts(others []*checkJob, vm string) {
	for _, h := range others {
		if h.err != nil {
			continue
		}
		var why []string
		for _, res := range h.res {
			for _, e := range res.Error {
				why = append(why, checkText(e))
			}
		}
		if len(why) == 0 {
			continue
		}
		i := slices.Index(r.plan.OtherHosts, h.name)
		r.plan.OtherHosts = slices.Delete(r.plan.OtherHosts, i, i+1)
		delete(r.plan.others, h.name)
		r.add(Warning, "", fmt.Sprintf("the moves will not spread onto %s when %s is busy: %s's compatibility check refuses %s there: %s",
			h.name, r.plan.Host, r.spec.Source, vm, strings.Join(why, "; ")),
			fmt.Sprintf("nothing to do for this request, which uses the hosts that accept it; to use %s too, fix what vCenter names (an EVC mode for the cluster, say)", h.name))
	}
	if len(r.plan.OtherHosts) == 0 {
		r.plan.OtherHosts = nil
	}
}

// checkJob is one compatibility check: of a VM on the planned host, or of the
// request's first VM on another host.
type checkJob struct {
	name string // the VM, or the other host
	vp   *vmPlan
	vm   types.ManagedObjectReference
	spec types.VirtualMachineRelocateSpec
	res  []types.CheckResult
	err  error
}

// ended records the result of the job's check from its task's info, and reports
// whether the task has ended (with a result or an error).
func (j *checkJob) ended(info *types.TaskInfo) bool {
	switch {
	case info.State != types.TaskInfoStateSuccess && info.State != types.TaskInfoStateError:
		return false
	case info.Error != nil:
		j.err = task.Error{LocalizedMethodFault: info.Error, Description: info.Description}
	default:
		out, ok := info.Result.(types.ArrayOfCheckResult)
		if !ok {
			j.err = fmt.Errorf("the compatibility check of %s ended without a result", j.vm.Value)
		}
		j.res = out.CheckResult
	}
	return true
}

// checkText is a check result's message, or its fault type when vCenter
// sent no message.
func checkText(f types.LocalizedMethodFault) string {
	if f.LocalizedMessage != "" {
		return f.LocalizedMessage
	}
	if f.Fault != nil {
		return strings.TrimPrefix(fmt.Sprintf("%T", f.Fault), "*types.")
	}
	return "no reason given"
}

// requestBlocked reports whether a blocker concerns the whole request.
func (r *resolver) requestBlocked() bool {
	for _, f := range r.plan.Findings {
		if f.Severity == Blocker && f.VM == "" {
			return true
		}
	}
	return false
}

// relocationChecker runs vCenter's CheckRelocate_Task. govmomi's own
// VmProvisioningChecker.CheckRelocate asserts the task's result without checking it and
// panics on a task that ends with none (as vcsim's sometimes does); a check that says
// nothing is an error here, which pre-flight reports as a check that could not run.
type relocationChecker struct{ c *vim25.Client }

// checkAll runs the checks of jobs, checkBatch at a time, and sets each job's result or
// error. A batch's tasks are awaited together, through one property collector: a check
// costs the request that starts it, and its batch a few more (a task awaited alone costs
// five: collector, filter, wait, destroy).
func (rc relocationChecker) checkAll(ctx context.Context, jobs []*checkJob) {
	for len(jobs) > 0 {
		n := min(len(jobs), checkBatch)
		rc.checkBatch(ctx, jobs[:n])
		jobs = jobs[n:]
	}
}

func (rc relocationChecker) checkBatch(ctx context.Context, jobs []*checkJob) {
	checker := object.NewVmProvisioningChecker(rc.c).Reference()
	tasks := make([]types.ManagedObjectReference, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(checkRelocateWorkers)
	for i, j := range jobs {
		g.Go(func() error {
			res, err := methods.CheckRelocate_Task(gctx, rc.c, &types.CheckRelocate_Task{This: checker, Vm: j.vm, Spec: j.spec})
			if err != nil {
				j.err = err
			} else {
				tasks[i] = res.Returnval
			}
			return nil
		})
	}
	_ = g.Wait()
	byTask := map[types.ManagedObjectReference]*checkJob{}
	for i, t := range tasks {
		if t.Value != "" {
			byTask[t] = jobs[i]
		}
	}
	if len(byTask) == 0 {
		return
	}
	// A check that takes no time has ended by the time its task is read: one retrieve of
	// the batch's tasks then saves the four round trips of waiting for them (a collector
	// made, a filter, the wait, the collector destroyed), which against a distant vCenter
	// are most of a pre-flight's time. What has not ended is waited for.
	var infos []mo.Task
	if err := property.DefaultCollector(rc.c).Retrieve(ctx, slices.Collect(maps.Keys(byTask)), []string{"info"}, &infos); err == nil {
		for _, t := range infos {
			if j := byTask[t.Self]; j != nil && j.ended(&t.Info) {
				delete(byTask, t.Self)
			}
		}
	}
	if len(byTask) == 0 {
		return
	}
	filter := &property.WaitFilter{}
	for t := range byTask {
		filter.Add(t, t.Type, []string{"info"})
	}
	err := property.WaitForUpdates(ctx, property.DefaultCollector(rc.c), filter, func(updates []types.ObjectUpdate) bool {
		for _, u := range updates {
			j := byTask[u.Obj]
			if j == nil {
				continue
			}
			var info *types.TaskInfo
			for _, ch := range u.ChangeSet {
				if ti, ok := ch.Val.(types.TaskInfo); ok && ch.Name == "info" && ch.Op == types.PropertyChangeOpAssign {
					info = &ti
				}
			}
			switch {
			case u.Kind == types.ObjectUpdateKindLeave || len(u.MissingSet) > 0:
				j.err = fmt.Errorf("the task of the compatibility check of %s is gone", j.vm.Value)
			case info == nil || !j.ended(info):
				continue
			}
			delete(byTask, u.Obj)
		}
		return len(byTask) == 0
	})
	if err != nil {
		for _, j := range byTask {
			j.err = err
		}
	}
}

// connectedISO is a CD/DVD drive connected to an ISO on a datastore.
type connectedISO struct {
	label, file, datastore string
}

// connectedISOs are vm's CD/DVD drives connected (now, or at power-on of a VM that is off)
// to an ISO on a datastore ("[ds] path").
func connectedISOs(power types.VirtualMachinePowerState, devices object.VirtualDeviceList) []connectedISO {
	off := power == types.VirtualMachinePowerStatePoweredOff
	var out []connectedISO
	for _, d := range devices {
		cd, ok := d.(*types.VirtualCdrom)
		if !ok {
			continue
		}
		b, ok := cd.Backing.(*types.VirtualCdromIsoBackingInfo)
		if !ok {
			continue
		}
		conn := cd.Connectable
		if conn != nil && !conn.Connected && !(conn.StartConnected && !off) {
			continue
		}
		var p object.DatastorePath
		if !p.FromString(b.FileName) || p.Datastore == "" {
			continue // on the host's own disk: checkDevices
		}
		out = append(out, connectedISO{label: deviceLabel(devices, d), file: b.FileName, datastore: p.Datastore})
	}
	return out
}

// checkISOs: vCenter keeps a connected ISO connected only if the target host mounts its
// datastore, and refuses the move of a VM whose connected ISO the target host cannot see
// (docs/vsphere-behaviours.md). With no host chosen, each is a warning. The host's
// datastores are read only when some VM has such an ISO.
func (r *resolver) checkISOs(ctx context.Context, c *vim25.Client, host *mo.HostSystem, srcVMs map[string]*sourceVM) error {
	isos := map[string][]connectedISO{}
	for _, v := range r.plan.VMs {
		if svm := srcVMs[v.Name]; svm != nil {
			if found := connectedISOs(types.VirtualMachinePowerState(v.PowerState), svm.devices); len(found) > 0 {
				isos[v.Name] = found
			}
		}
	}
	if len(isos) == 0 {
		return nil
	}
	mounted := map[string]bool{}
	if host != nil && len(host.Datastore) > 0 {
		var dss []mo.Datastore
		if err := property.DefaultCollector(c).Retrieve(ctx, host.Datastore, []string{"name"}, &dss); err != nil {
			return err
		}
		for _, d := range dss {
			mounted[d.Name] = true
		}
	}
	for _, v := range r.plan.VMs {
		for _, iso := range isos[v.Name] {
			switch {
			case host != nil && !mounted[iso.datastore]:
				r.block(v.Name, fmt.Sprintf("%s of %s is connected to %s, on datastore %s, which target host %s does not mount; vCenter refuses the move",
					iso.label, v.Name, iso.file, iso.datastore, host.Name),
					"disconnect the drive (edit the VM's settings) before the move, or copy the ISO to a datastore the target hosts mount and point the drive at it")
				srcVMs[v.Name].blocked = true
			default:
				r.add(Warning, v.Name, fmt.Sprintf("%s of %s is connected to %s; the target host mounts a datastore named %s, which keeps it connected only if it is the same storage",
					iso.label, v.Name, iso.file, iso.datastore), "disconnect it (edit the VM's settings) before the move if in doubt")
			}
		}
	}
	return nil
}
