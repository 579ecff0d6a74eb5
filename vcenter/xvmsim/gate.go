package xvmsim

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/vim25"
)

// Why a gate: vcsim's own tasks write some objects without their lock. Its CreateVM task
// sets the new VM's fields after the VM is already in the inventory, holding only the
// folder's lock, and its Destroy task edits datastores while another task's file removal
// reads them; a RetrieveProperties that reads the same objects at that moment is a data
// race (the race detector reported both while waves of emulated moves ran). vCenter has
// no such window, so the emulation closes it: every SOAP request on /sdk holds the gate
// shared, and the emulation's creates, power-ons and destroys hold it exclusively until
// their task has finished, reaching the simulator on backstagePath, which the gate does
// not hold.

// backstagePath serves the same SOAP API as vim25.Path, outside the gate.
const backstagePath = "/xvmsim-backstage/sdk"

// gateSDK puts the gate in front of the simulator's SOAP endpoint and opens the
// backstage path. It must run before the simulator's server is created.
func (v *VC) gateSDK() {
	svc := v.model.Service
	if svc.ServeMux == nil {
		svc.ServeMux = http.NewServeMux()
	}
	// A pattern with a method is more specific than the simulator's own "/sdk", so
	// every SOAP call comes here first.
	svc.ServeMux.HandleFunc("POST "+vim25.Path, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		// WaitForUpdates long-polls until something changes; holding the gate through it
		// would keep the very change it waits for out. It watches tasks, whose writes
		// hold their own locks, or follows a view through the lab's feeder, whose reads
		// hold the gate (feed.go).
		if !bytes.Contains(body, []byte("WaitForUpdates")) {
			v.gate.RLock()
			defer v.gate.RUnlock()
		}
		if vm := v.losesAnswer(body); vm != "" {
			v.serveLosingAnswer(w, r, vm, svc.ServeSDK)
			return
		}
		svc.ServeSDK(w, r)
	})
	svc.ServeMux.HandleFunc("POST "+backstagePath, func(w http.ResponseWriter, r *http.Request) {
		r = r.Clone(r.Context())
		r.URL.Path = vim25.Path
		svc.ServeSDK(w, r)
	})
}

// exclusive runs f while no other SOAP request is served by v, with a client that
// bypasses the gate; f must wait for any task it starts (WaitTask) before it returns.
// Exclusive sections are also serialised across the lab, so that vcsim tasks of two
// vCenters never overlap either and no section waits for another vCenter's gate.
//
// The backstage session is made once and kept (sections never overlap, so one client
// serves them all); one that failed is dropped and made again by the next section.
func (v *VC) exclusive(ctx context.Context, f func(c *govmomi.Client) error) error {
	v.lab.structural.Lock()
	defer v.lab.structural.Unlock()
	if v.backstageClient == nil {
		c, err := v.login(ctx, v.backstage)
		if err != nil {
			return err
		}
		v.backstageClient = c
	}
	v.gate.Lock()
	defer v.gate.Unlock()
	err := f(v.backstageClient)
	if err != nil {
		logout(v.backstageClient)
		v.backstageClient = nil
	}
	return err
}

// HoldRequests keeps every SOAP request to v (but the WaitForUpdates long polls, which
// the gate never holds) waiting, unanswered and uncounted by Requests, until release is
// called, as a vCenter that stalls does; a test uses it to keep work in flight while it
// acts. release may be called more than once.
func (v *VC) HoldRequests() (release func()) {
	v.gate.Lock()
	var once sync.Once
	return func() { once.Do(v.gate.Unlock) }
}
