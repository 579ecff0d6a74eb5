package xvmsim

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Runtime toggles turn a healthy inventory into one with the faults an administrator
// meets on a bad day (a host that stopped answering, a datastore that lost its paths, a
// host left on an old ESXi), for the time of a test. None of them has a vSphere API
// that vcsim implements, so they change the simulator's objects directly, the way its
// own handlers do: with the gate held exclusively, so that no SOAP request reads an
// object half-changed and no emulated create or destroy runs at the same time, and
// through the registry's AtomicUpdate, which holds the object's own lock and tells the
// property collector what changed. Each toggle returns what it replaced, so that a
// test can put it back with the same call.

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

// toggle finds the object of that kind and name and applies the changes edit returns,
// read and written under the object's lock, while the gate keeps every SOAP request out.
func (v *VC) toggle(kind, name string, edit func(mo.Entity) []types.PropertyChange) error {
	v.lab.structural.Lock()
	defer v.lab.structural.Unlock()
	v.gate.Lock()
	defer v.gate.Unlock()

	reg := v.model.Map()
	// A context of its own, so that the object lock is not shared with a request
	// or task that happens to hold it.
	ctx := simulator.NewContext()
	ctx.Map = reg
	var found mo.Entity
	for _, e := range reg.All(kind) {
		var n string
		ctx.WithLock(e, func() { n = e.Entity().Name })
		if n == name {
			if found != nil {
				return fmt.Errorf("%s: more than one %s is named %s", v.Name, kind, name)
			}
			found = e
		}
	}
	if found == nil {
		return fmt.Errorf("%s: %s %s: %w", v.Name, kind, name, ErrNotFound)
	}
	ctx.WithLock(found, func() {
		ctx.Update(found, edit(found))
	})
	return nil
}
