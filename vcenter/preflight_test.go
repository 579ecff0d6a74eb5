package vcenter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// findingWith returns the first finding of that severity whose message
// holds every part.
func findingWith(p *Plan, sev Severity, parts ...string) *Finding {
	for i, f := range p.Findings {
		if f.Severity != sev {
			continue
		}
		ok := true
		for _, part := range parts {
			ok = ok && strings.Contains(f.Message, part)
		}
		if ok {
			return &p.Findings[i]
		}
	}
	return nil
}

// findingCase is a plan that must carry one finding of sev holding every one of words,
// moving to west-prod / ds-gold / app-pg unless edit says otherwise.
type findingCase struct {
	name  string
	vms   []string
	edit  func(*MoveSpec)
	sev   Severity
	words []string
}

// findingBase is the move findingCase edits.
var findingBase = MoveSpec{Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Folder: xvmsim.WestDBFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}

// Every pre-flight finding that a VM or a place of xvmsim built for it trips; those of a
// broken lab are in TestPreflightFindingsOfABrokenLab.
func TestPreflightFindings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, m, _ := sharedLab(t)
	base := findingBase
	type tcase = findingCase
	tests := []tcase{
		{"vm not found", []string{"trip-nope"}, nil, Blocker, []string{"VM trip-nope not found in vc-east", "trip-"}},
		{"inventory path into another datacenter", []string{"web-01"}, func(s *MoveSpec) { s.Folder = "/dc-east/vm/apps/web" },
			Blocker, []string{"folder /dc-east/vm/apps/web is in datacenter dc-east", "go to datacenter dc-west"}},
		{"vm name not unique", []string{xvmsim.TripTwin}, nil, Blocker, []string{"2 VMs are named trip-twin in vc-east"}},
		{"target name collision in the folder", []string{xvmsim.DupVM}, func(s *MoveSpec) { s.Folder = xvmsim.WestWebFolder },
			Blocker, []string{"a VM named dup-01 already exists in vc-west folder migrated/web"}},
		{"target name elsewhere", []string{xvmsim.DupVM}, nil, Warning, []string{"a VM named dup-01 already exists elsewhere in vc-west"}},
		{"cluster host in maintenance", []string{"web-01"}, func(s *MoveSpec) { s.Cluster = xvmsim.WestMaintCluster },
			Blocker, []string{"no host of cluster west-maint can take the VMs", "esx-w4.lab is in maintenance mode"}},
		{"host in maintenance", []string{"web-01"}, func(s *MoveSpec) { s.Cluster, s.Host = "", xvmsim.WestMaintHost },
			Blocker, []string{"host esx-w4.lab", "is in maintenance mode"}},
		{"datastore not reachable from the host", []string{"web-01"}, func(s *MoveSpec) { s.Cluster, s.Host, s.Datastore = "", xvmsim.WestStdHost, xvmsim.WestSilver },
			Blocker, []string{"datastore ds-silver exists in dc-west but no host of west-std sees it", "ds-gold"}},
		{"portgroup not on the host", []string{"web-01"}, func(s *MoveSpec) { s.Cluster = xvmsim.WestStdCluster },
			Blocker, []string{"portgroup app-pg not found in vc-west", "VM Network"}},
		{"distributed to standard", []string{"web-01"}, func(s *MoveSpec) {
			s.Cluster, s.Networks = xvmsim.WestStdCluster, []move.Network{{Target: xvmsim.StandardPortgroup}}
		}, Blocker, []string{"of web-01 is on distributed portgroup east-app-pg; cross vCenter vMotion cannot move it to standard portgroup VM Network"}},
		{"pci passthrough", []string{xvmsim.TripPassthrough}, nil, Blocker, []string{"of trip-passthrough is a PCI passthrough device (NVIDIA A100)"}},
		{"usb", []string{xvmsim.TripUSB}, nil, Blocker, []string{"of trip-usb is a connected USB device"}},
		{"serial port", []string{xvmsim.TripSerial}, nil, Blocker, []string{"of trip-serial uses the host's serial port /dev/ttyS0"}},
		{"parallel port", []string{xvmsim.TripParallel}, nil, Blocker, []string{"of trip-parallel uses the host's parallel port /dev/parport0"}},
		{"cd-rom on a client device", []string{xvmsim.TripCDROMClient}, nil, Blocker, []string{"of trip-cdrom-client is connected to a client device"}},
		{"cd-rom on a host-local iso", []string{xvmsim.TripCDROMISO}, nil, Blocker, []string{"of trip-cdrom-iso is connected to [] /vmimages", "an ISO on the host's own disk"}},
		{"template", []string{xvmsim.TripTemplate}, nil, Blocker, []string{"trip-template is a template"}},
		{"snapshots", []string{xvmsim.TripSnapshot}, nil, Warning, []string{"trip-snapshot has snapshots"}},
		{"suspended", []string{xvmsim.TripSuspended}, nil, Warning, []string{"trip-suspended is suspended"}},
		{"powered off", []string{"db-01"}, nil, OK, []string{"db-01 is powered off and will be moved powered off"}},
		{"thick disk larger than the free space", []string{xvmsim.TripBigDisk}, func(s *MoveSpec) { s.Datastore = xvmsim.WestSilver },
			Blocker, []string{"the disks of trip-bigdisk need 4096.0 GB on ds-silver as disks in their current format; it has 3072.0 GB free"}},
		{"eager disk larger than the free space", []string{xvmsim.TripBigDisk}, func(s *MoveSpec) { s.Datastore, s.DiskFormat = xvmsim.WestSilver, move.Eager },
			Blocker, []string{"need 4096.0 GB on ds-silver as thick eager zeroed disks"}},
		{"thin disk that may outgrow the datastore", []string{xvmsim.TripBigDisk}, func(s *MoveSpec) { s.Datastore, s.DiskFormat = xvmsim.WestSilver, move.Thin },
			Warning, []string{"the disks of trip-bigdisk fit on ds-silver now", "can grow to 4096.0 GB"}},
		{"swap file beyond the free space", []string{xvmsim.TripSwap}, func(s *MoveSpec) { s.Datastore = xvmsim.WestSilver }, Blocker,
			[]string{"trip-swap needs 3073.0 GB on ds-silver (disks 3071.0 GB as disks in their current format, swap 2.0 GB); it has 3072.0 GB free"}},
		{"vms that fit one by one but not together", []string{xvmsim.TripSwap, xvmsim.TripBigDisk}, nil, Blocker,
			[]string{"the 2 VMs need 7169.0 GB on ds-gold (disks 7167.0 GB as disks in their current format, swap 2.0 GB)"}},
		{"thin vm that fits as it is", []string{xvmsim.TripBigThin}, func(s *MoveSpec) { s.Datastore = xvmsim.WestSilver }, Warning,
			[]string{"the disks of trip-bigthin fit on ds-silver now", "can grow to 4096.0 GB"}},
		{"thin vm made thick beyond the free space", []string{xvmsim.TripBigThin}, func(s *MoveSpec) { s.Datastore, s.DiskFormat = xvmsim.WestSilver, move.Thick },
			Blocker, []string{"the disks of trip-bigthin need 4096.0 GB on ds-silver as thick (lazy zeroed) disks; it has 3072.0 GB free"}},
		{"one disk made thick beyond the free space", []string{xvmsim.TripBigThin}, func(s *MoveSpec) {
			s.Datastore, s.Disks = xvmsim.WestSilver, []move.Disk{{Disk: 1, DiskFormat: move.Thick}}
		}, Blocker, []string{"the disks of trip-bigthin need 4096.0 GB on ds-silver as thick (lazy zeroed) disks; it has 3072.0 GB free"}},
		{"a disk placed apart where it does not fit", []string{xvmsim.TripBigDisk}, func(s *MoveSpec) {
			s.Disks = []move.Disk{{Disk: 1, Datastore: xvmsim.WestSilver}}
		}, Blocker, []string{"the disks of trip-bigdisk need 4096.0 GB on ds-silver as disks in their current format; it has 3072.0 GB free"}},
		{"a disk's datastore not found", []string{"web-01"}, func(s *MoveSpec) { s.Disks = []move.Disk{{Disk: 1, Datastore: "ds-nope"}} },
			Blocker, []string{"datastore ds-nope (disk1=) not found in vc-west"}},
		{"a disk the vm does not have", []string{"web-01"}, func(s *MoveSpec) { s.Disks = []move.Disk{{Disk: 3, Datastore: xvmsim.WestSilver}} },
			Warning, []string{"web-01 has no Hard disk 3", "it has 1 disk"}},
		{"a disk placed twice", []string{"db-01"}, func(s *MoveSpec) {
			s.Disks = []move.Disk{{Disk: 2, Datastore: xvmsim.WestSilver}, {Disk: 2, DiskFormat: move.Thin}}
		}, Blocker, []string{"Hard disk 2 is placed twice"}},
		{"vcenter check error", []string{xvmsim.TripCheckError}, nil, Blocker,
			[]string{"vc-east's compatibility check refuses trip-check-error: The target host does not support"}},
		{"vcenter check warning", []string{xvmsim.TripCheckWarn}, nil, Warning,
			[]string{"vc-east's compatibility check warns about trip-check-warning: The vMotion interface"}},
		{"vm named twice", []string{"web-01", "web-01"}, nil, Warning, []string{"web-01 is named twice in the request; it will be moved once"}},
		{"pattern matching nothing", []string{"nomatch-*"}, nil, Blocker, []string{"pattern nomatch-* matches no VM in vc-east"}},
		{"malformed pattern", []string{"web-["}, nil, Blocker, []string{"web-[ is not a valid name pattern"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkFinding(t, m, tt, nil) })
	}
	// The premise of "fit one by one but not together": alone, each fits on ds-gold.
	t.Run("each of those vms alone", func(t *testing.T) {
		for _, vm := range []string{xvmsim.TripSwap, xvmsim.TripBigDisk} {
			spec := base
			spec.VMs = []string{vm}
			p, err := m.Plan(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			if f := findingWith(p, Blocker, "on ds-gold"); f != nil {
				t.Errorf("%s alone: %s", vm, f.Message)
			}
		}
	})
}

// The pre-flight findings of a lab broken first, on a lab of its own; each fault undoes
// itself when its case ends.
func TestPreflightFindingsOfABrokenLab(t *testing.T) {
	t.Parallel()
	lab, m, _ := startLab(t)
	west, east := lab.VC(xvmsim.WestVC), lab.VC(xvmsim.EastVC)
	type tcase = findingCase
	type faultCase struct {
		tcase
		fault func(*testing.T)
	}
	faulted := []faultCase{
		{tcase{"host disconnected", []string{"web-01"}, func(s *MoveSpec) { s.Cluster, s.Host = "", xvmsim.WestHost3 },
			Blocker, []string{"host esx-w3.lab: esx-w3.lab is disconnected"}},
			func(t *testing.T) { hostState(t, west, xvmsim.WestHost3, types.HostSystemConnectionStateDisconnected) }},
		{tcase{"host not responding", []string{"web-01"}, func(s *MoveSpec) { s.Cluster, s.Host = "", xvmsim.WestHost3 },
			Blocker, []string{"host esx-w3.lab: esx-w3.lab is not responding"}},
			func(t *testing.T) { hostState(t, west, xvmsim.WestHost3, types.HostSystemConnectionStateNotResponding) }},
		{tcase{"datastore inaccessible", []string{"web-01"}, nil, Blocker, []string{"datastore ds-gold is not accessible"}},
			func(t *testing.T) { datastoreGone(t, west, xvmsim.WestGold) }},
		{tcase{"target host on old esxi", []string{"web-01"}, func(s *MoveSpec) { s.Cluster, s.Host = "", xvmsim.WestHost3 },
			Blocker, []string{"host esx-w3.lab: esx-w3.lab runs ESXi 6.0.0 (cross vCenter vMotion needs 6.5 or later)"}},
			func(t *testing.T) { hostVersionFor(t, west, xvmsim.WestHost3, "6.0.0") }},
		{tcase{"source host on old esxi", []string{"web-01"}, nil, Blocker,
			[]string{"web-01 runs on esx-e1.lab, which runs ESXi 6.0.0; cross vCenter vMotion needs ESXi 6.5 or later on the source host too"}},
			func(t *testing.T) { hostVersionFor(t, east, xvmsim.EastHost1, "6.0.0") }},
	}
	for _, tt := range faulted {
		t.Run(tt.name, func(t *testing.T) { checkFinding(t, m, tt.tcase, tt.fault) })
	}
}

// checkFinding breaks the lab with fault (if not nil) and plans tt: the plan must carry
// its finding once, with a hint unless it is OK, and be blocked exactly when it is a
// blocker.
func checkFinding(t *testing.T, m *Manager, tt findingCase, fault func(*testing.T)) {
	t.Helper()
	ctx := context.Background()
	spec := findingBase
	spec.VMs = tt.vms
	if tt.edit != nil {
		tt.edit(&spec)
	}
	if fault != nil {
		fault(t)
	}
	p, err := m.Plan(ctx, spec)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	f := findingWith(p, tt.sev, tt.words...)
	if f == nil {
		t.Fatalf("no %s finding saying %q; findings: %+v", tt.sev, tt.words, p.Findings)
	}
	if n := countWith(p, tt.sev, tt.words...); n != 1 {
		t.Errorf("%d %s findings saying %q, want one", n, tt.sev, tt.words)
	}
	if f.Severity == Blocker && len(tt.vms) > 1 && strings.Contains(f.Message, fmt.Sprintf("%d VMs", len(tt.vms))) && f.VM != "" {
		t.Errorf("a blocker about all %d VMs is filed under %s alone", len(tt.vms), f.VM)
	}
	// A blocker or a warning must say what to do about it.
	if tt.sev != OK && f.Hint == "" {
		t.Errorf("%s %q gives no hint", tt.sev, f.Message)
	}
	if tt.sev == Blocker {
		if !p.Blocked() {
			t.Error("a blocker, yet Blocked() is false")
		}
	} else if p.Blocked() {
		t.Errorf("blocked by %v; want only the %s", findingsOf(p, Blocker), tt.sev)
	}
}

// countWith counts the findings of that severity whose message holds every part.
func countWith(p *Plan, sev Severity, parts ...string) int {
	n := 0
	for _, f := range p.Findings {
		ok := f.Severity == sev
		for _, part := range parts {
			ok = ok && strings.Contains(f.Message, part)
		}
		if ok {
			n++
		}
	}
	return n
}

// toggledFor sets a lab toggle to v until the test ends, then puts back what it replaced
// (every xvmsim toggle returns the value it replaced).
func toggledFor[T any](t *testing.T, set func(T) (T, error), v T) {
	t.Helper()
	was, err := set(v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := set(was); err != nil {
			t.Error(err)
		}
	})
}

// hostState makes a host report a connection state until the test ends.
func hostState(t *testing.T, vc *xvmsim.VC, host string, state types.HostSystemConnectionState) {
	t.Helper()
	toggledFor(t, func(s types.HostSystemConnectionState) (types.HostSystemConnectionState, error) {
		return vc.SetHostConnection(host, s)
	}, state)
}

// hostPower makes a host report a power state until the test ends.
func hostPower(t *testing.T, vc *xvmsim.VC, host string, state types.HostSystemPowerState) {
	t.Helper()
	toggledFor(t, func(s types.HostSystemPowerState) (types.HostSystemPowerState, error) {
		return vc.SetHostPowerState(host, s)
	}, state)
}

// hostQuarantine puts a host in quarantine mode until the test ends.
func hostQuarantine(t *testing.T, vc *xvmsim.VC, host string) {
	t.Helper()
	toggledFor(t, func(on bool) (bool, error) { return vc.SetHostQuarantine(host, on) }, true)
}

// hostVersionFor makes a host report an ESXi version until the test ends.
func hostVersionFor(t *testing.T, vc *xvmsim.VC, host, version string) {
	t.Helper()
	toggledFor(t, func(v string) (string, error) { return vc.SetHostVersion(host, v) }, version)
}

// datastoreGone makes a datastore inaccessible until the test ends.
func datastoreGone(t *testing.T, vc *xvmsim.VC, name string) {
	t.Helper()
	toggledFor(t, func(ok bool) (bool, error) { return vc.SetDatastoreAccessible(name, ok) }, false)
}

// A host that cannot take a VM (disconnected, not responding, on ESXi older than 6.5)
// is never the plan's host nor one of the others the worker may fall back to; when no
// host of the cluster is left, the blocker names each one's reason and what to do.
func TestPreflightSkipsUnfitHosts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	west := lab.VC(xvmsim.WestVC)
	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("healthy lab: %v %v", err, findingsOf(p, Blocker))
	}
	usual := p.Host // the least loaded host, the one to break
	for _, tt := range []struct {
		name  string
		fault func(*testing.T)
	}{
		{"disconnected", func(t *testing.T) { hostState(t, west, usual, types.HostSystemConnectionStateDisconnected) }},
		{"not responding", func(t *testing.T) { hostState(t, west, usual, types.HostSystemConnectionStateNotResponding) }},
		{"old esxi", func(t *testing.T) { hostVersionFor(t, west, usual, "6.0.0") }},
		// A host DPM put in standby is still connected and runs no VMs: the least loaded.
		{"standby (DPM)", func(t *testing.T) { hostPower(t, west, usual, types.HostSystemPowerStateStandBy) }},
		{"quarantine mode", func(t *testing.T) { hostQuarantine(t, west, usual) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault(t)
			p, err := m.Plan(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			if p.Blocked() {
				t.Fatalf("blocked, though two hosts are fine: %v", findingsOf(p, Blocker))
			}
			if p.Host == usual || slices.Contains(p.OtherHosts, usual) {
				t.Errorf("host %s, others %v: %s must not be used", p.Host, p.OtherHosts, usual)
			}
			// The review says which host was left out and why: the choice was narrowed.
			if findingWith(p, OK, "not chosen", usual) == nil {
				t.Errorf("the review does not say %s was left out: %+v", usual, p.Findings)
			}
		})
	}

	t.Run("none left", func(t *testing.T) {
		hostState(t, west, xvmsim.WestHost1, types.HostSystemConnectionStateDisconnected)
		hostState(t, west, xvmsim.WestHost2, types.HostSystemConnectionStateNotResponding)
		hostVersionFor(t, west, xvmsim.WestHost3, "6.0.0")
		p, err := m.Plan(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		f := findingWith(p, Blocker, "no host of cluster west-prod can take the VMs", "esx-w1.lab is disconnected",
			"esx-w2.lab is not responding", "esx-w3.lab runs ESXi 6.0.0")
		if f == nil {
			t.Fatalf("no blocker naming every host's reason: %+v", p.Findings)
		}
		for _, want := range []string{"reconnect it", "upgrade it to ESXi 6.5 or later"} {
			if !strings.Contains(f.Hint, want) {
				t.Errorf("hint %q does not say %q", f.Hint, want)
			}
		}
	})
}

// The folder as the vSphere Client and govc show it, from the datacenter down, is the
// same folder as the path under the datacenter's VM folder.
func TestPlanTakesTheInventoryPathOfAFolder(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	for _, folder := range []string{xvmsim.WestWebFolder, "/" + xvmsim.WestDatacenter + "/vm/" + xvmsim.WestWebFolder, "/" + xvmsim.WestWebFolder} {
		p, err := m.Plan(context.Background(), MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
			Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Folder: folder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Blocked() || p.Folder != xvmsim.WestWebFolder {
			t.Errorf("folder=%s: folder %q, blockers %v; want %s", folder, p.Folder, findingsOf(p, Blocker), xvmsim.WestWebFolder)
		}
	}
}

func TestPreflightClean(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	p, err := m.Plan(context.Background(), MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Findings {
		if f.Severity != OK {
			t.Errorf("unexpected %s: %s", f.Severity, f.Message)
		}
	}
	// trip-bigdisk's 4 TiB must not use up its own datastore: imports land there.
	p, err = m.Plan(context.Background(), MoveSpec{VMs: []string{"legacy-01"}, Source: xvmsim.WestVC, Target: xvmsim.EastVC, Placement: move.Placement{Cluster: xvmsim.EastCluster, Datastore: xvmsim.EastDatastore1, DiskFormat: move.Thick, Networks: []move.Network{{Target: xvmsim.EastAppPortgroup}}}})
	if err != nil || p.Blocked() {
		t.Errorf("import into east-ds-01: %v %v", err, findingsOf(p, Blocker))
	}
}

func TestPreflightOldVCenter(t *testing.T) {
	t.Parallel()
	lab, err := xvmsim.Start(context.Background(), xvmsim.WithVersion(xvmsim.WestVC, "6.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	m, _ := newTestManager(t, labConfig(lab, "vc-east"), labConfig(lab, "vc-west"))
	p, err := m.Plan(context.Background(), MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}})
	if err != nil {
		t.Fatal(err)
	}
	if f := findingWith(p, Blocker, "vc-west runs vCenter 6.0.0; cross vCenter vMotion needs 6.5 or later on both sides"); f == nil || !p.Blocked() {
		t.Errorf("no version blocker: %+v", p.Findings)
	}
}

func TestPlanPatterns(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	p, err := m.Plan(context.Background(), MoveSpec{VMs: []string{"web-0[23]", "db-01", "web-*"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}, {Source: xvmsim.StandardPortgroup, Target: xvmsim.StandardPortgroup}}}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Fatalf("blocked: %v", findingsOf(p, Blocker))
	}
	var got []string
	for _, v := range p.VMs {
		got = append(got, v.Name)
	}
	if want := "web-02 web-03 db-01 web-01"; strings.Join(got, " ") != want {
		t.Errorf("VMs %v, want %s (request order, each once)", got, want)
	}
	if f := findingWith(p, Warning, "named twice"); f != nil {
		t.Errorf("overlapping patterns reported as duplicates: %s", f.Message)
	}
	// A plan that crossed a process boundary is re-resolved per VM; a VM
	// selected through a pattern must still count as part of it.
	wire := *p
	wire.placement, wire.vms = nil, nil
	if _, _, err := m.resolved(context.Background(), &wire, "web-03"); err != nil {
		t.Errorf("re-resolving web-03 of a web-* plan: %v", err)
	}
}

// Hundreds of VMs in one plan: resolved in a few round trips, whatever the count.
func TestPlan200VMs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, err := xvmsim.Start(ctx, xvmsim.WithExtraVMs(200))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	m, _ := newTestManager(t, labConfig(lab, "vc-east"), labConfig(lab, "vc-west"))
	spec := MoveSpec{VMs: []string{"bulk-*"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}, DiskFormat: move.Thin}}
	start := time.Now()
	p, err := m.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("200-VM plan in %v", time.Since(start))
	if p.Blocked() || len(p.VMs) != 200 || len(p.vms) != 200 {
		t.Fatalf("VMs %d, resolved %d, blockers %v", len(p.VMs), len(p.vms), findingsOf(p, Blocker))
	}
	if f := findingWith(p, Warning, "could not run"); f != nil {
		t.Errorf("compatibility check: %s", f.Message)
	}
	if p.VMs[0].Name != "bulk-0001" || p.VMs[199].Name != "bulk-0200" {
		t.Errorf("first %s, last %s", p.VMs[0].Name, p.VMs[199].Name)
	}

	// Without the per-VM compatibility check (no datastore: blocked before
	// it), resolution alone must not cost a round trip per VM.
	spec.Datastore = ""
	east := lab.VC(xvmsim.EastVC)
	before := east.Requests()
	if _, err := m.Plan(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if n := east.Requests() - before; n > 20 {
		t.Errorf("resolving 200 VMs took %d requests to the source, want a handful", n)
	}
}

// Host-backed devices by power state: a running VM cannot take them along; a powered-off
// one moves cold, but what is set to connect at power-on will not find its device on the
// target host, which the review must say before the move rather than the first start after.
func TestDeviceFindings(t *testing.T) {
	t.Parallel()
	const (
		on        = types.VirtualMachinePowerStatePoweredOn
		off       = types.VirtualMachinePowerStatePoweredOff
		suspended = types.VirtualMachinePowerStateSuspended
	)
	atPowerOn := func() *types.VirtualDeviceConnectInfo { return &types.VirtualDeviceConnectInfo{StartConnected: true} }
	idle := func() *types.VirtualDeviceConnectInfo { return &types.VirtualDeviceConnectInfo{} }
	dev := func(label string, conn *types.VirtualDeviceConnectInfo, backing types.BaseVirtualDeviceBackingInfo) types.VirtualDevice {
		return types.VirtualDevice{Key: 9000, DeviceInfo: &types.Description{Label: label}, Connectable: conn, Backing: backing}
	}
	serial := func(conn *types.VirtualDeviceConnectInfo) types.BaseVirtualDevice {
		return &types.VirtualSerialPort{VirtualDevice: dev("Serial port 1", conn,
			&types.VirtualSerialPortDeviceBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "/dev/ttyS0"}})}
	}
	cdrom := func(b types.BaseVirtualDeviceBackingInfo) types.BaseVirtualDevice {
		return &types.VirtualCdrom{VirtualDevice: dev("CD/DVD drive 1", atPowerOn(), b)}
	}
	iso := func(name string) types.BaseVirtualDeviceBackingInfo {
		return &types.VirtualCdromIsoBackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: name}}
	}
	static := &types.VirtualPCIPassthroughDeviceBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "NVIDIA A100"},
		Id: "0000:3b:00.0", DeviceId: "20b0", SystemId: "5e3c-esx-e1", VendorId: 0x10de}
	dynamic := &types.VirtualPCIPassthroughDynamicBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "NVIDIA A100"},
		AllowedDevice: []types.VirtualPCIPassthroughAllowedDevice{{VendorId: 0x10de, DeviceId: 0x20b0}}}
	tests := []struct {
		name   string
		power  types.VirtualMachinePowerState
		device types.BaseVirtualDevice
		sev    Severity // OK: no finding at all
		words  []string
	}{
		{"serial port of a running VM", on, serial(atPowerOn()), Blocker, []string{"Serial port 1 of vm-a uses the host's serial port /dev/ttyS0; vMotion cannot move it"}},
		{"serial port of a suspended VM", suspended, serial(atPowerOn()), Blocker, []string{"uses the host's serial port /dev/ttyS0"}},
		{"serial port of a powered-off VM", off, serial(atPowerOn()), Warning,
			[]string{"Serial port 1 of vm-a uses the host's serial port /dev/ttyS0 and is set to connect at power-on", "will not connect on the target host"}},
		{"serial port left disconnected", off, serial(idle()), OK, nil},
		{"parallel port of a powered-off VM", off, &types.VirtualParallelPort{VirtualDevice: dev("Parallel port 1", atPowerOn(),
			&types.VirtualParallelPortDeviceBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "/dev/parport0"}})},
			Warning, []string{"uses the host's parallel port /dev/parport0 and is set to connect at power-on"}},
		{"usb device of a powered-off VM", off, &types.VirtualUSB{VirtualDevice: dev("USB device 1", atPowerOn(),
			&types.VirtualUSBUSBBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "path:1/0/3"}})},
			Warning, []string{"USB device 1 of vm-a is a USB device of its host and is set to connect at power-on"}},
		{"client cd-rom of a powered-off VM", off, cdrom(&types.VirtualCdromRemotePassthroughBackingInfo{}), Warning,
			[]string{"uses a client device and is set to connect at power-on"}},
		{"host drive of a powered-off VM", off, cdrom(&types.VirtualCdromAtapiBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "/dev/cdrom"}}),
			Warning, []string{"uses the host's drive /dev/cdrom and is set to connect at power-on"}},
		{"host-local iso of a powered-off VM", off, cdrom(iso("[] /vmimages/tools-isoimages/linux.iso")), Warning,
			[]string{"uses [] /vmimages/tools-isoimages/linux.iso (an ISO on the host's own disk) and is set to connect at power-on"}},
		{"datastore iso of a powered-off VM", off, cdrom(iso("[east-ds-01] iso/rhel9.iso")), Warning,
			[]string{"is set to connect to [east-ds-01] iso/rhel9.iso at power-on", "mounts the same datastore"}},
		{"static passthrough of a powered-off VM", off, &types.VirtualPCIPassthrough{VirtualDevice: dev("PCI device 0", nil, static)}, Blocker,
			[]string{"PCI device 0 of vm-a is a PCI passthrough device (NVIDIA A100) bound to its current host's hardware", "would not start on a target host"}},
		{"dynamic passthrough of a powered-off VM", off, &types.VirtualPCIPassthrough{VirtualDevice: dev("PCI device 0", nil, dynamic)}, Warning,
			[]string{"is a dynamic DirectPath I/O device (NVIDIA A100)", "only start on a target host with a free device of that model"}},
		{"dynamic passthrough of a running VM", on, &types.VirtualPCIPassthrough{VirtualDevice: dev("PCI device 0", nil, dynamic)}, Blocker,
			[]string{"is a PCI passthrough device (NVIDIA A100) tied to its current host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &resolver{plan: &Plan{}, spec: MoveSpec{Source: xvmsim.EastVC, Target: xvmsim.WestVC}}
			blocked := r.checkDevices("vm-a", tt.power, object.VirtualDeviceList{tt.device})
			if blocked != (tt.sev == Blocker) {
				t.Errorf("blocked = %v, want %v", blocked, tt.sev == Blocker)
			}
			if tt.sev == OK {
				if len(r.plan.Findings) != 0 {
					t.Errorf("findings %+v, want none", r.plan.Findings)
				}
				return
			}
			if len(r.plan.Findings) != 1 {
				t.Fatalf("findings %+v, want one %s", r.plan.Findings, tt.sev)
			}
			f := findingWith(r.plan, tt.sev, tt.words...)
			if f == nil {
				t.Fatalf("no %s saying %q; findings: %+v", tt.sev, tt.words, r.plan.Findings)
			}
			if f.Hint == "" || f.VM != "vm-a" {
				t.Errorf("finding %+v: want a hint and the VM's name", *f)
			}
		})
	}
}

// What a VM's memory takes on the target datastore besides its disks, by power state.
func TestMemoryFiles(t *testing.T) {
	t.Parallel()
	const gib = int64(1) << 30
	vm := func(power types.VirtualMachinePowerState, memoryMB int32, reservedMB *int64, locked bool) *mo.VirtualMachine {
		v := &mo.VirtualMachine{Config: &types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{MemoryMB: memoryMB},
			MemoryReservationLockedToMax: types.NewBool(locked)}}
		if reservedMB != nil {
			v.Config.MemoryAllocation = &types.ResourceAllocationInfo{Reservation: reservedMB}
		}
		v.Runtime.PowerState = power
		return v
	}
	mb := func(n int64) *int64 { return &n }
	for _, tt := range []struct {
		name          string
		vm            *mo.VirtualMachine
		swap, suspend int64
	}{
		{"running, nothing reserved", vm(types.VirtualMachinePowerStatePoweredOn, 8192, mb(0), false), 8 * gib, 0},
		{"running, reservation unknown", vm(types.VirtualMachinePowerStatePoweredOn, 8192, nil, false), 8 * gib, 0},
		{"running, part reserved", vm(types.VirtualMachinePowerStatePoweredOn, 8192, mb(6144), false), 2 * gib, 0},
		{"running, all reserved", vm(types.VirtualMachinePowerStatePoweredOn, 8192, mb(8192), false), 0, 0},
		{"running, reservation locked to max", vm(types.VirtualMachinePowerStatePoweredOn, 8192, mb(0), true), 0, 0},
		{"suspended", vm(types.VirtualMachinePowerStateSuspended, 8192, mb(0), false), 0, 8 * gib},
		{"powered off", vm(types.VirtualMachinePowerStatePoweredOff, 8192, mb(0), false), 0, 0},
		{"configuration unreadable", &mo.VirtualMachine{}, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if swap, suspend := memoryFiles(tt.vm); swap != tt.swap || suspend != tt.suspend {
				t.Errorf("swap %d, suspended memory %d; want %d, %d", swap, suspend, tt.swap, tt.suspend)
			}
		})
	}
}

// The other hosts a cluster request's moves may start on pass vCenter's compatibility
// check too when their CPU or ESXi build differs from the planned host's: one that
// refuses the VMs (a CPU the VM's features are missing on, no EVC) is left out, with a
// warning that says why; the planned host still takes the moves.
func TestOtherHostThatRefusesTheVMIsLeftOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	spec := MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() || len(p.OtherHosts) < 2 {
		t.Fatalf("plan without a refusing host: %v, other hosts %v, findings %v", err, p.OtherHosts, p.Findings)
	}
	refusing := p.OtherHosts[0]
	const why = "The host's CPU lacks features the virtual machine uses"
	west := lab.VC(xvmsim.WestVC)
	if err := west.RefuseVMotionTo(refusing, why); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = west.RefuseVMotionTo(refusing, "") })
	// A host like the planned one is judged as the planned one is (vCenter's check is
	// not asked again): the refusal is not seen while the CPUs match.
	if q, err := m.Plan(ctx, spec); err != nil || !slices.Contains(q.OtherHosts, refusing) {
		t.Fatalf("a host of the planned host's kind was checked on its own: %v, other hosts %v", err, q.OtherHosts)
	}
	cpu, err := west.SetHostCPU(refusing, "Intel(R) Xeon(R) CPU E5-2680 v2 @ 2.80GHz")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = west.SetHostCPU(refusing, cpu) })
	q, err := m.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if q.Blocked() || q.Host != p.Host || slices.Contains(q.OtherHosts, refusing) || len(q.OtherHosts) != len(p.OtherHosts)-1 {
		t.Fatalf("plan host %s, other hosts %v (before: %v), findings %v", q.Host, q.OtherHosts, p.OtherHosts, q.Findings)
	}
	if _, err := q.OnHost(refusing); err == nil {
		t.Fatalf("the plan still offers %s to move onto", refusing)
	}
	found := false
	for _, f := range q.Findings {
		found = found || (f.Severity == Warning && strings.Contains(f.Message, refusing) && strings.Contains(f.Message, why) && f.Hint != "")
	}
	if !found {
		t.Fatalf("no warning saying %s is left out and why: %v", refusing, q.Findings)
	}
}

// A VM with a CD/DVD drive connected to an ISO on a datastore the target host does not
// mount cannot move: vCenter refuses it. The review says so before approval instead of
// a warning the move then fails on.
func TestConnectedISOTheTargetCannotSeeBlocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	east := lab.VC(xvmsim.EastVC)
	place, err := east.FindVM(ctx, "web-01")
	if err != nil {
		t.Fatal(err)
	}
	c, err := east.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(context.Background()) }()
	vm := object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: place.Ref})
	devices, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ide, err := devices.FindIDEController("")
	if err != nil {
		t.Fatal(err)
	}
	cd, err := devices.CreateCdrom(ide)
	if err != nil {
		t.Fatal(err)
	}
	iso := devices.InsertIso(cd, "[east-ds-01] iso/rhel9.iso")
	iso.GetVirtualDevice().Connectable = &types.VirtualDeviceConnectInfo{Connected: true, StartConnected: true}
	if err := vm.AddDevice(ctx, iso); err != nil {
		t.Fatal(err)
	}

	p, err := m.Plan(ctx, MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC,
		Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}})
	if err != nil {
		t.Fatal(err)
	}
	if findingWith(p, Blocker, "is connected to [east-ds-01] iso/rhel9.iso, on datastore east-ds-01, which target host", "does not mount") == nil {
		t.Fatalf("no blocker for the ISO the target cannot see: %+v", p.Findings)
	}
}

// Clusters, hosts and pools by the inventory path govc and the vSphere Client show: the
// plan names the same objects as when they are named, and a path that leads nowhere, or
// to another kind of object, is a blocker that says how far it led.
func TestPlanTakesInventoryPathsOfComputeAndPools(t *testing.T) {
	t.Parallel()
	_, m, _ := sharedLab(t)
	hostDir := "/" + xvmsim.WestDatacenter + "/host/"
	prod := hostDir + xvmsim.WestCluster
	plan := func(pl move.Placement) *Plan {
		t.Helper()
		pl.Datastore, pl.Networks = xvmsim.WestGold, []move.Network{{Target: xvmsim.WestAppPortgroup}}
		p, err := m.Plan(context.Background(), MoveSpec{VMs: []string{"web-01"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: pl})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		pl                  move.Placement
		cluster, host, pool string
	}{
		{pl: move.Placement{Cluster: prod}, cluster: xvmsim.WestCluster, pool: "Resources"},
		{pl: move.Placement{Host: prod + "/" + xvmsim.WestHost2}, cluster: xvmsim.WestCluster, host: xvmsim.WestHost2, pool: "Resources"},
		{pl: move.Placement{Cluster: xvmsim.WestCluster, Host: prod + "/" + xvmsim.WestHost2}, cluster: xvmsim.WestCluster, host: xvmsim.WestHost2, pool: "Resources"},
		{pl: move.Placement{Cluster: prod, Pool: prod + "/Resources/" + xvmsim.WestPool}, cluster: xvmsim.WestCluster, pool: xvmsim.WestPool},
		{pl: move.Placement{Cluster: prod, Pool: prod + "/Resources"}, cluster: xvmsim.WestCluster, pool: "Resources"},
	} {
		p := plan(tc.pl)
		if p.Blocked() || p.Cluster != tc.cluster || (tc.host != "" && p.Host != tc.host) || p.Pool != tc.pool {
			t.Errorf("%+v: cluster %q host %q pool %q, blockers %v; want cluster %q host %q pool %q",
				tc.pl, p.Cluster, p.Host, p.Pool, findingsOf(p, Blocker), tc.cluster, tc.host, tc.pool)
		}
	}
	for _, tc := range []struct {
		pl   move.Placement
		want []string
	}{
		{move.Placement{Cluster: hostDir + "west-pro"}, []string{"cluster " + hostDir + "west-pro not found", hostDir[:len(hostDir)-1] + " holds no west-pro"}},
		{move.Placement{Cluster: prod + "/" + xvmsim.WestHost1}, []string{"that inventory path is a host, not one of the clusters"}},
		{move.Placement{Cluster: hostDir + xvmsim.WestMaintCluster, Host: prod + "/" + xvmsim.WestHost2}, []string{"host " + prod + "/" + xvmsim.WestHost2 + " not found in cluster", "not one of the hosts: " + xvmsim.WestMaintHost}},
		{move.Placement{Cluster: hostDir + xvmsim.WestMaintCluster, Pool: prod + "/Resources/" + xvmsim.WestPool}, []string{"not one of the pools"}},
	} {
		p := plan(tc.pl)
		got := findingsOf(p, Blocker)
		for _, w := range tc.want {
			if !strings.Contains(strings.Join(got, "\n"), w) {
				t.Errorf("%+v: blockers %q do not say %q", tc.pl, got, w)
			}
		}
	}
}
