package xvmsim

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// TestMovesAndReadersDoNotRace moves a wave of VMs both ways while other clients keep
// reading every VM of both vCenters, as the bot's inventory lists and the workers'
// pre-flight do. Without the gate, vcsim's CreateVM and Destroy tasks write the objects
// these reads walk, and `go test -race` fails here.
//
// It runs alone (no t.Parallel): its readers keep every core busy on purpose.
func TestMovesAndReadersDoNotRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab, err := Start(ctx, WithTaskDuration(50*time.Millisecond), WithExtraVMs(12))
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	east, west := open(t, ctx, lab.VC("vc-east")), open(t, ctx, lab.VC("vc-west"))
	// The specs are built before the readers start, one by one (a find.Finder is not safe
	// for concurrent use), all to the same place, looked up once.
	place := xvmPlace(t, ctx, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, WestAppPortgroup)
	vms := make([]*object.VirtualMachine, 12)
	specs := make([]types.VirtualMachineRelocateSpec, 12)
	for i := range vms {
		vms[i] = east.vm(t, ctx, fmt.Sprintf("bulk-%04d", i+1))
		specs[i] = place.spec(t, ctx, vms[i], thin)
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	reads := make([]int, 4)
	for i := range reads {
		s := []*side{east, west}[i%2]
		readers.Go(func() {
			m := view.NewManager(s.c.Client)
			for {
				select {
				case <-stop:
					return
				default:
				}
				cv, err := m.CreateContainerView(ctx, s.c.ServiceContent.RootFolder, []string{"VirtualMachine", "Datastore", "HostSystem"}, true)
				if err != nil {
					t.Errorf("container view on %s: %v", s.vc.Name, err)
					return
				}
				// Small reads, many of them: each is a chance to meet a create or a destroy.
				var vms []mo.VirtualMachine
				err = cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.uuid", "runtime.powerState", "datastore"}, &vms)
				var dss []mo.Datastore
				if err == nil {
					err = cv.Retrieve(ctx, []string{"Datastore"}, []string{"name", "vm"}, &dss)
				}
				_ = cv.Destroy(ctx)
				if err != nil {
					t.Errorf("read %s: %v", s.vc.Name, err)
					return
				}
				reads[i]++
			}
		})
	}

	var moves sync.WaitGroup
	for i, vm := range vms {
		moves.Go(func() {
			if _, err := relocate(ctx, vm, specs[i], nil); err != nil {
				t.Errorf("move bulk-%04d: %v", i+1, err)
			}
		})
	}
	moves.Wait()
	close(stop)
	readers.Wait()

	for i := 1; i <= 12; i++ {
		name := fmt.Sprintf("bulk-%04d", i)
		if _, err := lab.VC("vc-west").FindVM(ctx, name); err != nil {
			t.Errorf("%s did not arrive in vc-west: %v", name, err)
		}
		if _, err := lab.VC("vc-east").FindVM(ctx, name); err == nil {
			t.Errorf("%s is still in vc-east", name)
		}
	}
	for i, n := range reads {
		if n == 0 {
			t.Errorf("reader %d never completed a read while the moves ran", i)
		}
	}
}

// TestExclusiveKeepsRequestsOut shows the gate itself: a request sent while an exclusive
// section runs is not served until the section ends, while the section's own backstage
// client is served.
func TestExclusiveKeepsRequestsOut(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vc := sharedLab(t).VC("vc-west")
	reader, err := vc.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer logout(reader)

	served := make(chan error, 1)
	err = vc.exclusive(ctx, func(c *govmomi.Client) error {
		go func() {
			_, err := methods.GetCurrentTime(ctx, reader.Client)
			served <- err
		}()
		if _, err := methods.GetCurrentTime(ctx, c.Client); err != nil {
			return fmt.Errorf("backstage request inside the section: %w", err)
		}
		// However long this waits, a working gate never lets the request through; a
		// missing one lets it through in a few milliseconds.
		select {
		case <-served:
			return fmt.Errorf("a request was served while an exclusive section ran")
		case <-time.After(300 * time.Millisecond):
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("the held request failed after the section: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the held request was never served after the section ended")
	}
}

// TestDestroyWaitsForItsFiles: the emulation's destroy ends only once the VM's files are
// gone, although vcsim's Destroy task ends before its file deletion does (TestMain makes
// that deletion last 100ms).
func TestDestroyWaitsForItsFiles(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east := open(t, ctx, l.VC(EastVC))
	vm := east.vm(t, ctx, "web-02")
	var props mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.files.vmPathName"}, &props); err != nil {
		t.Fatal(err)
	}
	var p object.DatastorePath
	if !p.FromString(props.Config.Files.VmPathName) {
		t.Fatalf("vmPathName %q", props.Config.Files.VmPathName)
	}
	ds, err := east.finder.Datastore(ctx, p.Datastore)
	if err != nil {
		t.Fatal(err)
	}
	dir := path.Dir(p.Path)
	if _, err := ds.Stat(ctx, dir); err != nil {
		t.Fatalf("before destroy: stat %s: %v", dir, err)
	}

	err = l.VC(EastVC).exclusive(ctx, func(c *govmomi.Client) error {
		return destroy(ctx, object.NewVirtualMachine(c.Client, vm.Reference()))
	})
	if err != nil {
		t.Fatalf("destroy: %v", err)
	}
	_, err = ds.Stat(ctx, dir)
	var missing object.DatastoreNoSuchFileError
	if !errors.As(err, &missing) {
		t.Errorf("right after destroy: stat %s: %v, want no such file", dir, err)
	}
}
