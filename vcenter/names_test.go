package vcenter

import (
	"context"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

func TestReadableAndEscapedNames(t *testing.T) {
	tests := []struct{ vcenter, shown string }{
		{"10.10.12.0%2f24", "10.10.12.0/24"},
		{"10.10.12.0%2F24", "10.10.12.0/24"},
		{`dom%5cuser`, `dom\user`},
		{"50%25 off", "50% off"},
		{"a%252f", "a%2f"}, // an escaped percent before "2f" is a percent and "2f"
		{"web-01", "web-01"},
		{"100%", "100%"}, // a percent that starts no escape
		{"%2", "%2"},
	}
	for _, tt := range tests {
		if got := readable(tt.vcenter); got != tt.shown {
			t.Errorf("readable(%q) = %q, want %q", tt.vcenter, got, tt.shown)
		}
		if tt.vcenter == "10.10.12.0%2F24" || tt.vcenter == "100%" || tt.vcenter == "%2" {
			continue // not the form escaped writes
		}
		if got := escaped(tt.shown); got != tt.vcenter {
			t.Errorf("escaped(%q) = %q, want %q", tt.shown, got, tt.vcenter)
		}
	}
	if got := readablePath("/dc-west/vm/apps%2fweb/10%25"); got != "/dc-west/vm/apps%2fweb/10%" {
		t.Errorf("readablePath kept %q; a slash in a folder's name stays escaped, the rest is readable", got)
	}
}

// A portgroup named after its subnet and a VM with a slash in its name are found
// whether typed as the vSphere Client shows them or as vCenter returns them; the plan
// shows them readable, and the backing of the standard portgroup names it as vCenter
// returns it.
func TestPlanMatchesEscapedNames(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct{ vm, network, folder string }{
		{"app/01", "10.10.12.0/24", "dev/test"},
		{xvmsim.SlashVM, xvmsim.WestCIDRPortgroup, "/dc-west/vm/" + xvmsim.WestSlashFolder},
	} {
		t.Run(tc.vm, func(t *testing.T) {
			p, err := m.Plan(ctx, MoveSpec{VMs: []string{tc.vm}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{
				Cluster: xvmsim.WestNSXCluster, Datastore: xvmsim.WestGold, Folder: tc.folder,
				Networks: []move.Network{{Source: xvmsim.StandardPortgroup, Target: tc.network}}}})
			if err != nil {
				t.Fatal(err)
			}
			if b := findingsOf(p, Blocker); len(b) > 0 {
				t.Fatalf("blockers: %q", b)
			}
			if len(p.VMs) != 1 || p.VMs[0].Name != "app/01" || len(p.VMs[0].NICs) != 1 || p.VMs[0].NICs[0].Target != "10.10.12.0/24" {
				t.Fatalf("plan shows %+v, want app/01 with its NIC onto 10.10.12.0/24", p.VMs)
			}
			if p.Folder != xvmsim.WestSlashFolder {
				t.Errorf("plan's folder %q, want %q: the folder named dev/test, its slash escaped in a path", p.Folder, xvmsim.WestSlashFolder)
			}
			vp := p.vms["app/01"]
			if vp == nil || len(vp.nics) != 1 {
				t.Fatalf("no NIC plan for app/01: %+v", vp)
			}
			b, ok := vp.nics[0].backing.(*types.VirtualEthernetCardNetworkBackingInfo)
			if !ok || b.DeviceName != xvmsim.WestCIDRPortgroup || b.Network == nil {
				t.Errorf("backing %+v, want the standard portgroup by the name vCenter returns, %q, and its reference", vp.nics[0].backing, xvmsim.WestCIDRPortgroup)
			}
		})
	}

	got, err := m.Where(ctx, xvmsim.EastVC, "app/01")
	if err != nil {
		t.Fatal(err)
	}
	if got.Folder != xvmsim.EastNetFolder || len(got.Networks) != 1 || got.Networks[0] != xvmsim.StandardPortgroup {
		t.Errorf("Where(app/01) = %+v", got)
	}

	opts, err := m.List(ctx, xvmsim.WestVC, KindPortgroups, "", Scope{Cluster: xvmsim.WestNSXCluster})
	if err != nil {
		t.Fatal(err)
	}
	if got := labels(opts); got != "10.10.12.0/24,seg-web,VM Network" {
		t.Errorf("portgroups of %s: %q", xvmsim.WestNSXCluster, got)
	}
	if vms, err := m.List(ctx, xvmsim.EastVC, KindVMs, "app/", Scope{}); err != nil || labels(vms) != "app/01" || vms[0].Value != "app/01" {
		t.Errorf("VMs starting app/: %+v, %v", vms, err)
	}
}

// A NIC on an NSX segment (an opaque network) is shown on the segment by its name, a
// network mapping from that name applies to it, and Where names the segment.
func TestSegments(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := m.Plan(ctx, MoveSpec{VMs: []string{xvmsim.SegmentVM}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{
		Cluster: xvmsim.WestNSXCluster, Datastore: xvmsim.WestGold, Folder: xvmsim.WestLegacyFolder,
		Networks: []move.Network{{Source: xvmsim.EastSegment, Target: xvmsim.WestSegment}}}})
	if err != nil {
		t.Fatal(err)
	}
	if b, w := findingsOf(p, Blocker), findingsOf(p, Warning); len(b)+len(w) > 0 {
		t.Fatalf("blockers %q, warnings %q", b, w)
	}
	if nics := p.VMs[0].NICs; len(nics) != 1 || nics[0].Network != xvmsim.EastSegment || nics[0].Target != xvmsim.WestSegment {
		t.Fatalf("NICs %+v, want one from %s to %s", nics, xvmsim.EastSegment, xvmsim.WestSegment)
	}
	vp := p.vms[xvmsim.SegmentVM]
	if vp == nil || len(vp.nics) != 1 {
		t.Fatalf("no NIC plan: %+v", vp)
	}
	if b, ok := vp.nics[0].backing.(*types.VirtualEthernetCardOpaqueNetworkBackingInfo); !ok || b.OpaqueNetworkId == "" {
		t.Errorf("backing %+v, want the segment's opaque backing", vp.nics[0].backing)
	}

	got, err := m.Where(ctx, xvmsim.EastVC, xvmsim.SegmentVM)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Networks) != 1 || got.Networks[0] != xvmsim.EastSegment {
		t.Errorf("Where(%s).Networks = %q, want [%s]", xvmsim.SegmentVM, got.Networks, xvmsim.EastSegment)
	}
}
