package xvmsim

import (
	"fmt"
	"slices"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Runtime toggles turn a healthy inventory into one with the faults an administrator
// meets on a bad day (a host that stopped answering, a datastore that lost its paths, a
// host left on an old ESXi, one host of a cluster missing a datastore or a portgroup the
// others have), for the time of a test. None of them has a vSphere API that vcsim
// implements for one host alone, so they change the simulator's objects directly, the
// way its own handlers do: with the gate held exclusively, so that no SOAP request reads
// an object half-changed and no emulated create or destroy runs at the same time, and
// through the registry's Update under the object's own lock, which tells the property
// collector what changed. Each toggle returns what it replaced, so that a test can put
// it back with the same call.

// SetHostConnection sets the connection state vCenter reports for the host named
// host (connected, disconnected or notResponding) and returns the one it had.
func (v *VC) SetHostConnection(host string, state types.HostSystemConnectionState) (types.HostSystemConnectionState, error) {
	var was types.HostSystemConnectionState
	err := v.toggle("HostSystem", host, func(obj mo.Entity) []types.PropertyChange {
		was = obj.(*simulator.HostSystem).Runtime.ConnectionState
		return []types.PropertyChange{{Name: "runtime.connectionState", Val: state}}
	})
	return was, err
}

// SetHostPowerState sets the power state vCenter reports for the host named host and
// returns the one it had. A host that DPM put in standby (standBy) stays connected and
// runs no VMs: the least loaded host of its cluster, to anyone who looks only at the
// connection state.
func (v *VC) SetHostPowerState(host string, state types.HostSystemPowerState) (types.HostSystemPowerState, error) {
	var was types.HostSystemPowerState
	err := v.toggle("HostSystem", host, func(obj mo.Entity) []types.PropertyChange {
		was = obj.(*simulator.HostSystem).Runtime.PowerState
		return []types.PropertyChange{{Name: "runtime.powerState", Val: state}}
	})
	return was, err
}

// SetHostQuarantine puts the host named host in or out of quarantine mode (Proactive HA
// moving VMs off a degraded host) and returns whether it was in it.
func (v *VC) SetHostQuarantine(host string, on bool) (bool, error) {
	var was bool
	err := v.toggle("HostSystem", host, func(obj mo.Entity) []types.PropertyChange {
		if q := obj.(*simulator.HostSystem).Runtime.InQuarantineMode; q != nil {
			was = *q
		}
		return []types.PropertyChange{{Name: "runtime.inQuarantineMode", Val: on}}
	})
	return was, err
}

// SetDatastoreAccessible makes the datastore named name accessible or not, from every
// host that mounts it, as vCenter reports a datastore whose storage is gone (all paths
// down). It returns whether the datastore was accessible.
func (v *VC) SetDatastoreAccessible(name string, accessible bool) (bool, error) {
	var was bool
	err := v.toggle("Datastore", name, func(obj mo.Entity) []types.PropertyChange {
		ds := obj.(*simulator.Datastore)
		was = ds.Summary.Accessible
		reason := ""
		if !accessible {
			reason = string(types.HostMountInfoInaccessibleReasonAllPathsDown_Timeout)
		}
		// New mount records, not edits of the old ones: their pointers may be shared
		// with a copy a reader took before.
		mounts := make([]types.DatastoreHostMount, len(ds.Host))
		for i, m := range ds.Host {
			m.MountInfo.Accessible = types.NewBool(accessible)
			m.MountInfo.InaccessibleReason = reason
			mounts[i] = m
		}
		return []types.PropertyChange{
			{Name: "summary.accessible", Val: accessible},
			{Name: "host", Val: mounts},
		}
	})
	return was, err
}

// SetDatastoreFreeSpace makes the datastore named name report free bytes free, as one
// that other VMs filled since a move was planned does, and returns what it reported.
func (v *VC) SetDatastoreFreeSpace(name string, free int64) (int64, error) {
	var was int64
	err := v.toggle("Datastore", name, func(obj mo.Entity) []types.PropertyChange {
		was = obj.(*simulator.Datastore).Summary.FreeSpace
		return []types.PropertyChange{{Name: "summary.freeSpace", Val: free}}
	})
	return was, err
}

// SetHostVersion makes the host named host report ESXi version (e.g. "6.0.0") as
// its product, in config.product and summary.config.product alike, and returns the
// version it reported before.
func (v *VC) SetHostVersion(host, version string) (string, error) {
	var was string
	err := v.toggle("HostSystem", host, func(obj mo.Entity) []types.PropertyChange {
		h := obj.(*simulator.HostSystem)
		var about types.AboutInfo
		if h.Config != nil {
			about = h.Config.Product
		} else if h.Summary.Config.Product != nil {
			about = *h.Summary.Config.Product
		}
		was = about.Version
		about.Version = version
		about.ApiVersion = apiVersion(version)
		about.FullName = "VMware ESXi " + version + " build-xvmsim"
		// A fresh AboutInfo for the summary: the simulator's hosts share the one
		// they were built from, and a change through it would reach every host of
		// every simulated vCenter.
		summary := about
		changes := []types.PropertyChange{{Name: "summary.config.product", Val: &summary}}
		if h.Config != nil {
			changes = append(changes, types.PropertyChange{Name: "config.product", Val: about})
		}
		return changes
	})
	return was, err
}

// SetDatastoreMounted mounts the datastore named datastore on the host named host, or
// unmounts it from that host alone, as an administrator does who unmounts a datastore
// from one host of a cluster: the host no longer lists it among its datastores, nor the
// datastore the host among its mounts. It returns whether the datastore was mounted
// there. The compute resource's own list, the union of its hosts', is left as it was:
// the toggle is meant for one host of several.
func (v *VC) SetDatastoreMounted(host, datastore string, mounted bool) (bool, error) {
	var was bool
	err := v.edit(func(e *labEdit) error {
		h, err := e.find("HostSystem", host, "HostSystem")
		if err != nil {
			return err
		}
		d, err := e.find("Datastore", datastore, "Datastore")
		if err != nil {
			return err
		}
		hs, ds := h.(*simulator.HostSystem), d.(*simulator.Datastore)
		e.update(h, func() []types.PropertyChange {
			was = slices.Contains(hs.Datastore, ds.Self)
			return []types.PropertyChange{{Name: "datastore", Val: withRef(hs.Datastore, ds.Self, mounted)}}
		})
		e.update(d, func() []types.PropertyChange {
			// A new list: the old one may be shared with a copy a reader took before.
			mounts := slices.DeleteFunc(slices.Clone(ds.Host), func(m types.DatastoreHostMount) bool { return m.Key == hs.Self })
			if mounted {
				mounts = append(mounts, types.DatastoreHostMount{Key: hs.Self, MountInfo: mountInfo(ds)})
			}
			return []types.PropertyChange{{Name: "host", Val: mounts}}
		})
		return nil
	})
	return was, err
}

// mountInfo is a new mount of ds, as accessible as its other mounts are.
func mountInfo(ds *simulator.Datastore) types.HostMountInfo {
	info := types.HostMountInfo{
		AccessMode: string(types.HostMountModeReadWrite),
		Mounted:    types.NewBool(true),
		Accessible: types.NewBool(ds.Summary.Accessible),
	}
	if !ds.Summary.Accessible {
		info.InaccessibleReason = string(types.HostMountInfoInaccessibleReasonAllPathsDown_Timeout)
	}
	return info
}

// SetPortgroupOnHost gives the host named host the portgroup (distributed or standard)
// named portgroup, or takes it off that host alone, as when a host is left out of a
// portgroup's switch or a standard portgroup was never created on it: the host no longer
// lists the network, nor a distributed portgroup the host. (vcsim keeps no host list for
// a standard portgroup, so there only the host's list changes, and putting it back
// leaves the lab as it was.) It returns whether the host had it. The switch's members
// and the compute resource's network list are left as they were.
func (v *VC) SetPortgroupOnHost(host, portgroup string, present bool) (bool, error) {
	var was bool
	err := v.edit(func(e *labEdit) error {
		h, err := e.find("HostSystem", host, "HostSystem")
		if err != nil {
			return err
		}
		n, err := e.find("portgroup", portgroup, "DistributedVirtualPortgroup", "Network")
		if err != nil {
			return err
		}
		hs := h.(*simulator.HostSystem)
		e.update(h, func() []types.PropertyChange {
			was = slices.Contains(hs.Network, n.Reference())
			return []types.PropertyChange{{Name: "network", Val: withRef(hs.Network, n.Reference(), present)}}
		})
		if pg, ok := n.(*simulator.DistributedVirtualPortgroup); ok {
			e.update(n, func() []types.PropertyChange {
				return []types.PropertyChange{{Name: "host", Val: withRef(pg.Host, hs.Self, present)}}
			})
		}
		return nil
	})
	return was, err
}

// withRef returns a new list of refs with ref in it (at the end, if it was not) or
// without it. A new list, never an edit in place: vcsim shares a host's datastore list
// with its datastore system and browsers, and a reader may hold a copy.
func withRef(refs []types.ManagedObjectReference, ref types.ManagedObjectReference, in bool) []types.ManagedObjectReference {
	out := slices.DeleteFunc(slices.Clone(refs), func(r types.ManagedObjectReference) bool { return r == ref })
	if in {
		out = append(out, ref)
	}
	return out
}

// toggle finds the object of that kind and name and applies the changes edit returns,
// read and written under the object's lock, while the gate keeps every SOAP request out.
func (v *VC) toggle(kind, name string, edit func(mo.Entity) []types.PropertyChange) error {
	return v.edit(func(e *labEdit) error {
		obj, err := e.find(kind, name, kind)
		if err != nil {
			return err
		}
		e.update(obj, func() []types.PropertyChange { return edit(obj) })
		return nil
	})
}

// edit runs fn with the lab's exclusive sections held off and the gate keeping every
// SOAP request out, so that fn may change several objects and no request sees the
// inventory between two of the changes.
func (v *VC) edit(fn func(*labEdit) error) error {
	v.lab.structural.Lock()
	defer v.lab.structural.Unlock()
	v.gate.Lock()
	defer v.gate.Unlock()

	// A context of its own, so that the object lock is not shared with a request
	// or task that happens to hold it.
	ctx := simulator.NewContext()
	ctx.Map = v.model.Map()
	return fn(&labEdit{vc: v, ctx: ctx})
}

// labEdit is one edit's access to the simulator's objects.
type labEdit struct {
	vc  *VC
	ctx *simulator.Context
}

// find returns the one object of one of kinds named name; what names the kind in errors.
func (e *labEdit) find(what, name string, kinds ...string) (mo.Entity, error) {
	var found mo.Entity
	for _, kind := range kinds {
		for _, obj := range e.ctx.Map.All(kind) {
			var n string
			e.ctx.WithLock(obj, func() { n = obj.Entity().Name })
			if n != name {
				continue
			}
			if found != nil {
				return nil, fmt.Errorf("%s: more than one %s is named %s", e.vc.Name, what, name)
			}
			found = obj
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s: %s %s: %w", e.vc.Name, what, name, ErrNotFound)
	}
	return found, nil
}

// update applies the changes change returns to obj; change reads the object and the
// changes are written under the object's lock, which the property collector is told of.
func (e *labEdit) update(obj mo.Entity, change func() []types.PropertyChange) {
	e.ctx.WithLock(obj, func() {
		e.ctx.Update(obj, change())
	})
}

// SetHostCPU makes the host named host report model as its CPU model, as a host of
// another CPU generation in the same cluster does, and returns the model it reported
// before. (The hosts may share one hardware summary in the simulator: the host gets a
// copy of its own.)
func (v *VC) SetHostCPU(host, model string) (string, error) {
	var was string
	err := v.toggle("HostSystem", host, func(obj mo.Entity) []types.PropertyChange {
		h := obj.(*simulator.HostSystem)
		var hw types.HostHardwareSummary
		if h.Summary.Hardware != nil {
			hw = *h.Summary.Hardware
		}
		was, hw.CpuModel = hw.CpuModel, model
		return []types.PropertyChange{{Name: "summary.hardware", Val: &hw}}
	})
	return was, err
}
