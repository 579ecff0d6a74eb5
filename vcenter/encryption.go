package vcenter

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vmware/govmomi/crypto"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Encrypted VMs and vTPMs across vCenters (docs/vsphere-behaviours.md): before vSphere
// 8.0, vCenter does not move an encrypted VM to another vCenter, nor one with a vTPM
// (whose home files are encrypted). From 8.0 it does when the target vCenter has the key
// provider the VM's key came from; a Native Key Provider must moreover hold the same
// keys (restored from the source's backup), or the move fails at its very end.

// encryptionMajor is the first vSphere release that moves encrypted VMs across vCenters.
const encryptionMajor = 8

// vmPropsOf is vmProps with config.keyId where the vCenter knows it (vSphere API 6.5
// and later): asking an older one for it would fault the whole read.
func vmPropsOf(c *vim25.Client) []string {
	if major, minor, ok := parseVersion(c.ServiceContent.About.ApiVersion); ok &&
		(major > minMajor || (major == minMajor && minor >= minMinor)) {
		return append(slices.Clone(vmProps), "config.keyId")
	}
	return vmProps
}

// encryptedVM is a VM whose move needs its key on the target.
type encryptedVM struct {
	name     string
	provider string // the key provider of config.keyId, "" if unknown
	what     string // "is encrypted", "has a vTPM (Virtual TPM)", or both
}

// encryptedVMs are the VMs of the plan that are encrypted or have a vTPM.
func encryptedVMs(vms []VM, srcVMs map[string]*sourceVM) []encryptedVM {
	var out []encryptedVM
	for _, v := range vms {
		svm := srcVMs[v.Name]
		if svm == nil || svm.blocked {
			continue
		}
		var tpm string
		for _, d := range svm.devices.SelectByType((*types.VirtualTPM)(nil)) {
			tpm = deviceLabel(svm.devices, d)
		}
		if svm.key == nil && tpm == "" {
			continue
		}
		e := encryptedVM{name: v.Name}
		if svm.key != nil && svm.key.ProviderId != nil {
			e.provider = svm.key.ProviderId.Id
		}
		switch {
		case tpm == "":
			e.what = "is encrypted"
		default:
			e.what = "has a vTPM (" + tpm + "), which encrypts its files"
		}
		if e.provider != "" {
			e.what += " with a key of key provider " + e.provider
		}
		out = append(out, e)
	}
	return out
}

// checkEncryption checks the plan's encrypted VMs and VMs with a vTPM against both
// vCenters' versions and the target's key providers. The target is read only when
// some VM needs it.
func (m *Manager) checkEncryption(ctx context.Context, r *resolver, srcVMs map[string]*sourceVM) error {
	enc := encryptedVMs(r.plan.VMs, srcVMs)
	if len(enc) == 0 {
		return nil
	}
	p := r.plan
	versions := fmt.Sprintf("%s runs vCenter %s, %s runs %s", p.Source.Name, p.Source.Version, p.Target.Name, p.Target.Version)
	srcMajor, _, srcOK := parseVersion(p.Source.Version)
	dstMajor, _, dstOK := parseVersion(p.Target.Version)
	switch {
	case !srcOK || !dstOK:
		for _, e := range enc {
			r.add(Warning, e.name, fmt.Sprintf("%s %s; vCenter moves such a VM to another vCenter only from vSphere 8.0 on both sides, and %s (not readable here)", e.name, e.what, versions),
				"check both vCenters' versions in the vSphere Client before approving")
		}
		return nil
	case srcMajor < encryptionMajor || dstMajor < encryptionMajor:
		for _, e := range enc {
			r.block(e.name, fmt.Sprintf("%s %s; vCenter moves such a VM to another vCenter only from vSphere 8.0 on both sides, and %s", e.name, e.what, versions),
				"upgrade both vCenters to 8.0 or later, or decrypt the VM (and remove its vTPM) for the move and encrypt it again in the target")
			srcVMs[e.name].blocked = true
		}
		return nil
	}

	var providers []types.KmipClusterInfo
	err := m.withSession(ctx, r.spec.Target, func(c *vim25.Client, _ *x509.Certificate) error {
		km, err := crypto.GetManagerKmip(c)
		if err != nil {
			return err
		}
		providers, err = km.ListKmipServers(ctx, nil)
		return err
	})
	if err != nil {
		var f *Fault
		if errors.As(err, &f) && f.Step == StepLogin {
			return err // the target is unreachable: the plan fails as any other read would
		}
		for _, e := range enc {
			r.add(Warning, e.name, fmt.Sprintf("%s %s; the key providers of %s could not be read (%v), so whether it has that key provider is not known",
				e.name, e.what, r.spec.Target, err), "check in the vSphere Client (Configure > Security > Key Providers) that "+r.spec.Target+" has it")
		}
		return nil
	}
	names := make([]string, 0, len(providers))
	for _, kp := range providers {
		names = append(names, kp.ClusterId.Id)
	}
	has := strings.Join(names, ", ")
	if has == "" {
		has = "none"
	}
	for _, e := range enc {
		i := slices.IndexFunc(providers, func(kp types.KmipClusterInfo) bool { return kp.ClusterId.Id == e.provider })
		switch {
		case e.provider == "":
			r.add(Warning, e.name, fmt.Sprintf("%s %s, and its key provider is not reported; %s must have it (key providers: %s)", e.name, e.what, r.spec.Target, has),
				"check the VM's encryption in the vSphere Client and that "+r.spec.Target+" has its key provider")
		case i < 0:
			r.block(e.name, fmt.Sprintf("%s %s, which %s does not have (its key providers: %s); vCenter refuses the move", e.name, e.what, r.spec.Target, has),
				fmt.Sprintf("add key provider %s to %s (a Native Key Provider: restore %s's backup of it, do not create a new one), then ask again", e.provider, r.spec.Target, r.spec.Source))
			srcVMs[e.name].blocked = true
		case providers[i].ManagementType == string(types.KmipClusterInfoKmsManagementTypeNativeProvider):
			r.add(Warning, e.name, fmt.Sprintf("%s %s; %s has a Native Key Provider of that name, and the move succeeds only if it was restored from %s's backup (the same keys): otherwise it fails at its end, unable to decrypt the key",
				e.name, e.what, r.spec.Target, r.spec.Source), "make sure the Native Key Provider of "+r.spec.Target+" was restored from "+r.spec.Source+"'s backup, not created anew")
		default:
			r.add(OK, e.name, fmt.Sprintf("%s %s, which %s has too", e.name, e.what, r.spec.Target), "")
		}
	}
	return nil
}
