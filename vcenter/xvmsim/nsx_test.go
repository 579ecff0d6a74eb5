package xvmsim

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// The lab shows NSX segments and escaped names as vCenter does: a NIC on a segment has
// an opaque backing and the VM lists the segment among its networks; the hosts of a
// segment list it; names with a slash are returned escaped.
func TestSegmentsAndEscapedNames(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))

	vm := east.vm(t, ctx, SegmentVM)
	var v mo.VirtualMachine
	if err := east.c.RetrieveOne(ctx, vm.Reference(), []string{"network", "config.hardware.device"}, &v); err != nil {
		t.Fatal(err)
	}
	var nics []*types.VirtualEthernetCardOpaqueNetworkBackingInfo
	for _, d := range v.Config.Hardware.Device {
		if c, ok := d.(types.BaseVirtualEthernetCard); ok {
			b, _ := c.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardOpaqueNetworkBackingInfo)
			nics = append(nics, b)
		}
	}
	if len(nics) != 1 || nics[0] == nil || nics[0].OpaqueNetworkType != segmentType {
		t.Fatalf("%s's NICs %v, want one with an opaque (NSX segment) backing", SegmentVM, nics)
	}
	if len(v.Network) != 1 || v.Network[0].Type != "OpaqueNetwork" {
		t.Errorf("%s's networks %v, want its segment", SegmentVM, v.Network)
	}
	p, err := east.vc.FindVM(ctx, SegmentVM)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.NICs) != 1 || p.NICs[0] != (NICInfo{Network: EastSegment, MAC: p.NICs[0].MAC, Segment: true}) {
		t.Errorf("%s's NICs %+v, want one on segment %s", SegmentVM, p.NICs, EastSegment)
	}

	if p, err := east.vc.FindVM(ctx, SlashVM); err != nil || len(p.NICs) != 1 || p.NICs[0].Network != StandardPortgroup {
		t.Errorf("FindVM(%s) = %+v, %v", SlashVM, p, err)
	}

	hostNetworks := func(s *side, host string) []string {
		t.Helper()
		var h mo.HostSystem
		if err := s.c.RetrieveOne(ctx, *s.ref(t, ctx, "host", host), []string{"network"}, &h); err != nil {
			t.Fatal(err)
		}
		var names []string
		n := namer{c: s.c, names: map[types.ManagedObjectReference]string{}}
		for _, r := range h.Network {
			names = append(names, n.name(ctx, r))
		}
		slices.Sort(names)
		return names
	}
	for _, tc := range []struct {
		s    *side
		host string
		want []string
	}{
		{west, WestNSXHost, []string{WestCIDRPortgroup, WestSegment, StandardPortgroup}},
		{west, WestHost1, []string{StandardPortgroup, WestAppPortgroup, WestDBPortgroup}}, // as before
		{east, EastHost2, []string{StandardPortgroup, EastAppPortgroup, EastDBPortgroup, EastSegment}},
	} {
		got := slices.DeleteFunc(hostNetworks(tc.s, tc.host), func(n string) bool { return strings.Contains(n, "-DVUplinks-") })
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("networks of %s: %q, want %q", tc.host, got, tc.want)
		}
	}
}

// A cross vCenter move puts a NIC on an NSX segment of the target with its opaque
// backing, and on a standard portgroup whose name vCenter escapes only when the
// backing names the portgroup as vCenter returns it.
func TestCrossVCenterRelocateOntoSegments(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	place := xvmPlace(t, ctx, west, WestLegacyFolder, WestNSXCluster+"/Resources", WestNSXHost, WestGold, WestCIDRPortgroup)
	cidrNet, err := west.finder.Network(ctx, WestCIDRPortgroup)
	if err != nil {
		t.Fatal(err)
	}
	cidr := cidrNet.Reference()

	slash := east.vm(t, ctx, SlashVM)
	before, err := east.vc.FindVM(ctx, SlashVM)
	if err != nil {
		t.Fatal(err)
	}
	// The name as the vSphere Client shows it is not a name vCenter knows.
	spec := place.spec(t, ctx, slash, thin)
	card := spec.DeviceChange[0].GetVirtualDeviceConfigSpec().Device.GetVirtualDevice()
	card.Backing = &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "10.10.12.0/24"}, Network: &cidr}
	var te task.Error
	if _, err := relocate(ctx, slash, spec, nil); !errors.As(err, &te) || reflect.TypeOf(te.Fault()) != reflect.TypeOf(&types.InvalidArgument{}) {
		t.Fatalf("move onto %q by its readable name: %v, want InvalidArgument", WestCIDRPortgroup, err)
	}
	card.Backing = &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: WestCIDRPortgroup}, Network: &cidr}
	if _, err := relocate(ctx, slash, spec, nil); err != nil {
		t.Fatalf("move onto %q: %v", WestCIDRPortgroup, err)
	}
	got, err := west.vc.FindVM(ctx, SlashVM)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.NICs) != 1 || got.NICs[0] != (NICInfo{Network: WestCIDRPortgroup, MAC: before.NICs[0].MAC}) {
		t.Errorf("%s's NICs in %s: %+v, want one on %s with MAC %s", SlashVM, WestVC, got.NICs, WestCIDRPortgroup, before.NICs[0].MAC)
	}

	seg := east.vm(t, ctx, SegmentVM)
	if before, err = east.vc.FindVM(ctx, SegmentVM); err != nil {
		t.Fatal(err)
	}
	onSegment := xvmPlace(t, ctx, west, WestLegacyFolder, WestNSXCluster+"/Resources", WestNSXHost, WestGold, WestSegment)
	if _, err := relocate(ctx, seg, onSegment.spec(t, ctx, seg, thin), nil); err != nil {
		t.Fatalf("move %s onto segment %s: %v", SegmentVM, WestSegment, err)
	}
	if got, err = west.vc.FindVM(ctx, SegmentVM); err != nil {
		t.Fatal(err)
	}
	if len(got.NICs) != 1 || got.NICs[0] != (NICInfo{Network: WestSegment, MAC: before.NICs[0].MAC, Segment: true}) {
		t.Errorf("%s's NICs in %s: %+v, want one on segment %s with MAC %s", SegmentVM, WestVC, got.NICs, WestSegment, before.NICs[0].MAC)
	}
	if _, err := east.vc.FindVM(ctx, SegmentVM); !errors.Is(err, ErrNotFound) {
		t.Errorf("%s still in %s (err %v)", SegmentVM, EastVC, err)
	}
}
