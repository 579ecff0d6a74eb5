package bot

import (
	"strings"

	"github.com/xvmbot/xvmbot/approvals"
)

// Links into the vSphere Client (the HTML5 client at https://<vCenter>/ui/). A VM's page is
// addressed by its managed object id and the instance UUID of the vCenter that holds it:
//
//	https://vc.example.com/ui/app/vm;nav=v/urn:vmomi:VirtualMachine:vm-42:<instance uuid>/summary
//
// (the form the vSphere Client shows in its address bar; docs/vsphere-facts.md). A VM moved
// to another vCenter gets a new id there, so a VM is linked only in the source vCenter,
// while it is there: in the review, while it moves, and when it failed to move.

// vmClientURL is the VM's summary page in vc's vSphere Client, or "" when vc has no client
// URL or instance UUID, or the VM was not resolved.
func vmClientURL(vc approvals.VCenterRef, ref string) string {
	if vc.UIURL == "" || vc.InstanceUUID == "" || ref == "" || strings.ContainsAny(ref, ":/|<> ") {
		return ""
	}
	return strings.TrimSuffix(vc.UIURL, "/") + "/app/vm;nav=v/urn:vmomi:VirtualMachine:" + ref + ":" + vc.InstanceUUID + "/summary"
}

// sourceVMRef is the managed object id of the VM named name in the request's source, "" if
// the review did not resolve it.
func sourceVMRef(r *approvals.Request, name string) string {
	for _, v := range r.Review.VMs {
		if v.Name == name {
			return v.Ref
		}
	}
	return ""
}

// vmInSource writes the VM's name linked to its page in the source vCenter's vSphere
// Client, or as inline code when there is no link to give.
func vmInSource(r *approvals.Request, name string) string {
	u := vmClientURL(r.Review.Source, sourceVMRef(r, name))
	if u == "" || movedAway(r, name) {
		return vmCode(name)
	}
	return "<" + esc(u) + "|" + escClip(name, 80) + ">"
}

// taskText names the vCenter task of a job for the context line ("task task-1234 in
// vc-east"), which an operator finds in the vSphere Client's Recent Tasks.
func taskText(r *approvals.Request, j *approvals.Job) string {
	if j.Task == "" {
		return ""
	}
	return "task `" + escClip(strings.ReplaceAll(j.Task, "`", "'"), 60) + "` in " + esc(sourceName(r))
}

// failureContext is the context line of a failure reply: the job, its task, and how to
// read the raw error.
func failureContext(r *approvals.Request, j *approvals.Job) string {
	parts := []string{"Job " + j.ID}
	if t := taskText(r, j); t != "" {
		parts = append(parts, t)
	}
	return strings.Join(append(parts, "`/xvm status "+j.ID+"`"), " · ")
}

// movedAway: the VM named name has moved out of the source (its page there is gone).
func movedAway(r *approvals.Request, name string) bool {
	for _, j := range r.Jobs {
		if j.VM == name && j.State == approvals.StateSucceeded {
			return true
		}
	}
	return false
}
