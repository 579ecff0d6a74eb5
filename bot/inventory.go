package bot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/xvmbot/xvmbot/vcenter"
)

// inventoryKind is what a wizard select lists.
type inventoryKind string

// The kinds the wizard asks for.
const (
	kindClusters   inventoryKind = "clusters"
	kindHosts      inventoryKind = "hosts"
	kindDatastores inventoryKind = "datastores"
	kindFolders    inventoryKind = "folders"
	kindPortgroups inventoryKind = "portgroups"
	kindVMs        inventoryKind = "vms"
	kindPools      inventoryKind = "pools"
	kindPolicies   inventoryKind = "policies"
)

// scopeRef narrows a listing to what a cluster or a host can use.
type scopeRef struct {
	Cluster string
	Host    string
}

// choice is one entry of a select: what the person reads and the value it stands for.
type choice struct {
	Label       string
	Value       string
	Description string
}

// inventory lists a vCenter's objects whose name contains what was typed, for the
// wizard's selects.
type inventory interface {
	choices(ctx context.Context, vc string, kind inventoryKind, prefix string, scope scopeRef) ([]choice, error)
}

// Timings and sizes of option lookups: Slack waits 3 s for options and shows at most 100.
const (
	suggestTimeout   = 2500 * time.Millisecond
	choicesCacheFor  = 30 * time.Second
	maxChoices       = 50
	maxChoiceLabel   = 75
	choicesCacheSize = 512
)

// cachedInventory keeps recent listings for a short while: people type a few letters at
// a time, and every keystroke is an option request.
type cachedInventory struct {
	inv inventory
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedChoices
}

type cachedChoices struct {
	at  time.Time
	out []choice
}

func newCachedInventory(inv inventory, now func() time.Time) *cachedInventory {
	return &cachedInventory{inv: inv, now: now, cache: map[string]cachedChoices{}}
}

func (c *cachedInventory) choices(ctx context.Context, vc string, kind inventoryKind, prefix string, scope scopeRef) ([]choice, error) {
	key := strings.Join([]string{vc, string(kind), strings.ToLower(prefix), scope.Cluster, scope.Host}, "\x00")
	now := c.now()
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && now.Sub(e.at) < choicesCacheFor {
		c.mu.Unlock()
		return e.out, nil
	}
	c.mu.Unlock()
	out, err := c.inv.choices(ctx, vc, kind, prefix, scope)
	if err != nil {
		return nil, fmt.Errorf("list %s of %s: %w", kind, vc, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= choicesCacheSize {
		for k, e := range c.cache {
			if now.Sub(e.at) >= choicesCacheFor {
				delete(c.cache, k)
			}
		}
		if len(c.cache) >= choicesCacheSize {
			clear(c.cache)
		}
	}
	c.cache[key] = cachedChoices{at: now, out: out}
	return out, nil
}

// vcInfo is what the bot last learnt of a vCenter (version, thumbprint, reachability).
type vcInfo struct {
	ep  vcenter.Endpoint
	err error
	at  time.Time
}

const vcInfoFor = 5 * time.Minute

// vcInfoCache remembers what each configured vCenter last said of itself, so that the
// wizard opens without asking every vCenter again.
type vcInfoCache struct {
	vcs planner
	now func() time.Time

	mu    sync.Mutex
	infos map[string]vcInfo // vCenter name → what was last learnt of it
}

func newVCInfoCache(vcs planner, now func() time.Time) *vcInfoCache {
	return &vcInfoCache{vcs: vcs, now: now, infos: map[string]vcInfo{}}
}

// get returns every configured vCenter's endpoint, from the cache when fresh unless fresh
// is set, asking all the others in parallel within ctx. A vCenter that does not answer in
// time is shown as it was last known, if it was.
func (c *vcInfoCache) get(ctx context.Context, fresh bool) []vcInfo {
	names := c.vcs.Names()
	out := make([]vcInfo, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		c.mu.Lock()
		known, ok := c.infos[name]
		c.mu.Unlock()
		if ok && !fresh && c.now().Sub(known.at) < vcInfoFor && known.err == nil {
			out[i] = known
			continue
		}
		wg.Go(func() {
			ep, err := c.vcs.Info(ctx, name)
			ep.Name = name
			got := vcInfo{ep: ep, err: err, at: c.now()}
			if err != nil && ctx.Err() != nil && ok {
				got = known // timed out: what we knew beats nothing
			}
			out[i] = got
			c.mu.Lock()
			c.infos[name] = got
			c.mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// lister is the vCenters' inventory listing; *vcenter.Manager satisfies it.
type lister interface {
	List(ctx context.Context, vcName string, kind vcenter.Kind, prefix string, scope vcenter.Scope) ([]vcenter.Option, error)
}

var _ lister = (*vcenter.Manager)(nil)

// listerInventory adapts a lister to the wizard's inventory.
type listerInventory struct{ l lister }

func (li listerInventory) choices(ctx context.Context, vc string, kind inventoryKind, prefix string, scope scopeRef) ([]choice, error) {
	opts, err := li.l.List(ctx, vc, vcenter.Kind(kind), prefix, vcenter.Scope{Cluster: scope.Cluster, Host: scope.Host})
	if err != nil {
		return nil, err
	}
	out := make([]choice, len(opts))
	for i, o := range opts {
		out[i] = choice{Label: o.Label, Value: o.Value, Description: o.Description}
	}
	return out, nil
}

// inventoryOf returns the inventory listing a planner offers, if it offers one.
func inventoryOf(p planner) inventory {
	switch inv := p.(type) {
	case inventory:
		return inv
	case lister:
		return listerInventory{l: inv}
	}
	return nil
}
