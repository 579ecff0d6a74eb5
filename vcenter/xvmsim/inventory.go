package xvmsim

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
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

type diskSpec struct {
	datastore   string
	thin, eager bool
}

type vmSpec struct {
	name    string
	folder  string // relative to the datacenter's vm folder
	pool    string // "" for the cluster's root pool
	host    int    // index into inventory.hosts
	on      bool
	disks   []diskSpec
	network []string
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
	vms        []vmSpec
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
		folders:    []string{EastWebFolder, EastDBFolder},
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
	for i := 1; i <= extraVMs; i++ {
		inv.vms = append(inv.vms, vmSpec{
			name: fmt.Sprintf("bulk-%04d", i), folder: EastWebFolder, host: i % len(inv.hosts),
			disks:   []diskSpec{{datastore: EastDatastore2, thin: true}},
			network: []string{EastAppPortgroup},
		})
	}
	return inv
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
		folders:    []string{WestWebFolder, WestDBFolder, WestLegacyFolder},
		pools:      []string{WestPool},
		vms:        []vmSpec{legacy("legacy-01", 0), legacy("legacy-02", 1)},
	}
}

// build creates inv through the vCenter API, the way an administrator would,
// so that the simulator keeps every back-reference (host members, mounts,
// pool and folder children) consistent.
func (inv inventory) build(ctx context.Context, c *govmomi.Client, dsDir string) error {
	root := object.NewRootFolder(c.Client)
	dc, err := root.CreateDatacenter(ctx, inv.datacenter)
	if err != nil {
		return fmt.Errorf("create datacenter %s: %w", inv.datacenter, err)
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}

	cluster, err := folders.HostFolder.CreateCluster(ctx, inv.cluster, types.ClusterConfigSpecEx{})
	if err != nil {
		return fmt.Errorf("create cluster %s: %w", inv.cluster, err)
	}
	hosts := make([]*object.HostSystem, 0, len(inv.hosts))
	for _, name := range inv.hosts {
		task, err := cluster.AddHost(ctx, types.HostConnectSpec{HostName: name}, true, nil, nil)
		if err != nil {
			return fmt.Errorf("add host %s: %w", name, err)
		}
		info, err := task.WaitForResult(ctx)
		if err != nil {
			return fmt.Errorf("add host %s: %w", name, err)
		}
		hosts = append(hosts, object.NewHostSystem(c.Client, info.Result.(types.ManagedObjectReference)))
	}

	for _, name := range inv.datastores {
		// One directory mounted on every host makes a shared datastore.
		dir := filepath.Join(dsDir, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		for _, h := range hosts {
			dss, err := h.ConfigManager().DatastoreSystem(ctx)
			if err != nil {
				return err
			}
			if _, err := dss.CreateLocalDatastore(ctx, name, dir); err != nil {
				return fmt.Errorf("create datastore %s: %w", name, err)
			}
		}
	}

	if err := inv.buildDVS(ctx, c, folders.NetworkFolder, hosts); err != nil {
		return err
	}

	vmFolders := map[string]*object.Folder{"": folders.VmFolder}
	for _, p := range inv.folders {
		if _, err := mkdirAll(ctx, vmFolders, p); err != nil {
			return fmt.Errorf("create folder %s: %w", p, err)
		}
	}

	rootPool, err := cluster.ResourcePool(ctx)
	if err != nil {
		return err
	}
	pools := map[string]*object.ResourcePool{"": rootPool}
	for _, name := range inv.pools {
		p, err := rootPool.Create(ctx, name, types.DefaultResourceConfigSpec())
		if err != nil {
			return fmt.Errorf("create pool %s: %w", name, err)
		}
		pools[name] = p
	}

	finder := find.NewFinder(c.Client, false).SetDatacenter(dc)
	for _, vm := range inv.vms {
		if err := vm.create(ctx, finder, dc, vmFolders[vm.folder], pools[vm.pool], hosts[vm.host]); err != nil {
			return fmt.Errorf("create vm %s: %w", vm.name, err)
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
	f, err := parent.CreateFolder(ctx, path.Base(p))
	if err != nil {
		return nil, err
	}
	known[p] = f
	return f, nil
}

func (s vmSpec) create(ctx context.Context, finder *find.Finder, dc *object.Datacenter, folder *object.Folder, pool *object.ResourcePool, host *object.HostSystem) error {
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return err
	}
	devices = append(devices, scsi)

	for i, d := range s.disks {
		ds, err := finder.Datastore(ctx, d.datastore)
		if err != nil {
			return err
		}
		disk := devices.CreateDisk(scsi.(types.BaseVirtualController), ds.Reference(), diskPath(d.datastore, s.name, i))
		disk.CapacityInKB = diskKB
		if d.datastore != s.disks[0].datastore {
			if err := vmDirectory(ctx, folder.Client(), dc, d.datastore, s.name); err != nil {
				return err
			}
		}
		b := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		b.ThinProvisioned = types.NewBool(d.thin)
		b.EagerlyScrub = types.NewBool(!d.thin && d.eager)
		devices = append(devices, disk)
	}

	for _, name := range s.network {
		net, err := finder.Network(ctx, name)
		if err != nil {
			return err
		}
		backing, err := net.EthernetCardBackingInfo(ctx)
		if err != nil {
			return err
		}
		nic, err := devices.CreateEthernetCard("vmxnet3", backing)
		if err != nil {
			return err
		}
		devices = append(devices, nic)
	}

	change, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return err
	}
	spec := types.VirtualMachineConfigSpec{
		Name:         s.name,
		GuestId:      string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		NumCPUs:      2,
		MemoryMB:     2048,
		Files:        &types.VirtualMachineFileInfo{VmPathName: "[" + s.disks[0].datastore + "]"},
		DeviceChange: change,
	}
	task, err := folder.CreateVM(ctx, spec, pool, host)
	if err != nil {
		return err
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return err
	}
	if !s.on {
		return nil
	}
	vm := object.NewVirtualMachine(folder.Client(), info.Result.(types.ManagedObjectReference))
	task, err = vm.PowerOn(ctx)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}
