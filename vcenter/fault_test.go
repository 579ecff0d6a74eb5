package vcenter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func TestClassify(t *testing.T) {
	taskFault := func(f types.BaseMethodFault, msg string) error {
		return taskError{&types.LocalizedMethodFault{Fault: f, LocalizedMessage: msg}}
	}
	tests := []struct {
		name      string
		err       error
		kind      FaultKind
		retryable bool
		words     string
	}{
		{"ssl", taskFault(&types.SSLVerifyFault{}, "bad thumbprint"), "SSLVerifyFault", false, "vc-east could not verify vc-west's certificate"},
		{"login", taskFault(&types.InvalidLogin{}, "nope"), "InvalidLogin", false, "vc-west refused the service account's credentials"},
		{"argument", taskFault(&types.InvalidArgument{InvalidProperty: "service.instanceUuid"}, "bad uuid"), "InvalidArgument", false, "rejected the relocation request"},
		{"not found", taskFault(&types.ManagedObjectNotFound{}, ""), "ManagedObjectNotFound", false, "no longer exists in vc-east"},
		{"busy", taskFault(&types.TaskInProgress{}, ""), "TaskInProgress", true, "busy with another task"},
		{"state", taskFault(&types.InvalidState{}, ""), "InvalidState", true, "state that does not allow"},
		{"host comm", taskFault(&types.HostCommunication{}, ""), "HostCommunication", true, "lost contact"},
		{"timeout", taskFault(&types.Timedout{}, ""), "Timedout", true, "timed out"},
		{"copy", taskFault(&types.NetworkCopyFault{}, ""), "NetworkCopyFault", true, "copying"},
		{"not ready", taskFault(&types.MigrationNotReady{}, ""), "MigrationNotReady", true, "not ready"},
		{"link down", taskFault(&types.VMotionLinkDown{}, ""), "VMotionLinkDown", true, "link"},
		{"device", taskFault(&types.DisallowedMigrationDeviceAttached{}, ""), "DisallowedMigrationDeviceAttached", false, "device attached"},
		{"license", taskFault(&types.VMotionNotLicensed{}, ""), "VMotionNotLicensed", false, "not licensed"},
		{"cause inside a generic fault", taskError{&types.LocalizedMethodFault{Fault: &types.MigrationFault{VimFault: types.VimFault{MethodFault: types.MethodFault{
			FaultCause: &types.LocalizedMethodFault{Fault: &types.VMotionLinkDown{}}}}}}}, "VMotionLinkDown", true, "link"},
		{"soap fault", soap.WrapVimFault(&types.TaskInProgress{}), "TaskInProgress", true, "busy"},
		{"unknown fault", taskFault(&types.NotSupported{}, "no"), "NotSupported", false, "vc-east reported NotSupported"},
		{"canceled", fmt.Errorf("wait: %w", context.Canceled), KindCanceled, true, "stopped waiting"},
		// vCenter names the privilege it checked and where (before 8.0 in privilegeId and
		// object, since then in missingPrivileges): the thread says exactly what to grant.
		{"no permission, the privilege named", taskFault(&types.NoPermission{PrivilegeId: "Resource.HotMigrate",
			Object: &types.ManagedObjectReference{Type: "ResourcePool", Value: "resgroup-42"}}, "Permission to perform this operation was denied."),
			"NoPermission", false, "Resource.HotMigrate on ResourcePool resgroup-42"},
		{"no permission, the privileges listed", taskFault(&types.NoPermission{MissingPrivileges: []types.NoPermissionEntityPrivileges{
			{Entity: types.ManagedObjectReference{Type: "Datastore", Value: "datastore-7"}, PrivilegeIds: []string{"Datastore.AllocateSpace"}},
			{Entity: types.ManagedObjectReference{Type: "Network", Value: "network-9"}, PrivilegeIds: []string{"Network.Assign"}}}}, ""),
			"NoPermission", false, "Datastore.AllocateSpace on Datastore datastore-7, Network.Assign on Network network-9"},
		// The fault's own messages (faultMessage) say what its localized message leaves out.
		{"fault messages", taskFault(&types.InvalidState{VimFault: types.VimFault{MethodFault: types.MethodFault{FaultMessage: []types.LocalizableMessage{
			{Key: "msg.migrate.vmx", Message: "The VM has a snapshot on a datastore the target host cannot see."}}}}}, "The operation is not allowed in the current state."),
			"InvalidState", true, "a snapshot on a datastore the target host cannot see"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.err, "vc-east", "vc-west", "web-01", StepRelocate)
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("%T, want *Fault", err)
			}
			if f.Kind != tt.kind || f.Retryable != tt.retryable || IsRetryable(err) != tt.retryable {
				t.Errorf("kind %s retryable %v, want %s %v", f.Kind, f.Retryable, tt.kind, tt.retryable)
			}
			if !strings.Contains(f.Message, tt.words) || f.Hint == "" {
				t.Errorf("message %q (hint %q), want it to say %q", f.Message, f.Hint, tt.words)
			}
			if !errors.Is(err, tt.err) {
				t.Error("the fault does not wrap the vSphere error")
			}
			if !strings.HasPrefix(err.Error(), "relocate vm web-01 on vc-east: ") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
	te := &ThumbprintError{VCenter: "vc-west", Expected: "AA", Got: "BB"}
	if classify(te, "vc-west", "", "", StepLogin) != te || IsRetryable(te) {
		t.Error("a ThumbprintError must pass through, permanent")
	}
	if metricResult(nil) != "success" || metricResult(errors.New("x")) != "error" ||
		metricResult(classify(taskFault(&types.NotSupported{}, ""), "a", "b", "", StepRelocate)) != "error" ||
		metricResult(classify(taskFault(&types.InvalidLogin{}, ""), "a", "b", "", StepRelocate)) != "InvalidLogin" {
		t.Error("metric result labels are not bounded to the known kinds")
	}
}

func TestScrubRemovesPasswords(t *testing.T) {
	m := &Manager{secrets: []string{"hunter2-Secret"}}
	err := m.scrub(classify(errors.New("login with hunter2-Secret failed"), "vc", "", "", StepLogin))
	if strings.Contains(err.Error(), "hunter2-Secret") {
		t.Errorf("password in %q", err)
	}
	if err := m.scrub(errors.New("x hunter2-Secret")); strings.Contains(err.Error(), "hunter2-Secret") {
		t.Errorf("password in %q", err)
	}
}

// A connection that breaks off is said in plain words, by when it happened; the Go
// transport error (with the SDK URL) is kept as the detail, not shown as the message.
func TestClassifyConnectionLostInPlainWords(t *testing.T) {
	eof := &url.Error{Op: "Post", URL: "https://127.0.0.1:45069/sdk", Err: io.EOF}
	for step, want := range map[string]string{
		StepWatch:    "vCenter vc-west stopped answering during the move",
		StepRelocate: "vCenter vc-west stopped answering during the move",
		StepLogin:    "vCenter vc-west did not answer the login",
	} {
		var f *Fault
		if !errors.As(classify(eof, "vc-west", "", "web-01", step), &f) {
			t.Fatalf("%s: not a *Fault", step)
		}
		if f.Kind != KindUnreachable || !f.Retryable {
			t.Errorf("%s: kind %s retryable %v, want Unreachable, retryable", step, f.Kind, f.Retryable)
		}
		if f.Message != want {
			t.Errorf("%s: message %q, want %q", step, f.Message, want)
		}
		if !strings.Contains(f.Detail, `Post "https://127.0.0.1:45069/sdk": EOF`) {
			t.Errorf("%s: the raw error is not kept as the detail: %q", step, f.Detail)
		}
	}
}
