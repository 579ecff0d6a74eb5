package vcenter

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// How a disk moves depends on its backing and on the datastore it goes to; the rules are
// vSphere's (docs/vsphere-behaviours.md has each with its reference):
//
//   - a raw device mapping (RDM) kept as one moves only its mapping file; the LUN stays
//     where it is and must be visible to the target host, and the mapping file must sit
//     on VMFS;
//   - a format (thin, thick, eager) converts a virtual-mode RDM into a flat disk, the
//     LUN's contents copied (not onto NFS); a physical-mode RDM cannot be converted;
//   - the format flags exist for flat disks only: an SE sparse disk keeps its own backing;
//   - "same format" sends no backing at all, as the vSphere Client's wizard does;
//   - NFS without hardware acceleration (VAAI) takes thin disks only;
//   - vSAN and vVols datastores provision by storage policy, not by format flags;
//   - storage both vCenters mount (compute-only XVM) copies nothing, so no format changes.

// diskKind is what a disk's backing makes of a move.
type diskKind int

const (
	kindFlat diskKind = iota
	kindRDMPhysical
	kindRDMVirtual
	kindSeSparse
	kindOther // sparse and other legacy backings
)

func kindOf(d *types.VirtualDisk) diskKind {
	switch b := d.Backing.(type) {
	case *types.VirtualDiskFlatVer2BackingInfo:
		return kindFlat
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		if b.CompatibilityMode == string(types.VirtualDiskCompatibilityModeVirtualMode) {
			return kindRDMVirtual
		}
		return kindRDMPhysical // and an RDM of no stated mode: nothing is converted
	case *types.VirtualDiskSeSparseBackingInfo:
		return kindSeSparse
	}
	return kindOther
}

// kindWords names a disk kind as the review says it.
func kindWords(k diskKind) string {
	switch k {
	case kindRDMPhysical:
		return "a raw device mapping (RDM) in physical compatibility mode"
	case kindRDMVirtual:
		return "a raw device mapping (RDM) in virtual compatibility mode"
	case kindSeSparse:
		return "an SE sparse disk"
	case kindOther:
		return "a disk of a legacy (sparse) format"
	}
	return "a flat disk"
}

// lunName is the LUN an RDM maps, as administrators know it: its canonical name
// (naa.…) from the device path, else its uuid.
func lunName(b *types.VirtualDiskRawDiskMappingVer1BackingInfo) string {
	if b.DeviceName != "" {
		return path.Base(b.DeviceName)
	}
	return b.LunUuid
}

// storeID is what identifies a datastore's storage across vCenters: its URL, its VMFS
// volume uuid, or the NFS export it mounts.
type storeID struct{ url, vmfs, nas string }

// same reports whether a and b are the same storage.
func (a storeID) same(b storeID) bool {
	return (a.url != "" && a.url == b.url) || (a.vmfs != "" && a.vmfs == b.vmfs) || (a.nas != "" && a.nas == b.nas)
}

func storeIDOf(ds *mo.Datastore) storeID {
	id := storeID{url: ds.Summary.Url}
	switch info := ds.Info.(type) {
	case *types.VmfsDatastoreInfo:
		if info.Vmfs != nil {
			id.vmfs = info.Vmfs.Uuid
		}
	case *types.NasDatastoreInfo:
		if info.Nas != nil && info.Nas.RemoteHost != "" {
			id.nas = info.Nas.RemoteHost + ":" + info.Nas.RemotePath
		}
	}
	return id
}

// diskDatastore is the datastore a disk's file is on, in its vCenter.
func diskDatastore(d *types.VirtualDisk) *types.ManagedObjectReference {
	if b, ok := d.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
		return b.GetVirtualDeviceFileBackingInfo().Datastore
	}
	return nil
}

// readSourceStores reads what identifies the storage of every disk of the VMs, so that
// the target side can tell storage both vCenters mount.
func (r *resolver) readSourceStores(ctx context.Context, c *vim25.Client, vms map[string]*sourceVM) error {
	var refs []types.ManagedObjectReference
	for _, svm := range vms {
		for _, d := range svm.plan.disks {
			if ref := diskDatastore(d); ref != nil {
				refs = append(refs, *ref)
			}
		}
	}
	if len(refs) == 0 {
		return nil
	}
	var dss []mo.Datastore
	if err := property.DefaultCollector(c).Retrieve(ctx, uniqRefs(refs), []string{"summary", "info"}, &dss); err != nil {
		return err
	}
	ids := make(map[types.ManagedObjectReference]storeID, len(dss))
	for i := range dss {
		ids[dss[i].Self] = storeIDOf(&dss[i])
	}
	for _, svm := range vms {
		svm.stores = ids
	}
	return nil
}

// targetStore is a target datastore as the disk rules need it.
type targetStore struct {
	name string
	kind string // summary.type: VMFS, NFS, NFS41, vsan, VVOL, …
	// thinOnly: NFS the chosen host mounts without hardware acceleration.
	thinOnly bool
	// sameAs are the source datastores that are this very storage.
	sameAs map[types.ManagedObjectReference]bool
}

// byPolicy reports a datastore whose provisioning follows the storage policy (vSAN,
// vVols), where format flags do not apply.
func (t targetStore) byPolicy() bool {
	return t.kind == string(types.HostFileSystemVolumeFileSystemTypeVsan) || t.kind == string(types.HostFileSystemVolumeFileSystemTypeVVOL)
}

func (t targetStore) nfs() bool {
	return t.kind == string(types.HostFileSystemVolumeFileSystemTypeNFS) || t.kind == string(types.HostFileSystemVolumeFileSystemTypeNFS41)
}

// holds reports whether disk d already sits on this storage: it is not copied.
func (t targetStore) holds(d *types.VirtualDisk) bool {
	ref := diskDatastore(d)
	return ref != nil && t.sameAs[*ref]
}

// typeWords names a datastore kind in a sentence.
func (t targetStore) typeWords() string {
	switch {
	case t.kind == string(types.HostFileSystemVolumeFileSystemTypeVsan):
		return "a vSAN datastore"
	case t.kind == string(types.HostFileSystemVolumeFileSystemTypeVVOL):
		return "a vVols datastore"
	case t.nfs():
		return "an NFS datastore"
	}
	return "a datastore"
}

// readTargetStores reads the target datastores the VMs' files go to: their type, the
// storage they are (compared with the source's), and, for NFS, whether the chosen host
// mounts them with hardware acceleration.
func readTargetStores(ctx context.Context, c *vim25.Client, host *mo.HostSystem, stores []namedRef, srcVMs map[string]*sourceVM) (map[types.ManagedObjectReference]targetStore, error) {
	out := map[types.ManagedObjectReference]targetStore{}
	if len(stores) == 0 {
		return out, nil
	}
	refs := make([]types.ManagedObjectReference, len(stores))
	for i, s := range stores {
		refs[i] = s.ref
	}
	var dss []mo.Datastore
	if err := property.DefaultCollector(c).Retrieve(ctx, refs, []string{"name", "summary", "info"}, &dss); err != nil {
		return nil, err
	}
	var src map[types.ManagedObjectReference]storeID
	for _, svm := range srcVMs {
		if svm.stores != nil {
			src = svm.stores
			break
		}
	}
	var mounts []types.HostFileSystemMountInfo
	for i := range dss {
		if t := dss[i].Summary.Type; host != nil && mounts == nil && (t == string(types.HostFileSystemVolumeFileSystemTypeNFS) || t == string(types.HostFileSystemVolumeFileSystemTypeNFS41)) {
			var h mo.HostSystem
			if err := property.DefaultCollector(c).RetrieveOne(ctx, host.Self, []string{"config.fileSystemVolume"}, &h); err != nil {
				return nil, err
			}
			if h.Config != nil && h.Config.FileSystemVolume != nil {
				mounts = h.Config.FileSystemVolume.MountInfo
			}
		}
	}
	for i := range dss {
		ds := &dss[i]
		t := targetStore{name: ds.Name, kind: ds.Summary.Type, sameAs: map[types.ManagedObjectReference]bool{}}
		id := storeIDOf(ds)
		for ref, sid := range src {
			if id.same(sid) {
				t.sameAs[ref] = true
			}
		}
		if nas, ok := ds.Info.(*types.NasDatastoreInfo); ok && nas.Nas != nil && t.nfs() {
			t.thinOnly = vStorage(mounts, nas.Nas) == string(types.FileSystemMountInfoVStorageSupportStatusVStorageUnsupported)
		}
		out[ds.Self] = t
	}
	return out, nil
}

// vStorage is the hardware acceleration status the host reports for its mount of the
// NFS export vol, "" when it reports none.
func vStorage(mounts []types.HostFileSystemMountInfo, vol *types.HostNasVolume) string {
	for _, m := range mounts {
		if v, ok := m.Volume.(*types.HostNasVolume); ok && v.RemoteHost == vol.RemoteHost && v.RemotePath == vol.RemotePath {
			return m.VStorageSupport
		}
	}
	return ""
}

// eachDisk calls fn for every disk of the VMs not ruled out, with the datastore it goes
// to and the format asked for it.
func (r *resolver) eachDisk(home types.ManagedObjectReference, disks map[int]diskTarget, srcVMs map[string]*sourceVM,
	fn func(vm string, svm *sourceVM, d *types.VirtualDisk, n int, ds types.ManagedObjectReference, format move.DiskFormat)) {
	for _, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		if svm == nil || svm.blocked {
			continue
		}
		for i, d := range svm.plan.disks {
			ds, format := home, r.spec.DiskFormat
			if t, ok := disks[diskNumber(d, i)]; ok {
				if t.ds.Value != "" {
					ds = t.ds
				}
				if t.format != "" {
					format = t.format
				}
			}
			fn(v.Name, svm, d, diskNumber(d, i), ds, format)
		}
	}
}

// checkDisks applies the disk rules above to every disk: blockers for what vCenter
// refuses, warnings for a format that will not apply, and, in the review, what moves of
// RDMs and of disks on storage both vCenters share.
func (r *resolver) checkDisks(ctx context.Context, c *vim25.Client, host *mo.HostSystem, home types.ManagedObjectReference,
	disks map[int]diskTarget, srcVMs map[string]*sourceVM, stores map[types.ManagedObjectReference]targetStore) error {
	saidShared := map[string]bool{}
	saidPolicy := map[string]bool{}
	type lunUse struct{ vm, disk, lun, uuid string }
	var luns []lunUse
	r.eachDisk(home, disks, srcVMs, func(vm string, svm *sourceVM, d *types.VirtualDisk, n int, ds types.ManagedObjectReference, format move.DiskFormat) {
		t, ok := stores[ds]
		if !ok {
			return
		}
		kind := kindOf(d)
		changes := format != move.Same && format != ""
		label := fmt.Sprintf("Hard disk %d of %s", n, vm)
		if t.holds(d) {
			if !saidShared[t.name] {
				saidShared[t.name] = true
				r.add(OK, "", fmt.Sprintf("%s is the same storage in both vCenters: disks are not copied", t.name), "")
			}
			if changes {
				r.add(Warning, vm, fmt.Sprintf("%s stays where it is on %s, the same storage in both vCenters: it is not copied, so disk=%s cannot change its format",
					label, t.name, format), fmt.Sprintf("to change its format, place it on another datastore (disk%d=<datastore>:%s), or ask with disk=same", n, format))
			}
			if rdm, ok := d.Backing.(*types.VirtualDiskRawDiskMappingVer1BackingInfo); ok {
				luns = append(luns, lunUse{vm, label, lunName(rdm), rdm.LunUuid})
			}
			return
		}
		if changes && t.byPolicy() && kind == kindFlat {
			if !saidPolicy[t.name] {
				saidPolicy[t.name] = true
				r.add(Warning, "", fmt.Sprintf("%s is %s: its disks are provisioned by the storage policy, so disk=%s does not apply there and is not sent",
					t.name, t.typeWords(), format), "choose the provisioning with the VM's storage policy, or ask with disk=same")
			}
			return
		}
		switch kind {
		case kindRDMPhysical, kindRDMVirtual:
			rdm := d.Backing.(*types.VirtualDiskRawDiskMappingVer1BackingInfo)
			size := gib(capacityOf(d))
			switch {
			case changes && kind == kindRDMPhysical:
				r.block(vm, fmt.Sprintf("%s is %s (LUN %s): it cannot be converted to a %s disk; vSphere moves only its mapping file",
					label, kindWords(kind), lunName(rdm), formatWord(format)),
					fmt.Sprintf("ask with disk=same (the mapping file moves, the LUN stays), or give the other disks their format one by one (disk<N>=<datastore>:%s)", format))
				svm.blocked = true
			case changes && t.nfs():
				r.block(vm, fmt.Sprintf("%s is %s (LUN %s): vSphere converts it to a %s disk only onto a datastore that is not NFS, and %s is NFS",
					label, kindWords(kind), lunName(rdm), formatWord(format), t.name),
					"choose a VMFS datastore for it, or ask with disk=same to move only its mapping file")
				svm.blocked = true
			case changes:
				r.add(Warning, vm, fmt.Sprintf("%s is %s (LUN %s): disk=%s converts it to a %s disk on %s, copying the LUN's %s; it cannot be converted back to an RDM",
					label, kindWords(kind), lunName(rdm), format, formatWord(format), t.name, size),
					"ask with disk=same to keep the RDM (only its mapping file moves)")
			case t.nfs() || t.byPolicy():
				r.block(vm, fmt.Sprintf("%s is %s (LUN %s): its mapping file must be on a VMFS datastore, and %s is %s",
					label, kindWords(kind), lunName(rdm), t.name, t.typeWords()),
					fmt.Sprintf("place it on a VMFS datastore (disk%d=<datastore>)", n))
				svm.blocked = true
			default:
				r.add(OK, vm, fmt.Sprintf("%s is %s (LUN %s, %s): only its mapping file moves to %s; the LUN is not copied and must be visible to the target host",
					label, kindWords(kind), lunName(rdm), size, t.name), "")
				luns = append(luns, lunUse{vm, label, lunName(rdm), rdm.LunUuid})
			}
		case kindSeSparse, kindOther:
			if changes {
				r.add(Warning, vm, fmt.Sprintf("%s is %s: disk=%s applies to flat disks only, so it moves in its own format", label, kindWords(kind), format),
					"nothing to do for the move; convert the disk after it, if the format matters")
			}
		case kindFlat:
			if !t.thinOnly {
				return
			}
			thick := format == move.Thick || format == move.Eager
			if b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok && !changes && !isTrue(b.ThinProvisioned) {
				r.add(Warning, vm, fmt.Sprintf("%s is thick, and %s is NFS without hardware acceleration on %s: it will be thin there",
					label, t.name, hostName(host)), "choose a datastore with hardware acceleration (VAAI) if it must stay thick")
			}
			if thick {
				r.block(vm, fmt.Sprintf("%s cannot be made %s on %s: it is NFS without hardware acceleration (VAAI) on %s, which takes thin disks only",
					label, formatWord(format), t.name, hostName(host)),
					"ask with disk=thin, or choose a datastore with hardware acceleration")
				svm.blocked = true
			}
		}
	})
	if len(luns) == 0 || host == nil {
		return nil
	}
	seen, err := visibleLUNs(ctx, c, host.Self)
	if err != nil {
		return err
	}
	missing := func(seen map[string]bool) []string {
		var out []string
		for _, l := range luns {
			if !seen[l.uuid] && !seen[l.lun] && !slices.Contains(out, l.lun) {
				out = append(out, l.lun)
			}
		}
		return out
	}
	// The other hosts first: those left see every LUN, and a blocker can name them.
	if err := r.dropHostsWithoutLUNs(ctx, c, luns[0].vm, missing); err != nil {
		return err
	}
	hint := "present the LUN to the target hosts (zoning, masking) and rescan their storage, or choose a host that sees it"
	if len(r.plan.OtherHosts) > 0 {
		hint = fmt.Sprintf("ask for a host that sees it (host=%s), or present the LUN to %s (zoning, masking) and rescan its storage",
			r.plan.OtherHosts[0], host.Name)
	}
	for _, l := range luns {
		if seen[l.uuid] || seen[l.lun] {
			continue
		}
		r.block(l.vm, fmt.Sprintf("%s maps LUN %s, which target host %s does not see; vCenter refuses the move", l.disk, l.lun, host.Name), hint)
		if svm := srcVMs[l.vm]; svm != nil {
			svm.blocked = true
		}
	}
	return nil
}

// dropHostsWithoutLUNs takes the plan's other hosts that do not see every mapped LUN out
// of them: a move spilled onto one would be refused.
func (r *resolver) dropHostsWithoutLUNs(ctx context.Context, c *vim25.Client, vm string, missing func(map[string]bool) []string) error {
	for _, name := range slices.Clone(r.plan.OtherHosts) {
		ref, ok := r.plan.others[name]
		if !ok {
			continue
		}
		seen, err := visibleLUNs(ctx, c, ref)
		if err != nil {
			return err
		}
		lost := missing(seen)
		if len(lost) == 0 {
			continue
		}
		i := slices.Index(r.plan.OtherHosts, name)
		r.plan.OtherHosts = slices.Delete(r.plan.OtherHosts, i, i+1)
		delete(r.plan.others, name)
		r.add(Warning, "", fmt.Sprintf("the moves will not spread onto %s when %s is busy: it does not see LUN %s, which %s maps",
			name, r.plan.Host, strings.Join(lost, ", "), vm), fmt.Sprintf("present the LUN to %s to use it too", name))
	}
	if len(r.plan.OtherHosts) == 0 {
		r.plan.OtherHosts = nil
	}
	return nil
}

// visibleLUNs are the uuids and canonical names of the SCSI LUNs a host sees.
func visibleLUNs(ctx context.Context, c *vim25.Client, host types.ManagedObjectReference) (map[string]bool, error) {
	var h mo.HostSystem
	if err := property.DefaultCollector(c).RetrieveOne(ctx, host, []string{"config.storageDevice"}, &h); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	if h.Config == nil || h.Config.StorageDevice == nil {
		return out, nil
	}
	for _, l := range h.Config.StorageDevice.ScsiLun {
		lun := l.GetScsiLun()
		if lun.Uuid != "" {
			out[lun.Uuid] = true
		}
		if lun.CanonicalName != "" {
			out[lun.CanonicalName] = true
		}
	}
	return out, nil
}

// formatWord names a format asked for one disk.
func formatWord(f move.DiskFormat) string {
	switch f {
	case move.Thick:
		return "thick (lazy zeroed)"
	case move.Eager:
		return "thick eager zeroed"
	}
	return string(f)
}

func hostName(h *mo.HostSystem) string {
	if h == nil {
		return "the target host"
	}
	return h.Name
}

func capacityOf(d *types.VirtualDisk) int64 {
	if d.CapacityInBytes > 0 {
		return d.CapacityInBytes
	}
	return d.CapacityInKB * 1024
}

// diskSpace is what disk d takes on target datastore t in format, and what thin disks
// could grow by: nothing for a disk already on that storage or an RDM whose mapping
// file alone moves; the LUN's size for a virtual-mode RDM converted; what it uses for an
// SE sparse disk and on a datastore that provisions by policy (thin unless the policy
// reserves space).
func diskSpace(svm *sourceVM, d *types.VirtualDisk, format move.DiskFormat, t targetStore) (need, grow int64, counted bool) {
	if t.holds(d) {
		return 0, 0, false
	}
	changes := format != move.Same && format != ""
	switch kindOf(d) {
	case kindRDMPhysical:
		return 0, 0, false
	case kindRDMVirtual:
		if !changes {
			return 0, 0, false
		}
		return capacityOf(d), 0, true
	case kindSeSparse:
		used := svm.used[d.Key]
		return used, max(capacityOf(d)-used, 0), true
	}
	if t.byPolicy() || t.thinOnly {
		need, grow = diskNeed(svm, d, move.Thin)
		return need, grow, true
	}
	need, grow = diskNeed(svm, d, format)
	return need, grow, true
}

// diskBacking is the backing a disk locator carries: none unless the format changes
// (the wizard's "same format" sends none, and a backing copied from the source can be
// refused by a datastore of another type), none for a disk that is not copied (on
// storage both vCenters share, an RDM whose mapping file moves), none for a flat disk
// where the datastore provisions by policy; a flat backing with the format's flags for a flat
// disk, or for a virtual-mode RDM to convert. Physical-mode RDMs and SE sparse disks are
// never given a flat backing.
func diskBacking(d *types.VirtualDisk, format move.DiskFormat, t targetStore) types.BaseVirtualDeviceBackingInfo {
	return formatBacking(d, sentFormat(d, format, t))
}

// sentFormat is the format disk d is converted to on its way to t: "" when it keeps its
// own (same format, not copied, or provisioned by the datastore's policy).
func sentFormat(d *types.VirtualDisk, format move.DiskFormat, t targetStore) move.DiskFormat {
	if format == move.Same || t.holds(d) || (t.byPolicy() && kindOf(d) == kindFlat) {
		return ""
	}
	return format
}

// formatBacking is the flat backing that converts d to format, or nil when nothing
// changes (no format, one d already has, or a disk that cannot be converted).
func formatBacking(d *types.VirtualDisk, format move.DiskFormat) types.BaseVirtualDeviceBackingInfo {
	if format == move.Same || format == "" {
		return nil
	}
	mode := ""
	switch b := d.Backing.(type) {
	case *types.VirtualDiskFlatVer2BackingInfo:
		mode = b.DiskMode
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		if kindOf(d) != kindRDMVirtual {
			return nil
		}
		mode = b.DiskMode
	default:
		return nil
	}
	b := &types.VirtualDiskFlatVer2BackingInfo{DiskMode: mode}
	if b.DiskMode == "" {
		b.DiskMode = string(types.VirtualDiskModePersistent)
	}
	switch format {
	case move.Thin:
		b.ThinProvisioned = types.NewBool(true)
		b.EagerlyScrub = types.NewBool(false)
	case move.Thick:
		b.ThinProvisioned = types.NewBool(false)
		b.EagerlyScrub = types.NewBool(false)
	case move.Eager:
		b.ThinProvisioned = types.NewBool(false)
		b.EagerlyScrub = types.NewBool(true)
	default:
		return nil
	}
	if src, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok &&
		isTrue(src.ThinProvisioned) == isTrue(b.ThinProvisioned) && isTrue(src.EagerlyScrub) == isTrue(b.EagerlyScrub) {
		return nil // already in that format: nothing changes, nothing to send
	}
	return b
}
