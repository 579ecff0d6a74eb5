// Package vcenter is xvmbot's only door to vSphere.
//
// A Manager holds one lazily established, cached session per configured vCenter,
// pinned to the certificate thumbprint in the configuration. On top of those
// sessions it resolves a MoveSpec (names, as people type them in chat) into a
// Plan (managed object references, findings in plain words), builds the
// RelocateSpec with a ServiceLocator for Advanced Cross vCenter vMotion, runs
// RelocateVM_Task on the source vCenter and watches the task to its end.
//
// Two rules shape the API. First, Plan never fails on what a person typed:
// unknown VMs, datastores, folders or portgroups become Blocker findings that
// name the thing and list what exists, so the bot can show them on the review
// page; a Go error means the infrastructure failed (vCenter unreachable, login
// refused, certificate mismatch). Second, every failure that reaches a worker
// is a *Fault that says what went wrong, what to check, and whether retrying
// can help, because the people reading it are in a chat channel, not a
// debugger.
package vcenter
