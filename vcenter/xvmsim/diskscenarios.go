package xvmsim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Disk scenarios: what AddDiskScenarios adds to a lab, for the rules of disks that are not
// plain flat files and of datastores that are not plain VMFS (diskrules.go). They are not
// in the default inventories, whose objects and counts other tests depend on.
const (
	// RDMPhysicalVM (in vc-east's trip folder, on esx-e1.lab, powered on, its NIC on the
	// standard "VM Network") has a 1 GiB flat disk and, as Hard disk 2, a raw device mapping in physical compatibility mode of
	// RDMPhysicalLUN; its mapping file is on east-ds-01.
	RDMPhysicalVM = "rdm-phys"
	// RDMVirtualVM is the same with a virtual compatibility mode RDM of RDMVirtualLUN.
	RDMVirtualVM = "rdm-virt"
	// RDMPhysicalLUN and RDMVirtualLUN are the LUNs' canonical names. esx-e1.lab and the
	// hosts of west-prod see both; west-std's host does not.
	RDMPhysicalLUN = "naa.600a098038303053453f463045577a01"
	RDMVirtualLUN  = "naa.600a098038303053453f463045577a02"
	// RDMLUNKB is both LUNs' size, 4 TiB: more than ds-silver's 3 TiB free.
	RDMLUNKB = 4 << 30

	// SharedDatastore is one storage mounted in both vCenters (the same URL): on the hosts
	// of east-prod and of west-prod.
	SharedDatastore = "ds-shared"
	// SharedVM (in vc-east's trip folder, on esx-e1.lab, powered on) keeps its own files on
	// east-ds-01 and its one disk, thick, of SharedDiskKB, on SharedDatastore.
	SharedVM = "shared-01"
	// SharedDiskKB is 4 TiB: more than SharedDatastore's 3 TiB free in vc-west, so a move
	// that counted it as copied would not fit.
	SharedDiskKB = 4 << 30

	// SeSparseVM (in vc-east's trip folder, on esx-e1.lab, powered off) has one SE sparse
	// disk of 1 GiB on east-ds-01.
	SeSparseVM = "sesparse-01"

	// WestNFS is an NFS datastore of vc-west, mounted on the hosts of west-prod without
	// hardware acceleration (vStorageUnsupported): it takes thin disks only.
	WestNFS = "nfs-novaai"
)

// rdmSpec makes a lab disk a raw device mapping.
type rdmSpec struct {
	mode types.VirtualDiskCompatibilityMode
	lun  string // canonical name
}

// lunUUID is the uuid vSphere reports for a LUN of that canonical name (the SCSI
// identifier, as ESXi builds it from the NAA id).
func lunUUID(canonical string) string {
	return "0200000000" + strings.TrimPrefix(canonical, "naa.") + "4c554e20432d"
}

func (r *rdmSpec) backing(file types.VirtualDeviceFileBackingInfo) *types.VirtualDiskRawDiskMappingVer1BackingInfo {
	return &types.VirtualDiskRawDiskMappingVer1BackingInfo{
		VirtualDeviceFileBackingInfo: file,
		CompatibilityMode:            string(r.mode),
		DiskMode:                     string(types.VirtualDiskModePersistent),
		DeviceName:                   "/vmfs/devices/disks/" + r.lun,
		LunUuid:                      lunUUID(r.lun),
	}
}

// AddDiskScenarios adds the disk scenarios above to the lab: the shared and NFS
// datastores, the LUNs the hosts see, and the VMs. Call it once, before the lab is used.
func (l *Lab) AddDiskScenarios(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "xvmsim-shared-")
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.extraDirs = append(l.extraDirs, dir)
	l.mu.Unlock()
	east, west := l.VC(EastVC), l.VC(WestVC)
	if east == nil || west == nil {
		return fmt.Errorf("the disk scenarios need the default vCenters %s and %s", EastVC, WestVC)
	}
	luns := []string{RDMPhysicalLUN, RDMVirtualLUN}
	err = east.exclusive(ctx, func(c *govmomi.Client) error {
		f, dc, err := finderOf(ctx, c, east.Datacenter)
		if err != nil {
			return err
		}
		for _, h := range []string{EastHost1, EastHost2, EastHost3} {
			if err := mountLocal(ctx, f, h, SharedDatastore, dir); err != nil {
				return err
			}
		}
		b := &vmBuilder{c: c.Client, dc: dc, finder: f,
			datastore: map[string]types.ManagedObjectReference{}, backing: map[string]types.BaseVirtualDeviceBackingInfo{}}
		folder, err := f.Folder(ctx, "vm/"+EastTripFolder)
		if err != nil {
			return err
		}
		pool, err := f.ResourcePool(ctx, EastCluster+"/Resources")
		if err != nil {
			return err
		}
		host, err := f.HostSystem(ctx, EastHost1)
		if err != nil {
			return err
		}
		rdmVM := func(name string, mode types.VirtualDiskCompatibilityMode, lun string) vmSpec {
			// On the standard portgroup, which a cluster without a distributed switch
			// (west-std) can take too.
			return vmSpec{name: name, on: true, network: []string{StandardPortgroup}, disks: []diskSpec{
				{datastore: EastDatastore1, thin: true},
				{datastore: EastDatastore1, capacityKB: RDMLUNKB, uncounted: true, rdm: &rdmSpec{mode: mode, lun: lun}},
			}}
		}
		for _, s := range []vmSpec{
			rdmVM(RDMPhysicalVM, types.VirtualDiskCompatibilityModePhysicalMode, RDMPhysicalLUN),
			rdmVM(RDMVirtualVM, types.VirtualDiskCompatibilityModeVirtualMode, RDMVirtualLUN),
			{name: SharedVM, on: true, home: EastDatastore1, network: []string{EastAppPortgroup},
				disks: []diskSpec{{datastore: SharedDatastore, capacityKB: SharedDiskKB, uncounted: true}}},
			{name: SeSparseVM, network: []string{EastAppPortgroup}, disks: []diskSpec{{datastore: EastDatastore1, seSparse: true}}},
		} {
			if err := b.create(ctx, s, folder.Reference(), pool.Reference(), host.Reference()); err != nil {
				return fmt.Errorf("create vm %s: %w", s.name, err)
			}
		}
		// The simulator subtracts every disk's full size: forget the giants (see build).
		for _, name := range []string{EastDatastore1, SharedDatastore} {
			ref, err := b.datastoreRef(ctx, name)
			if err != nil {
				return err
			}
			if _, err := methods.RefreshDatastore(ctx, c.Client, &types.RefreshDatastore{This: ref}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("disk scenarios in %s: %w", east.Name, err)
	}
	westHosts := []string{WestHost1, WestHost2, WestHost3}
	nfs := types.HostNasVolumeSpec{RemoteHost: "nfs01.lab", RemotePath: "/export/novaai",
		LocalPath: filepath.Join(west.dsDir, WestNFS), AccessMode: string(types.HostMountModeReadWrite), Type: string(types.HostFileSystemVolumeFileSystemTypeNFS)}
	if err := os.Mkdir(nfs.LocalPath, 0o700); err != nil {
		return err
	}
	err = west.exclusive(ctx, func(c *govmomi.Client) error {
		f, _, err := finderOf(ctx, c, west.Datacenter)
		if err != nil {
			return err
		}
		for _, h := range westHosts {
			if err := mountLocal(ctx, f, h, SharedDatastore, dir); err != nil {
				return err
			}
			hs, err := f.HostSystem(ctx, h)
			if err != nil {
				return err
			}
			dss, err := hs.ConfigManager().DatastoreSystem(ctx)
			if err != nil {
				return err
			}
			if _, err := dss.CreateNasDatastore(ctx, nfs); err != nil {
				return fmt.Errorf("mount %s on %s: %w", WestNFS, h, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("disk scenarios in %s: %w", west.Name, err)
	}
	if err := east.giveHosts([]string{EastHost1}, luns, nil); err != nil {
		return err
	}
	mount := types.HostFileSystemMountInfo{
		MountInfo: types.HostMountInfo{Path: nfs.LocalPath, AccessMode: nfs.AccessMode, Mounted: types.NewBool(true), Accessible: types.NewBool(true)},
		Volume: &types.HostNasVolume{HostFileSystemVolume: types.HostFileSystemVolume{Type: nfs.Type, Name: WestNFS},
			RemoteHost: nfs.RemoteHost, RemotePath: nfs.RemotePath},
		VStorageSupport: string(types.FileSystemMountInfoVStorageSupportStatusVStorageUnsupported),
	}
	return west.giveHosts(westHosts, luns, &mount)
}

func finderOf(ctx context.Context, c *govmomi.Client, datacenter string) (*find.Finder, *object.Datacenter, error) {
	f := find.NewFinder(c.Client, false)
	dc, err := f.Datacenter(ctx, datacenter)
	if err != nil {
		return nil, nil, err
	}
	f.SetDatacenter(dc)
	return f, dc, nil
}

// mountLocal mounts directory dir as datastore name on host: one directory mounted on
// several hosts, or in several vCenters, is one storage.
func mountLocal(ctx context.Context, f *find.Finder, host, name, dir string) error {
	h, err := f.HostSystem(ctx, host)
	if err != nil {
		return err
	}
	dss, err := h.ConfigManager().DatastoreSystem(ctx)
	if err != nil {
		return err
	}
	if _, err := dss.CreateLocalDatastore(ctx, name, dir); err != nil {
		return fmt.Errorf("mount %s on %s: %w", name, host, err)
	}
	return nil
}

// giveHosts makes each host named see the LUNs (in config.storageDevice.scsiLun) and, if
// mount is set, report that file system mount (config.fileSystemVolume).
func (v *VC) giveHosts(hosts, luns []string, mount *types.HostFileSystemMountInfo) error {
	return v.edit(func(e *labEdit) error {
		for _, name := range hosts {
			obj, err := e.find("HostSystem", name, "HostSystem")
			if err != nil {
				return err
			}
			h := obj.(*simulator.HostSystem)
			e.update(obj, func() []types.PropertyChange {
				// New values, never edits in place: a reader may hold the old ones.
				var sd types.HostStorageDeviceInfo
				if h.Config.StorageDevice != nil {
					sd = *h.Config.StorageDevice
				}
				sd.ScsiLun = slices.Clone(sd.ScsiLun)
				for _, lun := range luns {
					sd.ScsiLun = append(sd.ScsiLun, scsiDisk(lun))
				}
				changes := []types.PropertyChange{{Name: "config.storageDevice", Val: &sd}}
				if mount != nil {
					var fs types.HostFileSystemVolumeInfo
					if h.Config.FileSystemVolume != nil {
						fs = *h.Config.FileSystemVolume
					}
					fs.MountInfo = append(slices.Clone(fs.MountInfo), *mount)
					changes = append(changes, types.PropertyChange{Name: "config.fileSystemVolume", Val: &fs})
				}
				return changes
			})
		}
		return nil
	})
}

// SetLUNVisible makes the host named host see the LUN of canonical name lun, or stop
// seeing it (as when a LUN is masked from one host of a cluster), and returns whether it
// saw it.
func (v *VC) SetLUNVisible(host, lun string, visible bool) (bool, error) {
	var was bool
	err := v.toggle("HostSystem", host, func(obj mo.Entity) []types.PropertyChange {
		h := obj.(*simulator.HostSystem)
		var sd types.HostStorageDeviceInfo
		if h.Config.StorageDevice != nil {
			sd = *h.Config.StorageDevice
		}
		sd.ScsiLun = slices.DeleteFunc(slices.Clone(sd.ScsiLun), func(l types.BaseScsiLun) bool {
			if l.GetScsiLun().CanonicalName == lun {
				was = true
				return true
			}
			return false
		})
		if visible {
			sd.ScsiLun = append(sd.ScsiLun, scsiDisk(lun))
		}
		return []types.PropertyChange{{Name: "config.storageDevice", Val: &sd}}
	})
	return was, err
}

// scsiDisk is the LUN of that canonical name as a host lists it.
func scsiDisk(lun string) *types.HostScsiDisk {
	return &types.HostScsiDisk{ScsiLun: types.ScsiLun{
		HostDevice: types.HostDevice{DeviceName: "/vmfs/devices/disks/" + lun, DeviceType: "disk"},
		Key:        "key-vim.host.ScsiDisk-" + lunUUID(lun), Uuid: lunUUID(lun), CanonicalName: lun,
		LunType: "disk", Vendor: "NETAPP", Model: "LUN C-Mode",
	}}
}
