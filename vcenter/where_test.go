package vcenter

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestWhere(t *testing.T) {
	_, m, _ := startLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		vc, vm string
		want   Where
	}{
		{"vc-east", "web-01", Where{VCenter: "vc-east", Cluster: "east-prod", Pool: "apps", Datastore: "east-ds-01",
			Folder: "apps/web", Networks: []string{"east-app-pg"}, DiskFormat: DiskThick, PowerState: "poweredOn"}},
		{"vc-east", "db-01", Where{VCenter: "vc-east", Cluster: "east-prod", Pool: "Resources", Datastore: "east-ds-01",
			Folder: "apps/db", Networks: []string{"east-app-pg", "VM Network"}, DiskFormat: DiskThick, PowerState: "poweredOff"}},
		{"vc-west", "legacy-01", Where{VCenter: "vc-west", Cluster: "west-prod", Pool: "Resources", Datastore: "ds-gold",
			Folder: "legacy", Networks: []string{"app-pg"}, DiskFormat: DiskThin, PowerState: "poweredOn"}},
	}
	for _, tt := range tests {
		t.Run(tt.vm, func(t *testing.T) {
			got, err := m.Where(ctx, tt.vc, tt.vm)
			if err != nil {
				t.Fatal(err)
			}
			if got.Host == "" {
				t.Errorf("no host")
			}
			got.Host, got.Datastores = "", nil
			if got.VCenter != tt.want.VCenter || got.Cluster != tt.want.Cluster || got.Pool != tt.want.Pool ||
				got.Datastore != tt.want.Datastore || got.Folder != tt.want.Folder || !slices.Equal(got.Networks, tt.want.Networks) ||
				got.DiskFormat != tt.want.DiskFormat || got.PowerState != tt.want.PowerState {
				t.Errorf("Where = %+v\nwant    %+v", *got, tt.want)
			}
		})
	}
	if _, err := m.Where(ctx, "vc-east", "nope-99"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
}
