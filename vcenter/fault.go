package vcenter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
)

// ErrUnknownVCenter is wrapped by every error about a vCenter name that is not
// in the configuration.
var ErrUnknownVCenter = errors.New("unknown vcenter")

// ErrNotFound is wrapped when a VM or object asked for by name does not exist.
var ErrNotFound = errors.New("not found")

// The steps a Fault can come from.
const (
	StepLogin    = "login"
	StepResolve  = "resolve"
	StepRelocate = "relocate"
	StepWatch    = "watch"
)

// FaultKind names what failed: a vSphere fault type name (InvalidLogin, InvalidState, …)
// as vCenter reports it, or one of the kinds xvmbot produces itself. It is the one
// vocabulary of failures: what a failed job's event carries as its fault, what the
// worker decides on, and what people read in its thread.
type FaultKind string

// Fault kinds xvmbot produces itself, next to the vSphere fault type names. Their values
// are stored and shown, and never change.
const (
	KindUnreachable FaultKind = "Unreachable" // no answer from the vCenter at all
	KindBlocked     FaultKind = "PlanBlocked" // the plan has blockers for this VM
	KindCanceled    FaultKind = "Canceled"    // our context ended while waiting
	KindError       FaultKind = "Error"       // an error that is no vSphere fault

	KindThumbprintMismatch FaultKind = "ThumbprintMismatch" // a vCenter's certificate is not the configured one
	KindPreflightBlocked   FaultKind = "PreflightBlocked"   // pre-flight at start found a blocker
	KindPlacementMismatch  FaultKind = "PlacementMismatch"  // the task succeeded, the VM is not where approved
	KindInternalError      FaultKind = "InternalError"      // xvmbot itself failed (a panic), every attempt
	KindApprovalExpired    FaultKind = "ApprovalExpired"    // the job would start after its approval ran out
	KindNotTheApprovedVM   FaultKind = "NotTheApprovedVM"   // the VM by that name is not the approved object
)

// vSphere fault type names that xvmbot decides on.
const (
	KindManagedObjectNotFound FaultKind = "ManagedObjectNotFound" // e.g. a task vCenter no longer knows
	KindInvalidState          FaultKind = "InvalidState"          // e.g. a cancel of a task that has ended
	KindRequestCanceled       FaultKind = "RequestCanceled"       // a task someone cancelled
	KindInvalidLogin          FaultKind = "InvalidLogin"          // a vCenter refused the configured credentials
	KindNotSupported          FaultKind = "NotSupported"          // e.g. a cancel of a task that is not cancelable
	KindTaskInProgress        FaultKind = "TaskInProgress"        // e.g. a relocation refused: the VM's move already runs
)

// Why a cancel did not happen, read from the task (Manager.Cancel).
const (
	KindTaskEnded     FaultKind = "TaskEnded"     // the task had already ended
	KindTaskCancelled FaultKind = "TaskCancelled" // someone cancelled it already
	KindNotCancelable FaultKind = "NotCancelable" // vCenter marks it not cancelable (past the switch-over)
)

// ThumbprintError says the certificate a vCenter presented is not the one
// configured. It is its own type because the fix is always the same and is
// the operator's, never a retry.
type ThumbprintError struct {
	VCenter  string
	Expected string // as configured, normalised
	Got      string // of the presented certificate, same hash as Expected
}

// Error says which certificate mismatched and what the operator should update.
func (e *ThumbprintError) Error() string {
	return fmt.Sprintf("certificate of %s does not match the configured thumbprint (expected %s, got %s); "+
		"if the certificate was replaced on purpose, update vcenters[%s].thumbprint", e.VCenter, e.Expected, e.Got, e.VCenter)
}

// Fault is a failure of a vCenter operation in plain words: what went wrong,
// what to check and whether a retry can help. Workers decide on Retryable;
// people read Message and Hint.
type Fault struct {
	VCenter string // the vCenter that reported it
	VM      string // empty when not about one VM
	Step    string // login, resolve, relocate or watch
	Kind    FaultKind
	Message string // what went wrong, in plain words
	// Detail is what the connection itself said when it is not vCenter's words (a Go
	// transport error such as `Post "https://…/sdk": EOF`): kept for /xvm status and the
	// logs, left out of Message, which people read in the thread.
	Detail    string
	Hint      string // what to check
	Retryable bool
	Err       error // the underlying error, for errors.Is/As
}

// Error reads "relocate vm web-01 on vc-east: <plain words> (<Kind>)". It
// leaves out Err's text, which may quote a request; Message already carries
// the vCenter's own words, scrubbed of passwords.
func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString(f.Step)
	if f.VM != "" {
		b.WriteString(" vm ")
		b.WriteString(f.VM)
	}
	if f.VCenter != "" {
		b.WriteString(" on ")
		b.WriteString(f.VCenter)
	}
	b.WriteString(": ")
	b.WriteString(f.Message)
	if f.Kind != "" {
		b.WriteString(" (")
		b.WriteString(string(f.Kind))
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (f *Fault) Unwrap() error { return f.Err }

// IsRetryable reports whether err is worth retrying with backoff: a *Fault
// that says so. Anything else, including a *ThumbprintError, is permanent.
func IsRetryable(err error) bool {
	var f *Fault
	return errors.As(err, &f) && f.Retryable
}

// faultText is the plain-words description of a fault kind. src is the vCenter
// that ran the operation, dst the other side (the target of a relocation).
type faultText struct {
	retryable bool
	message   func(src, dst string) string
	hint      func(src, dst string) string
}

func words(s string) func(string, string) string { return func(string, string) string { return s } }

// faultTexts is also the bounded set of fault kinds that metrics label by.
var faultTexts = map[FaultKind]faultText{
	"SSLVerifyFault": {
		message: func(src, dst string) string {
			return fmt.Sprintf("%s could not verify %s's certificate: the thumbprint xvmbot sent does not match", src, dst)
		},
		hint: func(_, dst string) string {
			return fmt.Sprintf("check vcenters[%s].thumbprint against the certificate", dst)
		},
	},
	KindInvalidLogin: {
		message: func(src, dst string) string { return fmt.Sprintf("%s refused the service account's credentials", dst) },
		hint: func(_, dst string) string {
			return fmt.Sprintf("check the username and password file of vcenters[%s]", dst)
		},
	},
	"NotAuthenticated": {
		retryable: true,
		message:   func(src, _ string) string { return fmt.Sprintf("the session with %s expired", src) },
		hint:      words("nothing to do: xvmbot logs in again on retry"),
	},
	"NoPermission": {
		message: words("the service account lacks a privilege the move needs"),
		hint:    words("grant the service account the Resource.HotMigrate/ColdMigrate, Resource.AssignVMToPool, Datastore.AllocateSpace, Network.Assign and VirtualMachine.Inventory privileges on both vCenters"),
	},
	"InvalidArgument": {
		message: func(src, _ string) string { return fmt.Sprintf("%s rejected the relocation request as invalid", src) },
		hint:    words("run the check again: the target host, pool, datastore or vCenter instance may have changed since the plan"),
	},
	"ManagedObjectNotFound": {
		message: func(src, _ string) string {
			return fmt.Sprintf("an object the move refers to no longer exists in %s", src)
		},
		hint: words("run the check again: the VM, host, pool or datastore was removed or re-created"),
	},
	"DuplicateName": {
		message: words("a VM with the same name already exists in the target folder"),
		hint:    words("rename one of them or choose another folder"),
	},
	"TaskInProgress": {
		retryable: true,
		message:   words("the VM is busy with another task"),
		hint:      words("wait for the other task to finish; xvmbot retries"),
	},
	"InvalidState": {
		retryable: true,
		message:   words("the VM or its host is in a state that does not allow the move right now"),
		hint:      words("check the VM's state and recent tasks in the vSphere Client; xvmbot retries"),
	},
	"HostCommunication": {
		retryable: true,
		message:   words("the vCenter lost contact with a host during the move"),
		hint:      words("check that the hosts are connected; xvmbot retries"),
	},
	"HostNotConnected": {
		retryable: true,
		message:   words("a host involved in the move is not connected"),
		hint:      words("reconnect the host or choose another; xvmbot retries"),
	},
	"Timedout": {
		retryable: true,
		message:   words("the operation timed out"),
		hint:      words("check the load of the hosts and the vMotion network; xvmbot retries"),
	},
	"NetworkCopyFault": {
		retryable: true,
		message:   words("copying the VM's disks over the network failed"),
		hint:      words("check TCP 902 between the source and target hosts; xvmbot retries"),
	},
	"MigrationNotReady": {
		retryable: true,
		message:   words("the VM is not ready to migrate yet"),
		hint:      words("wait a little (a VM that just powered on needs time); xvmbot retries"),
	},
	"VMotionLinkDown": {
		retryable: true,
		message:   words("the vMotion network link between the hosts is down"),
		hint:      words("check the vMotion VMkernel adapters and their uplinks; xvmbot retries"),
	},
	"DisallowedMigrationDeviceAttached": {
		message: words("the VM has a device attached that cannot be migrated (a local ISO, USB or serial device, …)"),
		hint:    words("disconnect the device and ask again"),
	},
	"VMotionNotLicensed": {
		message: words("vMotion is not licensed on a host involved in the move"),
		hint:    words("license vMotion on the source and target hosts"),
	},
	"InsufficientResourcesFault": {
		message: words("the target does not have enough resources for the VM"),
		hint:    words("choose another host, pool or cluster, or free capacity"),
	},
	"FileFault": {
		message: words("a file of the VM could not be read or written"),
		hint:    words("check that the datastores are accessible and have free space"),
	},
	"RequestCanceled": {
		message: words("the task was cancelled in vCenter"),
		hint:    words("ask again if the move is still wanted"),
	},
	KindUnreachable: {
		retryable: true,
		message:   func(src, _ string) string { return fmt.Sprintf("%s is unreachable", src) },
		hint:      words("check the network path and that the vCenter is up on TCP 443"),
	},
	KindBlocked: {
		message: words("the plan has blockers for this VM"),
		hint:    words("run the check and fix what it reports"),
	},
	KindCanceled: {
		retryable: true,
		message:   words("xvmbot stopped waiting; the vCenter task may still be running"),
		hint:      words("locate the VM before starting again"),
	},
}

// unreachableWords says that vc stopped answering, and when: during a move reads
// differently from a login that never got through.
func unreachableWords(vc, step string) string {
	switch step {
	case StepRelocate, StepWatch:
		return fmt.Sprintf("vCenter %s stopped answering during the move", vc)
	case StepLogin:
		return fmt.Sprintf("vCenter %s did not answer the login", vc)
	}
	return fmt.Sprintf("vCenter %s did not answer", vc)
}

// faultChain lists the vSphere faults in err, outermost first: the error's own
// fault and then its FaultCause chain, where vCenter often puts the real reason.
func faultChain(err error) []types.BaseMethodFault {
	var hf interface{ Fault() types.BaseMethodFault }
	if !errors.As(err, &hf) {
		return nil
	}
	var chain []types.BaseMethodFault
	for f := hf.Fault(); f != nil && len(chain) < 8; {
		chain = append(chain, f)
		mf := f.GetMethodFault()
		if mf == nil || mf.FaultCause == nil {
			break
		}
		f = mf.FaultCause.Fault
	}
	return chain
}

func faultKind(f types.BaseMethodFault) FaultKind {
	t := reflect.TypeOf(f)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return FaultKind(t.Name())
}

// classify turns any error from a vSphere call into a *Fault. A ThumbprintError
// or an existing *Fault passes through unchanged.
func classify(err error, vc, dst, vm, step string) error {
	if err == nil {
		return nil
	}
	var te *ThumbprintError
	var existing *Fault
	if errors.As(err, &te) || errors.As(err, &existing) {
		return err
	}

	f := &Fault{VCenter: vc, VM: vm, Step: step, Err: err}
	var detail string
	chain := faultChain(err)
	switch {
	case len(chain) > 0:
		f.Kind = faultKind(chain[0])
		// A generic outer fault (SystemError, MigrationFault…) with a known
		// cause is described by the cause.
		if _, known := faultTexts[f.Kind]; !known {
			for _, c := range chain[1:] {
				if k := faultKind(c); faultTexts[k].message != nil {
					f.Kind = k
					break
				}
			}
		}
		detail = localizedMessage(err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		f.Kind = KindCanceled
	case isNetError(err):
		f.Kind = KindUnreachable
		f.Detail = err.Error()
	default:
		f.Kind = KindError
		detail = err.Error()
	}

	if dst == "" {
		dst = vc
		if step == StepRelocate {
			// Re-attached watch: the task's target is not known here, and a
			// locator fault is about the target, not the vCenter running it.
			dst = "the target vCenter"
		}
	}
	if t, ok := faultTexts[f.Kind]; ok {
		f.Message = t.message(vc, dst)
		if f.Kind == KindUnreachable {
			f.Message = unreachableWords(vc, step)
		}
		f.Hint = t.hint(vc, dst)
		f.Retryable = t.retryable
	} else {
		f.Message = fmt.Sprintf("%s reported %s", vc, f.Kind)
		f.Hint = "see the vCenter's task and event log for details"
	}
	if missing := missingPrivileges(chain); missing != "" {
		// vCenter said which privilege, and where: that one, not a broader role.
		f.Message = fmt.Sprintf("the service account lacks %s", missing)
		f.Hint = fmt.Sprintf("grant %s to the service account on %s (docs/vcenter-privileges.md lists what a move needs), then ask again", missing, vc)
	}
	for _, m := range faultMessages(chain) {
		switch {
		case detail == "":
			detail = m
		case !strings.Contains(detail, m):
			detail = strings.TrimSuffix(detail, ".") + ". " + m
		}
	}
	if detail != "" && !strings.Contains(f.Message, detail) {
		f.Message += " (vCenter said: " + detail + ")"
	}
	return f
}

// missingPrivileges is what a NoPermission in the chain names: each privilege and the
// object it was checked on ("Resource.HotMigrate on ResourcePool resgroup-42"), from
// missingPrivileges (vSphere 8.0 and later) or privilegeId and object (before); "" when
// it names none.
func missingPrivileges(chain []types.BaseMethodFault) string {
	on := func(ref *types.ManagedObjectReference) string {
		if ref == nil || ref.Value == "" {
			return ""
		}
		return " on " + ref.Type + " " + ref.Value
	}
	for _, c := range chain {
		np, ok := c.(*types.NoPermission)
		if !ok {
			continue
		}
		var out []string
		for _, e := range np.MissingPrivileges {
			for _, id := range e.PrivilegeIds {
				out = append(out, id+on(&e.Entity))
			}
		}
		if len(out) == 0 && np.PrivilegeId != "" {
			out = append(out, np.PrivilegeId+on(np.Object))
		}
		return strings.Join(out, ", ")
	}
	return ""
}

// faultMessages are the messages the faults of the chain carry beside their localized
// message (MethodFault.faultMessage): often the only place that says which device, file
// or setting stopped the move.
func faultMessages(chain []types.BaseMethodFault) []string {
	var out []string
	for _, c := range chain {
		mf := c.GetMethodFault()
		if mf == nil {
			continue
		}
		for _, m := range mf.FaultMessage {
			if t := strings.TrimSpace(m.Message); t != "" && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

func localizedMessage(err error) string {
	var lm interface{ Error() string }
	if errors.As(err, &lm) {
		return strings.TrimSpace(lm.Error())
	}
	return ""
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// metricResult is the bounded label value for a task result.
func metricResult(err error) string {
	if err == nil {
		return "success"
	}
	var f *Fault
	if errors.As(err, &f) {
		if _, ok := faultTexts[f.Kind]; ok {
			return string(f.Kind)
		}
	}
	var te *ThumbprintError
	if errors.As(err, &te) {
		return string(KindThumbprintMismatch)
	}
	return "error"
}
