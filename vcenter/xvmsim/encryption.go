package xvmsim

import (
	"context"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/crypto"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Encrypted VMs and vTPMs: a VM encrypted with vSphere VM Encryption (or whose home is
// encrypted because it has a vTPM) names its key, and the key provider it came from, in
// config.keyId; a vTPM is a VirtualTPM device. vCenter moves such a VM to another
// vCenter only from vSphere 8.0, and only when the target has the key provider (and,
// for a Native Key Provider, the same keys, restored from the source's backup).

// AddKeyProvider registers a key provider named id on the vCenter through its
// CryptoManagerKmip, as an administrator adds one in the vSphere Client: a Native Key
// Provider when native, a standard (KMIP) one otherwise.
func (v *VC) AddKeyProvider(ctx context.Context, id string, native bool) error {
	c, err := v.Client(ctx)
	if err != nil {
		return err
	}
	defer logout(c)
	kind := types.KmipClusterInfoKmsManagementTypeUnknown
	if native {
		kind = types.KmipClusterInfoKmsManagementTypeNativeProvider
	}
	return crypto.NewManagerKmip(c.Client).RegisterKmsCluster(ctx, id, kind)
}

// EncryptVM makes the VM named vm report itself encrypted with a key of the key provider
// named provider (config.keyId), and with a vTPM device too when vtpm is set, as vCenter
// reports a VM encrypted in the vSphere Client. (vcsim encrypts only powered-off VMs
// through the API; this sets what a client reads, for a VM in any power state.)
func (v *VC) EncryptVM(vm, provider string, vtpm bool) error {
	return v.edit(func(e *labEdit) error {
		obj, err := e.find("VM", vm, "VirtualMachine")
		if err != nil {
			return err
		}
		m := obj.(*simulator.VirtualMachine)
		e.update(obj, func() []types.PropertyChange {
			changes := []types.PropertyChange{{Name: "config.keyId", Val: &types.CryptoKeyId{
				KeyId: uuid.NewString(), ProviderId: &types.KeyProviderId{Id: provider}}}}
			if vtpm {
				devices := append([]types.BaseVirtualDevice{}, m.Config.Hardware.Device...)
				devices = append(devices, &types.VirtualTPM{VirtualDevice: types.VirtualDevice{
					Key:        11000,
					DeviceInfo: &types.Description{Label: "Virtual TPM", Summary: "Virtual TPM"},
				}})
				changes = append(changes, types.PropertyChange{Name: "config.hardware.device", Val: devices})
			}
			return changes
		})
		return nil
	})
}
