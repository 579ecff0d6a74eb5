package vcenter

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// ErrChanged says that something a move was resolved on is no longer so: the VM is gone,
// renamed, powered otherwise or has other disks or NICs; the host does not take VMs; a
// datastore is inaccessible or too full; an object is gone. The move must be planned
// again from names.
var ErrChanged = errors.New("changed since it was resolved")

// Resolved is the move of vm as p resolved it, by object identity, for the review to
// keep and the approval to sign; nil when p did not place vm (it is blocked, or the
// plan is incomplete).
func (p *Plan) Resolved(vm string) *move.Resolved {
	i := slices.IndexFunc(p.VMs, func(v VM) bool { return v.Name == vm })
	pl, vp := p.placement, p.vms[vm]
	if pl == nil || vp == nil || i < 0 || p.BlockedFor(vm) {
		return nil
	}
	v := p.VMs[i]
	r := &move.Resolved{PowerState: v.PowerState,
		Host: objectOf(pl.Host, ""), Pool: objectOf(pl.Pool, ""), Datastore: objectOf(pl.Datastore, ""), Folder: objectOf(pl.Folder, p.Folder)}
	for _, h := range p.OtherHosts {
		if ref, ok := p.others[h]; ok {
			r.OtherHosts = append(r.OtherHosts, ref.Value)
		}
	}
	if vp.profiles != nil {
		r.Profile = vp.profiles.home
	}
	for k, mv := range pl.diskMoves(vp, p.Spec.DiskFormat) {
		d := move.ResolvedDisk{Key: vp.disks[k].Key, Datastore: mv.ds.Value, Format: mv.format}
		if vp.profiles != nil {
			d.Profile = vp.profiles.disks[d.Key]
		}
		r.Disks = append(r.Disks, d)
	}
	for _, n := range vp.nics {
		rn := move.ResolvedNIC{Key: n.device.GetVirtualDevice().Key, Network: objectOf(n.network, "")}
		switch b := n.backing.(type) {
		case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
			rn.SwitchUUID, rn.PortgroupKey = b.Port.SwitchUuid, b.Port.PortgroupKey
		case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
			rn.OpaqueID, rn.OpaqueType = b.OpaqueNetworkId, b.OpaqueNetworkType
		case *types.VirtualEthernetCardNetworkBackingInfo:
			rn.DeviceName = b.DeviceName
		}
		r.NICs = append(r.NICs, rn)
	}
	for _, ds := range slices.SortedFunc(maps.Keys(vp.needs), func(a, b types.ManagedObjectReference) int { return cmp.Compare(a.Value, b.Value) }) {
		r.Needs = append(r.Needs, move.Need{Datastore: ds.Value, Bytes: vp.needs[ds]})
	}
	return r
}

func objectOf(ref types.ManagedObjectReference, name string) move.Object {
	return move.Object{Type: ref.Type, Value: ref.Value, Name: name}
}

func refOf(o move.Object) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: o.Type, Value: o.Value}
}

func datastoreRef(id string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "Datastore", Value: id}
}

func hostRef(id string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "HostSystem", Value: id}
}

// What Recheck reads: of the VM in the source, and of the objects of the target it goes
// to, by type.
var (
	recheckVMProps     = []string{"name", "runtime.powerState", "runtime.host", "datastore", "config.hardware.device"}
	recheckTargetProps = map[string][]string{
		"HostSystem":                  {"name", "runtime.connectionState", "runtime.inMaintenanceMode", "runtime.powerState", "datastore", "network"},
		"Datastore":                   {"summary"}, // with its name
		"ResourcePool":                {"name"},
		"VirtualApp":                  {"name"},
		"Folder":                      {"name"},
		"Network":                     {"name"},
		"DistributedVirtualPortgroup": {"name", "key"},
		"OpaqueNetwork":               {"name"},
	}
)

// Recheck returns the plan of vm's move (spec names the vCenters and options, as for
// Plan) from its resolution r, reading only what may have changed since r was made: the
// VM by its managed object id in the source, and the target host, datastores, pool,
// folder and networks by theirs, in one property retrieve on each vCenter, side by side.
// No name is looked up; the plan moves the VM to r's objects and nowhere else.
//
// Anything that is no longer so (see ErrChanged) is an error wrapping ErrChanged: the
// caller plans from names instead. Other errors are infrastructure failures, as Plan's.
// Of r's other hosts, those that no longer qualify are left out of the plan.
func (m *Manager) Recheck(ctx context.Context, spec MoveSpec, vm move.VM, r *move.Resolved) (*Plan, error) {
	spec = m.withDefaults(spec)
	spec.VMs = []string{vm.Name}
	if r == nil || vm.Ref == "" {
		return nil, fmt.Errorf("%s has no resolved placement: %w", vm.Name, ErrChanged)
	}
	src, err := m.conn(spec.Source)
	if err != nil {
		return nil, err
	}
	dst, err := m.conn(spec.Target)
	if err != nil {
		return nil, err
	}
	p := &Plan{Spec: spec, DiskFormat: spec.DiskFormat, ResolvedAt: time.Now(), Cluster: spec.Cluster, Folder: r.Folder.Name,
		Source: Endpoint{Name: spec.Source, URL: src.url.String(), Home: spec.Source == m.home, Reachable: true},
		Target: Endpoint{Name: spec.Target, URL: dst.url.String(), Home: spec.Target == m.home, Reachable: true},
	}
	vmRef := types.ManagedObjectReference{Type: "VirtualMachine", Value: vm.Ref}
	var (
		live           mo.VirtualMachine
		gone           bool
		objs           map[types.ManagedObjectReference]any
		srcErr, dstErr error
		wg             sync.WaitGroup
	)
	wg.Go(func() {
		srcErr = m.withSession(ctx, spec.Source, func(c *vim25.Client, peer *x509.Certificate) error {
			p.Source = endpointOf(p.Source, c, peer)
			err := property.DefaultCollector(c).RetrieveOne(ctx, vmRef, recheckVMProps, &live)
			if fault.Is(err, &types.ManagedObjectNotFound{}) {
				gone, err = true, nil
			}
			return err
		})
	})
	wg.Go(func() {
		dstErr = m.withSession(ctx, spec.Target, func(c *vim25.Client, peer *x509.Certificate) error {
			p.Target = endpointOf(p.Target, c, peer)
			var err error
			objs, err = retrieveObjects(ctx, c, targetObjects(r), recheckTargetProps)
			return err
		})
	})
	wg.Wait()
	if srcErr != nil {
		return nil, m.scrub(classify(srcErr, spec.Source, "", vm.Name, StepResolve))
	}
	if dstErr != nil {
		return nil, m.scrub(classify(dstErr, spec.Target, "", vm.Name, StepResolve))
	}
	if gone {
		return nil, fmt.Errorf("%s (%s) is no longer in %s: %w", vm.Name, vm.Ref, spec.Source, ErrChanged)
	}
	vp, view, err := recheckVM(vm, r, &live, objs)
	if err == nil {
		err = recheckTarget(r, objs)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", vm.Name, err, ErrChanged)
	}
	p.placement = &placement{Host: refOf(r.Host), Pool: refOf(r.Pool), Datastore: refOf(r.Datastore), Folder: refOf(r.Folder)}
	p.vms = map[string]*vmPlan{vm.Name: vp}
	p.VMs = []VM{view}
	p.others = map[string]types.ManagedObjectReference{}
	for _, id := range r.OtherHosts {
		h, ok := objs[hostRef(id)].(mo.HostSystem)
		if ok && hostTakes(h, r, objs) == nil {
			name := readable(h.Name)
			p.OtherHosts = append(p.OtherHosts, name)
			p.others[name] = h.Self
		}
	}
	p.Host, p.Pool, p.Datastore = nameOf(objs[refOf(r.Host)]), nameOf(objs[refOf(r.Pool)]), nameOf(objs[refOf(r.Datastore)])
	return p, nil
}

// targetObjects are the objects of the target r names.
func targetObjects(r *move.Resolved) []types.ManagedObjectReference {
	refs := []types.ManagedObjectReference{refOf(r.Host), refOf(r.Pool), refOf(r.Folder), refOf(r.Datastore)}
	for _, id := range r.OtherHosts {
		refs = append(refs, hostRef(id))
	}
	for _, d := range r.Disks {
		refs = append(refs, datastoreRef(d.Datastore))
	}
	for _, n := range r.NICs {
		refs = append(refs, refOf(n.Network))
	}
	return uniqRefs(refs)
}

// retrieveObjects reads objects of several types in one retrieve, props[type] of each;
// an object that no longer exists is absent from the result.
func retrieveObjects(ctx context.Context, c *vim25.Client, refs []types.ManagedObjectReference, props map[string][]string) (map[types.ManagedObjectReference]any, error) {
	spec := types.PropertyFilterSpec{ReportMissingObjectsInResults: types.NewBool(true)}
	seen := map[string]bool{}
	for _, ref := range refs {
		spec.ObjectSet = append(spec.ObjectSet, types.ObjectSpec{Obj: ref})
		if !seen[ref.Type] {
			seen[ref.Type] = true
			spec.PropSet = append(spec.PropSet, types.PropertySpec{Type: ref.Type, PathSet: props[ref.Type]})
		}
	}
	res, err := property.DefaultCollector(c).RetrieveProperties(ctx, types.RetrieveProperties{SpecSet: []types.PropertyFilterSpec{spec}})
	if err != nil {
		return nil, err
	}
	out := make(map[types.ManagedObjectReference]any, len(res.Returnval))
	for _, oc := range res.Returnval {
		if v, err := mo.ObjectContentToType(oc); err == nil {
			out[oc.Obj] = v // one whose properties cannot be read is as good as gone
		}
	}
	return out, nil
}

// nameOf is the readable name of an object as retrieveObjects read it ("" if it was not).
func nameOf(v any) string {
	switch o := v.(type) {
	case mo.HostSystem:
		return readable(o.Name)
	case mo.Datastore:
		return readable(o.Summary.Name)
	case mo.ResourcePool:
		return readable(o.Name)
	case mo.VirtualApp:
		return readable(o.Name)
	case mo.Network:
		return readable(o.Name)
	case mo.DistributedVirtualPortgroup:
		return readable(o.Name)
	case mo.OpaqueNetwork:
		return readable(o.Name)
	}
	return ""
}

// recheckVM compares the VM as it is with r, and returns its part of the plan; objs are
// the target's objects, for the names of the NICs' portgroups.
func recheckVM(vm move.VM, r *move.Resolved, live *mo.VirtualMachine, objs map[types.ManagedObjectReference]any) (*vmPlan, VM, error) {
	if name := readable(live.Name); name != vm.Name {
		return nil, VM{}, fmt.Errorf("%s is now named %s", vm.Ref, name)
	}
	if string(live.Runtime.PowerState) != r.PowerState {
		return nil, VM{}, fmt.Errorf("it is %s, not %s as approved", powerWords(live.Runtime.PowerState), powerWords(types.VirtualMachinePowerState(r.PowerState)))
	}
	if live.Config == nil {
		return nil, VM{}, errors.New("its configuration cannot be read")
	}
	list := object.VirtualDeviceList(live.Config.Hardware.Device)
	var disks []*types.VirtualDisk
	for _, d := range list.SelectByType((*types.VirtualDisk)(nil)) {
		disks = append(disks, d.(*types.VirtualDisk))
	}
	if !slices.EqualFunc(disks, r.Disks, func(d *types.VirtualDisk, rd move.ResolvedDisk) bool { return d.Key == rd.Key }) {
		return nil, VM{}, errors.New("its disks are not those it had")
	}
	nics := list.SelectByType((*types.VirtualEthernetCard)(nil))
	if !slices.EqualFunc(nics, r.NICs, func(d types.BaseVirtualDevice, rn move.ResolvedNIC) bool { return d.GetVirtualDevice().Key == rn.Key }) {
		return nil, VM{}, errors.New("its network adapters are not those it had")
	}
	vp := &vmPlan{ref: live.Self, disks: disks, needs: map[types.ManagedObjectReference]int64{},
		at: &runningAt{host: live.Runtime.Host, datastores: live.Datastore}}
	view := VM{VM: vm, PowerState: string(live.Runtime.PowerState)}
	pr := &profiles{home: r.Profile, disks: map[int32]string{}}
	for _, d := range r.Disks {
		vp.moves = append(vp.moves, diskMove{ds: datastoreRef(d.Datastore), format: d.Format})
		if d.Profile != "" {
			pr.disks[d.Key] = d.Profile
		}
	}
	if pr.home != "" || len(pr.disks) > 0 {
		vp.profiles = pr
	}
	for k, n := range r.NICs {
		vp.nics = append(vp.nics, nicPlan{device: nics[k], backing: nicBacking(n), network: refOf(n.Network)})
		view.NICs = append(view.NICs, NIC{Label: deviceLabel(list, nics[k]), Target: nameOf(objs[refOf(n.Network)]),
			MAC: nics[k].(types.BaseVirtualEthernetCard).GetVirtualEthernetCard().MacAddress})
	}
	for _, n := range r.Needs {
		vp.needs[datastoreRef(n.Datastore)] = n.Bytes
	}
	return vp, view, nil
}

// nicBacking is the backing a NIC gets on the network n resolved.
func nicBacking(n move.ResolvedNIC) types.BaseVirtualDeviceBackingInfo {
	switch n.Network.Type {
	case "DistributedVirtualPortgroup":
		return &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
			Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: n.SwitchUUID, PortgroupKey: n.PortgroupKey}}
	case "OpaqueNetwork":
		return &types.VirtualEthernetCardOpaqueNetworkBackingInfo{OpaqueNetworkId: n.OpaqueID, OpaqueNetworkType: n.OpaqueType}
	}
	ref := refOf(n.Network)
	return &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: n.DeviceName}, Network: &ref}
}

// recheckTarget checks the target's objects as read against r.
func recheckTarget(r *move.Resolved, objs map[types.ManagedObjectReference]any) error {
	host, ok := objs[refOf(r.Host)].(mo.HostSystem)
	if !ok {
		return fmt.Errorf("host %s is gone from the target", r.Host.Name)
	}
	for _, o := range []move.Object{r.Pool, r.Folder} {
		if _, ok := objs[refOf(o)]; !ok {
			return fmt.Errorf("%s %s is gone from the target", o.Type, cmp.Or(o.Name, o.Value))
		}
	}
	for _, n := range r.NICs {
		v, ok := objs[refOf(n.Network)]
		if !ok {
			return fmt.Errorf("portgroup %s is gone from the target", n.Network.Value)
		}
		if pg, dv := v.(mo.DistributedVirtualPortgroup); dv && pg.Key != n.PortgroupKey {
			return fmt.Errorf("portgroup %s is another one (key %s, not %s)", readable(pg.Name), pg.Key, n.PortgroupKey)
		}
	}
	need := map[string]int64{}
	for _, n := range r.Needs {
		need[n.Datastore] += n.Bytes
	}
	for _, id := range datastoresOf(r) {
		ds, ok := objs[datastoreRef(id)].(mo.Datastore)
		if !ok {
			return fmt.Errorf("datastore %s is gone from the target", id)
		}
		sum := ds.Summary
		switch {
		case !sum.Accessible:
			return fmt.Errorf("datastore %s is not accessible", sum.Name)
		case sum.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateInMaintenance) ||
			sum.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateEnteringMaintenance):
			return fmt.Errorf("datastore %s is in maintenance mode", sum.Name)
		case sum.FreeSpace < need[id]:
			return fmt.Errorf("datastore %s has %s free; the VM needs %s there", sum.Name, gib(sum.FreeSpace), gib(need[id]))
		}
	}
	return hostTakes(host, r, objs)
}

// datastoresOf are the ids of the target datastores the VM's files go to.
func datastoresOf(r *move.Resolved) []string {
	out := []string{r.Datastore.Value}
	for _, d := range r.Disks {
		if !slices.Contains(out, d.Datastore) {
			out = append(out, d.Datastore)
		}
	}
	return out
}

// hostTakes says why host h cannot take the VM r places, if so: it is not connected,
// not powered on, in maintenance mode, or no longer mounts a datastore or sees a
// network the VM uses.
func hostTakes(h mo.HostSystem, r *move.Resolved, objs map[types.ManagedObjectReference]any) error {
	name := readable(h.Name)
	switch {
	case h.Runtime.ConnectionState != types.HostSystemConnectionStateConnected:
		return fmt.Errorf("host %s is %s", name, connectionWords(h.Runtime.ConnectionState))
	case h.Runtime.PowerState != types.HostSystemPowerStatePoweredOn:
		return fmt.Errorf("host %s is %s", name, hostPowerWords(h.Runtime.PowerState))
	case h.Runtime.InMaintenanceMode:
		return fmt.Errorf("host %s is in maintenance mode", name)
	}
	for _, id := range datastoresOf(r) {
		if !slices.Contains(h.Datastore, datastoreRef(id)) {
			return fmt.Errorf("host %s does not mount datastore %s", name, cmp.Or(nameOf(objs[datastoreRef(id)]), id))
		}
	}
	for _, n := range r.NICs {
		if !slices.Contains(h.Network, refOf(n.Network)) {
			return fmt.Errorf("host %s does not see portgroup %s", name, cmp.Or(nameOf(objs[refOf(n.Network)]), n.Network.Value))
		}
	}
	return nil
}
