package xvmsim

import (
	"context"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// vCenter returns "/", "\" and "%" in the names of inventory objects escaped, as %2f,
// %5c and %25 (docs/vsphere-behaviours.md). vcsim's CreateVM and CreateFolder escape
// the name they are given, as vCenter does, but also a "%" that starts an escape, which
// vCenter leaves; its Rename and AddPortGroup take a name as given. The lab names its
// objects as vCenter returns them and gets them so.

// fileName is the name the lab creates a VM under, and names its directory and disks
// after, when vCenter returns its name with escapes ("app%2f01" for "app/01"): vcsim's
// CreateVM escapes the name it is given again, and fails a VM whose escaped name
// differs from the one it was given once it has disks to create. The lab creates the
// VM as fileName, then renames it (vcsim's Rename takes a name as given).
func fileName(name string) string {
	return strings.ReplaceAll(name, "%", "_")
}

// typed is a name as vCenter returns it, unescaped: what the lab gives vcsim's
// CreateFolder so that it escapes it back to the name vCenter would return.
func typed(name string) string {
	return strings.NewReplacer("%2f", "/", "%5c", `\`, "%25", "%").Replace(name)
}

// renameTo gives the VM vm the name vCenter returns for it, if it was created under
// another (see fileName).
func renameTo(ctx context.Context, c *vim25.Client, vm types.ManagedObjectReference, name string) error {
	if fileName(name) == name {
		return nil
	}
	return runTask(ctx, c, func(ctx context.Context) (*object.Task, error) {
		return object.NewVirtualMachine(c, vm).Rename(ctx, name)
	})
}
