package bot

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	mig := func(vms []string, from, to string, p move.Placement) Command {
		return Command{Verb: "migrate", Direction: approvals.Migrate, VMs: vms, From: from, To: to, Placement: p}
	}
	imp := func(vms []string, from, to string, p move.Placement) Command {
		return Command{Verb: "import", Direction: approvals.Import, VMs: vms, From: from, To: to, Placement: p}
	}
	vms := func(v ...string) []string { return v }
	none := move.Placement{}
	tests := []struct {
		name, in string
		want     Command
	}{
		{"empty is help", "", Command{Verb: "help"}},
		{"blank is help", "   \t ", Command{Verb: "help"}},
		{"migrate one vm", "migrate web-01 to vc-west", mig(vms("web-01"), "", "vc-west", none)},
		{"migrate from and to", "migrate web-01 from vc-east to vc-west", mig(vms("web-01"), "vc-east", "vc-west", none)},
		{"migrate to before from", "migrate web-01 to vc-west from vc-east", mig(vms("web-01"), "vc-east", "vc-west", none)},
		{"keywords any case", "MIGRATE web-01 FROM vc-east To vc-west", mig(vms("web-01"), "vc-east", "vc-west", none)},
		{"vm names keep case", "migrate Web-01 to VC-West", mig(vms("Web-01"), "", "VC-West", none)},
		{"vm list", "migrate web-01,web-02,web-03 to vc-west", mig(vms("web-01", "web-02", "web-03"), "", "vc-west", none)},
		{"vm list with spaces after commas", "migrate web-01, web-02 ,web-03 , web-04 to vc-west", mig(vms("web-01", "web-02", "web-03", "web-04"), "", "vc-west", none)},
		{"vm list deduplicated in order", "migrate b,a,b,c,a to vc-west", mig(vms("b", "a", "c"), "", "vc-west", none)},
		{"pattern kept verbatim", "migrate web-*,db-0? to vc-west", mig(vms("web-*", "db-0?"), "", "vc-west", none)},
		{"quoted vm", `migrate "web 01" to vc-west`, mig(vms("web 01"), "", "vc-west", none)},
		{"quoted vm in list", `migrate web-00,"web 01",'web 02' to vc-west`, mig(vms("web-00", "web 01", "web 02"), "", "vc-west", none)},
		{"quoted comma is a name", `migrate "a,b",c to vc-west`, mig(vms("a,b", "c"), "", "vc-west", none)},
		{"quoted keyword is a name", `migrate "to" to "from"`, mig(vms("to"), "", "from", none)},
		{"single quote holds double", `migrate 'say "hi"' to vc-west`, mig(vms(`say "hi"`), "", "vc-west", none)},
		{"smart double quotes", "migrate \u201cweb 01\u201d to \u201cvc west\u201d", mig(vms("web 01"), "", "vc west", none)},
		{"smart single quotes", "migrate \u2018web 01\u2019 to vc-west", mig(vms("web 01"), "", "vc-west", none)},
		{"entities", "migrate r&amp;d-01,a&lt;b&gt; to vc-west folder=R&amp;D", mig(vms("r&d-01", "a<b>"), "", "vc-west", move.Placement{Folder: "R&D"})},
		{"entities decoded once", "migrate a&amp;amp;b to vc-west", mig(vms("a&amp;b"), "", "vc-west", none)},
		{"slack auto-link", "migrate web-01 to <http://vc-west.example.com|vc-west.example.com>", mig(vms("web-01"), "", "vc-west.example.com", none)},
		{"slack bare link", "migrate web-01 to <https://vc-west.example.com>", mig(vms("web-01"), "", "vc-west.example.com", none)},
		{"non-breaking space", "migrate\u00a0web-01\u00a0to\u00a0vc-west", mig(vms("web-01"), "", "vc-west", none)},
		{"cluster", "migrate web-01 to vc-west cluster=prod-01", mig(vms("web-01"), "", "vc-west", move.Placement{Cluster: "prod-01"})},
		{"host", "migrate web-01 to vc-west host=esx-12.west.local", mig(vms("web-01"), "", "vc-west", move.Placement{Host: "esx-12.west.local"})},
		{"pool", "migrate web-01 to vc-west pool=web", mig(vms("web-01"), "", "vc-west", move.Placement{Pool: "web"})},
		{"datastore", "migrate web-01 to vc-west datastore=ssd-01", mig(vms("web-01"), "", "vc-west", move.Placement{Datastore: "ssd-01"})},
		{"folder path", "migrate web-01 to vc-west folder=/DC1/vm/migrated", mig(vms("web-01"), "", "vc-west", move.Placement{Folder: "/DC1/vm/migrated"})},
		{"quoted folder", `migrate web-01 to vc-west folder="migrated/web apps"`, mig(vms("web-01"), "", "vc-west", move.Placement{Folder: "migrated/web apps"})},
		{"option key any case", "migrate web-01 to vc-west Datastore=ssd-01 DISK=Thin", mig(vms("web-01"), "", "vc-west", move.Placement{Datastore: "ssd-01", DiskFormat: "thin"})},
		{"disk same", "migrate a to b disk=same", mig(vms("a"), "", "b", move.Placement{DiskFormat: "same"})},
		{"disk thick", "migrate a to b disk=thick", mig(vms("a"), "", "b", move.Placement{DiskFormat: "thick"})},
		{"disk eager", "migrate a to b disk=eager", mig(vms("a"), "", "b", move.Placement{DiskFormat: "eager"})},
		{"priority high", "migrate a to b priority=high", mig(vms("a"), "", "b", move.Placement{Priority: "high"})},
		{"priority default", "migrate a to b priority=Default", mig(vms("a"), "", "b", move.Placement{Priority: "default"})},
		{"network target", "migrate a to b network=app-pg", mig(vms("a"), "", "b", move.Placement{Networks: []move.Network{{Target: "app-pg"}}})},
		{"network map", "migrate a to b network=pg-a:pg-b", mig(vms("a"), "", "b", move.Placement{Networks: []move.Network{{Source: "pg-a", Target: "pg-b"}}})},
		{"network maps", `migrate a to b network="VM Network":app-pg,backup:"backup pg"`, mig(vms("a"), "", "b", move.Placement{Networks: []move.Network{{Source: "VM Network", Target: "app-pg"}, {Source: "backup", Target: "backup pg"}}})},
		{"network maps with spaces", "migrate a to b network=x:y, z:w", mig(vms("a"), "", "b", move.Placement{Networks: []move.Network{{Source: "x", Target: "y"}, {Source: "z", Target: "w"}}})},
		{"quoted colon in portgroup", `migrate a to b network="vlan:10":app`, mig(vms("a"), "", "b", move.Placement{Networks: []move.Network{{Source: "vlan:10", Target: "app"}}})},
		{"every option", `migrate web-01,web-02 from vc-east to vc-west cluster=prod pool=rp datastore=ds folder="a b" network=x:y disk=eager priority=high`,
			mig(vms("web-01", "web-02"), "vc-east", "vc-west", move.Placement{Cluster: "prod", Pool: "rp", Datastore: "ds", Folder: "a b", Networks: []move.Network{{Source: "x", Target: "y"}}, DiskFormat: "eager", Priority: "high"})},
		{"options before to", "migrate a cluster=c to b", mig(vms("a"), "", "b", move.Placement{Cluster: "c"})},
		{"per disk", `migrate db-01 to b datastore=ds disk=thin disk2=ds-2:eager DISK3=thick disk4="ds 4" disk5=thin:`,
			mig(vms("db-01"), "", "b", move.Placement{Datastore: "ds", DiskFormat: "thin", Disks: []move.Disk{
				{Disk: 2, Datastore: "ds-2", DiskFormat: "eager"}, {Disk: 3, DiskFormat: "thick"}, {Disk: 4, Datastore: "ds 4"}, {Disk: 5, Datastore: "thin"}}})},
		{"policy", `migrate a to b policy="Gold Policy"`, mig(vms("a"), "", "b", move.Placement{Policy: "Gold Policy"})},
		{"per disk policy", `migrate db-01 to b disk1=ds-1:thin:gold disk2=::silver disk3=ds-3::"Bronze: tier 3" disk4=:eager:gold`,
			mig(vms("db-01"), "", "b", move.Placement{Disks: []move.Disk{
				{Disk: 1, Datastore: "ds-1", DiskFormat: "thin", Policy: "gold"}, {Disk: 2, Policy: "silver"},
				{Disk: 3, Datastore: "ds-3", Policy: "Bronze: tier 3"}, {Disk: 4, DiskFormat: "eager", Policy: "gold"}}})},
		{"migrate wizard", "migrate", Command{Verb: "migrate", Direction: approvals.Migrate, Wizard: true}},
		{"import wizard", "  Import ", Command{Verb: "import", Direction: approvals.Import, Wizard: true}},
		{"import from", "import web-01 from vc-east", imp(vms("web-01"), "vc-east", "", none)},
		{"import from to", "import web-01 from vc-east to vc-west datastore=ds", imp(vms("web-01"), "vc-east", "vc-west", move.Placement{Datastore: "ds"})},
		{"check wizard", "check migrate", Command{Verb: "check", Direction: approvals.Migrate, Check: true, Wizard: true}},
		{"check import wizard", "check IMPORT", Command{Verb: "check", Direction: approvals.Import, Check: true, Wizard: true}},
		{"check migrate", "check migrate web-01 to vc-west", Command{Verb: "check", Direction: approvals.Migrate, Check: true, VMs: vms("web-01"), To: "vc-west"}},
		{"check import", "CHECK Import web-01 from vc-east disk=thin", Command{Verb: "check", Direction: approvals.Import, Check: true, VMs: vms("web-01"), From: "vc-east", Placement: move.Placement{DiskFormat: "thin"}}},
		{"status", "status xvm-k3m9q2", Command{Verb: "status", Arg: "xvm-k3m9q2"}},
		{"status job upper case", "status XVM-K3M9Q2-01", Command{Verb: "status", Arg: "xvm-k3m9q2-01"}},
		{"list", "list", Command{Verb: "list"}},
		{"cancel", "cancel xvm-k3m9q2", Command{Verb: "cancel", Arg: "xvm-k3m9q2"}},
		{"undo", "undo xvm-k3m9q2-01", Command{Verb: "undo", Arg: "xvm-k3m9q2-01"}},
		{"vcenters", "vcenters", Command{Verb: "vcenters"}},
		{"stats default window", "stats", Command{Verb: "stats", Arg: "24h"}},
		{"stats 24h", "stats 24h", Command{Verb: "stats", Arg: "24h"}},
		{"stats 7d", "stats 7D", Command{Verb: "stats", Arg: "7d"}},
		{"help", "help", Command{Verb: "help"}},
		{"help verb", "help Migrate", Command{Verb: "help", Arg: "migrate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.in)
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseCommand(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
			again, err := ParseCommand(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip through %q: got %#v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseCommandErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		mentions []string // each must appear in Problem
		usageFor string   // the Usage must be Usage(usageFor)
	}{
		{"unknown verb", "migarte web-01 to vc-west", []string{`"migarte"`, "did you mean migrate"}, ""},
		{"unknown verb no suggestion", "frobnicate", []string{`"frobnicate"`}, ""},
		{"migrate without to", "migrate web-01", []string{"to <vcenter>"}, "migrate"},
		{"migrate from only", "migrate web-01 from vc-east", []string{"to <vcenter>"}, "migrate"},
		{"import without from", "import web-01 to vc-west", []string{"from <vcenter>"}, "import"},
		{"to without name", "migrate web-01 to", []string{`"to"`, "vCenter name"}, "migrate"},
		{"to followed by option", "migrate web-01 to cluster=c", []string{`"to"`}, "migrate"},
		{"to twice", "migrate web-01 to a to b", []string{`"to"`, "twice"}, "migrate"},
		{"from twice", "import web-01 from a from b", []string{`"from"`, "twice"}, "import"},
		{"same vcenter", "migrate web-01 from vc-a to VC-A", []string{`"VC-A"`}, "migrate"},
		{"two vcenters", "migrate web-01 to a,b", []string{`"a,b"`}, "migrate"},
		{"no vms before to", "migrate to vc-west", []string{`"to"`, "VM names"}, "migrate"},
		{"option before vms", "migrate cluster=c web-01 to vc-west", []string{`"cluster=c"`}, "migrate"},
		{"unknown option", "migrate web-01 to vc-west dsk=thin", []string{`"dsk"`, "did you mean disk="}, "migrate"},
		{"unknown option prefix", "migrate web-01 to vc-west data=ds", []string{`"data"`, "did you mean datastore="}, "migrate"},
		{"unknown option far", "migrate web-01 to vc-west colour=red", []string{`"colour"`}, "migrate"},
		{"duplicate option", "migrate web-01 to vc-west disk=thin disk=thick", []string{"disk=", "twice"}, "migrate"},
		{"duplicate option any case", "migrate web-01 to vc-west pool=a POOL=b", []string{"pool=", "twice"}, "migrate"},
		{"bad disk", "migrate web-01 to vc-west disk=thn", []string{"thn", "did you mean thin"}, "migrate"},
		{"bad priority", "migrate web-01 to vc-west priority=urgent", []string{"urgent"}, "migrate"},
		{"disk with four parts", "migrate web-01 to vc-west disk2=ds:thin:gold:x", []string{"disk2=ds:thin:gold:x", "too many parts"}, "migrate"},
		{"disk with empty parts", "migrate web-01 to vc-west disk2=::", []string{"disk2=", "<datastore>:<format>[:<policy>]"}, "migrate"},
		{"empty option", "migrate web-01 to vc-west datastore=", []string{"datastore="}, "migrate"},
		{"comma in single option", "migrate web-01 to vc-west datastore=a,b", []string{"datastore=a,b"}, "migrate"},
		{"empty vm in list", "migrate web-01,,web-02 to vc-west", []string{`"web-01,,web-02"`, "empty VM"}, "migrate"},
		{"trailing comma", "migrate web-01, to vc-west", []string{"empty VM"}, "migrate"},
		{"quoted empty vm", `migrate "" to vc-west`, []string{"empty VM"}, "migrate"},
		{"unterminated quote", `migrate "web 01 to vc-west`, []string{`"web 01 to vc-west`, "closing"}, "migrate"},
		{"unterminated smart quote", "migrate \u201cweb 01 to vc-west", []string{`"web 01 to vc-west`}, "migrate"},
		{"stray word", "migrate web 01 to vc-west", []string{`"01"`}, "migrate"},
		{"quoted whole option is not an option", `migrate web-01 to vc-west "folder=web apps"`, []string{`folder=web apps`}, "migrate"},
		{"stray word at end", "migrate web-01 to vc-west now", []string{`"now"`}, "migrate"},
		{"network half mapping", "migrate a to b network=x:y,z", []string{`"z"`}, "migrate"},
		{"network empty source", "migrate a to b network=:y", []string{`":y"`}, "migrate"},
		{"network empty target", "migrate a to b network=x:", []string{`"x:"`}, "migrate"},
		{"network three parts", "migrate a to b network=x:y:z", []string{`"x:y:z"`}, "migrate"},
		{"network source twice", "migrate a to b network=x:y,x:z", []string{`"x"`, "twice"}, "migrate"},
		{"network empty mapping", "migrate a to b network=x:y,,z:w", []string{"network=x:y,,z:w"}, "migrate"},
		{"disk zero", "migrate a to b disk0=ds", []string{"disk0=", "from 1"}, "migrate"},
		{"disk number too high", "migrate a to b disk65=ds", []string{"disk65="}, "migrate"},
		{"disk with no value", "migrate a to b disk2=", []string{"disk2="}, "migrate"},
		{"disk with only a colon", "migrate a to b disk2=:", []string{"disk2="}, "migrate"},
		{"disk with a bad format", "migrate a to b disk2=ds:fast", []string{`"fast"`, "not a disk format"}, "migrate"},
		{"disk given twice", "migrate a to b disk2=ds disk2=thin", []string{"disk2=", "twice"}, "migrate"},
		{"disk given twice with a leading zero", "migrate a to b disk2=ds disk02=thin", []string{"disk2=", "twice"}, "migrate"},
		{"disk with two datastores", "migrate a to b disk2=x,y", []string{"disk2=x,y"}, "migrate"},
		{"check without direction", "check web-01 to vc-west", []string{`"web-01"`}, "check"},
		{"check alone", "check", []string{"migrate", "import"}, "check"},
		{"status without id", "status", []string{"id"}, "status"},
		{"status two ids", "status a b", []string{`"b"`}, "status"},
		{"cancel without id", "cancel", []string{"id"}, "cancel"},
		{"undo two ids", "undo a b", []string{`"b"`}, "undo"},
		{"list with args", "list all", []string{`"all"`}, "list"},
		{"vcenters with args", "vcenters now", []string{`"now"`}, "vcenters"},
		{"bad stats window", "stats 30d", []string{`"30d"`}, "stats"},
		{"stats two windows", "stats 24h 7d", []string{`"7d"`}, "stats"},
		{"help unknown verb", "help migrat", []string{`"migrat"`, "did you mean migrate"}, ""},
		{"invalid utf-8", "migrate \xff to b", []string{"UTF-8"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCommand(tt.in)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseCommand(%q) = %#v, %v; want a *UsageError", tt.in, c, err)
			}
			if !reflect.DeepEqual(c, Command{}) {
				t.Errorf("a failed parse returned %#v, want the zero Command", c)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(ue.Problem, m) {
					t.Errorf("Problem %q does not mention %q", ue.Problem, m)
				}
			}
			if ue.Error() != ue.Problem {
				t.Errorf("Error() = %q, want the Problem", ue.Error())
			}
			if want := Usage(tt.usageFor); ue.Usage != want {
				t.Errorf("Usage is for the wrong command:\n%s\nwant Usage(%q)", ue.Usage, tt.usageFor)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	all := Usage("")
	for _, c := range commands {
		if !strings.Contains(all, "/xvm "+c.Usage) {
			t.Errorf("help does not list %q", c.Usage)
		}
		u := Usage(c.Verb)
		if !strings.HasPrefix(u, "/xvm "+c.Usage+"\n") {
			t.Errorf("Usage(%q) = %q, want it to start with the synopsis", c.Verb, u)
		}
		for _, e := range c.Examples {
			if !strings.Contains(u, "/xvm "+e) {
				t.Errorf("Usage(%q) lacks example %q", c.Verb, e)
			}
		}
		if c.Options != strings.Contains(u, "disk=same|thin|thick|eager") {
			t.Errorf("Usage(%q): options listed = %v, want %v", c.Verb, !c.Options, c.Options)
		}
		if Usage(strings.ToUpper(c.Verb)) != u {
			t.Errorf("Usage is case-sensitive for %q", c.Verb)
		}
	}
	if Usage("nonsense") != all {
		t.Error("Usage of an unknown verb should be the whole help")
	}
	for _, k := range optionKeys() {
		if !strings.Contains(all, k+"=") {
			t.Errorf("help does not explain option %s=", k)
		}
	}
	if len(all) > 2900 {
		t.Errorf("help is %d chars; it must fit one Slack section (3000)", len(all))
	}
}

// TestHelpExamplesParse keeps the help honest: every example parses to its own verb and
// round-trips through Command.String.
func TestHelpExamplesParse(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		for _, e := range c.Examples {
			got, err := ParseCommand(e)
			if err != nil {
				t.Errorf("example %q: %v", e, err)
				continue
			}
			if got.Verb != c.Verb {
				t.Errorf("example %q parses as %q, want %q", e, got.Verb, c.Verb)
			}
			if again, err := ParseCommand(got.String()); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("example %q does not round-trip through %q: %#v, %v", e, got.String(), again, err)
			}
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, c := range commands {
		for _, e := range c.Examples {
			f.Add(e)
		}
	}
	f.Add("migrate \u201cweb 01\u201d,web-02 to <http://vc.example.com|vc.example.com> folder=R&amp;D network='a\"b':c")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseCommand(in)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) || ue.Problem == "" || ue.Usage == "" {
				t.Fatalf("ParseCommand(%q): error %#v is not a complete *UsageError", in, err)
			}
			return
		}
		again, err := ParseCommand(c.String())
		if err != nil {
			t.Fatalf("ParseCommand(%q) = %#v, whose String %q does not parse: %v", in, c, c.String(), err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip of %q through %q:\n got %#v\nwant %#v", in, c.String(), again, c)
		}
	})
}

// Every placement option of the table is parsed, written back by Command.String and
// explained by the help, and each sets its own part of the placement.
func TestEveryPlacementOptionParsesPrintsAndIsExplained(t *testing.T) {
	t.Parallel()
	samples := map[string]string{ // one typed value per option; a new option needs one
		"cluster": `cluster="prod 01"`, "host": "host=esx-12", "pool": "pool=web", "datastore": "datastore=ssd-01",
		"folder": `folder="migrated/web apps"`, "network": "network=a:b,c:d", "disk": "disk=thin",
		"disk<N>": "disk2=ssd-02:eager", "policy": "policy=gold-policy", "priority": "priority=high",
	}
	help := Usage(VerbMigrate)
	seen := map[string]bool{}
	for i, o := range placementOptions {
		name := o.key
		if o.numbered {
			name += "<N>"
		}
		typed, ok := samples[name]
		if !ok {
			t.Errorf("option %s has no sample here", name)
			continue
		}
		c, err := ParseCommand("migrate web-01 to vc-west " + typed)
		if err != nil {
			t.Errorf("%s: %v", typed, err)
			continue
		}
		if reflect.DeepEqual(c.Placement, move.Placement{}) {
			t.Errorf("%s sets nothing", typed)
		}
		for j, other := range placementOptions {
			if got := other.words(c.Placement); (i == j) != (len(got) > 0) {
				t.Errorf("%s: option %d writes %q", typed, j, got)
			}
		}
		if got := strings.Join(o.words(c.Placement), " "); got != typed {
			t.Errorf("%s is written back as %s", typed, got)
		}
		if !strings.Contains(help, name+"=") {
			t.Errorf("the help does not explain %s=", name)
		}
		seen[name] = true
	}
	for name := range samples {
		if !seen[name] {
			t.Errorf("sample of %s, which is no option", name)
		}
	}
}
