package bot

import (
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
)

// fxWeb01URL is web-01's summary page in vc-east's vSphere Client, as the fixtures have it.
const fxWeb01URL = "https://vc-east.example.com/ui/app/vm;nav=v/urn:vmomi:VirtualMachine:vm-42:5f3e1a2b-0c4d-4e6f-8a9b-1c2d3e4f5a6b/summary"

// An approver clicks through to the VM in the vSphere Client from the review, the progress
// message and the failure reply; a VM that has moved is not linked to its old page; a
// vCenter without a client URL links nothing.
func TestVMLinksToTheVSphereClient(t *testing.T) {
	t.Parallel()
	_, review := RenderRequest(fxPendingMigrate(), fxNow)
	if all := string(mustMarshal(t, review)); !strings.Contains(all, jsonText(t, "<"+fxWeb01URL+"|web-01>")) {
		t.Errorf("the review does not link web-01 to its page:\n%s", all)
	}

	r := fxApproved()
	_, running := RenderJobProgress(r, &r.Jobs[1])
	all := string(mustMarshal(t, running))
	for _, want := range []string{"vm-43:5f3e1a2b-0c4d-4e6f-8a9b-1c2d3e4f5a6b/summary|web-02>", "task `task-1207` in vc-east"} {
		if !strings.Contains(all, jsonText(t, want)) {
			t.Errorf("the running VM's message does not read %q:\n%s", want, all)
		}
	}
	_, done := RenderJobProgress(r, &r.Jobs[0])
	if all := string(mustMarshal(t, done)); strings.Contains(all, "vm-42") || !strings.Contains(all, "`web-01`") {
		t.Errorf("a moved VM is still linked to its page in the source:\n%s", all)
	}

	f := fxFailed()
	f.Jobs[1].Task = "task-1207"
	_, failure := RenderJobFailure(f, &f.Jobs[1], "", "")
	all = string(mustMarshal(t, failure))
	for _, want := range []string{"❌ <https://vc-east.example.com/ui/app/vm;nav=v/urn:vmomi:VirtualMachine:vm-43:", "task `task-1207` in vc-east"} {
		if !strings.Contains(all, jsonText(t, want)) {
			t.Errorf("the failure reply does not read %q:\n%s", want, all)
		}
	}

	bare := fxPendingMigrate()
	bare.Review.Source.UIURL = ""
	_, blocks := RenderRequest(bare, fxNow)
	if all := string(mustMarshal(t, blocks)); strings.Contains(all, "/ui/app/") || !strings.Contains(all, "`web-01`") {
		t.Errorf("without a client URL the VM should be plain code:\n%s", all)
	}
	if got := vmClientURL(approvals.VCenterRef{UIURL: "https://vc/ui", InstanceUUID: "u"}, "vm-1"); got != "https://vc/ui/app/vm;nav=v/urn:vmomi:VirtualMachine:vm-1:u/summary" {
		t.Errorf("a ui_url without its trailing slash: %s", got)
	}
}

// jsonText is s as it appears inside a marshalled JSON string.
func jsonText(t *testing.T, s string) string {
	return strings.Trim(string(mustMarshal(t, s)), `"`)
}
