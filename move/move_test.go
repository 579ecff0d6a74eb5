package move

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestParseDiskFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want DiskFormat
		err  bool
	}{
		{"same", Same, false}, {"THIN", Thin, false}, {"Thick", Thick, false}, {"eager", Eager, false},
		{"", "", true}, {"lazy", "", true}, {"thin ", "", true},
	} {
		got, err := ParseDiskFormat(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseDiskFormat(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if _, err := ParseDiskFormat("lazy"); err == nil || err.Error() != `"lazy" is not a disk format: use same, thin, thick or eager` {
		t.Errorf("the error does not list the formats: %v", err)
	}
}

func TestParsePriority(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Priority
		err  bool
	}{
		{"default", PriorityDefault, false}, {"High", PriorityHigh, false}, {"", "", true}, {"low", "", true},
	} {
		got, err := ParsePriority(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParsePriority(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if _, err := ParsePriority("low"); err == nil || err.Error() != `"low" is not a priority: use default or high` {
		t.Errorf("the error does not list the priorities: %v", err)
	}
}

// The JSON of a placement and of an origin is stored in request records and job records
// and signed in approvals: its field names are fixed.
func TestJSONNames(t *testing.T) {
	t.Parallel()
	p := Placement{Cluster: "c", Host: "h", Pool: "p", Datastore: "d", Folder: "f",
		Networks: []Network{{Source: "s", Target: "t"}, {Target: "all"}}, DiskFormat: Thin, Priority: PriorityHigh,
		Disks: []Disk{{Disk: 2, Datastore: "d2", DiskFormat: Eager}, {Disk: 3}}}
	got, _ := json.Marshal(p)
	want := `{"cluster":"c","host":"h","pool":"p","datastore":"d","folder":"f",` +
		`"networks":[{"source":"s","target":"t"},{"target":"all"}],"disk_format":"thin","priority":"high",` +
		`"disks":[{"disk":2,"datastore":"d2","disk_format":"eager"},{"disk":3}]}`
	if string(got) != want {
		t.Errorf("placement JSON:\n got %s\nwant %s", got, want)
	}
	if got, _ := json.Marshal(Placement{}); string(got) != `{}` {
		t.Errorf("an empty placement is %s, want {}", got)
	}
	o, _ := json.Marshal(Origin{VCenter: "vc-east", Placement: Placement{Host: "h"}})
	if string(o) != `{"vcenter":"vc-east","host":"h"}` {
		t.Errorf("an origin is %s: its placement is not flat", o)
	}
}

func TestCloneSharesNothing(t *testing.T) {
	t.Parallel()
	o := Origin{VCenter: "vc", Placement: Placement{Networks: []Network{{Target: "a"}}, Disks: []Disk{{Disk: 1}}}}
	c := o.Clone()
	c.Networks[0].Target, c.Disks[0].Disk = "b", 9
	if o.Networks[0].Target != "a" || o.Disks[0].Disk != 1 {
		t.Errorf("changing the clone changed the original: %+v", o)
	}
}

func TestNetworksBack(t *testing.T) {
	t.Parallel()
	got := NetworksBack([]string{"app-pg", "app-pg", "db-pg", "extra"}, []string{"east-app", "east-app", "east-db"})
	want := []Network{{Source: "app-pg", Target: "east-app"}, {Source: "db-pg", Target: "east-db"}}
	if !slices.Equal(got, want) {
		t.Errorf("NetworksBack = %+v, want %+v", got, want)
	}
	if got := NetworksBack(nil, []string{"a"}); got != nil {
		t.Errorf("no NIC after the move maps nothing back, got %+v", got)
	}
}
