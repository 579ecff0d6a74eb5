package xvmsim

import (
	"testing"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// The emulated relocation places each disk as vCenter does, by its backing and the target
// datastore (diskrules.go), and refuses what vCenter refuses with vCenter's faults: every
// case moves one disk-scenario VM, or is refused and leaves it in the source.
func TestRelocationDiskRules(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	if err := l.AddDiskScenarios(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	thick := func(b *types.VirtualDiskFlatVer2BackingInfo) {
		b.ThinProvisioned, b.EagerlyScrub = types.NewBool(false), types.NewBool(false)
	}
	for _, tc := range []struct {
		name, vm, host, ds string
		// backing, when set, is the format sent for every disk; nil sends no backing.
		backing func(*types.VirtualDiskFlatVer2BackingInfo)
		refused types.BaseMethodFault // the fault expected, nil for a move
		check   func(t *testing.T, got *VMPlacement)
	}{
		{name: "physical RDM converted", vm: RDMPhysicalVM, host: WestHost1, ds: WestSilver, backing: thin,
			refused: &types.RDMConversionNotSupported{}},
		{name: "RDM onto a host that does not see the LUN", vm: RDMPhysicalVM, host: WestStdHost, ds: WestGold,
			refused: &types.CannotAccessVmDisk{}},
		{name: "RDM mapping file onto NFS", vm: RDMVirtualVM, host: WestHost1, ds: WestNFS,
			refused: &types.RDMNotSupportedOnDatastore{}},
		{name: "thick onto NFS without hardware acceleration", vm: "web-02", host: WestHost1, ds: WestNFS, backing: thick,
			refused: &types.InvalidDeviceBacking{}},
		{name: "physical RDM, same format: the mapping moves", vm: RDMPhysicalVM, host: WestHost1, ds: WestSilver,
			check: func(t *testing.T, got *VMPlacement) {
				if len(got.Disks) != 2 || got.Disks[1].RDM != string(types.VirtualDiskCompatibilityModePhysicalMode) ||
					got.Disks[1].LUN != RDMPhysicalLUN || got.Disks[1].Datastore != WestSilver {
					t.Errorf("disks %+v, want Hard disk 2 still a physical RDM of %s, its mapping on %s", got.Disks, RDMPhysicalLUN, WestSilver)
				}
			}},
		{name: "virtual RDM converted to thin", vm: RDMVirtualVM, host: WestHost2, ds: WestGold, backing: thin,
			check: func(t *testing.T, got *VMPlacement) {
				if len(got.Disks) != 2 || got.Disks[1].RDM != "" || !got.Disks[1].Thin || got.Disks[1].CapacityKB != RDMLUNKB {
					t.Errorf("disks %+v, want Hard disk 2 a thin flat disk of the LUN's size", got.Disks)
				}
			}},
		{name: "thick disk, same format, onto NFS without hardware acceleration: thin", vm: "web-03", host: WestHost1, ds: WestNFS,
			check: func(t *testing.T, got *VMPlacement) {
				if len(got.Disks) != 1 || !got.Disks[0].Thin || got.Disks[0].Datastore != WestNFS {
					t.Errorf("disks %+v, want one thin disk on %s", got.Disks, WestNFS)
				}
			}},
		{name: "SE sparse, same format: stays SE sparse", vm: SeSparseVM, host: WestHost2, ds: WestGold,
			check: func(t *testing.T, got *VMPlacement) {
				if len(got.Disks) != 1 || !got.Disks[0].SESparse || got.Disks[0].Datastore != WestGold {
					t.Errorf("disks %+v, want one SE sparse disk on %s", got.Disks, WestGold)
				}
			}},
		{name: "shared storage: the same file", vm: SharedVM, host: WestHost3, ds: SharedDatastore, backing: thin,
			check: func(t *testing.T, got *VMPlacement) {
				if len(got.Disks) != 1 || got.Disks[0].Datastore != SharedDatastore || got.Disks[0].Thin {
					t.Errorf("disks %+v, want the thick disk left as it is on %s", got.Disks, SharedDatastore)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
			vm := east.vm(t, ctx, tc.vm)
			var files []string
			if tc.vm == SharedVM {
				files = diskFiles(t, vm)
			}
			network := WestAppPortgroup
			if tc.vm == RDMPhysicalVM || tc.vm == RDMVirtualVM {
				network = StandardPortgroup
			}
			x := xvmPlace(t, ctx, west, WestWebFolder, WestCluster+"/Resources", tc.host, tc.ds, network)
			if tc.host == WestStdHost {
				x = xvmPlace(t, ctx, west, WestWebFolder, WestStdCluster+"/Resources", tc.host, tc.ds, StandardPortgroup)
			}
			spec := x.spec(t, ctx, vm, func(*types.VirtualDiskFlatVer2BackingInfo) {})
			for i := range spec.Disk {
				if tc.backing == nil {
					spec.Disk[i].DiskBackingInfo = nil
				} else {
					tc.backing(spec.Disk[i].DiskBackingInfo.(*types.VirtualDiskFlatVer2BackingInfo))
				}
			}
			_, err := relocate(ctx, vm, spec, nil)
			if tc.refused != nil {
				if err == nil || !fault.Is(err, tc.refused) {
					t.Fatalf("relocate %s: %v, want %T", tc.vm, err, tc.refused)
				}
				if _, err := east.vc.FindVM(ctx, tc.vm); err != nil {
					t.Errorf("%s left the source after a refused move: %v", tc.vm, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("relocate %s: %v", tc.vm, err)
			}
			got, err := west.vc.FindVM(ctx, tc.vm)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
			if files != nil {
				if now := diskFiles(t, west.vm(t, ctx, tc.vm)); len(now) != 1 || now[0] != files[0] {
					t.Errorf("disk files %v in the target, want the source's own %v", now, files)
				}
			}
		})
	}
}

func diskFiles(t *testing.T, vm *object.VirtualMachine) []string {
	t.Helper()
	devices, err := vm.Device(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		out = append(out, d.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo).GetVirtualDeviceFileBackingInfo().FileName)
	}
	return out
}
