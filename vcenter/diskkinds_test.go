package vcenter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// Pre-flight applies vSphere's rules for disks that are not plain flat files and for
// datastores that are not plain VMFS (diskkinds.go), against a lab with the disk
// scenarios: each case is a plan whose findings a requester would read, and, where the
// move would go ahead, the backing its spec would send.
func TestPreflightDiskRules(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	if err := lab.AddDiskScenarios(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := newTestManager(t, labConfig(lab, xvmsim.EastVC), labConfig(lab, xvmsim.WestVC))
	type want struct {
		sev   Severity
		words []string
	}
	tests := []struct {
		name    string
		vm      string
		edit    func(*MoveSpec)
		blocked bool
		want    []want
		// backing checks the locators of the VM's spec, when the plan goes ahead.
		backing func(t *testing.T, spec types.VirtualMachineRelocateSpec)
	}{
		{name: "physical RDM, same format: only the mapping file moves, nothing sent", vm: xvmsim.RDMPhysicalVM,
			edit: func(s *MoveSpec) { s.Datastore = xvmsim.WestSilver },
			want: []want{{OK, []string{"Hard disk 2 of rdm-phys is a raw device mapping (RDM) in physical compatibility mode",
				xvmsim.RDMPhysicalLUN, "only its mapping file moves to ds-silver"}}},
			backing: func(t *testing.T, spec types.VirtualMachineRelocateSpec) {
				for _, dl := range spec.Disk {
					if dl.DiskBackingInfo != nil {
						t.Errorf("disk %d: backing %T sent with disk=same, want none (as the wizard)", dl.DiskId, dl.DiskBackingInfo)
					}
				}
			}},
		{name: "physical RDM with a format", vm: xvmsim.RDMPhysicalVM,
			edit: func(s *MoveSpec) { s.Datastore, s.DiskFormat = xvmsim.WestSilver, move.Thin }, blocked: true,
			want: []want{{Blocker, []string{"Hard disk 2 of rdm-phys", "physical compatibility mode", "cannot be converted to a thin disk"}}}},
		{name: "virtual RDM converted: the LUN's size counts", vm: xvmsim.RDMVirtualVM,
			edit: func(s *MoveSpec) { s.Datastore, s.DiskFormat = xvmsim.WestSilver, move.Thick }, blocked: true,
			want: []want{
				{Warning, []string{"Hard disk 2 of rdm-virt", "converts it to a thick (lazy zeroed) disk on ds-silver", "cannot be converted back"}},
				{Blocker, []string{"rdm-virt needs", "on ds-silver"}},
			}},
		{name: "virtual RDM converted onto a datastore that fits", vm: xvmsim.RDMVirtualVM,
			edit: func(s *MoveSpec) { s.DiskFormat = move.Eager },
			want: []want{{Warning, []string{"converts it to a thick eager zeroed disk on ds-gold"}}},
			backing: func(t *testing.T, spec types.VirtualMachineRelocateSpec) {
				b, ok := spec.Disk[1].DiskBackingInfo.(*types.VirtualDiskFlatVer2BackingInfo)
				if !ok || !isTrue(b.EagerlyScrub) || isTrue(b.ThinProvisioned) {
					t.Errorf("Hard disk 2: backing %#v, want flat eager zeroed (the conversion)", spec.Disk[1].DiskBackingInfo)
				}
			}},
		{name: "RDM onto a host that does not see the LUN", vm: xvmsim.RDMPhysicalVM, blocked: true,
			edit: func(s *MoveSpec) {
				s.Cluster, s.Networks = xvmsim.WestStdCluster, []move.Network{{Target: xvmsim.StandardPortgroup}}
			},
			want: []want{{Blocker, []string{"Hard disk 2 of rdm-phys maps LUN " + xvmsim.RDMPhysicalLUN, "target host esx-w5.lab does not see"}}}},
		{name: "RDM mapping file onto NFS", vm: xvmsim.RDMVirtualVM, blocked: true,
			edit: func(s *MoveSpec) { s.Datastore = xvmsim.WestNFS },
			want: []want{{Blocker, []string{"its mapping file must be on a VMFS datastore", "nfs-novaai is an NFS datastore"}}}},
		{name: "thick onto NFS without hardware acceleration", vm: "web-01", blocked: true,
			edit: func(s *MoveSpec) { s.Datastore, s.DiskFormat = xvmsim.WestNFS, move.Thick },
			want: []want{{Blocker, []string{"Hard disk 1 of web-01 cannot be made thick (lazy zeroed) on nfs-novaai", "without hardware acceleration (VAAI)"}}}},
		{name: "thick disk, same format, onto NFS without hardware acceleration", vm: "web-01",
			edit: func(s *MoveSpec) { s.Datastore = xvmsim.WestNFS },
			want: []want{{Warning, []string{"Hard disk 1 of web-01 is thick", "it will be thin there"}}}},
		{name: "SE sparse with a format: said, not forced", vm: xvmsim.SeSparseVM,
			edit: func(s *MoveSpec) { s.DiskFormat = move.Thick },
			want: []want{{Warning, []string{"Hard disk 1 of sesparse-01 is an SE sparse disk: disk=thick applies to flat disks only"}}},
			backing: func(t *testing.T, spec types.VirtualMachineRelocateSpec) {
				if spec.Disk[0].DiskBackingInfo != nil {
					t.Errorf("backing %T sent for an SE sparse disk", spec.Disk[0].DiskBackingInfo)
				}
			}},
		{name: "storage both vCenters mount: said, not counted", vm: xvmsim.SharedVM,
			edit: func(s *MoveSpec) { s.Datastore = xvmsim.SharedDatastore },
			want: []want{{OK, []string{"ds-shared is the same storage in both vCenters: disks are not copied"}}},
			backing: func(t *testing.T, spec types.VirtualMachineRelocateSpec) {
				if spec.Disk[0].DiskBackingInfo != nil {
					t.Errorf("backing %T sent for a disk that is not copied", spec.Disk[0].DiskBackingInfo)
				}
			}},
		{name: "a format on storage both vCenters mount", vm: xvmsim.SharedVM,
			edit: func(s *MoveSpec) { s.Datastore, s.DiskFormat = xvmsim.SharedDatastore, move.Thin },
			want: []want{{Warning, []string{"Hard disk 1 of shared-01 stays where it is on ds-shared", "disk=thin cannot change its format"}}},
			backing: func(t *testing.T, spec types.VirtualMachineRelocateSpec) {
				if spec.Disk[0].DiskBackingInfo != nil {
					t.Errorf("backing %T sent for a disk that is not copied", spec.Disk[0].DiskBackingInfo)
				}
			}},
	}
	// Where a VM with an RDM is, as /xvm undo will ask to go back: the RDM on its datastore
	// in "same" format, so that the way back moves its mapping file and converts nothing.
	w, err := m.Where(ctx, xvmsim.EastVC, xvmsim.RDMVirtualVM)
	if err != nil {
		t.Fatal(err)
	}
	o := w.Origin()
	if len(o.Disks) != 1 || o.Disks[0].Disk != 2 || o.Disks[0].DiskFormat != move.Same || o.Disks[0].Datastore != "" || o.Datastore != xvmsim.EastDatastore1 {
		t.Errorf("origin of rdm-virt: %+v, want Hard disk 2 (the RDM) in the same format on %s", o.Placement, xvmsim.EastDatastore1)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := findingBase
			spec.VMs = []string{tt.vm}
			spec.Folder = xvmsim.WestWebFolder
			if tt.edit != nil {
				tt.edit(&spec)
			}
			p, err := m.Plan(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if findingWith(p, w.sev, w.words...) == nil {
					t.Errorf("no %s finding with %q in:\n%s", w.sev, w.words, findingsText(p))
				}
			}
			if p.Blocked() != tt.blocked {
				t.Errorf("blocked %v, want %v:\n%s", p.Blocked(), tt.blocked, findingsText(p))
			}
			if tt.backing != nil && !p.Blocked() {
				vp := p.vms[tt.vm]
				if p.placement == nil || vp == nil {
					t.Fatalf("no placement for %s", tt.vm)
				}
				tt.backing(t, buildRelocateSpec(*p.placement, vp, p.DiskFormat, nil))
			}
		})
	}
	// A host of the cluster the LUN is masked from takes none of the moves.
	if _, err := lab.VC(xvmsim.WestVC).SetLUNVisible(xvmsim.WestHost1, xvmsim.RDMPhysicalLUN, false); err != nil {
		t.Fatal(err)
	}
	spec := findingBase
	spec.VMs, spec.Datastore, spec.Folder = []string{xvmsim.RDMPhysicalVM}, xvmsim.WestSilver, xvmsim.WestWebFolder
	p, err := m.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() || p.Host == xvmsim.WestHost1 || slices.Contains(p.OtherHosts, xvmsim.WestHost1) ||
		findingWith(p, Warning, "will not spread onto esx-w1.lab", "does not see LUN "+xvmsim.RDMPhysicalLUN) == nil {
		t.Errorf("with the LUN masked from esx-w1.lab: host %s, other hosts %v, blocked %v:\n%s", p.Host, p.OtherHosts, p.Blocked(), findingsText(p))
	}
	// Masked from the chosen host too: a blocker that names the host that still sees it.
	if _, err := lab.VC(xvmsim.WestVC).SetLUNVisible(p.Host, xvmsim.RDMPhysicalLUN, false); err != nil {
		t.Fatal(err)
	}
	if p, err = m.Plan(ctx, spec); err != nil {
		t.Fatal(err)
	}
	f := findingWith(p, Blocker, "maps LUN "+xvmsim.RDMPhysicalLUN, "does not see")
	if f == nil || !strings.Contains(f.Hint, "host="+xvmsim.WestHost2) {
		t.Errorf("with the LUN seen by esx-w2.lab alone: want a blocker whose hint names host=esx-w2.lab:\n%s", findingsText(p))
	}
}

func findingsText(p *Plan) string {
	var b strings.Builder
	for _, f := range p.Findings {
		b.WriteString("  " + string(f.Severity) + ": " + f.Message + "\n")
	}
	return b.String()
}

// The locator's backing, disk by disk: none for "same", for a disk not copied, or where
// the datastore provisions by policy; the format's flags for a flat disk and for a
// virtual-mode RDM to convert; never a flat backing for a physical-mode RDM or an SE
// sparse disk. What such a disk needs on the target counts what is copied, and only that.
func TestDiskBackingsAndSpaceByKind(t *testing.T) {
	src := types.ManagedObjectReference{Type: "Datastore", Value: "datastore-1"}
	file := types.VirtualDeviceFileBackingInfo{FileName: "[east] vm/vm_1.vmdk", Datastore: &src}
	rdm := func(mode types.VirtualDiskCompatibilityMode) *types.VirtualDisk {
		return &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 2001, Backing: &types.VirtualDiskRawDiskMappingVer1BackingInfo{
			VirtualDeviceFileBackingInfo: file, CompatibilityMode: string(mode), LunUuid: "0200", DeviceName: "/vmfs/devices/disks/naa.1"}},
			CapacityInKB: 4 << 30}
	}
	flat := &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 2000, Backing: &types.VirtualDiskFlatVer2BackingInfo{
		VirtualDeviceFileBackingInfo: file, ThinProvisioned: types.NewBool(false)}}, CapacityInKB: 1 << 20}
	sparse := &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 2002, Backing: &types.VirtualDiskSeSparseBackingInfo{
		VirtualDeviceFileBackingInfo: file}}, CapacityInKB: 1 << 20}
	svm := &sourceVM{used: map[int32]int64{2000: 1 << 20, 2002: 2 << 20}}
	vmfs, vsan := targetStore{kind: "VMFS"}, targetStore{kind: "vsan"}
	shared := targetStore{kind: "VMFS", sameAs: map[types.ManagedObjectReference]bool{src: true}}
	const tib = int64(4) << 40
	tests := []struct {
		name    string
		disk    *types.VirtualDisk
		format  move.DiskFormat
		store   targetStore
		backing string // "" none, "thin", "thick", "eager"
		need    int64
		counted bool
	}{
		{"flat, same", flat, move.Same, vmfs, "", 1 << 30, true},
		{"flat, thin", flat, move.Thin, vmfs, "thin", 1 << 20, true},
		{"flat, thick, already thick", flat, move.Thick, vmfs, "", 1 << 30, true},
		{"flat, eager, on vSAN", flat, move.Eager, vsan, "", 1 << 20, true},
		{"flat, thin, shared storage", flat, move.Thin, shared, "", 0, false},
		{"physical RDM, same", rdm(types.VirtualDiskCompatibilityModePhysicalMode), move.Same, vmfs, "", 0, false},
		{"physical RDM, thin", rdm(types.VirtualDiskCompatibilityModePhysicalMode), move.Thin, vmfs, "", 0, false},
		{"virtual RDM, same", rdm(types.VirtualDiskCompatibilityModeVirtualMode), move.Same, vmfs, "", 0, false},
		{"virtual RDM, thick", rdm(types.VirtualDiskCompatibilityModeVirtualMode), move.Thick, vmfs, "thick", tib, true},
		{"virtual RDM, thin", rdm(types.VirtualDiskCompatibilityModeVirtualMode), move.Thin, vmfs, "thin", tib, true},
		{"virtual RDM, thin, onto vSAN: converted", rdm(types.VirtualDiskCompatibilityModeVirtualMode), move.Thin, vsan, "thin", tib, true},
		{"SE sparse, thick", sparse, move.Thick, vmfs, "", 2 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if b := diskBacking(tt.disk, tt.format, tt.store); b != nil {
				f, ok := b.(*types.VirtualDiskFlatVer2BackingInfo)
				switch {
				case !ok:
					got = fmt.Sprintf("%T", b)
				case isTrue(f.ThinProvisioned):
					got = "thin"
				case isTrue(f.EagerlyScrub):
					got = "eager"
				default:
					got = "thick"
				}
			}
			if got != tt.backing {
				t.Errorf("backing %q, want %q", got, tt.backing)
			}
			need, _, counted := diskSpace(svm, tt.disk, tt.format, tt.store)
			if need != tt.need || counted != tt.counted {
				t.Errorf("space %d (counted %v), want %d (%v)", need, counted, tt.need, tt.counted)
			}
		})
	}
}

// Two datastores are one storage when their URLs match, or their VMFS volume uuids, or the
// NFS export they mount; a name alone proves nothing.
func TestSameStorageAcrossVCenters(t *testing.T) {
	vmfs := func(url, uuid string) *mo.Datastore {
		return &mo.Datastore{Summary: types.DatastoreSummary{Name: "ds", Url: url},
			Info: &types.VmfsDatastoreInfo{Vmfs: &types.HostVmfsVolume{Uuid: uuid}}}
	}
	nfs := func(url, host, path string) *mo.Datastore {
		return &mo.Datastore{Summary: types.DatastoreSummary{Name: "ds", Url: url},
			Info: &types.NasDatastoreInfo{Nas: &types.HostNasVolume{RemoteHost: host, RemotePath: path}}}
	}
	tests := []struct {
		name string
		a, b *mo.Datastore
		same bool
	}{
		{"same URL", vmfs("ds:///vmfs/volumes/5f1a/", "5f1a"), vmfs("ds:///vmfs/volumes/5f1a/", "5f1a"), true},
		{"same VMFS uuid", vmfs("ds:///vmfs/volumes/a/", "5f1a"), vmfs("ds:///vmfs/volumes/b/", "5f1a"), true},
		{"same NFS export", nfs("ds:///vmfs/volumes/x/", "nas1", "/vol/a"), nfs("ds:///vmfs/volumes/y/", "nas1", "/vol/a"), true},
		{"same name only", vmfs("ds:///vmfs/volumes/a/", "1"), vmfs("ds:///vmfs/volumes/b/", "2"), false},
		{"other export", nfs("ds:///vmfs/volumes/x/", "nas1", "/vol/a"), nfs("ds:///vmfs/volumes/y/", "nas1", "/vol/b"), false},
	}
	for _, tt := range tests {
		if got := storeIDOf(tt.a).same(storeIDOf(tt.b)); got != tt.same {
			t.Errorf("%s: same %v, want %v", tt.name, got, tt.same)
		}
	}
}
