package vcenter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

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
	ctx := context.Background()
	_, m, _ := startLab(t)
	tests := []struct {
		vc     string
		kind   Kind
		prefix string
		scope  Scope
		want   string // labels, in order
		desc   string // in the first option's description
	}{
		{xvmsim.WestVC, KindClusters, "", Scope{}, "west-maint,west-prod,west-std", "1 host"},
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

func TestListCache(t *testing.T) {
	ctx := context.Background()
	lab, m, _ := startLab(t)
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
