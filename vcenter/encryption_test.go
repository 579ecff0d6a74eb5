package vcenter

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// encryptionSpec moves vms to west-prod / ds-gold / app-pg.
func encryptionSpec(vms ...string) MoveSpec {
	return MoveSpec{VMs: vms, Source: xvmsim.EastVC, Target: xvmsim.WestVC, Placement: move.Placement{
		Cluster: xvmsim.WestCluster, Datastore: xvmsim.WestGold, Folder: xvmsim.WestWebFolder, Networks: []move.Network{{Target: xvmsim.WestAppPortgroup}}}}
}

// Before vSphere 8.0 an encrypted VM, or one with a vTPM, does not move to another
// vCenter: a blocker that names both versions. An unencrypted VM beside it is not held.
func TestEncryptedVMNeedsVSphere8OnBothSides(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t, xvmsim.WithVersion(xvmsim.WestVC, "8.0.2"))
	east := lab.VC(xvmsim.EastVC)
	if err := east.EncryptVM("web-01", "kp-corp", false); err != nil {
		t.Fatal(err)
	}
	if err := east.EncryptVM("web-02", "kp-corp", true); err != nil {
		t.Fatal(err)
	}
	p, err := m.Plan(ctx, encryptionSpec("web-01", "web-02", "web-03"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]string{
		{"web-01 is encrypted with a key of key provider kp-corp", "only from vSphere 8.0 on both sides", "vc-east runs vCenter 6.5.0", "vc-west runs 8.0.2"},
		{"web-02 has a vTPM (Virtual TPM), which encrypts its files", "only from vSphere 8.0 on both sides"},
	} {
		if findingWith(p, Blocker, want...) == nil {
			t.Errorf("no blocker with %q: %+v", want, p.Findings)
		}
	}
	for _, f := range p.Findings {
		if f.Severity == Blocker && f.VM == "web-03" {
			t.Errorf("web-03, not encrypted, is blocked: %s", f.Message)
		}
	}
}

// From vSphere 8.0 the target needs the VM's key provider: missing is a blocker that
// names what it has; a standard key provider of that name passes; a Native Key Provider
// of that name is a warning, since only one restored from the source's backup holds the
// same keys.
func TestEncryptedVMNeedsItsKeyProviderOnTheTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lab, m, _ := startLab(t, xvmsim.WithVersion(xvmsim.EastVC, "8.0.3"), xvmsim.WithVersion(xvmsim.WestVC, "8.0.2"))
	east, west := lab.VC(xvmsim.EastVC), lab.VC(xvmsim.WestVC)
	if err := east.EncryptVM("web-01", "kp-corp", false); err != nil {
		t.Fatal(err)
	}
	if err := east.EncryptVM("web-02", "nkp-east", true); err != nil {
		t.Fatal(err)
	}
	if err := west.AddKeyProvider(ctx, "kp-other", false); err != nil {
		t.Fatal(err)
	}
	p, err := m.Plan(ctx, encryptionSpec("web-01", "web-02"))
	if err != nil {
		t.Fatal(err)
	}
	if findingWith(p, Blocker, "web-01 is encrypted with a key of key provider kp-corp, which vc-west does not have (its key providers: kp-other)") == nil {
		t.Errorf("no blocker for the missing key provider: %+v", p.Findings)
	}

	if err := west.AddKeyProvider(ctx, "kp-corp", false); err != nil {
		t.Fatal(err)
	}
	if err := west.AddKeyProvider(ctx, "nkp-east", true); err != nil {
		t.Fatal(err)
	}
	if p, err = m.Plan(ctx, encryptionSpec("web-01", "web-02")); err != nil {
		t.Fatal(err)
	}
	if p.Blocked() {
		t.Errorf("blocked although vc-west has both key providers: %v", findingsOf(p, Blocker))
	}
	if findingWith(p, OK, "web-01 is encrypted with a key of key provider kp-corp, which vc-west has too") == nil {
		t.Errorf("the plan does not say web-01's key provider is there: %+v", p.Findings)
	}
	if findingWith(p, Warning, "web-02 has a vTPM", "Native Key Provider", "restored from vc-east's backup") == nil {
		t.Errorf("no warning about the Native Key Provider's keys: %+v", p.Findings)
	}
}

// Which VMs need their key on the target, and how each is named.
func TestEncryptedVMs(t *testing.T) {
	t.Parallel()
	tpm := object.VirtualDeviceList{&types.VirtualTPM{VirtualDevice: types.VirtualDevice{Key: 11000,
		DeviceInfo: &types.Description{Label: "Virtual TPM"}}}}
	key := &types.CryptoKeyId{KeyId: "k1", ProviderId: &types.KeyProviderId{Id: "kp"}}
	vms := []VM{{VM: move.VM{Name: "plain"}}, {VM: move.VM{Name: "enc"}}, {VM: move.VM{Name: "tpm"}}, {VM: move.VM{Name: "ruled-out"}}}
	got := encryptedVMs(vms, map[string]*sourceVM{
		"plain":     {},
		"enc":       {key: key},
		"tpm":       {key: key, devices: tpm},
		"ruled-out": {key: key, blocked: true},
	})
	want := []encryptedVM{
		{name: "enc", provider: "kp", what: "is encrypted with a key of key provider kp"},
		{name: "tpm", provider: "kp", what: "has a vTPM (Virtual TPM), which encrypts its files with a key of key provider kp"},
	}
	if len(got) != len(want) {
		t.Fatalf("encryptedVMs = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("encryptedVMs[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
