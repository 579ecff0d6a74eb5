package xvmsim

import (
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Why the lab answers some WaitForUpdatesEx calls itself: a client that follows a whole
// inventory through a container view (xvmbot's inventory mirror) costs a vCenter the
// objects that changed. vcsim's collector instead reads every object of the view again,
// each copied through XML, for every object created or changed anywhere, tasks
// included: a busy lab then spends most of its CPU on one idle mirror (more than half of
// it in the ack benchmark, BENCHMARKS.md), and its updates come seconds late. The
// lab's feed reads again only the objects that changed, and the whole view only when
// an object of a watched type comes or goes. It answers the calls of collectors whose
// filters traverse a container view; vcsim's collector keeps answering every other
// (the waits for tasks). Its reads hold the gate like any request, and its waits do not.

// feederType and feederValue, like the relocator's, name no object: the intercept
// points a view-following collector's WaitForUpdatesEx and CancelWaitForUpdates at the
// feeder.
const (
	feederType  = "XvmsimFeeder"
	feederValue = "xvmsim-feeder"
)

// feeder follows one simulated vCenter's changes for the collectors that watch a view.
type feeder struct {
	Self types.ManagedObjectReference
	vc   *VC

	mu    sync.Mutex
	feeds map[types.ManagedObjectReference]*feed // by collector
}

// feed is one collector's state: what it sent, and what changed since.
type feed struct {
	wake   chan struct{} // a change, or a cancel
	mu     sync.Mutex
	sent   map[types.ManagedObjectReference]map[string]types.AnyType // nil before the first answer
	kinds  map[string]bool                                           // the types its filters watch
	views  map[types.ManagedObjectReference]bool                     // the views it traverses
	dirty  map[types.ManagedObjectReference]bool                     // changed objects it sent
	rescan bool                                                      // a watched object came or went
	cancel bool
	seq    int
}

func newFeeder(vc *VC) *feeder {
	return &feeder{Self: types.ManagedObjectReference{Type: feederType, Value: feederValue}, vc: vc,
		feeds: map[types.ManagedObjectReference]*feed{}}
}

func (f *feeder) Reference() types.ManagedObjectReference { return f.Self }

// Lock and Unlock opt the feeder out of the lock the simulator holds on an object for
// each call to it (a sync.Locker's own lock is used instead): one collector's wait, which
// lasts until something changes, must not hold up another's, nor the cancel of it. The
// feeder's state has locks of its own.
func (f *feeder) Lock()   {}
func (f *feeder) Unlock() {}

// follows reports whether collector pc has a filter that traverses a container view:
// the calls the feeder answers.
func follows(ctx *simulator.Context, pc types.ManagedObjectReference) bool {
	c, ok := ctx.Session.Get(pc).(*simulator.PropertyCollector)
	if !ok {
		return false
	}
	for _, ref := range c.Filter {
		if fl, ok := ctx.Session.Get(ref).(*simulator.PropertyFilter); ok {
			for _, os := range fl.Spec.ObjectSet {
				if os.Obj.Type == "ContainerView" && len(os.SelectSet) > 0 {
					return true
				}
			}
		}
	}
	return false
}

// specs are collector pc's filter specs.
func specs(ctx *simulator.Context, pc types.ManagedObjectReference) []types.PropertyFilterSpec {
	var out []types.PropertyFilterSpec
	if c, ok := ctx.Session.Get(pc).(*simulator.PropertyCollector); ok {
		for _, ref := range c.Filter {
			if fl, ok := ctx.Session.Get(ref).(*simulator.PropertyFilter); ok {
				out = append(out, fl.Spec)
			}
		}
	}
	return out
}

func (f *feeder) feed(ctx *simulator.Context, pc types.ManagedObjectReference) *feed {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := f.feeds[pc]
	if fd == nil {
		fd = &feed{wake: make(chan struct{}, 1), kinds: map[string]bool{}, views: map[types.ManagedObjectReference]bool{}}
		for _, s := range specs(ctx, pc) {
			for _, ps := range s.PropSet {
				fd.kinds[ps.Type] = true
			}
			for _, os := range s.ObjectSet {
				fd.views[os.Obj] = true
			}
		}
		f.feeds[pc] = fd
	}
	return fd
}

// forget drops collector pc's feed (it was destroyed).
func (f *feeder) forget(pc types.ManagedObjectReference) {
	f.mu.Lock()
	delete(f.feeds, pc)
	f.mu.Unlock()
}

func (f *feeder) each(fn func(*feed) bool) {
	f.mu.Lock()
	feeds := make([]*feed, 0, len(f.feeds))
	for _, fd := range f.feeds {
		feeds = append(feeds, fd)
	}
	f.mu.Unlock()
	for _, fd := range feeds {
		fd.mu.Lock()
		woke := fn(fd)
		fd.mu.Unlock()
		if woke {
			select {
			case fd.wake <- struct{}{}:
			default:
			}
		}
	}
}

// PutObject, UpdateObject and RemoveObject make the feeder a registry handler: told of
// every object created, changed or removed.
func (f *feeder) PutObject(_ *simulator.Context, o mo.Reference) {
	ref := o.Reference()
	f.each(func(fd *feed) bool {
		if fd.kinds[ref.Type] || fd.kinds["ManagedEntity"] {
			fd.rescan = true
			return true
		}
		return false
	})
}

func (f *feeder) UpdateObject(_ *simulator.Context, o mo.Reference, _ []types.PropertyChange) {
	ref := o.Reference()
	f.each(func(fd *feed) bool {
		switch {
		case fd.views[ref]: // the view's list of objects changed
			fd.rescan = true
		case fd.sent[ref] != nil:
			if fd.dirty == nil {
				fd.dirty = map[types.ManagedObjectReference]bool{}
			}
			fd.dirty[ref] = true
		default:
			return false
		}
		return true
	})
}

func (f *feeder) RemoveObject(_ *simulator.Context, ref types.ManagedObjectReference) {
	f.each(func(fd *feed) bool {
		if fd.sent[ref] != nil {
			fd.rescan = true
			return true
		}
		return false
	})
}

// WaitForUpdatesEx is found by the simulator's reflection-based dispatch.
func (f *feeder) WaitForUpdatesEx(ctx *simulator.Context, req *types.WaitForUpdatesEx) soap.HasFault {
	body := &methods.WaitForUpdatesExBody{}
	fd := f.feed(ctx, req.This)
	var deadline <-chan time.Time
	once := false
	if o := req.Options; o != nil && o.MaxWaitSeconds != nil {
		if *o.MaxWaitSeconds == 0 {
			once = true
		} else {
			t := time.NewTimer(time.Duration(*o.MaxWaitSeconds) * time.Second)
			defer t.Stop()
			deadline = t.C
		}
	}
	for {
		set, fault := f.changes(ctx, req.This, fd)
		if fault != nil {
			body.Fault_ = simulator.Fault("", fault)
			return body
		}
		if set != nil || once {
			body.Res = &types.WaitForUpdatesExResponse{Returnval: set}
			return body
		}
		select {
		case <-fd.wake:
		case <-deadline:
			body.Res = &types.WaitForUpdatesExResponse{}
			return body
		}
	}
}

// CancelWaitForUpdates is found by the simulator's reflection-based dispatch.
func (f *feeder) CancelWaitForUpdates(_ *simulator.Context, req *types.CancelWaitForUpdates) soap.HasFault {
	f.mu.Lock()
	fd := f.feeds[req.This]
	f.mu.Unlock()
	if fd != nil {
		fd.mu.Lock()
		fd.cancel = true
		fd.mu.Unlock()
		select {
		case fd.wake <- struct{}{}:
		default:
		}
	}
	return &methods.CancelWaitForUpdatesBody{Res: &types.CancelWaitForUpdatesResponse{}}
}

// changes is what the feed has to send now: everything on the first call, then the
// objects that came, went or changed, nil when nothing did.
func (f *feeder) changes(ctx *simulator.Context, pc types.ManagedObjectReference, fd *feed) (*types.UpdateSet, types.BaseMethodFault) {
	fd.mu.Lock()
	if fd.cancel {
		fd.cancel = false
		fd.mu.Unlock()
		return nil, new(types.RequestCanceled)
	}
	full := fd.sent == nil || fd.rescan
	var dirty []types.ManagedObjectReference
	for ref := range fd.dirty {
		dirty = append(dirty, ref)
	}
	fd.rescan, fd.dirty = false, nil
	fd.mu.Unlock()
	if !full && len(dirty) == 0 {
		return nil, nil
	}

	all := specs(ctx, pc)
	if !full {
		for i := range all {
			all[i].ObjectSet = nil
			for _, ref := range dirty {
				all[i].ObjectSet = append(all[i].ObjectSet, types.ObjectSpec{Obj: ref, Skip: types.NewBool(false)})
			}
		}
	}
	collector, ok := ctx.Session.Get(pc).(*simulator.PropertyCollector)
	if !ok {
		return nil, &types.ManagedObjectNotFound{Obj: pc}
	}
	filter := types.ManagedObjectReference{}
	if len(collector.Filter) > 0 {
		filter = collector.Filter[0]
	}
	f.vc.gate.RLock() // the objects are read as a request reads them
	res := collector.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{This: pc, SpecSet: all})
	f.vc.gate.RUnlock()
	if res.Fault() != nil {
		if full || len(dirty) == 0 {
			if bf, ok := res.Fault().VimFault().(types.BaseMethodFault); ok {
				return nil, bf
			}
			return nil, &types.InvalidArgument{}
		}
		// One of the changed objects is gone since: the next rescan says so.
		fd.mu.Lock()
		fd.rescan = true
		fd.mu.Unlock()
		return f.changes(ctx, pc, fd)
	}
	var objects []types.ObjectContent
	if r := res.(*methods.RetrievePropertiesExBody).Res; r != nil && r.Returnval != nil {
		objects = r.Returnval.Objects
	}

	fd.mu.Lock()
	defer fd.mu.Unlock()
	first := fd.sent == nil
	if first {
		fd.sent = map[types.ManagedObjectReference]map[string]types.AnyType{}
	}
	var updates []types.ObjectUpdate
	seen := map[types.ManagedObjectReference]bool{}
	for _, oc := range objects {
		seen[oc.Obj] = true
		now := map[string]types.AnyType{}
		for _, p := range oc.PropSet {
			now[p.Name] = p.Val
		}
		was, known := fd.sent[oc.Obj]
		u := types.ObjectUpdate{Obj: oc.Obj, Kind: types.ObjectUpdateKindModify}
		if !known {
			u.Kind = types.ObjectUpdateKindEnter
		}
		for name, val := range now {
			if !known || !reflect.DeepEqual(was[name], val) {
				u.ChangeSet = append(u.ChangeSet, types.PropertyChange{Name: name, Op: types.PropertyChangeOpAssign, Val: val})
			}
		}
		for name := range was {
			if _, still := now[name]; !still {
				u.ChangeSet = append(u.ChangeSet, types.PropertyChange{Name: name, Op: types.PropertyChangeOpRemove})
			}
		}
		fd.sent[oc.Obj] = now
		if !known || len(u.ChangeSet) > 0 {
			updates = append(updates, u)
		}
	}
	if full {
		for ref := range fd.sent {
			if !seen[ref] {
				delete(fd.sent, ref)
				updates = append(updates, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindLeave})
			}
		}
	}
	if len(updates) == 0 && !first {
		return nil, nil
	}
	fd.seq++
	return &types.UpdateSet{Version: strconv.Itoa(fd.seq),
		FilterSet: []types.PropertyFilterUpdate{{Filter: filter, ObjectSet: updates}}}, nil
}
