package vcenter

import (
	"net/url"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/secret"
)

func flatDisk(key int32, thin, eager bool) *types.VirtualDisk {
	return &types.VirtualDisk{
		VirtualDevice: types.VirtualDevice{Key: key, Backing: &types.VirtualDiskFlatVer2BackingInfo{
			DiskMode:        "independent_persistent",
			ThinProvisioned: types.NewBool(thin), EagerlyScrub: types.NewBool(eager),
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[east-ds-01] web-01/web-01.vmdk"},
		}},
		CapacityInKB: 1 << 20,
	}
}

var testPlacement = placement{
	Host:      types.ManagedObjectReference{Type: "HostSystem", Value: "host-9"},
	Pool:      types.ManagedObjectReference{Type: "ResourcePool", Value: "resgroup-8"},
	Datastore: types.ManagedObjectReference{Type: "Datastore", Value: "datastore-7"},
	Folder:    types.ManagedObjectReference{Type: "Folder", Value: "group-v6"},
}

func TestBuildRelocateSpecDisks(t *testing.T) {
	vm := &vmPlan{disks: []*types.VirtualDisk{flatDisk(2000, true, false), flatDisk(2001, false, true), flatDisk(2002, false, false)}}
	type flags struct{ thin, eager bool }
	tests := []struct {
		format move.DiskFormat
		want   []flags
	}{
		{move.Thin, []flags{{true, false}, {true, false}, {true, false}}},
		{move.Thick, []flags{{false, false}, {false, false}, {false, false}}},
		{move.Eager, []flags{{false, true}, {false, true}, {false, true}}},
	}
	// A disk already in the format asked gets no backing: nothing changes (disk 0 is thin,
	// disk 1 eager, disk 2 thick).
	already := map[move.DiskFormat]int{move.Thin: 0, move.Eager: 1, move.Thick: 2}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			spec := buildRelocateSpec(testPlacement, vm, tt.format, nil)
			if len(spec.Disk) != 3 {
				t.Fatalf("%d disk locators, want one per disk", len(spec.Disk))
			}
			for i, dl := range spec.Disk {
				if dl.DiskId != vm.disks[i].Key || dl.Datastore != testPlacement.Datastore {
					t.Errorf("locator %d: disk %d on %v", i, dl.DiskId, dl.Datastore)
				}
				if i == already[tt.format] {
					if dl.DiskBackingInfo != nil {
						t.Errorf("locator %d: backing %T for a disk already %s, want none", i, dl.DiskBackingInfo, tt.format)
					}
					continue
				}
				b, ok := dl.DiskBackingInfo.(*types.VirtualDiskFlatVer2BackingInfo)
				if !ok {
					t.Fatalf("locator %d backing %T, want flat-ver2", i, dl.DiskBackingInfo)
				}
				got := flags{isTrue(b.ThinProvisioned), isTrue(b.EagerlyScrub)}
				if got != tt.want[i] || b.ThinProvisioned == nil || b.EagerlyScrub == nil {
					t.Errorf("locator %d thin/eager %+v, want %+v (both set explicitly)", i, got, tt.want[i])
				}
				if b.DiskMode != "independent_persistent" || b.FileName != "" {
					t.Errorf("locator %d mode %q file %q: keep the mode, let vCenter name the file", i, b.DiskMode, b.FileName)
				}
			}
		})
	}
	// "Same format" sends no backing, as the vSphere Client's wizard does: one copied from
	// the source can be refused by a datastore of another type (docs/vsphere-behaviours.md).
	for _, dl := range buildRelocateSpec(testPlacement, vm, move.Same, nil).Disk {
		if dl.DiskBackingInfo != nil {
			t.Errorf("disk %d: backing %T with the same format, want none", dl.DiskId, dl.DiskBackingInfo)
		}
	}
	// Non-flat disks (RDM) keep their backing: no format is forced on them.
	rdm := &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 2003, Backing: &types.VirtualDiskRawDiskMappingVer1BackingInfo{}}}
	spec := buildRelocateSpec(testPlacement, &vmPlan{disks: []*types.VirtualDisk{rdm}}, move.Thin, nil)
	if spec.Disk[0].DiskBackingInfo != nil {
		t.Errorf("RDM got backing %T", spec.Disk[0].DiskBackingInfo)
	}
}

func TestBuildRelocateSpecNICs(t *testing.T) {
	srcBacking := &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
		Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: "east-uuid", PortgroupKey: "dvportgroup-1"}}
	nic := func(key int32, mac string) *types.VirtualVmxnet3 {
		return &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
			VirtualDevice: types.VirtualDevice{Key: key, Backing: srcBacking},
			AddressType:   "assigned", MacAddress: mac,
		}}}
	}
	netRef := types.ManagedObjectReference{Type: "Network", Value: "network-5"}
	dvs := &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
		Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: "west-uuid", PortgroupKey: "dvportgroup-42"}}
	std := &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"}, Network: &netRef}
	src1, src2 := nic(4000, "00:50:56:aa:bb:01"), nic(4001, "00:50:56:aa:bb:02")
	vm := &vmPlan{nics: []nicPlan{{device: src1, backing: dvs}, {device: src2, backing: std}}}

	loc := &types.ServiceLocator{InstanceUuid: "west"}
	spec := buildRelocateSpec(testPlacement, vm, move.Same, loc)
	if spec.Service != loc || *spec.Host != testPlacement.Host || *spec.Pool != testPlacement.Pool ||
		*spec.Datastore != testPlacement.Datastore || *spec.Folder != testPlacement.Folder {
		t.Errorf("placement/service not set: %+v", spec)
	}
	if len(spec.DeviceChange) != 2 {
		t.Fatalf("%d device changes, want one per NIC", len(spec.DeviceChange))
	}
	for i, want := range []struct {
		key     int32
		mac     string
		backing types.BaseVirtualDeviceBackingInfo
	}{{4000, "00:50:56:aa:bb:01", dvs}, {4001, "00:50:56:aa:bb:02", std}} {
		dc := spec.DeviceChange[i].GetVirtualDeviceConfigSpec()
		if dc.Operation != types.VirtualDeviceConfigSpecOperationEdit || dc.FileOperation != "" {
			t.Errorf("change %d: operation %q/%q, want edit", i, dc.Operation, dc.FileOperation)
		}
		card := dc.Device.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		if card.Key != want.key || card.MacAddress != want.mac || card.Backing != want.backing {
			t.Errorf("change %d: key %d mac %s backing %#v", i, card.Key, card.MacAddress, card.Backing)
		}
	}
	if src1.Backing != srcBacking {
		t.Error("building a spec changed the plan's source device")
	}
}

func TestMovePriority(t *testing.T) {
	for in, want := range map[move.Priority]types.VirtualMachineMovePriority{
		"high": types.VirtualMachineMovePriorityHighPriority, "default": types.VirtualMachineMovePriorityDefaultPriority,
		"": types.VirtualMachineMovePriorityDefaultPriority,
	} {
		if got := movePriority(in); got != want {
			t.Errorf("movePriority(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestServiceLocator(t *testing.T) {
	vc := startStockVC(t, "vc-west", "4A6E0B1C-0000-4000-8000-00000000ABCD")
	u, _ := url.Parse("https://vc-west.example.com/sdk")
	cfg := Config{Name: "vc-west", URL: u.String(), Username: "svc@vsphere.local", Password: secret.Secret("pw")}
	ep, _ := cfg.endpointURL()
	loc := serviceLocator(cfg, ep, "4A6E0B1C-0000-4000-8000-00000000ABCD", vc.server.Certificate())
	if loc.Url != "https://vc-west.example.com:443/sdk" || loc.InstanceUuid != "4A6E0B1C-0000-4000-8000-00000000ABCD" {
		t.Errorf("locator url %q uuid %q", loc.Url, loc.InstanceUuid)
	}
	cred, ok := loc.Credential.(*types.ServiceLocatorNamePassword)
	if !ok || cred.Username != "svc@vsphere.local" || cred.Password != "pw" {
		t.Errorf("credential %#v", loc.Credential)
	}
	if loc.SslThumbprint != vc.cfg.Thumbprint || len(loc.SslThumbprint) != 59 {
		t.Errorf("thumbprint %q, want the SHA-1 %q", loc.SslThumbprint, vc.cfg.Thumbprint)
	}

	// Split DNS: the source vCenter reaches the target at another name than xvmbot does.
	cfg.ServiceURL = "https://vc-west.mgmt.internal"
	if loc := serviceLocator(cfg, ep, "4A6E0B1C-0000-4000-8000-00000000ABCD", vc.server.Certificate()); loc.Url != "https://vc-west.mgmt.internal:443/sdk" {
		t.Errorf("locator url %q with service_url, want https://vc-west.mgmt.internal:443/sdk", loc.Url)
	}
	cfg.ServiceURL = "http://vc-west.mgmt.internal/sdk"
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "service_url") {
		t.Errorf("a plain-http service_url: %v, want an error naming service_url", err)
	}
}
