package vcenter

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// mirrorReads is the round tripper of a pre-flight's client while its vCenter's mirror
// is fresh. It answers the reads the mirror can answer exactly as the vCenter would (the
// same objects, properties and values, decoded by the same code), and sends everything
// else on: a property the mirror does not keep, an object it does not know (yet), a
// listing it cannot scope, and every call that is not a read — vCenter's compatibility
// check (CheckRelocate) above all. The pre-flight code is the same either way, so a plan
// from the mirror is the plan a live read would make of the same inventory.
//
// Listings come as a container view and a retrieve through it (inventory.go's list):
// a view the mirror can answer is made here, not in the vCenter, and only this client
// knows it.
type mirrorReads struct {
	next   soap.RoundTripper
	mirror *inventoryMirror

	mu    sync.Mutex
	views map[types.ManagedObjectReference]mirrorView
}

// mirrorView is a container view made by mirrorReads.
type mirrorView struct {
	container types.ManagedObjectReference
	kinds     []string
}

var viewSeq atomic.Int64

func (r *mirrorReads) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	switch body := req.(type) {
	case *methods.RetrievePropertiesExBody:
		if out, ok := r.retrieve(body.Req.SpecSet); ok {
			res.(*methods.RetrievePropertiesExBody).Res = &types.RetrievePropertiesExResponse{Returnval: &types.RetrieveResult{Objects: out}}
			return nil
		}
	case *methods.CreateContainerViewBody:
		if ref, ok := r.createView(body.Req); ok {
			res.(*methods.CreateContainerViewBody).Res = &types.CreateContainerViewResponse{Returnval: ref}
			return nil
		}
	case *methods.DestroyViewBody:
		r.mu.Lock()
		_, ours := r.views[body.Req.This]
		delete(r.views, body.Req.This)
		r.mu.Unlock()
		if ours {
			res.(*methods.DestroyViewBody).Res = &types.DestroyViewResponse{}
			return nil
		}
	}
	return r.next.RoundTrip(ctx, req, res)
}

// createView makes a view of the mirror when the mirror can list what it asks for:
// recursive, of types the mirror keeps, over the root folder or an object the mirror
// knows, and virtual machines only over the root folder (elsewhere a view also finds
// them through resource pools and hosts, which their parent does not say).
func (r *mirrorReads) createView(req *types.CreateContainerView) (types.ManagedObjectReference, bool) {
	if req == nil || !req.Recursive || len(req.Type) == 0 {
		return types.ManagedObjectReference{}, false
	}
	root := r.mirror.isRoot(req.Container)
	if !root && !r.mirror.knows(req.Container) {
		return types.ManagedObjectReference{}, false
	}
	for _, k := range req.Type {
		if len(kindsOf(k)) == 0 || (k == "VirtualMachine" && !root) {
			return types.ManagedObjectReference{}, false
		}
	}
	ref := types.ManagedObjectReference{Type: "ContainerView", Value: fmt.Sprintf("xvm-mirror-view-%d", viewSeq.Add(1))}
	r.mu.Lock()
	if r.views == nil {
		r.views = map[types.ManagedObjectReference]mirrorView{}
	}
	r.views[ref] = mirrorView{container: req.Container, kinds: slices.Clone(req.Type)}
	r.mu.Unlock()
	return ref, true
}

// retrieve answers a RetrievePropertiesEx from the mirror: either explicit objects
// (property.Collector.Retrieve) or every object of a view made by createView
// (view.ContainerView.Retrieve). ok is false when the mirror cannot answer all of it.
func (r *mirrorReads) retrieve(specs []types.PropertyFilterSpec) ([]types.ObjectContent, bool) {
	if len(specs) != 1 {
		return nil, false
	}
	spec := specs[0]
	paths := map[string][]string{} // by requested type
	for _, ps := range spec.PropSet {
		if ps.All != nil && *ps.All {
			return nil, false
		}
		paths[ps.Type] = append(paths[ps.Type], ps.PathSet...)
	}
	if len(spec.ObjectSet) == 1 && len(spec.ObjectSet[0].SelectSet) == 1 {
		r.mu.Lock()
		v, ours := r.views[spec.ObjectSet[0].Obj]
		r.mu.Unlock()
		ts, isView := spec.ObjectSet[0].SelectSet[0].(*types.TraversalSpec)
		if !ours || !isView || ts.Path != "view" {
			return nil, false
		}
		return r.mirror.list(v, paths)
	}
	refs := make([]types.ManagedObjectReference, 0, len(spec.ObjectSet))
	for _, os := range spec.ObjectSet {
		if len(os.SelectSet) > 0 || (os.Skip != nil && *os.Skip) {
			return nil, false
		}
		refs = append(refs, os.Obj)
	}
	return r.mirror.read(refs, paths)
}

// isRoot reports whether ref is the vCenter's root folder, which the view starts at
// (and so does not list).
func (mi *inventoryMirror) isRoot(ref types.ManagedObjectReference) bool {
	mi.mu.RLock()
	defer mi.mu.RUnlock()
	return ref == mi.root
}

func (mi *inventoryMirror) knows(ref types.ManagedObjectReference) bool {
	mi.mu.RLock()
	defer mi.mu.RUnlock()
	_, ok := mi.objects[ref]
	return ok
}

// read answers a retrieve of explicit objects, in their order.
func (mi *inventoryMirror) read(refs []types.ManagedObjectReference, paths map[string][]string) ([]types.ObjectContent, bool) {
	mi.mu.RLock()
	defer mi.mu.RUnlock()
	out := make([]types.ObjectContent, 0, len(refs))
	for _, ref := range refs {
		o := mi.objects[ref]
		want, typed := paths[ref.Type]
		if o == nil || !typed || !mi.keeps(ref.Type, want) {
			return nil, false
		}
		out = append(out, o.content(ref, want))
	}
	return out, true
}

// list answers a retrieve through view v: every kept object of the view's types (and of
// the retrieve's) under its container, recursively.
func (mi *inventoryMirror) list(v mirrorView, paths map[string][]string) ([]types.ObjectContent, bool) {
	mi.mu.RLock()
	defer mi.mu.RUnlock()
	var out []types.ObjectContent
	for ref, o := range mi.objects {
		if !isKindOf(ref.Type, v.kinds) {
			continue
		}
		var want []string
		for requested, ps := range paths {
			if isKindOf(ref.Type, []string{requested}) {
				want = append(want, ps...)
			}
		}
		if len(want) == 0 {
			continue
		}
		if !mi.keeps(ref.Type, want) {
			return nil, false
		}
		if v.container != mi.root && !mi.under(ref, v.container) { // the root holds every object
			continue
		}
		out = append(out, o.content(ref, want))
	}
	return out, true
}

// under reports whether container is an ancestor of ref (by parent); mi.mu is held.
func (mi *inventoryMirror) under(ref, container types.ManagedObjectReference) bool {
	for range 64 { // deeper than any inventory; a loop would be a broken feed
		o := mi.objects[ref]
		if o == nil {
			return false
		}
		p, ok := o.props["parent"].(types.ManagedObjectReference)
		if !ok {
			return false
		}
		if p == container {
			return true
		}
		ref = p
	}
	return false
}

// content is the object's requested properties as a retrieve returns them: each one
// it has, in the order asked, as a copy that the caller may change.
func (o *mirroredObject) content(ref types.ManagedObjectReference, paths []string) types.ObjectContent {
	oc := types.ObjectContent{Obj: ref}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		if v, ok := o.props[p]; ok {
			oc.PropSet = append(oc.PropSet, types.DynamicProperty{Name: p, Val: deepCopy(v)})
		}
	}
	return oc
}

// keeps reports whether the mirror keeps every one of paths for objects of type kind;
// mi.mu is held.
func (mi *inventoryMirror) keeps(kind string, paths []string) bool {
	kept := mi.props[kind]
	for _, p := range paths {
		if !slices.Contains(kept, p) {
			return false
		}
	}
	return true
}

// kindsOf are the kept types that are a kind of the requested type, as a container view
// or a property spec matches types (a distributed portgroup is a Network).
func kindsOf(requested string) []string {
	switch requested {
	case "ManagedEntity":
		return nil // a listing of everything is not a pre-flight's
	case "ComputeResource":
		return []string{"ComputeResource", "ClusterComputeResource"}
	case "Network":
		return []string{"Network", "DistributedVirtualPortgroup", "OpaqueNetwork"}
	case "ResourcePool":
		return []string{"ResourcePool", "VirtualApp"}
	case "DistributedVirtualSwitch":
		return []string{"DistributedVirtualSwitch", "VmwareDistributedVirtualSwitch"}
	}
	if _, kept := mirroredProps[requested]; kept {
		return []string{requested}
	}
	return nil
}

func isKindOf(kind string, requested []string) bool {
	for _, r := range requested {
		if slices.Contains(kindsOf(r), kind) {
			return true
		}
	}
	return false
}

// deepCopy copies a property value all the way down: pre-flight code may change what it
// decoded (a device's backing, a name made readable), and must never change the mirror.
func deepCopy(v types.AnyType) types.AnyType {
	if v == nil {
		return nil
	}
	return copyValue(reflect.ValueOf(v)).Interface()
}

func copyValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(copyValue(v.Elem()))
		return c
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(copyValue(v.Elem()))
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(copyValue(v.Index(i)))
		}
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(copyValue(it.Key()), copyValue(it.Value()))
		}
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v) // unexported fields as they are (vim25 types have none worth copying)
		for i := range v.NumField() {
			if c.Field(i).CanSet() {
				c.Field(i).Set(copyValue(v.Field(i)))
			}
		}
		return c
	case reflect.Array:
		c := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			c.Index(i).Set(copyValue(v.Index(i)))
		}
		return c
	}
	return v
}
