package vcenter

import (
	"context"
	"strings"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// datastore= may name a datastore cluster, as the wizard's storage step offers: the move
// goes to the cluster's datastore with the most free space that the target hosts see,
// the review says which and why, and the VM lands there.
func TestDatastoreClusterPicksItsFreestDatastore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t)
	c, err := lab.VC(xvmsim.WestVC).Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, xvmsim.WestDatacenter)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := folders.DatastoreFolder.CreateStoragePod(ctx, "gold-pod")
	if err != nil {
		t.Fatal(err)
	}
	var refs []types.ManagedObjectReference
	for _, name := range []string{xvmsim.WestGold, xvmsim.WestSilver} {
		ds, err := f.Datastore(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ds.Reference())
	}
	task, err := pod.MoveInto(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	var stores []mo.Datastore
	if err := property.DefaultCollector(c.Client).Retrieve(ctx, refs, []string{"name", "summary"}, &stores); err != nil {
		t.Fatal(err)
	}
	want := stores[0]
	for _, s := range stores[1:] {
		if s.Summary.FreeSpace > want.Summary.FreeSpace || (s.Summary.FreeSpace == want.Summary.FreeSpace && s.Name < want.Name) {
			want = s
		}
	}

	// The wizard's datastore select offers the cluster next to its datastores.
	opts, err := m.List(ctx, xvmsim.WestVC, KindDatastores, "gold", Scope{Cluster: xvmsim.WestCluster})
	if err != nil {
		t.Fatal(err)
	}
	offered := false
	for _, o := range opts {
		offered = offered || (o.Value == "gold-pod" && strings.Contains(o.Description, "datastore cluster of 2 datastores"))
	}
	if !offered {
		t.Fatalf("the datastore select does not offer gold-pod: %+v", opts)
	}

	spec := MoveSpec{VMs: []string{"web-02"}, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{Cluster: xvmsim.WestCluster, Datastore: "gold-pod", Folder: xvmsim.WestWebFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
	p, err := m.Plan(ctx, spec)
	if err != nil || p.Blocked() {
		t.Fatalf("plan: %v %v", err, findingsOf(p, Blocker))
	}
	if p.Datastore != want.Name {
		t.Fatalf("plan uses %s, want %s (the freest of the cluster)", p.Datastore, want.Name)
	}
	said := false
	for _, fd := range p.Findings {
		said = said || strings.Contains(fd.Message, "datastore cluster gold-pod: "+want.Name+" is used")
	}
	if !said {
		t.Fatalf("no finding says which datastore of gold-pod is used: %v", p.Findings)
	}
	if _, err := m.Relocate(ctx, p, "web-02", nil); err != nil {
		t.Fatal(err)
	}
	got, err := lab.VC(xvmsim.WestVC).FindVM(ctx, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Datastores) != 1 || got.Datastores[0] != want.Name {
		t.Fatalf("web-02 on %v, want %s", got.Datastores, want.Name)
	}
	// After the move the worker reads where the VM is, and takes another datastore of the
	// cluster as approved (Storage DRS moves files within it): Where names the cluster.
	w, err := m.Where(ctx, xvmsim.WestVC, "web-02")
	if err != nil {
		t.Fatal(err)
	}
	if w.DatastoreClusters[want.Name] != "gold-pod" {
		t.Errorf("Where says datastore clusters %v, want %s in gold-pod", w.DatastoreClusters, want.Name)
	}
}
