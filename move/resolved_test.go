package move

import (
	"encoding/json"
	"testing"
)

// A resolved placement is signed in approvals and kept in request records: its JSON
// names are fixed, and an unset one adds nothing to the record.
func TestResolvedJSONNames(t *testing.T) {
	t.Parallel()
	r := Resolved{PowerState: "poweredOn", Host: Object{Type: "HostSystem", Value: "host-1", Name: "esx"},
		Pool: Object{Type: "ResourcePool", Value: "resgroup-2"}, Datastore: Object{Type: "Datastore", Value: "datastore-3"},
		Folder: Object{Type: "Folder", Value: "group-v4"}, OtherHosts: []string{"host-5"}, Profile: "p1",
		Disks: []ResolvedDisk{{Key: 2000, Datastore: "datastore-3", Format: Thin, Profile: "p2"}},
		NICs: []ResolvedNIC{{Key: 4000, Network: Object{Type: "DistributedVirtualPortgroup", Value: "dvportgroup-6"},
			SwitchUUID: "u", PortgroupKey: "k", OpaqueID: "o", OpaqueType: "t", DeviceName: "d"}},
		Needs: []Need{{Datastore: "datastore-3", Bytes: 7}}}
	got, _ := json.Marshal(r)
	want := `{"power_state":"poweredOn","host":{"type":"HostSystem","value":"host-1","name":"esx"},` +
		`"pool":{"type":"ResourcePool","value":"resgroup-2"},"datastore":{"type":"Datastore","value":"datastore-3"},` +
		`"folder":{"type":"Folder","value":"group-v4"},"other_hosts":["host-5"],"profile":"p1",` +
		`"disks":[{"key":2000,"datastore":"datastore-3","format":"thin","profile":"p2"}],` +
		`"nics":[{"key":4000,"network":{"type":"DistributedVirtualPortgroup","value":"dvportgroup-6"},` +
		`"switch_uuid":"u","portgroup_key":"k","opaque_id":"o","opaque_type":"t","device_name":"d"}],` +
		`"needs":[{"datastore":"datastore-3","bytes":7}]}`
	if string(got) != want {
		t.Errorf("resolved JSON:\n got %s\nwant %s", got, want)
	}
	c := r.Clone()
	c.OtherHosts[0], c.Disks[0].Key, c.NICs[0].Key, c.Needs[0].Bytes = "x", 1, 1, 1
	if r.OtherHosts[0] != "host-5" || r.Disks[0].Key != 2000 || r.NICs[0].Key != 4000 || r.Needs[0].Bytes != 7 {
		t.Errorf("changing the clone changed the original: %+v", r)
	}
	if (*Resolved)(nil).Clone() != nil {
		t.Error("the clone of none is not none")
	}
}
