package xvmsim

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/http/httptest"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// A lost answer: the request reached vCenter, vCenter started the relocation, and the
// connection broke before its answer (the task's reference) came back, as when a proxy
// or a firewall drops an idle or long connection. The client sees a transport error and
// cannot tell whether anything started; vCenter goes on with the move, and refuses a
// second RelocateVM_Task of the VM with TaskInProgress while it runs.

// LoseNextRelocationAnswer makes the next RelocateVM_Task of the VM named vm that
// vCenter accepts start the relocation as usual and then lose its answer: the
// connection is closed instead of the response being written. A call vCenter refuses
// with a fault is answered, and the next one is still lost. It returns the VM's
// reference value.
func (v *VC) LoseNextRelocationAnswer(vm string) (string, error) {
	var ref string
	err := v.edit(func(e *labEdit) error {
		obj, err := e.find("VM", vm, "VirtualMachine")
		if err == nil {
			ref = obj.Reference().Value
		}
		return err
	})
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.loseAnswer == nil {
		v.loseAnswer = map[string]bool{}
	}
	v.loseAnswer[ref] = true
	return ref, nil
}

// relocationOf returns the VM a RelocateVM_Task request body names, or "" when the body
// is another request.
func relocationOf(body []byte) string {
	if !bytes.Contains(body, []byte("RelocateVM_Task")) {
		return ""
	}
	var env struct {
		Body struct {
			Relocate *struct {
				This string `xml:"_this"`
			} `xml:"RelocateVM_Task"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Relocate == nil {
		return ""
	}
	return env.Body.Relocate.This
}

// losesAnswer returns the VM (MoRef value) whose relocation this request body asks for
// when its answer is to be lost if vCenter accepts it, or "".
func (v *VC) losesAnswer(body []byte) string {
	vm := relocationOf(body)
	if vm == "" {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.loseAnswer[vm] {
		return ""
	}
	return vm
}

// serveLosingAnswer serves a RelocateVM_Task of vm whose answer is to be lost: the
// simulator answers into a buffer; a started task's answer is dropped with the
// connection, a fault is passed on.
func (v *VC) serveLosingAnswer(w http.ResponseWriter, r *http.Request, vm string, serve http.HandlerFunc) {
	rec := httptest.NewRecorder()
	serve(rec, r)
	if rec.Code != http.StatusOK {
		for k, vals := range rec.Header() {
			w.Header()[k] = vals
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	v.mu.Lock()
	delete(v.loseAnswer, vm)
	v.mu.Unlock()
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2): abort the response, which resets it.
	panic(http.ErrAbortHandler)
}

// runningRelocation is the task of the relocation of vm that runs, as vCenter names it
// in the TaskInProgress fault that refuses a second one; vm itself if none is found.
func runningRelocation(ctx *simulator.Context, vm *simulator.VirtualMachine) types.ManagedObjectReference {
	var recent []types.ManagedObjectReference
	ctx.WithLock(vm, func() { recent = append(recent, vm.RecentTask...) })
	for i := len(recent) - 1; i >= 0; i-- {
		t, ok := ctx.Map.Get(recent[i]).(*simulator.Task)
		if !ok {
			continue
		}
		var info types.TaskInfo
		ctx.WithLock(t, func() { info = t.Info })
		if info.DescriptionId == relocateTaskID &&
			(info.State == types.TaskInfoStateRunning || info.State == types.TaskInfoStateQueued) {
			return recent[i]
		}
	}
	return vm.Self
}

// relocateTaskID is the descriptionId vCenter gives a RelocateVM_Task's task (the key
// its TaskManager describes it by); vcsim's own is "VirtualMachine.relocateVm".
const relocateTaskID = "VirtualMachine.relocate"

// asVCenterNamesIt gives a relocation task vCenter's descriptionId and name.
func asVCenterNamesIt(task *simulator.Task) {
	task.Info.DescriptionId = relocateTaskID
	task.Info.Name = "RelocateVM_Task"
}
