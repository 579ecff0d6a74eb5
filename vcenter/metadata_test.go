package vcenter

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// labMetadata gives VM vm in the lab's vCenter vcName the tag category/tag and
// the custom attribute name=value, straight through govmomi (not through the
// code under test), as an operator would have.
func labMetadata(t *testing.T, lab *xvmsim.Lab, vcName, vm string, tag Tag, name, value string) {
	t.Helper()
	ctx := context.Background()
	vc := lab.VC(vcName)
	c, err := vc.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(ctx) }()
	refs, ferr := findVMsByName(ctx, c.Client, []string{vm})
	if ferr != nil || len(refs[vm]) != 1 {
		t.Fatalf("find %s in %s: %v (%d found)", vm, vcName, ferr, len(refs[vm]))
	}
	ref := refs[vm][0]

	cfm, err := object.GetCustomFieldsManager(c.Client)
	if err != nil {
		t.Fatal(err)
	}
	def, err := cfm.Add(ctx, name, "VirtualMachine", nil, nil)
	if err != nil {
		t.Fatalf("add custom field: %v", err)
	}
	if err := cfm.Set(ctx, ref, def.Key, value); err != nil {
		t.Fatalf("set custom field: %v", err)
	}

	rc := rest.NewClient(c.Client)
	if err := rc.Login(ctx, url.UserPassword(vc.Username, vc.Password)); err != nil {
		t.Fatalf("vAPI login through the front door: %v", err)
	}
	defer func() { _ = rc.Logout(ctx) }()
	tm := tags.NewManager(rc)
	cid, err := tm.CreateCategory(ctx, &tags.Category{Name: tag.Category, Cardinality: "SINGLE", AssociableTypes: []string{"VirtualMachine"}})
	if err != nil {
		t.Fatalf("create category: %v", err)
	}
	tid, err := tm.CreateTag(ctx, &tags.Tag{Name: tag.Name, CategoryID: cid})
	if err != nil {
		t.Fatalf("create tag: %v", err)
	}
	if err := tm.AttachTag(ctx, tid, ref); err != nil {
		t.Fatalf("attach tag: %v", err)
	}
}

func TestMetadataVAPIEnforcesCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, _, _ := sharedLab(t)
	vc := lab.VC("vc-east")
	c, err := vc.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(ctx) }()
	rc := rest.NewClient(c.Client)
	if err := rc.Login(ctx, url.UserPassword(vc.Username, "wrong-"+vc.Password)); err == nil {
		t.Fatal("vAPI login with a wrong password succeeded")
	}
	if err := rc.Login(ctx, url.UserPassword(vc.Username, vc.Password)); err != nil {
		t.Fatalf("vAPI login: %v", err)
	}
	_ = rc.Logout(ctx)
}

func TestMetadataCopiedAcrossRelocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	want := &Metadata{Tags: []Tag{{Category: "app", Name: "shop"}}, Attributes: map[string]string{"owner": "team-web"}}
	labMetadata(t, lab, "vc-east", "web-02", want.Tags[0], "owner", "team-web")

	md, err := m.ReadMetadata(ctx, "vc-east", "web-02")
	if err != nil {
		noSecrets(t, lab, err)
		t.Fatalf("ReadMetadata: %v", err)
	}
	if !reflect.DeepEqual(md, want) {
		t.Fatalf("ReadMetadata = %+v, want %+v", md, want)
	}

	spec := MoveSpec{VMs: []string{"web-02"}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web", Networks: []move.Network{{Target: "app-pg"}}, DiskFormat: move.Thin}}
	p, err := m.Plan(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Fatalf("plan blocked: %v", findingsOf(p, Blocker))
	}
	if _, err := m.Relocate(ctx, p, "web-02", nil); err != nil {
		t.Fatalf("Relocate: %v", err)
	}

	// What the relocation itself carried, to show the copy is needed.
	before, err := m.ReadMetadata(ctx, "vc-west", "web-02")
	if err != nil {
		t.Fatalf("ReadMetadata in vc-west before apply: %v", err)
	}
	if len(before.Tags) != 0 {
		t.Logf("note: the emulated relocation carried tags %v", before.Tags)
	}

	for i := range 2 { // the second apply must change nothing and not fail
		if err := m.ApplyMetadata(ctx, "vc-west", "web-02", md); err != nil {
			noSecrets(t, lab, err)
			t.Fatalf("ApplyMetadata #%d: %v", i+1, err)
		}
		got, err := m.ReadMetadata(ctx, "vc-west", "web-02")
		if err != nil {
			t.Fatalf("ReadMetadata in vc-west: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after apply #%d vc-west has %+v, want %+v", i+1, got, want)
		}
	}
	assertOneDefinition(t, lab, "vc-west", "owner")
	assertOneTag(t, lab, "vc-west", want.Tags[0])
}

func TestMetadataEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, m, _ := sharedLab(t)
	md, err := m.ReadMetadata(ctx, "vc-east", "web-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Tags) != 0 || len(md.Attributes) != 0 || !md.Empty() {
		t.Fatalf("ReadMetadata of an untagged VM = %+v, want empty", md)
	}
	if err := m.ApplyMetadata(ctx, "vc-east", "web-01", md); err != nil {
		t.Fatalf("ApplyMetadata(empty): %v", err)
	}
	if _, err := m.ReadMetadata(ctx, "vc-east", "nope-99"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadMetadata of a missing VM: %v, want ErrNotFound", err)
	}
	if err := m.ApplyMetadata(ctx, "vc-east", "nope-99", &Metadata{Attributes: map[string]string{"a": "b"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ApplyMetadata to a missing VM: %v, want ErrNotFound", err)
	}
}

// assertOneDefinition checks that applying twice made one field definition.
func assertOneDefinition(t *testing.T, lab *xvmsim.Lab, vcName, name string) {
	t.Helper()
	ctx := context.Background()
	c, err := lab.VC(vcName).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(ctx) }()
	cfm, err := object.GetCustomFieldsManager(c.Client)
	if err != nil {
		t.Fatal(err)
	}
	fields, err := cfm.Field(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fields {
		if f.Name == name {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%s has %d custom field definitions named %q, want 1", vcName, n, name)
	}
}

// assertOneTag checks that applying twice made one category and one tag.
func assertOneTag(t *testing.T, lab *xvmsim.Lab, vcName string, tag Tag) {
	t.Helper()
	ctx := context.Background()
	vc := lab.VC(vcName)
	c, err := vc.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Logout(ctx) }()
	rc := rest.NewClient(c.Client)
	if err := rc.Login(ctx, url.UserPassword(vc.Username, vc.Password)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Logout(ctx) }()
	tm := tags.NewManager(rc)
	cats, err := tm.GetCategories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cats {
		if c.Name == tag.Category {
			ids = append(ids, c.ID)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%s has %d categories named %q, want 1", vcName, len(ids), tag.Category)
	}
	ts, err := tm.GetTagsForCategory(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range ts {
		if x.Name == tag.Name {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%s has %d tags %s/%s, want 1", vcName, n, tag.Category, tag.Name)
	}
}
