package vcenter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

func labels(opts []Option) string {
	var out []string
	for _, o := range opts {
		out = append(out, o.Label)
	}
	return strings.Join(out, ",")
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, m, _ := sharedLab(t)
	tests := []struct {
		vc     string
		kind   Kind
		prefix string
		scope  Scope
		want   string // labels, in order
		desc   string // in the first option's description
	}{
		{xvmsim.WestVC, KindClusters, "", Scope{}, "west-maint,west-nsx,west-prod,west-std", "1 host"},
		{xvmsim.WestVC, KindHosts, "", Scope{Cluster: xvmsim.WestCluster}, "esx-w1.lab,esx-w2.lab,esx-w3.lab", "west-prod · 1 VM"},
		{xvmsim.WestVC, KindHosts, "esx-w4", Scope{}, "esx-w4.lab", "west-maint · in maintenance mode"},
		{xvmsim.WestVC, KindDatastores, "", Scope{}, "ds-gold,ds-silver", "GB free of"},
		{xvmsim.WestVC, KindDatastores, "", Scope{Host: xvmsim.WestStdHost}, "ds-gold", ""},
		{xvmsim.WestVC, KindPortgroups, "", Scope{Cluster: xvmsim.WestCluster}, "app-pg,db-pg,VM Network", "distributed"},
		{xvmsim.WestVC, KindPortgroups, "", Scope{Cluster: xvmsim.WestStdCluster}, "VM Network", "standard"},
		{xvmsim.WestVC, KindFolders, "migrated", Scope{}, "migrated,migrated/db,migrated/web", "in dc-west"},
		{xvmsim.WestVC, KindPools, "", Scope{Cluster: xvmsim.WestCluster}, "prod-pool", "in west-prod"},
		{xvmsim.EastVC, KindVMs, "WEB-", Scope{}, "web-01,web-02,web-03", "powered on · esx-e1.lab"},
		{xvmsim.EastVC, KindVMs, "trip-t", Scope{}, "trip-twin,trip-twin", ""}, // trip-template is left out
		{xvmsim.EastVC, KindVMs, "", Scope{Host: xvmsim.EastHost2}, "web-02", ""},
	}
	for _, tt := range tests {
		t.Run(tt.vc+"/"+string(tt.kind)+"/"+tt.prefix+tt.scope.Cluster+tt.scope.Host, func(t *testing.T) {
			opts, err := m.List(ctx, tt.vc, tt.kind, tt.prefix, tt.scope)
			if err != nil {
				t.Fatal(err)
			}
			if got := labels(opts); got != tt.want {
				t.Errorf("labels %q, want %q", got, tt.want)
			}
			if len(opts) > 0 && (opts[0].Value == "" || !strings.Contains(opts[0].Description, tt.desc)) {
				t.Errorf("first option %+v, want a value and a description with %q", opts[0], tt.desc)
			}
		})
	}
	if _, err := m.List(ctx, "vc-nowhere", KindVMs, "", Scope{}); !errors.Is(err, ErrUnknownVCenter) {
		t.Errorf("unknown vCenter: %v", err)
	}
	if _, err := m.List(ctx, xvmsim.EastVC, "switches", "", Scope{}); err == nil {
		t.Error("unknown kind: no error")
	}
}

// Not parallel: it counts vc-east's requests on the shared lab (shared_test.go).
func TestListCache(t *testing.T) {
	ctx := context.Background()
	lab, m, _ := sharedLab(t)
	east := lab.VC(xvmsim.EastVC)
	if _, err := m.List(ctx, xvmsim.EastVC, KindVMs, "web", Scope{}); err != nil {
		t.Fatal(err)
	}
	before := east.Requests()
	// Within the TTL, with another prefix and from many callers at once: no round trip.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if opts, err := m.List(ctx, xvmsim.EastVC, KindVMs, "db", Scope{}); err != nil || labels(opts) != "db-01" {
				t.Errorf("cached list: %v, %v", labels(opts), err)
			}
		}()
	}
	wg.Wait()
	if n := east.Requests() - before; n != 0 {
		t.Errorf("%d requests to vc-east within the TTL, want 0", n)
	}

	// Once the TTL has passed, one load serves every concurrent caller.
	m.lists.ttl = 0
	before = east.Requests()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.List(ctx, xvmsim.EastVC, KindClusters, "", Scope{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := east.Requests() - before; n == 0 || n > 8*6 {
		t.Errorf("%d requests after expiry, want a reload", n)
	}
}

// The cache holds listings for as many scopes as wizards ask for, but not forever and
// not without end: a listing past its TTL is dropped when another is stored, and once
// the cache is full the oldest listing makes room for the newest.
func TestListCacheBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lc := newListCache()
	lc.max = 4
	clock := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	lc.now = func() time.Time { return clock }
	loads := map[listKey]int{}
	list := func(host string) {
		t.Helper()
		key := listKey{vc: xvmsim.WestVC, kind: KindVMs, scope: Scope{Host: host}}
		opts, err := lc.get(ctx, key, func(context.Context) ([]Option, error) {
			loads[key]++
			return []Option{{Label: host, Value: host}}, nil
		})
		if err != nil || len(opts) != 1 || opts[0].Value != host {
			t.Fatalf("list %s: %+v, %v", host, opts, err)
		}
	}
	held := func() []string {
		lc.mu.Lock()
		defer lc.mu.Unlock()
		var out []string
		for k := range lc.entries {
			out = append(out, k.scope.Host)
		}
		slices.Sort(out)
		return out
	}

	list("esx-old")
	clock = clock.Add(lc.ttl)
	list("esx-a")
	if got := held(); !slices.Equal(got, []string{"esx-a"}) {
		t.Errorf("after the TTL and another listing the cache holds %v, want only esx-a", got)
	}

	for i := range 10 {
		clock = clock.Add(time.Second)
		list(fmt.Sprintf("esx-%02d", i))
	}
	want := []string{"esx-06", "esx-07", "esx-08", "esx-09"}
	if got := held(); !slices.Equal(got, want) {
		t.Errorf("after 11 scopes within the TTL the cache holds %v, want the newest %d: %v", got, lc.max, want)
	}
	// A listing pushed out is loaded again; one still held is not.
	list("esx-00")
	list("esx-09")
	for host, n := range map[string]int{"esx-00": 2, "esx-09": 1} {
		if got := loads[listKey{vc: xvmsim.WestVC, kind: KindVMs, scope: Scope{Host: host}}]; got != n {
			t.Errorf("%s loaded %d times, want %d", host, got, n)
		}
	}
	if got := len(held()); got > lc.max {
		t.Errorf("cache holds %d listings, more than its %d", got, lc.max)
	}
}
