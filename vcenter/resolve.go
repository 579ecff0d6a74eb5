package vcenter

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sync/errgroup"
)

// candidateLimit is how many existing names a "not found" finding lists.
const candidateLimit = 8

// Plan resolves spec against both live inventories, read-only. What a person
// typed that cannot be resolved becomes a Blocker finding on the returned
// plan; a Go error means an infrastructure failure (unknown vCenter name,
// vCenter unreachable, login refused, certificate mismatch). An empty Source
// or Target means the home vCenter.
func (m *Manager) Plan(ctx context.Context, spec MoveSpec) (*Plan, error) {
	spec = m.withDefaults(spec)
	src, err := m.conn(spec.Source)
	if err != nil {
		return nil, err
	}
	dst, err := m.conn(spec.Target)
	if err != nil {
		return nil, err
	}

	p := &Plan{Spec: spec, DiskFormat: spec.DiskFormat, ResolvedAt: time.Now(),
		Source: Endpoint{Name: spec.Source, URL: src.url.String(), Home: spec.Source == m.home},
		Target: Endpoint{Name: spec.Target, URL: dst.url.String(), Home: spec.Target == m.home},
	}
	r := &resolver{plan: p, spec: spec, refs: &m.refs}
	r.checkRequest()

	// The source's VMs and the target's placement are read side by side: neither needs the
	// other. What joins them (networks, host choice, collisions, space) comes after.
	var (
		srcVMs         map[string]*sourceVM
		base           *targetBase
		loc            *types.ServiceLocator
		srcErr, dstErr error
		wg             sync.WaitGroup
	)
	rt := r.fork()
	wg.Go(func() {
		srcErr = m.withSession(ctx, spec.Source, func(c *vim25.Client, peer *x509.Certificate) error {
			p.Source = endpointOf(p.Source, c, peer)
			r.checkVersion(p.Source, c.ServiceContent.About.Version)
			var err error
			srcVMs, err = r.resolveSource(ctx, c)
			return err
		})
	})
	wg.Go(func() {
		dstErr = m.withSession(ctx, spec.Target, func(c *vim25.Client, peer *x509.Certificate) error {
			p.Target = endpointOf(p.Target, c, peer)
			rt.checkVersion(p.Target, c.ServiceContent.About.Version)
			loc = serviceLocator(dst.cfg, dst.url, c.ServiceContent.About.InstanceUuid, peer)
			var err error
			base, err = rt.resolveTargetBase(ctx, c)
			return err
		})
	})
	wg.Wait()
	if srcErr != nil {
		return nil, m.scrub(classify(srcErr, spec.Source, "", "", StepResolve))
	}
	if dstErr != nil {
		return nil, m.scrub(classify(dstErr, spec.Target, "", "", StepResolve))
	}
	r.join(rt)
	if base != nil {
		err = m.withSession(ctx, spec.Target, func(c *vim25.Client, _ *x509.Certificate) error {
			return r.resolveTarget(ctx, c, base, srcVMs)
		})
		if err != nil {
			return nil, m.scrub(classify(err, spec.Target, "", "", StepResolve))
		}
	}
	if p.Source.InstanceUUID != "" && strings.EqualFold(p.Source.InstanceUUID, p.Target.InstanceUUID) {
		r.block("", fmt.Sprintf("%s and %s are the same vCenter (instance %s)", spec.Source, spec.Target, p.Source.InstanceUUID),
			"cross vCenter vMotion needs two different vCenters; check the vcenters configuration")
	}
	// vCenter's own check of the exact spec comes last: it needs the full
	// placement, and is pointless for a request already blocked.
	err = m.withSession(ctx, spec.Source, func(c *vim25.Client, _ *x509.Certificate) error {
		r.checkRelocate(ctx, c, srcVMs, loc)
		return nil
	})
	if err != nil {
		return nil, m.scrub(classify(err, spec.Source, "", "", StepResolve))
	}
	for i := range p.Findings {
		// vCenter's messages may echo the spec, locator credentials included.
		p.Findings[i].Message = m.scrubString(p.Findings[i].Message)
		p.Findings[i].Hint = m.scrubString(p.Findings[i].Hint)
	}
	m.remember(p)
	m.log.Debug("plan resolved", "src_vc", spec.Source, "dst_vc", spec.Target, "vms", len(spec.VMs),
		"host", p.Host, "datastore", p.Datastore, "blocked", p.Blocked())
	return p, nil
}

// withDefaults fills what a spec may leave out: the home vCenter on either side, and
// the source's disk format.
func (m *Manager) withDefaults(s MoveSpec) MoveSpec {
	if s.Source == "" {
		s.Source = m.home
	}
	if s.Target == "" {
		s.Target = m.home
	}
	if s.DiskFormat == "" {
		s.DiskFormat = DiskSame
	}
	return s
}

// resolver accumulates findings while resolving one plan.
type resolver struct {
	plan *Plan
	spec MoveSpec
	refs *vmRefs // VMs found by name, for later lookups of the same VMs
	// own, when set, collects this resolver's findings apart from the plan's, so that two
	// resolvers of one plan can work side by side (fork, join).
	own *[]Finding
	// unlike are the plan's other hosts that differ from the planned one in CPU model or
	// ESXi build: vCenter's compatibility check may judge them otherwise, so they are
	// checked too.
	unlike []string
}

func (r *resolver) add(sev Severity, vm, msg, hint string) {
	f := Finding{Severity: sev, VM: vm, Message: msg, Hint: hint}
	if r.own != nil {
		*r.own = append(*r.own, f)
		return
	}
	r.plan.Findings = append(r.plan.Findings, f)
}

// fork returns a resolver of the same plan whose findings are kept apart until join.
func (r *resolver) fork() *resolver {
	return &resolver{plan: r.plan, spec: r.spec, refs: r.refs, own: new([]Finding)}
}

// join adds a fork's findings after r's own.
func (r *resolver) join(f *resolver) {
	r.plan.Findings = append(r.plan.Findings, *f.own...)
	*f.own = nil
}

func (r *resolver) block(vm, msg, hint string) { r.add(Blocker, vm, msg, hint) }

// checkRequest checks what needs no vCenter.
func (r *resolver) checkRequest() {
	s := r.spec
	if len(s.VMs) == 0 {
		r.block("", "no VM named in the request", "name one or more VMs")
	}
	if s.Source == s.Target {
		r.block("", fmt.Sprintf("source and target are both %s", s.Source),
			"cross vCenter vMotion moves VMs between two vCenters; name the other one")
	}
	switch s.DiskFormat {
	case DiskSame, DiskThin, DiskThick, DiskEager:
	default:
		r.block("", fmt.Sprintf("unknown disk format %q", s.DiskFormat), "use same, thin, thick or eager")
	}
	switch s.Priority {
	case "", "default", "high":
	default:
		r.block("", fmt.Sprintf("unknown priority %q", s.Priority), "use default or high")
	}
	seen := map[string]bool{}
	for _, vm := range s.VMs {
		if seen[vm] && !isPattern(vm) {
			r.add(Warning, vm, fmt.Sprintf("%s is named twice in the request; it will be moved once", vm),
				"check that you did not mean another VM in its place; if not, there is nothing to do")
		}
		seen[vm] = true
	}
}

// sourceVM is one VM as read from the source vCenter.
type sourceVM struct {
	plan    *vmPlan
	view    VM
	devices object.VirtualDeviceList
	nics    []types.BaseVirtualDevice
	used    map[int32]int64 // bytes in use on the datastore, by disk key
	// swap and suspend are the bytes the VM's memory takes on the target datastore
	// besides its disks (see memoryFiles).
	swap, suspend int64
	blocked       bool // a finding already rules this VM out
}

var vmProps = []string{"name", "config.hardware", "config.template", "config.memoryAllocation", "config.memoryReservationLockedToMax",
	"runtime.powerState", "runtime.host", "snapshot", "network", "layoutEx.disk", "layoutEx.file"}

// resolveSource finds the requested VMs in the source and reads them, in a
// fixed number of round trips however many VMs are asked for: one listing of
// every VM's name, one retrieve of the chosen VMs' properties, one or two for
// their networks, one for the hosts they run on.
func (r *resolver) resolveSource(ctx context.Context, c *vim25.Client) (map[string]*sourceVM, error) {
	if len(uniq(r.spec.VMs)) == 0 {
		return nil, nil
	}
	all, err := listNames(ctx, c, c.ServiceContent.RootFolder, "VirtualMachine")
	if err != nil {
		return nil, err
	}
	names := r.expandVMs(all)
	index := make(map[string][]named, len(all))
	for _, n := range all {
		index[n.Name] = append(index[n.Name], n)
	}
	var refs []types.ManagedObjectReference
	for _, name := range names {
		found := index[name]
		switch len(found) {
		case 0:
			r.block(name, fmt.Sprintf("VM %s not found in %s (VMs with similar names: %s)", name, r.spec.Source,
				nameList(similar(all, name), candidateLimit)), "check the VM name, and that it lives in "+r.spec.Source)
		case 1:
			refs = append(refs, found[0].Ref)
			r.refs.put(r.spec.Source, name, found[0].Ref)
		default:
			r.block(name, fmt.Sprintf("%d VMs are named %s in %s", len(found), name, r.spec.Source),
				"rename one of them so the request names exactly one VM")
		}
	}
	out := make(map[string]*sourceVM)
	if len(refs) == 0 {
		return out, nil
	}
	var vms []mo.VirtualMachine
	if err := property.DefaultCollector(c).Retrieve(ctx, refs, vmProps, &vms); err != nil {
		return nil, err
	}
	var netRefs []types.ManagedObjectReference
	for _, vm := range vms {
		netRefs = append(netRefs, vm.Network...)
	}
	// The VMs' networks and hosts do not depend on each other: read side by side.
	var (
		nets  map[types.ManagedObjectReference]netInfo
		hosts map[types.ManagedObjectReference]*mo.HostSystem
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		nets, err = networks(gctx, c, uniqRefs(netRefs))
		return err
	})
	g.Go(func() (err error) {
		hosts, err = sourceHosts(gctx, c, vms)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range vms {
		svm := r.sourceVM(&vms[i], nets)
		r.checkSourceHost(&vms[i], svm, hosts)
		out[svm.view.Name] = svm
	}
	// Keep the request's order on the review page.
	for _, name := range names {
		if svm, ok := out[name]; ok {
			r.plan.VMs = append(r.plan.VMs, svm.view)
		}
	}
	return out, nil
}

func (r *resolver) sourceVM(vm *mo.VirtualMachine, nets map[types.ManagedObjectReference]netInfo) *sourceVM {
	svm := &sourceVM{plan: &vmPlan{ref: vm.Self}}
	svm.view = VM{Name: vm.Name, Ref: vm.Self.Value, PowerState: string(vm.Runtime.PowerState)}
	if vm.Config == nil {
		r.block(vm.Name, fmt.Sprintf("the configuration of %s cannot be read", vm.Name),
			"check that the VM is not orphaned or inaccessible, and that the service account may read it")
		return svm
	}
	hw := vm.Config.Hardware
	svm.view.CPUs, svm.view.MemoryMB = int(hw.NumCPU), int(hw.MemoryMB)
	svm.devices = object.VirtualDeviceList(hw.Device)
	var capacityKB int64
	for _, d := range svm.devices.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		svm.plan.disks = append(svm.plan.disks, disk)
		capacityKB += disk.CapacityInKB
	}
	svm.view.DiskGB = float64(capacityKB) / (1 << 20)
	svm.used = diskUsage(vm.LayoutEx)
	svm.swap, svm.suspend = memoryFiles(vm)
	for _, d := range svm.devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
		svm.nics = append(svm.nics, d)
		svm.view.NICs = append(svm.view.NICs, NIC{
			Label:   deviceLabel(svm.devices, d),
			Network: sourceNetworkName(d, nets),
			MAC:     d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard().MacAddress,
		})
	}
	if vm.Config.Template {
		r.block(vm.Name, fmt.Sprintf("%s is a template", vm.Name), "convert it to a VM first, or move it with the content library")
		svm.blocked = true
	}
	if r.checkDevices(vm.Name, vm.Runtime.PowerState, svm.devices) {
		svm.blocked = true
	}
	switch vm.Runtime.PowerState {
	case types.VirtualMachinePowerStatePoweredOn:
	case types.VirtualMachinePowerStateSuspended:
		r.add(Warning, vm.Name, fmt.Sprintf("%s is suspended; it moves with its suspended state and stays suspended in %s",
			vm.Name, r.spec.Target), "resume it and shut it down cleanly first if the target hosts' CPUs differ from the source's")
	default:
		r.add(OK, vm.Name, fmt.Sprintf("%s is %s and will be moved powered off", vm.Name, powerWords(vm.Runtime.PowerState)), "")
	}
	if vm.Snapshot != nil && len(vm.Snapshot.RootSnapshotList) > 0 {
		r.add(Warning, vm.Name, fmt.Sprintf("%s has snapshots; they move with it and make the move slower", vm.Name),
			"consolidate or delete snapshots that are no longer needed")
	}
	return svm
}

// sourceHosts reads the name and ESXi version of every host the VMs run on.
func sourceHosts(ctx context.Context, c *vim25.Client, vms []mo.VirtualMachine) (map[types.ManagedObjectReference]*mo.HostSystem, error) {
	var refs []types.ManagedObjectReference
	for _, vm := range vms {
		if vm.Runtime.Host != nil {
			refs = append(refs, *vm.Runtime.Host)
		}
	}
	out := map[types.ManagedObjectReference]*mo.HostSystem{}
	if len(refs) == 0 {
		return out, nil
	}
	var hosts []mo.HostSystem
	if err := property.DefaultCollector(c).Retrieve(ctx, uniqRefs(refs), []string{"name", "summary.config.product"}, &hosts); err != nil {
		return nil, err
	}
	for i := range hosts {
		out[hosts[i].Self] = &hosts[i]
	}
	return out, nil
}

// checkSourceHost blocks a VM whose host runs ESXi older than 6.5: cross vCenter
// vMotion needs 6.5 or later on the hosts of both sides, not only on the vCenters.
func (r *resolver) checkSourceHost(vm *mo.VirtualMachine, svm *sourceVM, hosts map[types.ManagedObjectReference]*mo.HostSystem) {
	if vm.Runtime.Host == nil {
		return
	}
	h := hosts[*vm.Runtime.Host]
	if h == nil || !tooOld(hostVersion(h)) {
		return
	}
	r.block(vm.Name, fmt.Sprintf("%s runs on %s, which runs ESXi %s; cross vCenter vMotion needs ESXi 6.5 or later on the source host too",
		vm.Name, h.Name, hostVersion(h)),
		fmt.Sprintf("move %s to a host with ESXi 6.5 or later in %s first, or upgrade %s", vm.Name, r.spec.Source, h.Name))
	svm.blocked = true
}

// deviceLabel is the label the vSphere Client shows ("Network adapter 1").
func deviceLabel(l object.VirtualDeviceList, d types.BaseVirtualDevice) string {
	if di := d.GetVirtualDevice().DeviceInfo; di != nil && di.GetDescription() != nil && di.GetDescription().Label != "" {
		return di.GetDescription().Label
	}
	return l.Name(d)
}

func powerWords(s types.VirtualMachinePowerState) string {
	switch s {
	case types.VirtualMachinePowerStatePoweredOff:
		return "powered off"
	case types.VirtualMachinePowerStateSuspended:
		return "suspended"
	}
	return string(s)
}

// sourceNetworkName is the name of the portgroup a NIC is on, as people know it.
func sourceNetworkName(d types.BaseVirtualDevice, nets map[types.ManagedObjectReference]netInfo) string {
	switch b := d.GetVirtualDevice().Backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.Network != nil {
			if n, ok := nets[*b.Network]; ok {
				return n.Name
			}
		}
		return b.DeviceName
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		for _, n := range nets {
			if n.Key != "" && n.Key == b.Port.PortgroupKey {
				return n.Name
			}
		}
		return b.Port.PortgroupKey
	case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
		// NSX networks are known by id here; a network map can name it.
		return b.OpaqueNetworkId
	}
	return ""
}

// compute is the target compute resource and its hosts.
type compute struct {
	name     string // cluster name, or the host's name for a standalone host
	ref      types.ManagedObjectReference
	rootPool types.ManagedObjectReference
	hosts    []mo.HostSystem
}

var hostProps = []string{"name", "parent", "runtime.connectionState", "runtime.inMaintenanceMode", "summary.config.product",
	"summary.hardware.cpuModel", "datastore", "network", "vm"}

// targetBase is what the target side of a plan reads without knowing the source's VMs:
// the compute resource, datastore, networks, pool and folder named in the spec.
type targetBase struct {
	cr     *compute
	ds     *types.ManagedObjectReference
	disks  map[int]diskTarget // disks placed apart (spec.Disks), when all resolved
	nets   map[types.ManagedObjectReference]netInfo
	pool   *types.ManagedObjectReference
	folder *types.ManagedObjectReference
}

// resolveTargetBase reads the target's side of the spec. A nil base without error means
// there is no compute resource to place the VMs on (a blocker says why).
func (r *resolver) resolveTargetBase(ctx context.Context, c *vim25.Client) (*targetBase, error) {
	cr, err := r.resolveCompute(ctx, c)
	if err != nil || cr == nil {
		return nil, err
	}
	dc, err := datacenterOf(ctx, c, cr.ref)
	if err != nil {
		return nil, err
	}
	b := &targetBase{cr: cr}
	if b.ds, b.disks, err = r.resolveDatastores(ctx, c, dc, cr); err != nil {
		return nil, err
	}
	if b.nets, err = r.targetNetworks(ctx, c, cr); err != nil {
		return nil, err
	}
	if b.pool, err = r.resolvePool(ctx, c, cr); err != nil {
		return nil, err
	}
	if b.folder, err = r.resolveFolder(ctx, c, dc); err != nil {
		return nil, err
	}
	return b, nil
}

// resolveTarget joins the source's VMs to the target's base: their networks, the host,
// name collisions, free space, and the device backings the relocation will use.
func (r *resolver) resolveTarget(ctx context.Context, c *vim25.Client, b *targetBase, srcVMs map[string]*sourceVM) error {
	cr, ds, nets, pool, folder := b.cr, b.ds, b.nets, b.pool, b.folder
	wanted := r.mapNetworks(srcVMs, nets)
	r.checkSwitchKinds(srcVMs, nets)
	r.checkDiskNumbers(srcVMs)
	var stores []namedRef // every datastore the VMs' files go to, for the host to see
	if ds != nil {
		stores = append(stores, namedRef{*ds, r.plan.Datastore})
	}
	for _, n := range slices.Sorted(mapsKeys(b.disks)) {
		if t := b.disks[n]; t.ds.Value != "" && !slices.ContainsFunc(stores, func(s namedRef) bool { return s.ref == t.ds }) {
			stores = append(stores, namedRef{t.ds, t.name})
		}
	}
	host := r.pickHost(cr, stores, wanted, nets)

	if err := r.checkCollisions(ctx, c, folder); err != nil {
		return err
	}
	if ds != nil {
		if err := r.checkSpace(ctx, c, *ds, b.disks, srcVMs); err != nil {
			return err
		}
	}
	if host == nil || ds == nil || pool == nil || folder == nil || b.disks == nil {
		return nil
	}
	pl := &placement{Host: host.Self, Pool: *pool, Datastore: *ds, Folder: *folder, Disks: b.disks}

	// Backings are read now so that Relocate's spec building is pure.
	backings := map[string]types.BaseVirtualDeviceBackingInfo{}
	hostNets := hostNetworks(*host, nets)
	for _, name := range slices.Sorted(mapsKeys(wanted)) {
		matches := hostNets[name]
		if len(matches) != 1 {
			continue // reported by pickHost / mapNetworks
		}
		b, err := backing(ctx, c, matches[0])
		if err != nil {
			return err
		}
		backings[name] = b
	}

	r.plan.placement = pl
	r.plan.vms = make(map[string]*vmPlan, len(srcVMs))
	for i, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		vp := &vmPlan{ref: svm.plan.ref, disks: svm.plan.disks}
		complete := true
		for j, d := range svm.nics {
			b, ok := backings[v.NICs[j].Target]
			if !ok {
				complete = false
				continue
			}
			vp.nics = append(vp.nics, nicPlan{device: d, backing: b})
		}
		r.plan.VMs[i] = v
		if complete {
			r.plan.vms[v.Name] = vp
		}
	}
	return nil
}

func (r *resolver) resolveCompute(ctx context.Context, c *vim25.Client) (*compute, error) {
	s := r.spec
	root := c.ServiceContent.RootFolder
	pc := property.DefaultCollector(c)
	cr := &compute{}
	if s.Cluster == "" && s.Host == "" {
		clusters, err := listNames(ctx, c, root, "ClusterComputeResource")
		if err != nil {
			return nil, err
		}
		r.block("", fmt.Sprintf("no cluster or host given for %s (clusters: %s)", s.Target, candidates(clusters, candidateLimit)),
			"add cluster=<name> or host=<name>")
		return nil, nil
	}
	if s.Cluster != "" {
		clusters, err := listNames(ctx, c, root, "ClusterComputeResource")
		if err != nil {
			return nil, err
		}
		found := byName(clusters, s.Cluster)
		switch len(found) {
		case 0:
			r.block("", fmt.Sprintf("cluster %s not found in %s (clusters: %s)", s.Cluster, s.Target, candidates(clusters, candidateLimit)),
				"check the cluster name")
			return nil, nil
		case 1:
		default:
			r.block("", fmt.Sprintf("%d clusters are named %s in %s", len(found), s.Cluster, s.Target), "name a host instead")
			return nil, nil
		}
		var cl mo.ClusterComputeResource
		if err := pc.RetrieveOne(ctx, found[0].Ref, []string{"name", "host", "resourcePool"}, &cl); err != nil {
			return nil, err
		}
		cr.name, cr.ref = cl.Name, cl.Self
		if cl.ResourcePool != nil {
			cr.rootPool = *cl.ResourcePool
		}
		if len(cl.Host) > 0 {
			if err := pc.Retrieve(ctx, cl.Host, hostProps, &cr.hosts); err != nil {
				return nil, err
			}
		}
		r.plan.Cluster = cl.Name
	}
	if s.Host != "" {
		scope := root
		if s.Cluster != "" {
			scope = cr.ref
		}
		hosts, err := listNames(ctx, c, scope, "HostSystem")
		if err != nil {
			return nil, err
		}
		found := byName(hosts, s.Host)
		if len(found) != 1 {
			where := s.Target
			if s.Cluster != "" {
				where = "cluster " + s.Cluster
			}
			r.block("", fmt.Sprintf("host %s not found in %s (hosts: %s)", s.Host, where, candidates(hosts, candidateLimit)),
				"check the host name (as shown in the vSphere Client)")
			return nil, nil
		}
		var h mo.HostSystem
		if err := pc.RetrieveOne(ctx, found[0].Ref, hostProps, &h); err != nil {
			return nil, err
		}
		cr.hosts = []mo.HostSystem{h}
		if s.Cluster == "" && h.Parent != nil {
			var parent mo.ComputeResource
			if err := pc.RetrieveOne(ctx, *h.Parent, []string{"name", "resourcePool"}, &parent); err != nil {
				return nil, err
			}
			cr.name, cr.ref = parent.Name, parent.Self
			if parent.ResourcePool != nil {
				cr.rootPool = *parent.ResourcePool
			}
			if parent.Self.Type == "ClusterComputeResource" {
				r.plan.Cluster = parent.Name
			}
		}
	}
	if len(cr.hosts) == 0 {
		r.block("", fmt.Sprintf("cluster %s has no hosts", cr.name), "choose another cluster")
		return nil, nil
	}
	return cr, nil
}

// namedRef is a managed object and its name as the spec gave it.
type namedRef struct {
	ref  types.ManagedObjectReference
	name string
}

// resolveDatastores finds the spec's datastore and those of its disks placed apart
// (diskN=), among the datastores the compute resource's hosts see. disks is nil when
// one of those could not be resolved (a blocker says why), else it holds every disk
// placed apart, by number.
func (r *resolver) resolveDatastores(ctx context.Context, c *vim25.Client, dc mo.Datacenter, cr *compute) (*types.ManagedObjectReference, map[int]diskTarget, error) {
	listed, err := listNames(ctx, c, dc.Self, "Datastore", "StoragePod")
	if err != nil {
		return nil, nil, err
	}
	var all, pods []named
	for _, n := range listed {
		if n.Ref.Type == "StoragePod" {
			pods = append(pods, n)
		} else {
			all = append(all, n)
		}
	}
	visible := map[types.ManagedObjectReference]bool{}
	for _, h := range cr.hosts {
		for _, d := range h.Datastore {
			visible[d] = true
		}
	}
	var seen []named
	for _, d := range all {
		if visible[d.Ref] {
			seen = append(seen, d)
		}
	}
	// find resolves one datastore or datastore cluster name to a datastore and its name;
	// option is the diskN= that named it, "" for the spec's datastore, for the messages.
	find := func(name, option string) (*types.ManagedObjectReference, string, error) {
		what := "datastore " + name
		if option != "" {
			what += " (" + option + "=)"
		}
		found := byName(seen, name)
		if pod := byName(pods, name); len(found) == 0 && len(pod) == 1 {
			return r.fromDatastoreCluster(ctx, c, pod[0], seen, cr)
		}
		switch {
		case len(found) == 1:
			return &found[0].Ref, name, nil
		case len(found) > 1:
			r.block("", fmt.Sprintf("%d datastores are named %s", len(found), name), "rename one of them")
		case len(byName(all, name)) > 0:
			r.block("", fmt.Sprintf("%s exists in %s but no host of %s sees it (datastores seen: %s)",
				what, dc.Name, cr.name, candidates(seen, candidateLimit)), "choose a datastore mounted on the target hosts")
		default:
			r.block("", fmt.Sprintf("%s not found in %s (datastores seen by %s: %s)",
				what, r.spec.Target, cr.name, candidates(seen, candidateLimit)), "check the datastore name")
		}
		return nil, "", nil
	}
	var main *types.ManagedObjectReference
	if name := r.spec.Datastore; name == "" {
		r.block("", fmt.Sprintf("no datastore given (datastores seen by %s: %s)", cr.name, candidates(seen, candidateLimit)),
			"add datastore=<name>")
	} else {
		var chosen string
		if main, chosen, err = find(name, ""); err != nil {
			return nil, nil, err
		}
		if main != nil {
			r.plan.Datastore = chosen
		}
	}
	disks := map[int]diskTarget{}
	if !r.diskNumbersValid() {
		return main, nil, nil
	}
	for _, d := range r.spec.Disks {
		t := diskTarget{format: d.Format}
		if d.Datastore != "" {
			ref, chosen, err := find(d.Datastore, fmt.Sprintf("disk%d", d.Disk))
			if err != nil {
				return nil, nil, err
			}
			if ref == nil {
				disks = nil
				continue
			}
			t.ds, t.name = *ref, chosen
		}
		if disks != nil {
			disks[d.Disk] = t
		}
	}
	return main, disks, nil
}

// fromDatastoreCluster picks the datastore a move into datastore cluster pod goes to, as
// the wizard's "datastore cluster" choice does when Storage DRS is not asked: of the
// cluster's datastores the target hosts see, accessible and not in maintenance, the one
// with the most free space. The review says which and why.
func (r *resolver) fromDatastoreCluster(ctx context.Context, c *vim25.Client, pod named, seen []named, cr *compute) (*types.ManagedObjectReference, string, error) {
	var members []types.ManagedObjectReference
	for _, d := range seen {
		if d.Parent == pod.Ref {
			members = append(members, d.Ref)
		}
	}
	var stores []mo.Datastore
	if len(members) > 0 {
		if err := property.DefaultCollector(c).Retrieve(ctx, members, []string{"name", "summary"}, &stores); err != nil {
			return nil, "", err
		}
	}
	var best *mo.Datastore
	for i := range stores {
		s := &stores[i]
		if !s.Summary.Accessible || s.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateInMaintenance) ||
			s.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateEnteringMaintenance) {
			continue
		}
		if best == nil || s.Summary.FreeSpace > best.Summary.FreeSpace ||
			(s.Summary.FreeSpace == best.Summary.FreeSpace && s.Name < best.Name) {
			best = s
		}
	}
	if best == nil {
		r.block("", fmt.Sprintf("datastore cluster %s has no datastore that the hosts of %s see, accessible and out of maintenance", pod.Name, cr.name),
			"choose another datastore or datastore cluster, or mount one of its datastores on the target hosts")
		return nil, "", nil
	}
	r.add(OK, "", fmt.Sprintf("datastore cluster %s: %s is used, its datastore with the most free space (%s) that the hosts of %s see",
		pod.Name, best.Name, gib(best.Summary.FreeSpace), cr.name), "")
	ref := best.Self
	return &ref, best.Name, nil
}

// targetNetworks reads every network any candidate host sees.
func (r *resolver) targetNetworks(ctx context.Context, c *vim25.Client, cr *compute) (map[types.ManagedObjectReference]netInfo, error) {
	var refs []types.ManagedObjectReference
	for _, h := range cr.hosts {
		refs = append(refs, h.Network...)
	}
	return networks(ctx, c, uniqRefs(refs))
}

// mapNetworks decides the target portgroup name of every NIC, and returns the
// set of names wanted. The rules, in order: an entry whose Source is the NIC's
// portgroup; an entry with an empty Source; a portgroup of the same name.
func (r *resolver) mapNetworks(srcVMs map[string]*sourceVM, nets map[types.ManagedObjectReference]netInfo) map[string]bool {
	exists := map[string]bool{}
	var names []string
	for _, n := range nets {
		if !exists[n.Name] {
			names = append(names, n.Name)
		}
		exists[n.Name] = true
	}
	used := map[string]bool{}
	wanted := map[string]bool{}
	for i, v := range r.plan.VMs {
		for j, nic := range v.NICs {
			target, how := "", ""
			for _, rule := range r.spec.Networks {
				if rule.Source != "" && rule.Source == nic.Network {
					target, how = rule.Target, "mapped"
					used[rule.Source] = true
					break
				}
			}
			if target == "" {
				for _, rule := range r.spec.Networks {
					if rule.Source == "" {
						target, how = rule.Target, "default"
						break
					}
				}
			}
			if target == "" && exists[nic.Network] {
				target, how = nic.Network, "same-name"
			}
			switch {
			case target == "":
				r.block(v.Name, fmt.Sprintf("%s of %s is on %s, which has no portgroup in %s (portgroups there: %s)",
					nic.Label, v.Name, nic.Network, r.spec.Target, nameList(names, candidateLimit)),
					fmt.Sprintf("add network=%s:<portgroup>", quoteIfSpace(nic.Network)))
			case !exists[target]:
				r.block(v.Name, fmt.Sprintf("portgroup %s not found in %s for %s of %s (portgroups seen by the target hosts: %s)",
					target, r.spec.Target, nic.Label, v.Name, nameList(names, candidateLimit)), "check the network mapping")
			default:
				wanted[target] = true
				if how == "same-name" {
					r.add(OK, v.Name, fmt.Sprintf("%s of %s stays on a portgroup named %s in %s (no mapping given)",
						nic.Label, v.Name, target, r.spec.Target), "")
				}
			}
			r.plan.VMs[i].NICs[j].Target = target
		}
	}
	for _, rule := range r.spec.Networks {
		if rule.Source != "" && !used[rule.Source] {
			r.add(Warning, "", fmt.Sprintf("network mapping %s:%s matches no NIC of the VMs", rule.Source, rule.Target),
				"check the source portgroup name")
		}
	}
	return wanted
}

// hostNetworks indexes the networks a host sees by name.
func hostNetworks(h mo.HostSystem, nets map[types.ManagedObjectReference]netInfo) map[string][]netInfo {
	out := map[string][]netInfo{}
	for _, ref := range h.Network {
		if n, ok := nets[ref]; ok {
			out[n.Name] = append(out[n.Name], n)
		}
	}
	return out
}

// pickHost chooses, among the candidate hosts, one that is connected, not in
// maintenance mode, runs ESXi 6.5 or later, sees the datastore and every wanted
// portgroup, and runs the fewest VMs, so successive plans spread over the
// cluster. The other hosts that qualify (on the same networks) become the
// plan's OtherHosts.
func (r *resolver) pickHost(cr *compute, stores []namedRef, wanted map[string]bool, nets map[types.ManagedObjectReference]netInfo) *mo.HostSystem {
	var best *mo.HostSystem
	var eligible []*mo.HostSystem
	var reasons []string
	// fixes says, once each and in this order, what would make a refused host fit.
	var fixes []string
	fix := func(f string) {
		if !slices.Contains(fixes, f) {
			fixes = append(fixes, f)
		}
	}
	for i := range cr.hosts {
		h := &cr.hosts[i]
		var why []string
		if h.Runtime.ConnectionState != types.HostSystemConnectionStateConnected {
			why = append(why, "is "+connectionWords(h.Runtime.ConnectionState))
			fix("reconnect it in the vSphere Client")
		}
		if h.Runtime.InMaintenanceMode {
			why = append(why, "is in maintenance mode")
			fix("take it out of maintenance mode")
		}
		if v := hostVersion(h); tooOld(v) {
			why = append(why, fmt.Sprintf("runs ESXi %s (cross vCenter vMotion needs 6.5 or later)", v))
			fix("upgrade it to ESXi 6.5 or later")
		}
		for _, ds := range stores {
			if !slices.Contains(h.Datastore, ds.ref) {
				why = append(why, "does not see datastore "+ds.name)
				fix("mount datastore " + ds.name + " on it")
			}
		}
		hn := hostNetworks(*h, nets)
		for _, name := range slices.Sorted(mapsKeys(wanted)) {
			switch len(hn[name]) {
			case 0:
				why = append(why, "does not see portgroup "+name)
				fix("add it to the switch of portgroup " + name)
			case 1:
			default:
				why = append(why, fmt.Sprintf("sees %d portgroups named %s", len(hn[name]), name))
				fix("rename the extra portgroups named " + name)
			}
		}
		if len(why) > 0 {
			reasons = append(reasons, h.Name+" "+strings.Join(why, " and "))
			continue
		}
		eligible = append(eligible, h)
	}
	slices.SortFunc(eligible, func(a, b *mo.HostSystem) int {
		return cmp.Or(cmp.Compare(len(a.Vm), len(b.Vm)), cmp.Compare(a.Name, b.Name))
	})
	if len(eligible) > 0 {
		best = eligible[0]
		r.plan.others = map[string]types.ManagedObjectReference{}
		for _, h := range eligible[1:] {
			if sameNetworks(hostNetworks(*best, nets), hostNetworks(*h, nets), wanted) {
				r.plan.OtherHosts = append(r.plan.OtherHosts, h.Name)
				r.plan.others[h.Name] = h.Self
				if hostKind(h) != hostKind(best) {
					r.unlike = append(r.unlike, h.Name)
				}
			}
		}
	}
	if best == nil {
		sort.Strings(reasons)
		if len(reasons) > 4 {
			reasons = append(reasons[:4], fmt.Sprintf("%d more", len(reasons)-4))
		}
		what, hint := "host "+r.spec.Host, "choose another host or cluster, or fix the host: "
		if r.spec.Host == "" {
			what, hint = "no host of cluster "+cr.name+" can take the VMs", "choose another host or cluster, or fix a host: "
		}
		r.block("", fmt.Sprintf("%s: %s", what, strings.Join(reasons, "; ")), hint+strings.Join(fixes, ", "))
		return nil
	}
	r.plan.Host = best.Name
	return best
}

// connectionWords is a host connection state as people say it.
func connectionWords(s types.HostSystemConnectionState) string {
	if s == types.HostSystemConnectionStateNotResponding {
		return "not responding"
	}
	return string(s)
}

// hostVersion is the ESXi version a host reports, "" when it reports none (a host
// vCenter lost touch with may not).
// hostKind is what decides how vCenter's compatibility check judges a host for a VM
// (beyond the storage and networks the plan already matched): its CPU and its ESXi build.
func hostKind(h *mo.HostSystem) string {
	kind := ""
	if hw := h.Summary.Hardware; hw != nil {
		kind = hw.CpuModel
	}
	if p := h.Summary.Config.Product; p != nil {
		kind += "|" + p.Build
	}
	return kind
}

func hostVersion(h *mo.HostSystem) string {
	if p := h.Summary.Config.Product; p != nil {
		return p.Version
	}
	return ""
}

// tooOld reports whether an ESXi or vCenter version is below 6.5, the oldest that
// does cross vCenter vMotion. A version that cannot be read is not judged here.
func tooOld(version string) bool {
	major, minor, ok := parseVersion(version)
	return ok && (major < minMajor || (major == minMajor && minor < minMinor))
}

// sameNetworks reports whether two hosts see every wanted portgroup as the same network
// object, so that NIC backings resolved for one are right for the other.
func sameNetworks(a, b map[string][]netInfo, wanted map[string]bool) bool {
	for name := range wanted {
		if len(a[name]) != 1 || len(b[name]) != 1 || a[name][0].Ref != b[name][0].Ref {
			return false
		}
	}
	return true
}

func (r *resolver) resolvePool(ctx context.Context, c *vim25.Client, cr *compute) (*types.ManagedObjectReference, error) {
	if cr.rootPool.Value == "" {
		r.block("", fmt.Sprintf("%s has no resource pool", cr.name), "check the compute resource in the vSphere Client")
		return nil, nil
	}
	if r.spec.Pool == "" {
		r.plan.Pool = "Resources"
		return &cr.rootPool, nil
	}
	pools, err := listNames(ctx, c, cr.rootPool, "ResourcePool")
	if err != nil {
		return nil, err
	}
	found := byName(pools, r.spec.Pool)
	switch len(found) {
	case 0:
		if r.spec.Pool == "Resources" {
			// The root pool, by the name the vSphere Client and the review show for it
			// (and that Where records, so that undo returns a VM there).
			r.plan.Pool = "Resources"
			return &cr.rootPool, nil
		}
		r.block("", fmt.Sprintf("resource pool %s not found in %s (pools: %s)", r.spec.Pool, cr.name, candidates(pools, candidateLimit)),
			"check the pool name, or leave it out to use the cluster's root pool")
	case 1:
		r.plan.Pool = r.spec.Pool
		return &found[0].Ref, nil
	default:
		r.block("", fmt.Sprintf("%d resource pools are named %s in %s", len(found), r.spec.Pool, cr.name), "rename one of them")
	}
	return nil, nil
}

// resolveFolder walks the folder path under the datacenter's VM folder one
// level at a time, so a miss can say which level and what is there instead.
func (r *resolver) resolveFolder(ctx context.Context, c *vim25.Client, dc mo.Datacenter) (*types.ManagedObjectReference, error) {
	cur := dc.VmFolder
	p := strings.Trim(path.Clean("/"+r.spec.Folder), "/")
	if p == "" || p == "." {
		r.plan.Folder = "/"
		return &cur, nil
	}
	pc := property.DefaultCollector(c)
	walked := ""
	for _, seg := range strings.Split(p, "/") {
		var f mo.Folder
		if err := pc.RetrieveOne(ctx, cur, []string{"childEntity"}, &f); err != nil {
			return nil, err
		}
		var subs []types.ManagedObjectReference
		for _, ch := range f.ChildEntity {
			if ch.Type == "Folder" {
				subs = append(subs, ch)
			}
		}
		var children []mo.Folder
		if len(subs) > 0 {
			if err := pc.Retrieve(ctx, subs, []string{"name"}, &children); err != nil {
				return nil, err
			}
		}
		var next *types.ManagedObjectReference
		var names []string
		for _, ch := range children {
			names = append(names, ch.Name)
			if ch.Name == seg {
				next = &ch.Self
			}
		}
		if next == nil {
			where := "the VM folder root"
			if walked != "" {
				where = "folder " + walked
			}
			r.block("", fmt.Sprintf("folder %s not found in %s of %s (folders in %s: %s)",
				r.spec.Folder, dc.Name, r.spec.Target, where, nameList(names, candidateLimit)),
				"check the folder path, e.g. folder=parent/child, relative to the datacenter's VM folder")
			return nil, nil
		}
		walked = path.Join(walked, seg)
		cur = *next
	}
	r.plan.Folder = p
	return &cur, nil
}

// checkCollisions: vCenter refuses a second VM of the same name in one
// folder; elsewhere it is allowed but confuses people.
func (r *resolver) checkCollisions(ctx context.Context, c *vim25.Client, folder *types.ManagedObjectReference) error {
	if len(r.plan.VMs) == 0 {
		return nil
	}
	all, err := listNames(ctx, c, c.ServiceContent.RootFolder, "VirtualMachine")
	if err != nil {
		return err
	}
	for _, v := range r.plan.VMs {
		for _, other := range byName(all, v.Name) {
			if folder != nil && other.Parent == *folder {
				r.block(v.Name, fmt.Sprintf("a VM named %s already exists in %s folder %s", v.Name, r.spec.Target, r.plan.Folder),
					"rename or remove the existing VM, or choose another folder")
			} else {
				r.add(Warning, v.Name, fmt.Sprintf("a VM named %s already exists elsewhere in %s", v.Name, r.spec.Target),
					"make sure it is not the same machine moved before")
			}
			break
		}
	}
	return nil
}

// spaceNeed is what the moving VMs need on one datastore: their disks placed there in
// the requested formats, and, on the VMs' own datastore, their memory files.
type spaceNeed struct {
	ds                         types.ManagedObjectReference
	name                       string
	disks, grow, swap, suspend int64
	thinner                    bool // disk=thin would need less
	formats                    []DiskFormat
	who                        []string
}

// checkSpace checks each datastore the VMs' files go to: the spec's datastore (their
// own files and every disk not placed apart) and the datastores of disks placed apart.
func (r *resolver) checkSpace(ctx context.Context, c *vim25.Client, home types.ManagedObjectReference, disks map[int]diskTarget, srcVMs map[string]*sourceVM) error {
	needs := []*spaceNeed{{ds: home, name: r.plan.Datastore}}
	at := func(ds types.ManagedObjectReference, name string) *spaceNeed {
		for _, n := range needs {
			if n.ds == ds {
				return n
			}
		}
		n := &spaceNeed{ds: ds, name: name}
		needs = append(needs, n)
		return n
	}
	for _, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		if svm == nil {
			continue
		}
		h := needs[0]
		h.swap, h.suspend = h.swap+svm.swap, h.suspend+svm.suspend
		h.who = append(h.who, v.Name)
		for i, d := range svm.plan.disks {
			ds, name, format := home, r.plan.Datastore, r.spec.DiskFormat
			if t, ok := disks[diskNumber(d, i)]; ok {
				if t.ds.Value != "" {
					ds, name = t.ds, t.name
				}
				if t.format != "" {
					format = t.format
				}
			}
			n := at(ds, name)
			need, grow := diskNeed(svm, d, format)
			n.disks, n.grow = n.disks+need, n.grow+grow
			if thin, _ := diskNeed(svm, d, DiskThin); thin < need {
				n.thinner = true
			}
			if !slices.Contains(n.formats, format) {
				n.formats = append(n.formats, format)
			}
			if !slices.Contains(n.who, v.Name) {
				n.who = append(n.who, v.Name)
			}
		}
	}
	for _, n := range needs {
		if err := r.checkDatastoreSpace(ctx, c, n); err != nil {
			return err
		}
	}
	return nil
}

// checkDatastoreSpace blocks when the datastore cannot hold what n needs (thin disks:
// what they use now; thick ones: their full size; plus memory files), and warns when thin
// disks could outgrow its free space later. It also blocks on a datastore that is
// inaccessible or in maintenance mode.
func (r *resolver) checkDatastoreSpace(ctx context.Context, c *vim25.Client, n *spaceNeed) error {
	var d mo.Datastore
	if err := property.DefaultCollector(c).RetrieveOne(ctx, n.ds, []string{"summary"}, &d); err != nil {
		return err
	}
	name := n.name
	if !d.Summary.Accessible {
		r.block("", fmt.Sprintf("datastore %s is not accessible", name), "choose another datastore")
		return nil
	}
	if d.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateInMaintenance) ||
		d.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateEnteringMaintenance) {
		r.block("", fmt.Sprintf("datastore %s is in maintenance mode", name), "choose another datastore")
		return nil
	}
	disks, grow, swap, suspend, thinner, who := n.disks, n.grow, n.swap, n.suspend, n.thinner, n.who
	formats := "disks in the requested formats"
	if len(n.formats) == 1 {
		formats = formatWords(n.formats[0])
	}
	need, free := disks+swap+suspend, d.Summary.FreeSpace
	if need <= free && need+grow <= free {
		return nil
	}
	// Disks only: "the disks of web-01 need …". With memory files, the VMs themselves
	// need the space, and the message says how much of it is what.
	subject, needs, fits, their := fmt.Sprintf("the disks of the %d VMs", len(who)), "need", "fit", "their"
	vm := ""
	if len(who) == 1 {
		subject, vm = "the disks of "+who[0], who[0]
	}
	breakdown := "" // "disks … as …, swap …" when memory files add to the disks
	if swap+suspend > 0 {
		subject = fmt.Sprintf("the %d VMs", len(who))
		if len(who) == 1 {
			subject, needs, fits, their = who[0], "needs", "fits", "its"
		}
		parts := []string{fmt.Sprintf("disks %s as %s", gib(disks), formats)}
		if swap > 0 {
			parts = append(parts, "swap "+gib(swap))
		}
		if suspend > 0 {
			parts = append(parts, "suspended memory "+gib(suspend))
		}
		breakdown = strings.Join(parts, ", ")
	}
	if need > free {
		msg := fmt.Sprintf("%s %s %s on %s as %s; it has %s free", subject, needs, gib(need), name, formats, gib(free))
		if breakdown != "" {
			msg = fmt.Sprintf("%s %s %s on %s (%s); it has %s free", subject, needs, gib(need), name, breakdown, gib(free))
		}
		hint := "choose a datastore with more free space, or move fewer VMs at once"
		if thinner {
			hint = "choose a datastore with more free space, move fewer VMs at once, or use disk=thin"
		}
		if swap > 0 && disks+suspend <= free {
			hint += "; the disks alone would fit: a VM with all its memory reserved, or moved powered off, needs no swap file"
		}
		r.block(vm, msg, hint)
		return nil
	}
	now := fmt.Sprintf("%s of %s free", gib(need), gib(free))
	if breakdown != "" {
		now = fmt.Sprintf("%s needed, %s free; %s", gib(need), gib(free), breakdown)
	}
	r.add(Warning, vm, fmt.Sprintf("%s %s on %s now (%s), but %s thin disks can grow to %s in all",
		subject, fits, name, now, their, gib(need+grow)), "watch the datastore's free space after the move")
	return nil
}

// memoryFiles is what a VM's memory takes on the target datastore besides its disks:
// a running VM gets a swap file there of its memory less what is reserved for it, and a
// suspended one brings its suspended memory, as large as its memory.
func memoryFiles(vm *mo.VirtualMachine) (swap, suspend int64) {
	if vm.Config == nil {
		return 0, 0
	}
	memory := int64(vm.Config.Hardware.MemoryMB) << 20
	switch vm.Runtime.PowerState {
	case types.VirtualMachinePowerStatePoweredOn:
		if isTrue(vm.Config.MemoryReservationLockedToMax) {
			return 0, 0
		}
		var reserved int64
		if a := vm.Config.MemoryAllocation; a != nil && a.Reservation != nil {
			reserved = *a.Reservation << 20
		}
		return max(memory-reserved, 0), 0
	case types.VirtualMachinePowerStateSuspended:
		return 0, memory
	}
	return 0, 0
}

// gib renders bytes as people read datastore sizes.
func gib(b int64) string { return fmt.Sprintf("%.1f GB", float64(b)/(1<<30)) }

func formatWords(f DiskFormat) string {
	switch f {
	case DiskThin:
		return "thin disks"
	case DiskThick:
		return "thick (lazy zeroed) disks"
	case DiskEager:
		return "thick eager zeroed disks"
	}
	return "disks in their current format"
}

// checkSwitchKinds blocks a NIC that would go from a distributed portgroup
// to a standard one: cross vCenter vMotion refuses that move (a vDS→vSS
// migration is not supported), even where a standard portgroup of the
// right name exists.
func (r *resolver) checkSwitchKinds(srcVMs map[string]*sourceVM, nets map[types.ManagedObjectReference]netInfo) {
	standardOnly := map[string]bool{}
	for _, n := range nets {
		std := n.Ref.Type == "Network"
		if prev, seen := standardOnly[n.Name]; seen {
			standardOnly[n.Name] = prev && std
		} else {
			standardOnly[n.Name] = std
		}
	}
	for _, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		if svm == nil {
			continue
		}
		for j, nic := range v.NICs {
			if j >= len(svm.nics) || nic.Target == "" || !standardOnly[nic.Target] {
				continue
			}
			if _, dv := svm.nics[j].GetVirtualDevice().Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo); !dv {
				continue
			}
			r.block(v.Name, fmt.Sprintf("%s of %s is on distributed portgroup %s; cross vCenter vMotion cannot move it to standard portgroup %s in %s",
				nic.Label, v.Name, nic.Network, nic.Target, r.spec.Target),
				fmt.Sprintf("map it to a distributed portgroup (network=%s:<portgroup>), or choose a cluster on a distributed switch", quoteIfSpace(nic.Network)))
			svm.blocked = true
		}
	}
}

// backing is the NIC backing for a target network.
func backing(ctx context.Context, c *vim25.Client, n netInfo) (types.BaseVirtualDeviceBackingInfo, error) {
	switch n.Ref.Type {
	case "DistributedVirtualPortgroup":
		return object.NewDistributedVirtualPortgroup(c, n.Ref).EthernetCardBackingInfo(ctx)
	case "OpaqueNetwork":
		return object.NewOpaqueNetwork(c, n.Ref).EthernetCardBackingInfo(ctx)
	default:
		ref := n.Ref
		// object.Network's helper leaves Network unset; vCenter resolves a
		// standard portgroup by name per host, the reference pins it.
		return &types.VirtualEthernetCardNetworkBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: n.Name},
			Network:                        &ref,
		}, nil
	}
}

// similar lists names that share a prefix or substring with name, else all.
func similar(all []named, name string) []string {
	l := strings.ToLower(name)
	var out []string
	for _, n := range all {
		ln := strings.ToLower(n.Name)
		if strings.Contains(ln, l) || strings.Contains(l, ln) || commonPrefix(ln, l) >= 3 {
			out = append(out, n.Name)
		}
	}
	if len(out) == 0 {
		for _, n := range all {
			out = append(out, n.Name)
		}
	}
	return out
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func quoteIfSpace(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func uniqRefs(in []types.ManagedObjectReference) []types.ManagedObjectReference {
	seen := map[types.ManagedObjectReference]bool{}
	var out []types.ManagedObjectReference
	for _, r := range in {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
