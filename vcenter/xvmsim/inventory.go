package xvmsim

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sync/errgroup"
)

// Names of the default inventories, stable so that tests and demos of other
// packages can refer to them.
const (
	// Username is the login of both default vCenters (each has its own password).
	Username = "svc-xvm@vsphere.local"

	// EastVC is the home vCenter.
	EastVC            = "vc-east"
	EastDatacenter    = "dc-east"
	EastCluster       = "east-prod"
	EastDatastore1    = "east-ds-01"
	EastDatastore2    = "east-ds-02"
	EastDVS           = "east-dvs"
	EastAppPortgroup  = "east-app-pg"
	EastDBPortgroup   = "east-db-pg"
	EastPool          = "apps"
	EastWebFolder     = "apps/web"
	EastDBFolder      = "apps/db"
	StandardPortgroup = "VM Network"

	// WestVC is the second vCenter, the usual migration target.
	WestVC           = "vc-west"
	WestDatacenter   = "dc-west"
	WestCluster      = "west-prod"
	WestGold         = "ds-gold"
	WestSilver       = "ds-silver"
	WestDVS          = "west-dvs"
	WestAppPortgroup = "app-pg"
	WestDBPortgroup  = "db-pg"
	WestPool         = "prod-pool"
	WestWebFolder    = "migrated/web"
	WestDBFolder     = "migrated/db"
	WestLegacyFolder = "legacy"
)

// Hosts of the default clusters.
const (
	EastHost1 = "esx-e1.lab"
	EastHost2 = "esx-e2.lab"
	EastHost3 = "esx-e3.lab"
	WestHost1 = "esx-w1.lab"
	WestHost2 = "esx-w2.lab"
	WestHost3 = "esx-w3.lab"
)

const diskKB = 1024 * 1024 // 1 GiB: small, the simulator creates real (sparse) files

// Pre-flight trip wires: VMs and places built so that each trips one
// pre-flight finding when moved to the default target (west-prod, ds-gold,
// app-pg). They live in their own folder on esx-e1.lab, the busiest east
// host, so that least-loaded host choices made for the original VMs stay as
// they were; the extra west clusters hold no original VM for the same reason.
const (
	// EastTripFolder holds the trip-wire VMs in vc-east.
	EastTripFolder = "trip"

	TripPassthrough = "trip-passthrough"   // a PCI passthrough device
	TripUSB         = "trip-usb"           // a USB device passed through from the host
	TripSerial      = "trip-serial"        // a serial port backed by the host's /dev/ttyS0
	TripParallel    = "trip-parallel"      // a parallel port backed by the host's /dev/parport0
	TripCDROMClient = "trip-cdrom-client"  // a CD-ROM connected to the vSphere Client's device
	TripCDROMISO    = "trip-cdrom-iso"     // a CD-ROM connected to an ISO on the host's local disk ("[]" path)
	TripSnapshot    = "trip-snapshot"      // has a snapshot
	TripSuspended   = "trip-suspended"     // suspended
	TripTemplate    = "trip-template"      // a template
	TripBigDisk     = "trip-bigdisk"       // a thick 4 TiB disk: more than ds-silver's 3 TiB free
	TripBigThin     = "trip-bigthin"       // a thin 4 TiB disk that uses next to nothing: fits on ds-silver unless made thick
	TripSwap        = "trip-swap"          // powered on, a thick disk 1 GiB short of ds-silver's free space: its swap file tips it over
	TripTwin        = "trip-twin"          // two VMs of this name, in trip and in apps/db
	TripCheckError  = "trip-check-error"   // the emulated CheckRelocate reports an error for it
	TripCheckWarn   = "trip-check-warning" // the emulated CheckRelocate reports a warning for it
	// DupVM exists in both vCenters: in vc-east's trip folder and in
	// vc-west's migrated/web folder, a name collision in the target.
	DupVM = "dup-01"

	// WestMaintCluster has one host, esx-w4.lab, in maintenance mode.
	WestMaintCluster = "west-maint"
	WestMaintHost    = "esx-w4.lab"
	// WestStdCluster has one host, esx-w5.lab, on no distributed switch:
	// only the standard StandardPortgroup ("VM Network").
	WestStdCluster = "west-std"
	WestStdHost    = "esx-w5.lab"

	// TripBigDiskKB is trip-bigdisk's capacity. The simulator gives a
	// datastore 1 TiB of free space per mounting host, so ds-silver (three
	// hosts) has 3 TiB.
	TripBigDiskKB = 4 << 30
	// TripSwapDiskKB is trip-swap's disk, 3071 GiB: it fits on ds-silver, its 2 GiB
	// swap file on top does not.
	TripSwapDiskKB = 3071 << 20

	// CheckRelocateErrorKey and CheckRelocateWarningKey are VM extraConfig
	// keys: the emulated CheckRelocate reports their values as an error or a
	// warning, standing in for what only a real vCenter knows (CPU
	// compatibility, EVC, vMotion network reachability).
	CheckRelocateErrorKey   = "xvmsim.checkRelocate.error"
	CheckRelocateWarningKey = "xvmsim.checkRelocate.warning"
)

// NSX segments, and names vCenter escapes: objects of their own, on hosts and in
// folders of their own, so that the lists and host loads other tests count stay as
// they were. vCenter returns "/", "\" and "%" in names as %2f, %5c and %25 (see
// docs/vsphere-behaviours.md); the vSphere Client shows them as typed. The lab names
// these objects as vCenter returns them (vcsim takes a portgroup's name as given; for a
// VM's, see fileName).
const (
	// EastNetFolder holds the VMs below in vc-east, on esx-e1.lab.
	EastNetFolder = "net"
	// EastSegment is an NSX-T segment (an opaque network) seen by east-prod's hosts.
	EastSegment = "east-seg-web"
	// SegmentVM is a VM whose one NIC is on EastSegment.
	SegmentVM = "nsx-01"
	// SlashVM is a VM that the vSphere Client shows as "app/01", as vCenter returns
	// its name; its one NIC is on the standard StandardPortgroup.
	SlashVM = "app%2f01"

	// WestNSXCluster has one host, esx-w6.lab, on no distributed switch: it sees
	// StandardPortgroup, the segment WestSegment and the standard portgroup
	// WestCIDRPortgroup, and mounts ds-gold.
	WestNSXCluster = "west-nsx"
	WestNSXHost    = "esx-w6.lab"
	// WestSegment is an NSX-T segment (an opaque network) seen by esx-w6.lab.
	WestSegment = "seg-web"
	// WestCIDRPortgroup is the standard portgroup the vSphere Client shows as
	// "10.10.12.0/24", as vCenter returns its name.
	WestCIDRPortgroup = "10.10.12.0%2f24"
	// WestSlashFolder is the VM folder the vSphere Client shows as "dev/test", at the
	// root of dc-west's VM folder, as vCenter returns its name.
	WestSlashFolder = "dev%2ftest"
)

type diskSpec struct {
	datastore   string
	thin, eager bool
	capacityKB  int64 // 0: diskKB
	// uncounted leaves the disk out of the datastore's free space: the
	// simulator subtracts every disk's full size, thin or not, so a 4 TiB
	// trip wire would leave its source datastore with less than nothing
	// free and block every move into it.
	uncounted bool
	// rdm, when set, makes the disk a raw device mapping of that LUN (diskscenarios.go)
	// in place of a flat disk.
	rdm *rdmSpec
	// seSparse makes the disk an SE sparse disk in place of a flat one.
	seSparse bool
}

type vmSpec struct {
	name      string
	folder    string // relative to the datacenter's vm folder
	pool      string // "" for the cluster's root pool
	home      string // the datastore of its own files; "" for its first disk's
	host      int    // index into inventory.hosts, then the extra clusters' hosts in order
	on        bool
	suspended bool // powered on, then suspended
	snapshot  bool
	template  bool
	disks     []diskSpec
	network   []string
	devices   func() []types.BaseVirtualDevice // extra devices, built afresh per VM
	extra     map[string]string                // extraConfig
	bulk      bool                             // one of WithExtraVMs'; created concurrently
}

// bulkWorkers is how many bulk VMs are created at once.
const bulkWorkers = 16

// clusterSpec is a cluster besides the main one.
type clusterSpec struct {
	name        string
	hosts       []string
	datastores  []string // mounted on its hosts; each must be one of inventory.datastores
	dvs         bool     // hosts join the inventory's switch
	maintenance bool     // hosts enter maintenance mode once the VMs exist
}

type inventory struct {
	datacenter string
	cluster    string
	hosts      []string
	datastores []string
	dvs        string
	portgroups []string
	folders    []string
	pools      []string
	clusters   []clusterSpec
	segments   []segmentSpec
	// standard are standard portgroups (on vSwitch0) besides StandardPortgroup, by name,
	// each with the hosts that have it.
	standard map[string][]string
	vms      []vmSpec
}

func eastInventory(extraVMs int) inventory {
	thick := []diskSpec{{datastore: EastDatastore1}}
	inv := inventory{
		datacenter: EastDatacenter,
		cluster:    EastCluster,
		hosts:      []string{EastHost1, EastHost2, EastHost3},
		datastores: []string{EastDatastore1, EastDatastore2},
		dvs:        EastDVS,
		portgroups: []string{EastAppPortgroup, EastDBPortgroup},
		folders:    []string{EastWebFolder, EastDBFolder, EastTripFolder},
		pools:      []string{EastPool},
		vms: []vmSpec{
			{name: "web-01", folder: EastWebFolder, pool: EastPool, host: 0, on: true, disks: thick, network: []string{EastAppPortgroup}},
			{name: "web-02", folder: EastWebFolder, pool: EastPool, host: 1, on: true, disks: thick, network: []string{EastAppPortgroup}},
			{name: "web-03", folder: EastWebFolder, pool: EastPool, host: 2, on: true, disks: thick, network: []string{EastAppPortgroup}},
			{
				name: "db-01", folder: EastDBFolder, host: 0,
				disks:   []diskSpec{{datastore: EastDatastore1}, {datastore: EastDatastore1, thin: true}},
				network: []string{EastAppPortgroup, StandardPortgroup},
			},
		},
	}
	inv.vms = append(inv.vms, tripVMs()...)
	inv.folders = append(inv.folders, EastNetFolder)
	inv.segments = []segmentSpec{{name: EastSegment, id: "6f1c2a52-3e0b-4b6e-9d1a-0e5a1c7b2e01", hosts: inv.hosts}}
	inv.vms = append(inv.vms,
		vmSpec{name: SegmentVM, folder: EastNetFolder, host: 0, on: true,
			disks: []diskSpec{{datastore: EastDatastore1, thin: true}}, network: []string{EastSegment}},
		vmSpec{name: SlashVM, folder: EastNetFolder, host: 0, on: true,
			disks: []diskSpec{{datastore: EastDatastore1, thin: true}}, network: []string{StandardPortgroup}},
	)
	// The bulk VMs are spread over the hosts and, every other one, over both datastores,
	// as a real cluster's VMs are: a wave of them is bound by its limits, not by one
	// source datastore.
	for i := 1; i <= extraVMs; i++ {
		inv.vms = append(inv.vms, vmSpec{
			name: fmt.Sprintf("bulk-%04d", i), folder: EastWebFolder, host: i % len(inv.hosts), bulk: true,
			disks:   []diskSpec{{datastore: inv.datastores[i%len(inv.datastores)], thin: true}},
			network: []string{EastAppPortgroup},
		})
	}
	return inv
}

// tripVMs are the trip wires of vc-east: each one small, thin and on
// east-app-pg like the web VMs, plus the one thing it is there to trip.
func tripVMs() []vmSpec {
	trip := func(name string, edit func(*vmSpec)) vmSpec {
		s := vmSpec{
			name: name, folder: EastTripFolder, host: 0, on: true,
			disks:   []diskSpec{{datastore: EastDatastore1, thin: true}},
			network: []string{EastAppPortgroup},
		}
		if edit != nil {
			edit(&s)
		}
		return s
	}
	connected := func() *types.VirtualDeviceConnectInfo {
		return &types.VirtualDeviceConnectInfo{StartConnected: true, Connected: true, AllowGuestControl: true}
	}
	return []vmSpec{
		trip(TripPassthrough, func(s *vmSpec) {
			s.devices = func() []types.BaseVirtualDevice {
				return []types.BaseVirtualDevice{&types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
					Key: -200,
					Backing: &types.VirtualPCIPassthroughDeviceBackingInfo{
						VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "NVIDIA A100"},
						Id:                             "0000:3b:00.0", DeviceId: "20b0", SystemId: "5e3c-esx-e1", VendorId: 0x10de,
					},
				}}}
			}
		}),
		trip(TripUSB, func(s *vmSpec) {
			s.devices = func() []types.BaseVirtualDevice {
				return []types.BaseVirtualDevice{&types.VirtualUSB{VirtualDevice: types.VirtualDevice{
					Key:         -201,
					Backing:     &types.VirtualUSBUSBBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "path:1/0/3 version:2"}},
					Connectable: connected(),
				}, Connected: true}}
			}
		}),
		trip(TripSerial, func(s *vmSpec) {
			s.devices = func() []types.BaseVirtualDevice {
				return []types.BaseVirtualDevice{&types.VirtualSerialPort{VirtualDevice: types.VirtualDevice{
					Key:         -202,
					Backing:     &types.VirtualSerialPortDeviceBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "/dev/ttyS0"}},
					Connectable: connected(),
				}, YieldOnPoll: true}}
			}
		}),
		trip(TripParallel, func(s *vmSpec) {
			s.devices = func() []types.BaseVirtualDevice {
				return []types.BaseVirtualDevice{&types.VirtualParallelPort{VirtualDevice: types.VirtualDevice{
					Key:         -203,
					Backing:     &types.VirtualParallelPortDeviceBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "/dev/parport0"}},
					Connectable: connected(),
				}}}
			}
		}),
		trip(TripCDROMClient, func(s *vmSpec) {
			s.devices = func() []types.BaseVirtualDevice {
				return []types.BaseVirtualDevice{&types.VirtualCdrom{VirtualDevice: types.VirtualDevice{
					Key: -204,
					Backing: &types.VirtualCdromRemotePassthroughBackingInfo{
						VirtualDeviceRemoteDeviceBackingInfo: types.VirtualDeviceRemoteDeviceBackingInfo{DeviceName: "", UseAutoDetect: types.NewBool(false)},
					},
					Connectable: connected(),
				}}}
			}
		}),
		trip(TripCDROMISO, func(s *vmSpec) {
			s.devices = func() []types.BaseVirtualDevice {
				return []types.BaseVirtualDevice{&types.VirtualCdrom{VirtualDevice: types.VirtualDevice{
					Key: -205,
					Backing: &types.VirtualCdromIsoBackingInfo{
						VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[] /vmimages/tools-isoimages/linux.iso"},
					},
					Connectable: connected(),
				}}}
			}
		}),
		trip(TripSnapshot, func(s *vmSpec) { s.snapshot = true }),
		trip(TripSuspended, func(s *vmSpec) { s.suspended = true }),
		trip(TripTemplate, func(s *vmSpec) { s.on, s.template = false, true }),
		trip(TripBigDisk, func(s *vmSpec) {
			s.on = false
			s.disks = []diskSpec{{datastore: EastDatastore1, capacityKB: TripBigDiskKB, uncounted: true}}
		}),
		trip(TripBigThin, func(s *vmSpec) {
			s.on = false
			s.disks = []diskSpec{{datastore: EastDatastore1, thin: true, capacityKB: TripBigDiskKB, uncounted: true}}
		}),
		trip(TripSwap, func(s *vmSpec) {
			s.disks = []diskSpec{{datastore: EastDatastore1, capacityKB: TripSwapDiskKB, uncounted: true}}
		}),
		trip(TripTwin, nil),
		trip(TripTwin, func(s *vmSpec) {
			// Another datastore: the same name would make the same files.
			s.folder, s.on, s.disks = EastDBFolder, false, []diskSpec{{datastore: EastDatastore2, thin: true}}
		}),
		trip(TripCheckError, func(s *vmSpec) {
			s.extra = map[string]string{CheckRelocateErrorKey: "The target host does not support the virtual machine's " +
				"current hardware requirements: use a cluster with Enhanced vMotion Compatibility (EVC) at the VM's level"}
		}),
		trip(TripCheckWarn, func(s *vmSpec) {
			s.extra = map[string]string{CheckRelocateWarningKey: "The vMotion interface of the target host is on a 1 GbE link; " +
				"the migration may take longer than usual"}
		}),
		trip(DupVM, func(s *vmSpec) { s.on = false }),
	}
}

func westInventory() inventory {
	legacy := func(name string, host int) vmSpec {
		return vmSpec{
			name: name, folder: WestLegacyFolder, host: host, on: true,
			disks:   []diskSpec{{datastore: WestGold, thin: true}},
			network: []string{WestAppPortgroup},
		}
	}
	return inventory{
		datacenter: WestDatacenter,
		cluster:    WestCluster,
		hosts:      []string{WestHost1, WestHost2, WestHost3},
		datastores: []string{WestGold, WestSilver},
		dvs:        WestDVS,
		portgroups: []string{WestAppPortgroup, WestDBPortgroup},
		folders:    []string{WestWebFolder, WestDBFolder, WestLegacyFolder, WestSlashFolder},
		pools:      []string{WestPool},
		clusters: []clusterSpec{
			{name: WestMaintCluster, hosts: []string{WestMaintHost}, datastores: []string{WestGold}, dvs: true, maintenance: true},
			{name: WestStdCluster, hosts: []string{WestStdHost}, datastores: []string{WestGold}},
			{name: WestNSXCluster, hosts: []string{WestNSXHost}, datastores: []string{WestGold}},
		},
		segments: []segmentSpec{{name: WestSegment, id: "0b7d3c1e-58a4-4f0e-8c2d-7a9e4b6f3d02", hosts: []string{WestNSXHost}}},
		standard: map[string][]string{WestCIDRPortgroup: {WestNSXHost}},
		vms: []vmSpec{
			legacy("legacy-01", 0), legacy("legacy-02", 1),
			// On west-std's host (index 4), so west-prod's host loads stay as they were.
			{name: DupVM, folder: WestWebFolder, host: 4, disks: []diskSpec{{datastore: WestGold, thin: true}}, network: []string{StandardPortgroup}},
		},
	}
}

// build creates inv through the vCenter API, the way an administrator would,
// so that the simulator keeps every back-reference (host members, mounts,
// pool and folder children) consistent. The VMs are created over inproc, a
// client wired straight into the simulator: the same API calls without
// HTTPS; the bulk VMs of WithExtraVMs by the simulator's own CreateVM_Task
// method, without XML either (see createInRegistry), which makes a 20,000-VM
// inventory take a minute or two, not six.
func (inv inventory) build(ctx context.Context, c *govmomi.Client, inproc *vim25.Client, vc *VC) error {
	dsDir := vc.dsDir
	root := object.NewRootFolder(c.Client)
	dc, err := root.CreateDatacenter(ctx, inv.datacenter)
	if err != nil {
		return fmt.Errorf("create datacenter %s: %w", inv.datacenter, err)
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}

	clusters := append([]clusterSpec{{name: inv.cluster, hosts: inv.hosts, datastores: inv.datastores, dvs: true}}, inv.clusters...)
	var hosts, dvsHosts, maintenance []*object.HostSystem
	rootPools := make([]*object.ResourcePool, 0, len(clusters))
	hostPool := map[int]int{} // host index → index in rootPools
	mounts := map[string][]*object.HostSystem{}
	for ci, cs := range clusters {
		cluster, err := folders.HostFolder.CreateCluster(ctx, cs.name, types.ClusterConfigSpecEx{})
		if err != nil {
			return fmt.Errorf("create cluster %s: %w", cs.name, err)
		}
		for _, name := range cs.hosts {
			task, err := cluster.AddHost(ctx, types.HostConnectSpec{HostName: name}, true, nil, nil)
			if err != nil {
				return fmt.Errorf("add host %s: %w", name, err)
			}
			info, err := task.WaitForResult(ctx)
			if err != nil {
				return fmt.Errorf("add host %s: %w", name, err)
			}
			h := object.NewHostSystem(c.Client, info.Result.(types.ManagedObjectReference))
			hostPool[len(hosts)] = ci
			hosts = append(hosts, h)
			if cs.dvs {
				dvsHosts = append(dvsHosts, h)
			}
			if cs.maintenance {
				maintenance = append(maintenance, h)
			}
			for _, ds := range cs.datastores {
				mounts[ds] = append(mounts[ds], h)
			}
		}
		rp, err := cluster.ResourcePool(ctx)
		if err != nil {
			return err
		}
		rootPools = append(rootPools, rp)
	}

	for _, name := range inv.datastores {
		// One directory mounted on every host makes a shared datastore.
		dir := filepath.Join(dsDir, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		for _, h := range mounts[name] {
			dss, err := h.ConfigManager().DatastoreSystem(ctx)
			if err != nil {
				return err
			}
			if _, err := dss.CreateLocalDatastore(ctx, name, dir); err != nil {
				return fmt.Errorf("create datastore %s: %w", name, err)
			}
		}
	}

	if err := inv.buildDVS(ctx, c, folders.NetworkFolder, dvsHosts); err != nil {
		return err
	}
	if err := inv.buildStandard(ctx, c, hosts, vc); err != nil {
		return err
	}
	if len(inv.segments) > 0 {
		if err := vc.edit(func(e *labEdit) error { return e.addSegments(inv.datacenter, inv.segments) }); err != nil {
			return err
		}
	}

	vmFolders := map[string]*object.Folder{"": folders.VmFolder}
	for _, p := range inv.folders {
		if _, err := mkdirAll(ctx, vmFolders, p); err != nil {
			return fmt.Errorf("create folder %s: %w", p, err)
		}
	}

	pools := map[string]*object.ResourcePool{}
	for _, name := range inv.pools {
		p, err := rootPools[0].Create(ctx, name, types.DefaultResourceConfigSpec())
		if err != nil {
			return fmt.Errorf("create pool %s: %w", name, err)
		}
		pools[name] = p
	}

	b := &vmBuilder{c: inproc, vc: vc, dc: object.NewDatacenter(inproc, dc.Reference()),
		finder:    find.NewFinder(inproc, false).SetDatacenter(object.NewDatacenter(inproc, dc.Reference())),
		datastore: map[string]types.ManagedObjectReference{}, backing: map[string]types.BaseVirtualDeviceBackingInfo{}}
	create := func(ctx context.Context, vm vmSpec) error {
		pool := rootPools[hostPool[vm.host]]
		if vm.pool != "" {
			pool = pools[vm.pool]
		}
		if err := b.create(ctx, vm, vmFolders[vm.folder].Reference(), pool.Reference(), hosts[vm.host].Reference()); err != nil {
			return fmt.Errorf("create vm %s: %w", vm.name, err)
		}
		return nil
	}
	var bulk []vmSpec
	for _, vm := range inv.vms {
		if vm.bulk {
			bulk = append(bulk, vm)
			continue
		}
		if err := create(ctx, vm); err != nil {
			return err
		}
	}
	// Bulk VMs are created side by side: each creation waits partly on
	// its task's goroutine and the folder's lock, not on the CPU.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(bulkWorkers)
	for _, vm := range bulk {
		g.Go(func() error { return create(gctx, vm) })
	}
	if err := g.Wait(); err != nil {
		return err
	}

	// RefreshDatastore recomputes free space from scratch, forgetting what
	// was subtracted for the disks (1 GiB each, and the uncounted giants).
	refreshed := map[string]bool{}
	for _, vm := range inv.vms {
		for _, d := range vm.disks {
			if !d.uncounted || refreshed[d.datastore] {
				continue
			}
			refreshed[d.datastore] = true
			ref, err := b.datastoreRef(ctx, d.datastore)
			if err != nil {
				return err
			}
			if _, err := methods.RefreshDatastore(ctx, b.c, &types.RefreshDatastore{This: ref}); err != nil {
				return fmt.Errorf("refresh datastore %s: %w", d.datastore, err)
			}
		}
	}

	for _, h := range maintenance {
		task, err := h.EnterMaintenanceMode(ctx, 0, false, nil)
		if err != nil {
			return err
		}
		if err := task.Wait(ctx); err != nil {
			return fmt.Errorf("enter maintenance mode on %s: %w", h.Reference(), err)
		}
	}
	return nil
}

func (inv inventory) buildDVS(ctx context.Context, c *govmomi.Client, netFolder *object.Folder, hosts []*object.HostSystem) error {
	spec := types.DVSCreateSpec{ConfigSpec: &types.VMwareDVSConfigSpec{DVSConfigSpec: types.DVSConfigSpec{Name: inv.dvs}}}
	task, err := netFolder.CreateDVS(ctx, spec)
	if err != nil {
		return fmt.Errorf("create dvs %s: %w", inv.dvs, err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return fmt.Errorf("create dvs %s: %w", inv.dvs, err)
	}
	dvs := object.NewDistributedVirtualSwitch(c.Client, info.Result.(types.ManagedObjectReference))

	var pgs []types.DVPortgroupConfigSpec
	for _, name := range inv.portgroups {
		pgs = append(pgs, types.DVPortgroupConfigSpec{
			Name:     name,
			Type:     string(types.DistributedVirtualPortgroupPortgroupTypeEarlyBinding),
			NumPorts: 128,
		})
	}
	if task, err = dvs.AddPortgroup(ctx, pgs); err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("add portgroups to %s: %w", inv.dvs, err)
	}

	// CreateDVS ignores hosts in its spec; only a reconfigure with host
	// members attaches the switch (and its portgroups) to the hosts, without
	// which the simulator rejects VMs on those portgroups.
	members := &types.DVSConfigSpec{}
	for _, h := range hosts {
		members.Host = append(members.Host, types.DistributedVirtualSwitchHostMemberConfigSpec{
			Operation: string(types.ConfigSpecOperationAdd),
			Host:      h.Reference(),
		})
	}
	if task, err = dvs.Reconfigure(ctx, members); err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("add hosts to %s: %w", inv.dvs, err)
	}
	return nil
}

// diskPath names the i-th disk of a VM. Explicit names matter: with a bare
// "[datastore]" the simulator creates the file itself and then fails the
// "create" file operation with FileAlreadyExists.
func diskPath(datastore, vm string, i int) string {
	if i == 0 {
		return fmt.Sprintf("[%s] %s/%s.vmdk", datastore, vm, vm)
	}
	return fmt.Sprintf("[%s] %s/%s_%d.vmdk", datastore, vm, vm, i)
}

// vmDirectory makes the VM's directory on a datastore other than its home
// one, which CreateVM does not, so that a disk can be created there.
func vmDirectory(ctx context.Context, c *vim25.Client, dc *object.Datacenter, datastore, vm string) error {
	return object.NewFileManager(c).MakeDirectory(ctx, fmt.Sprintf("[%s] %s", datastore, vm), dc, true)
}

func mkdirAll(ctx context.Context, known map[string]*object.Folder, p string) (*object.Folder, error) {
	if f, ok := known[p]; ok {
		return f, nil
	}
	parent, err := mkdirAll(ctx, known, strings.TrimPrefix(path.Dir("/"+p), "/"))
	if err != nil {
		return nil, err
	}
	f, err := parent.CreateFolder(ctx, typed(path.Base(p)))
	if err != nil {
		return nil, err
	}
	known[p] = f
	return f, nil
}

// vmBuilder creates VMs, looking each datastore and network up once.
type vmBuilder struct {
	c         *vim25.Client
	vc        *VC // for NICs on NSX segments (see nsx.go)
	dc        *object.Datacenter
	finder    *find.Finder
	mu        sync.Mutex // guards the two caches: bulk VMs are created concurrently
	datastore map[string]types.ManagedObjectReference
	backing   map[string]types.BaseVirtualDeviceBackingInfo
}

func (b *vmBuilder) datastoreRef(ctx context.Context, name string) (types.ManagedObjectReference, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ref, ok := b.datastore[name]; ok {
		return ref, nil
	}
	ds, err := b.finder.Datastore(ctx, name)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	b.datastore[name] = ds.Reference()
	return ds.Reference(), nil
}

func (b *vmBuilder) networkBacking(ctx context.Context, name string) (types.BaseVirtualDeviceBackingInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.backing[name]; !ok {
		net, err := b.finder.Network(ctx, name)
		if err != nil {
			return nil, err
		}
		bk, err := net.EthernetCardBackingInfo(ctx)
		if err != nil {
			return nil, err
		}
		b.backing[name] = bk
	}
	// Sharing one backing between cards is safe: the simulator works on a
	// copy of every request, in process as over SOAP.
	return b.backing[name], nil
}

func (b *vmBuilder) create(ctx context.Context, s vmSpec, folderRef, poolRef, hostRef types.ManagedObjectReference) error {
	folder := object.NewFolder(b.c, folderRef)
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return err
	}
	devices = append(devices, scsi)

	home := s.home
	if home == "" {
		home = s.disks[0].datastore
	}
	for i, d := range s.disks {
		ds, err := b.datastoreRef(ctx, d.datastore)
		if err != nil {
			return err
		}
		disk := devices.CreateDisk(scsi.(types.BaseVirtualController), ds, diskPath(d.datastore, fileName(s.name), i))
		disk.CapacityInKB = diskKB
		if d.capacityKB > 0 {
			disk.CapacityInKB = d.capacityKB
		}
		if d.datastore != home {
			if err := vmDirectory(ctx, b.c, b.dc, d.datastore, fileName(s.name)); err != nil {
				return err
			}
		}
		bk := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		bk.ThinProvisioned = types.NewBool(d.thin)
		bk.EagerlyScrub = types.NewBool(!d.thin && d.eager)
		if d.rdm != nil {
			disk.Backing = d.rdm.backing(bk.VirtualDeviceFileBackingInfo)
		}
		if d.seSparse {
			disk.Backing = &types.VirtualDiskSeSparseBackingInfo{VirtualDeviceFileBackingInfo: bk.VirtualDeviceFileBackingInfo,
				DiskMode: string(types.VirtualDiskModePersistent)}
		}
		devices = append(devices, disk)
	}

	segments := map[int]*types.VirtualEthernetCardOpaqueNetworkBackingInfo{}
	for i, name := range s.network {
		backing, err := b.networkBacking(ctx, name)
		if err != nil {
			return err
		}
		if seg, ok := backing.(*types.VirtualEthernetCardOpaqueNetworkBackingInfo); ok {
			segments[i], backing = seg, nil // set once the VM exists (see nsx.go)
		}
		nic, err := devices.CreateEthernetCard("vmxnet3", backing)
		if err != nil {
			return err
		}
		devices = append(devices, nic)
	}
	if s.devices != nil {
		devices = append(devices, s.devices()...)
	}

	change, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return err
	}
	spec := types.VirtualMachineConfigSpec{
		Name:         fileName(s.name),
		GuestId:      string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		NumCPUs:      2,
		MemoryMB:     2048,
		Files:        &types.VirtualMachineFileInfo{VmPathName: "[" + home + "]"},
		DeviceChange: change,
	}
	for k, v := range s.extra {
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: v})
	}
	var ref types.ManagedObjectReference
	if s.bulk {
		ref, err = b.createInRegistry(ctx, spec, folderRef, poolRef, hostRef)
	} else {
		ref, err = b.createOverAPI(ctx, folder, spec, poolRef, hostRef)
	}
	if err != nil {
		return err
	}
	vm := object.NewVirtualMachine(b.c, ref)
	if err := renameTo(ctx, b.c, vm.Reference(), s.name); err != nil {
		return err
	}
	if len(segments) > 0 {
		if err := b.vc.edit(func(e *labEdit) error { return e.putOnSegments(vm.Reference(), segments) }); err != nil {
			return err
		}
	}
	steps := []func(context.Context) (*object.Task, error){}
	if s.on || s.suspended {
		steps = append(steps, vm.PowerOn)
	}
	if s.snapshot {
		steps = append(steps, func(ctx context.Context) (*object.Task, error) {
			return vm.CreateSnapshot(ctx, "before-upgrade", "taken by xvmsim", false, false)
		})
	}
	if s.suspended {
		steps = append(steps, vm.Suspend)
	}
	for _, step := range steps {
		if err := runTask(ctx, b.c, step); err != nil {
			return err
		}
	}
	if s.template {
		return vm.MarkAsTemplate(ctx)
	}
	return nil
}

// buildStandard adds the inventory's standard portgroups to the hosts that have them.
// vcsim adds the network to the datacenter but not to the host's network list; the lab
// does that as SetPortgroupOnHost does.
func (inv inventory) buildStandard(ctx context.Context, c *govmomi.Client, hosts []*object.HostSystem, vc *VC) error {
	for name, on := range inv.standard {
		for i, hostName := range on {
			var host *object.HostSystem
			for _, h := range hosts {
				if n, err := h.ObjectName(ctx); err == nil && n == hostName {
					host = h
				}
			}
			if host == nil {
				return fmt.Errorf("portgroup %s: host %s: %w", name, hostName, ErrNotFound)
			}
			if i == 0 {
				// vcsim keeps one network object per name, whatever the host.
				ns, err := host.ConfigManager().NetworkSystem(ctx)
				if err != nil {
					return err
				}
				if err := ns.AddPortGroup(ctx, types.HostPortGroupSpec{Name: name, VswitchName: "vSwitch0", Policy: types.HostNetworkPolicy{}}); err != nil {
					return fmt.Errorf("add portgroup %s to %s: %w", name, hostName, err)
				}
			}
			if _, err := vc.SetPortgroupOnHost(hostName, name, true); err != nil {
				return err
			}
		}
	}
	return nil
}
