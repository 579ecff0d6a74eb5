package vcenter

import (
	"context"
	"fmt"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vmRefs remembers, per vCenter, the reference of VMs found by name (by a plan, or by a
// lookup). Finding one VM by name otherwise lists every VM of the vCenter, and a move
// looks its VM up several times (where it is, its tags, where it landed): with this a
// lookup is one read of the remembered VM's name, and a full listing only when the VM
// is not known there, or the remembered reference now names another VM or nothing.
//
// A VM on its way to a vCenter (a relocation started with its placement) is looked for
// first in the folder it was sent to: one call, where finding it by name would list every
// VM of the target vCenter after every move.
type vmRefs struct {
	mu     sync.Mutex
	byVC   map[string]map[string]types.ManagedObjectReference
	expect map[string]types.ManagedObjectReference // vCenter + "/" + VM name → folder
}

// maxExpected bounds the folders remembered for VMs on their way (a move that never
// arrives leaves its entry behind).
const maxExpected = 4096

func (r *vmRefs) expectIn(vc, name string, folder types.ManagedObjectReference) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.expect == nil || len(r.expect) >= maxExpected {
		r.expect = map[string]types.ManagedObjectReference{}
	}
	r.expect[vc+"/"+name] = folder
}

func (r *vmRefs) expected(vc, name string) (types.ManagedObjectReference, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.expect[vc+"/"+name]
	return f, ok
}

func (r *vmRefs) arrived(vc, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.expect, vc+"/"+name)
}

func (r *vmRefs) get(vc, name string) (types.ManagedObjectReference, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, ok := r.byVC[vc][name]
	return ref, ok
}

func (r *vmRefs) put(vc, name string, ref types.ManagedObjectReference) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byVC == nil {
		r.byVC = map[string]map[string]types.ManagedObjectReference{}
	}
	if r.byVC[vc] == nil {
		r.byVC[vc] = map[string]types.ManagedObjectReference{}
	}
	r.byVC[vc][name] = ref
}

func (r *vmRefs) forget(vc, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byVC[vc], name)
}

// oneVM finds the only VM named vm in vCenter vcName.
func (m *Manager) oneVM(ctx context.Context, c *vim25.Client, vcName, vm string) (types.ManagedObjectReference, error) {
	if ref, ok := m.refs.get(vcName, vm); ok {
		var v mo.VirtualMachine
		err := property.DefaultCollector(c).RetrieveOne(ctx, ref, []string{"name"}, &v)
		if err == nil && readable(v.Name) == vm {
			return ref, nil
		}
		m.refs.forget(vcName, vm) // moved away, removed or renamed: look it up
	}
	if folder, ok := m.refs.expected(vcName, vm); ok {
		found, err := object.NewSearchIndex(c).FindChild(ctx, folder, escaped(vm))
		if err == nil && found != nil && found.Reference().Type == "VirtualMachine" {
			m.refs.arrived(vcName, vm)
			m.refs.put(vcName, vm, found.Reference())
			return found.Reference(), nil
		}
	}
	refs, err := findVMsByName(ctx, c, []string{vm})
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	switch n := len(refs[vm]); n {
	case 0:
		return types.ManagedObjectReference{}, fmt.Errorf("vm %s in %s: %w", vm, vcName, ErrNotFound)
	case 1:
		m.refs.put(vcName, vm, refs[vm][0])
		return refs[vm][0], nil
	default:
		return types.ManagedObjectReference{}, fmt.Errorf("vm %s in %s: %d VMs have that name", vm, vcName, n)
	}
}
