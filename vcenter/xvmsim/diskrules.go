package xvmsim

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// How the emulated relocation places each disk, as vCenter does (docs/vsphere-behaviours.md
// has the references):
//
//   - a locator without a backing keeps the disk's own: a flat disk its format, an SE
//     sparse disk its format, an RDM its mapping to the same LUN (only the mapping file
//     moves);
//   - a flat-ver2 backing sets a flat disk's format, and converts a virtual-mode RDM into
//     a flat disk; a physical-mode RDM cannot be converted (RDMConversionNotSupported), nor
//     an RDM onto NFS (InvalidDeviceBacking); other backings are refused
//     (InvalidDeviceBacking);
//   - NFS mounted without hardware acceleration takes thin disks only: a thick backing
//     there is refused (InvalidDeviceBacking), a thick disk moved as it is becomes thin;
//   - an RDM mapping file needs a datastore that holds RDMs (not NFS, vSAN, vVols:
//     RDMNotSupportedOnDatastore), and the target host must see the LUN (CannotAccessVmDisk);
//   - a disk on storage both vCenters mount (the same datastore URL) is not copied: the
//     target VM uses the very same file.

// storeFacts is a datastore of the target as the disk rules need it.
type storeFacts struct {
	name, url, kind string
	nas             *types.HostNasVolume
}

func (s storeFacts) nfs() bool {
	return s.kind == string(types.HostFileSystemVolumeFileSystemTypeNFS) || s.kind == string(types.HostFileSystemVolumeFileSystemTypeNFS41)
}

// holdsRDMs reports whether an RDM mapping file may be placed on the datastore.
func (s storeFacts) holdsRDMs() bool {
	return !s.nfs() && s.kind != string(types.HostFileSystemVolumeFileSystemTypeVsan) && s.kind != string(types.HostFileSystemVolumeFileSystemTypeVVOL)
}

// diskRules are the facts planDisk decides by: the target's datastores and host, and the
// URLs of the source datastores the VM's disks are on.
type diskRules struct {
	vmName string
	stores map[types.ManagedObjectReference]storeFacts
	srcURL map[types.ManagedObjectReference]string
	luns   map[string]bool // uuids and canonical names the target host sees
	mounts []types.HostFileSystemMountInfo
}

// sourceURLs reads the URL of every datastore the VM's disks are on, in the source.
func sourceURLs(ctx context.Context, src *govmomi.Client, vm *mo.VirtualMachine) map[types.ManagedObjectReference]string {
	out := map[types.ManagedObjectReference]string{}
	for _, d := range vm.Config.Hardware.Device {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok || b.GetVirtualDeviceFileBackingInfo().Datastore == nil {
			continue
		}
		ref := *b.GetVirtualDeviceFileBackingInfo().Datastore
		if _, done := out[ref]; done {
			continue
		}
		var ds mo.Datastore
		if err := src.RetrieveOne(ctx, ref, []string{"summary.url"}, &ds); err == nil {
			out[ref] = ds.Summary.Url
		}
	}
	return out
}

// readRules reads the target side of the rules: each datastore named and the host.
func readRules(ctx context.Context, dst *govmomi.Client, vmName string, host types.ManagedObjectReference, datastores []types.ManagedObjectReference, srcURL map[types.ManagedObjectReference]string) (*diskRules, *types.LocalizedMethodFault) {
	r := &diskRules{vmName: vmName, stores: map[types.ManagedObjectReference]storeFacts{}, srcURL: srcURL, luns: map[string]bool{}}
	for _, ref := range datastores {
		if _, done := r.stores[ref]; done {
			continue
		}
		var ds mo.Datastore
		if err := dst.RetrieveOne(ctx, ref, []string{"name", "summary", "info"}, &ds); err != nil {
			return nil, asFault(err, "read datastore %s", ref.Value)
		}
		f := storeFacts{name: ds.Name, url: ds.Summary.Url, kind: ds.Summary.Type}
		if nas, ok := ds.Info.(*types.NasDatastoreInfo); ok {
			f.nas = nas.Nas
		}
		r.stores[ref] = f
	}
	var h mo.HostSystem
	if err := dst.RetrieveOne(ctx, host, []string{"config.storageDevice", "config.fileSystemVolume"}, &h); err != nil {
		return nil, asFault(err, "read host %s", host.Value)
	}
	if h.Config != nil && h.Config.StorageDevice != nil {
		for _, l := range h.Config.StorageDevice.ScsiLun {
			lun := l.GetScsiLun()
			r.luns[lun.Uuid] = true
			r.luns[lun.CanonicalName] = true
		}
	}
	if h.Config != nil && h.Config.FileSystemVolume != nil {
		r.mounts = h.Config.FileSystemVolume.MountInfo
	}
	return r, nil
}

// thinOnly reports NFS the target host mounts without hardware acceleration.
func (r *diskRules) thinOnly(s storeFacts) bool {
	if !s.nfs() || s.nas == nil {
		return false
	}
	for _, m := range r.mounts {
		if v, ok := m.Volume.(*types.HostNasVolume); ok && v.RemoteHost == s.nas.RemoteHost && v.RemotePath == s.nas.RemotePath {
			return m.VStorageSupport == string(types.FileSystemMountInfoVStorageSupportStatusVStorageUnsupported)
		}
	}
	return false
}

// plannedDisk is one disk of the VM in the target.
type plannedDisk struct {
	disk      *types.VirtualDisk
	datastore string // the name of the datastore its file is on
	// existing: the file is already there (storage both vCenters mount); nothing is
	// created and no directory is needed.
	existing bool
}

func invalidBacking(format string, args ...any) *types.LocalizedMethodFault {
	return &types.LocalizedMethodFault{
		Fault:            &types.InvalidDeviceBacking{InvalidDeviceSpec: types.InvalidDeviceSpec{InvalidVmConfig: types.InvalidVmConfig{Property: "spec.disk.diskBackingInfo"}}},
		LocalizedMessage: fmt.Sprintf(format, args...),
	}
}

// planDisk places src, the i-th disk of the VM, as its locator says (dflt: the spec's
// datastore), by the rules above.
func (r *diskRules) planDisk(src *types.VirtualDisk, loc types.VirtualMachineRelocateSpecDiskLocator, dflt types.ManagedObjectReference, i int) (*plannedDisk, *types.LocalizedMethodFault) {
	ds := dflt
	var backing types.BaseVirtualDeviceBackingInfo
	if loc.Datastore.Value != "" {
		ds, backing = loc.Datastore, loc.DiskBackingInfo
	}
	s, ok := r.stores[ds]
	if !ok {
		return nil, &types.LocalizedMethodFault{Fault: &types.ManagedObjectNotFound{Obj: ds}, LocalizedMessage: fmt.Sprintf("datastore %s not found in the target vCenter", ds.Value)}
	}
	label := fmt.Sprintf("Hard disk %d", i+1)
	if src.DeviceInfo != nil && src.DeviceInfo.GetDescription() != nil {
		label = src.DeviceInfo.GetDescription().Label
	}
	var file types.VirtualDeviceFileBackingInfo // empty for a backing that is no file
	if b, ok := src.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
		file = *b.GetVirtualDeviceFileBackingInfo()
	}
	shared := file.Datastore != nil && r.srcURL[*file.Datastore] != "" && r.srcURL[*file.Datastore] == s.url
	out := &plannedDisk{datastore: s.name, existing: shared}
	name := diskPath(s.name, r.vmName, i)
	if shared {
		// The same file, named by the target's datastore.
		var p object.DatastorePath
		p.FromString(file.FileName)
		name = fmt.Sprintf("[%s] %s", s.name, p.Path)
	}
	fileInfo := types.VirtualDeviceFileBackingInfo{FileName: name, Datastore: &ds}
	disk := &types.VirtualDisk{
		VirtualDevice:   types.VirtualDevice{Key: -1000 - src.Key},
		CapacityInKB:    src.CapacityInKB,
		CapacityInBytes: src.CapacityInBytes,
	}
	flat := func(thin, eager *bool) *types.VirtualDiskFlatVer2BackingInfo {
		if r.thinOnly(s) && !shared && (thin == nil || !*thin) {
			thin, eager = types.NewBool(true), types.NewBool(false) // NFS without VAAI: thin whatever was asked
		}
		return &types.VirtualDiskFlatVer2BackingInfo{DiskMode: string(types.VirtualDiskModePersistent), ThinProvisioned: thin, EagerlyScrub: eager, VirtualDeviceFileBackingInfo: fileInfo}
	}
	want, _ := backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if backing != nil && want == nil {
		return nil, invalidBacking("%s: backing %T is not supported for a relocation", label, backing)
	}
	if want != nil && r.thinOnly(s) && !isTrue(want.ThinProvisioned) && !shared {
		return nil, invalidBacking("%s: datastore %s is NFS without hardware acceleration and supports thin disks only", label, s.name)
	}
	switch b := src.Backing.(type) {
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		physical := b.CompatibilityMode == string(types.VirtualDiskCompatibilityModePhysicalMode)
		switch {
		case want != nil && physical:
			return nil, &types.LocalizedMethodFault{Fault: &types.RDMConversionNotSupported{Device: label},
				LocalizedMessage: fmt.Sprintf("%s uses a raw device mapping in physical compatibility mode, which cannot be converted", label)}
		case want != nil && s.nfs():
			return nil, invalidBacking("%s: a raw device mapping cannot be converted onto NFS datastore %s", label, s.name)
		case want != nil:
			disk.Backing = flat(want.ThinProvisioned, want.EagerlyScrub)
			return out.with(disk), nil
		}
		if !shared && !s.holdsRDMs() {
			return nil, &types.LocalizedMethodFault{Fault: &types.RDMNotSupportedOnDatastore{Device: label, Datastore: ds, DatastoreName: s.name},
				LocalizedMessage: fmt.Sprintf("%s: datastore %s does not support raw device mappings", label, s.name)}
		}
		if !r.luns[b.LunUuid] && !r.luns[lunCanonical(b.DeviceName)] {
			return nil, &types.LocalizedMethodFault{
				Fault:            &types.CannotAccessVmDisk{CannotAccessVmDevice: types.CannotAccessVmDevice{Device: label, Backing: b.DeviceName, Connected: true}},
				LocalizedMessage: fmt.Sprintf("Virtual disk '%s' is a mapped direct-access LUN that is not accessible", label),
			}
		}
		disk.Backing = &types.VirtualDiskRawDiskMappingVer1BackingInfo{
			VirtualDeviceFileBackingInfo: fileInfo, CompatibilityMode: b.CompatibilityMode, DiskMode: b.DiskMode,
			DeviceName: b.DeviceName, LunUuid: b.LunUuid,
		}
		return out.with(disk), nil
	case *types.VirtualDiskSeSparseBackingInfo:
		if want == nil || shared {
			// Moved as it is: an SE sparse disk stays one.
			disk.Backing = &types.VirtualDiskSeSparseBackingInfo{DiskMode: b.DiskMode, VirtualDeviceFileBackingInfo: fileInfo}
			return out.with(disk), nil
		}
		disk.Backing = flat(want.ThinProvisioned, want.EagerlyScrub)
		return out.with(disk), nil
	case *types.VirtualDiskFlatVer2BackingInfo:
		thin, eager := b.ThinProvisioned, b.EagerlyScrub
		if want != nil && !shared {
			thin, eager = want.ThinProvisioned, want.EagerlyScrub
		}
		disk.Backing = flat(thin, eager)
		return out.with(disk), nil
	}
	disk.Backing = flat(nil, nil)
	return out.with(disk), nil
}

func (p *plannedDisk) with(d *types.VirtualDisk) *plannedDisk {
	p.disk = d
	return p
}

// lunCanonical is the canonical name (naa.…) at the end of an RDM's device path.
func lunCanonical(device string) string {
	return device[strings.LastIndex(device, "/")+1:]
}

func isTrue(b *bool) bool { return b != nil && *b }
