package xvmsim

import (
	"testing"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// A relocation whose answer is lost runs anyway: the caller gets a transport error, not
// a fault; the VM lists the running task among its recent tasks as vCenter describes a
// relocation; a second relocation is refused with TaskInProgress naming that task; the
// VM is moved once.
func TestLostRelocationAnswer(t *testing.T) {
	t.Parallel()
	l := startLab(t)
	ctx := testCtx(t)
	east, west := open(t, ctx, l.VC(EastVC)), open(t, ctx, l.VC(WestVC))
	vm := east.vm(t, ctx, "web-03")
	spec := xvmSpec(t, ctx, east, vm, west, WestWebFolder, WestCluster+"/Resources/"+WestPool, WestHost1, WestGold, thin, WestAppPortgroup)

	_, release := east.vc.HoldRelocation("web-03", 10)
	defer release()
	ref, err := east.vc.LoseNextRelocationAnswer("web-03")
	if err != nil || ref != vm.Reference().Value {
		t.Fatalf("LoseNextRelocationAnswer: %q, %v", ref, err)
	}
	_, err = vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority)
	if err == nil || soap.IsSoapFault(err) || soap.IsVimFault(err) {
		t.Fatalf("relocation with a lost answer: %v, want a transport error", err)
	}

	var running *types.TaskInfo
	var got mo.VirtualMachine
	if err := east.c.RetrieveOne(ctx, vm.Reference(), []string{"recentTask"}, &got); err != nil {
		t.Fatal(err)
	}
	for _, tr := range got.RecentTask {
		var task mo.Task
		if err := east.c.RetrieveOne(ctx, tr, []string{"info"}, &task); err != nil {
			t.Fatal(err)
		}
		if task.Info.DescriptionId == "VirtualMachine.relocate" && task.Info.State == types.TaskInfoStateRunning &&
			task.Info.Entity != nil && *task.Info.Entity == vm.Reference() {
			running = &task.Info
		}
	}
	if running == nil {
		t.Fatalf("no running VirtualMachine.relocate task among the VM's recent tasks %v", got.RecentTask)
	}

	_, err = vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority)
	var busy *types.TaskInProgress
	if _, ok := fault.As(err, &busy); !ok || busy.Task != running.Task {
		t.Errorf("second relocation: %v, want TaskInProgress naming %s", err, running.Task)
	}

	release()
	if _, err := WaitTask(ctx, vm.Client(), running.Task, nil); err != nil {
		t.Fatalf("the relocation whose answer was lost: %v", err)
	}
	if n := east.vc.XVMRelocationsOf("web-03"); n != 1 {
		t.Errorf("web-03 relocated %d times, want once", n)
	}
	if _, err := l.VC(WestVC).FindVM(ctx, "web-03"); err != nil {
		t.Errorf("web-03 is not in %s: %v", WestVC, err)
	}
}
