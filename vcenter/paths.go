package vcenter

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// isInventoryPath reports whether a person gave an object by its inventory path, the form
// govc and the vSphere Client show ("/dc-west/host/west-prod/esx-w1.lab"), rather than
// by its name.
func isInventoryPath(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "/") }

// lookup finds the objects of list (one kind, all in the scope the caller searched) that
// s names. A name may match several; an inventory path names one object, which must be
// in list. When nothing matches, miss says why, ready to go in parentheses after "not
// found in …": the candidates for a name; for a path, how far the path leads or what
// it names instead.
func lookup(ctx context.Context, c *vim25.Client, list []named, s, plural string) (found []named, miss string, err error) {
	if !isInventoryPath(s) {
		if found = byName(list, s); len(found) == 0 {
			miss = fmt.Sprintf("%s: %s", plural, candidates(list, candidateLimit))
		}
		return found, miss, nil
	}
	p := path.Clean("/" + strings.TrimSpace(s))
	ref, err := atPath(ctx, c, p)
	if err != nil {
		return nil, "", err
	}
	if ref == nil {
		reached, next, err := reach(ctx, c, p)
		if err != nil {
			return nil, "", err
		}
		return nil, fmt.Sprintf("nothing is at that inventory path: %s holds no %s", reached, next), nil
	}
	if i := slices.IndexFunc(list, func(n named) bool { return n.Ref == *ref }); i >= 0 {
		return list[i : i+1], "", nil
	}
	return nil, fmt.Sprintf("that inventory path is a %s, not one of the %s: %s", kindWord(ref.Type), plural, candidates(list, candidateLimit)), nil
}

// atPath is the object at an inventory path, or nil.
func atPath(ctx context.Context, c *vim25.Client, p string) (*types.ManagedObjectReference, error) {
	o, err := object.NewSearchIndex(c).FindByInventoryPath(ctx, p)
	if err != nil || o == nil {
		return nil, err
	}
	ref := o.Reference()
	return &ref, nil
}

// reach walks an inventory path that names nothing, and returns the longest part of it
// that exists and the segment that does not exist under it.
func reach(ctx context.Context, c *vim25.Client, p string) (reached, next string, err error) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	reached = "/"
	for _, seg := range segs {
		try := path.Join(reached, seg)
		ref, err := atPath(ctx, c, try)
		if err != nil {
			return "", "", err
		}
		if ref == nil {
			return reached, seg, nil
		}
		reached = try
	}
	return reached, "", nil
}

// kindWord names a managed object type the way the vSphere Client does.
func kindWord(t string) string {
	switch t {
	case "ClusterComputeResource":
		return "cluster"
	case "ComputeResource":
		return "standalone host's compute resource"
	case "HostSystem":
		return "host"
	case "ResourcePool":
		return "resource pool"
	case "VirtualApp":
		return "vApp"
	case "Folder":
		return "folder"
	case "Datacenter":
		return "datacenter"
	case "VirtualMachine":
		return "virtual machine"
	case "Datastore":
		return "datastore"
	}
	return t
}
