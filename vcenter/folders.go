package vcenter

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// resolveFolder walks the folder path under the datacenter's VM folder one
// level at a time, so a miss can say which level and what is there instead.
func (r *resolver) resolveFolder(ctx context.Context, c *vim25.Client, dc mo.Datacenter) (*types.ManagedObjectReference, error) {
	cur := dc.VmFolder
	p, otherDC := vmFolderPath(r.spec.Folder, dc.Name)
	if otherDC != "" {
		r.block("", fmt.Sprintf("folder %s is in datacenter %s; %s's VMs go to datacenter %s", r.spec.Folder, otherDC, r.spec.Target, dc.Name),
			fmt.Sprintf("give the path in %s (folder=/%s/vm/…), or relative to its VM folder", dc.Name, dc.Name))
		return nil, nil
	}
	if p == "" || p == "." {
		r.plan.Folder = "/"
		return &cur, nil
	}
	pc := property.DefaultCollector(c)
	walked := ""
	segs := strings.Split(p, "/")
	for len(segs) > 0 {
		var f mo.Folder
		if err := pc.RetrieveOne(ctx, cur, []string{"childEntity"}, &f); err != nil {
			return nil, err
		}
		var subs []types.ManagedObjectReference
		for _, ch := range f.ChildEntity {
			if ch.Type == "Folder" {
				subs = append(subs, ch)
			}
		}
		var children []mo.Folder
		if len(subs) > 0 {
			if err := pc.Retrieve(ctx, subs, []string{"name"}, &children); err != nil {
				return nil, err
			}
		}
		var next *types.ManagedObjectReference
		var names []string
		for _, ch := range children {
			names = append(names, pathSegment(readable(ch.Name)))
		}
		// A folder's name may hold a slash, which a person types as the vSphere Client
		// shows it: the longest run of the path's next parts that is one folder's name
		// wins ("dev/test" is folder "dev/test" if there is one, else "test" in "dev").
		seg := ""
		for k := len(segs); k >= 1 && next == nil; k-- {
			seg = strings.Join(segs[:k], "%2f")
			for i, name := range names {
				if name == seg {
					next, segs = &children[i].Self, segs[k:]
					break
				}
			}
		}
		if next == nil {
			where := "the VM folder root"
			if walked != "" {
				where = "folder " + walked
			}
			r.block("", fmt.Sprintf("folder %s not found in %s of %s (folders in %s: %s)",
				r.spec.Folder, dc.Name, r.spec.Target, where, nameList(names, candidateLimit)),
				"check the folder path: relative to the datacenter's VM folder (folder=parent/child) or as the vSphere Client shows it (folder=/<datacenter>/vm/parent/child)")
			return nil, nil
		}
		walked = path.Join(walked, seg)
		cur = *next
	}
	r.plan.Folder = walked
	return &cur, nil
}

// vmFolderPath is folder as a path under the VM folder of datacenter dc. Admins type the
// inventory path the vSphere Client and govc show ("/dc-west/vm/migrated/web") as often as
// the path under the VM folder ("migrated/web"); both name the same folder. An inventory
// path into another datacenter returns that datacenter's name as otherDC.
func vmFolderPath(folder, dc string) (p, otherDC string) {
	p = strings.Trim(path.Clean("/"+folder), "/")
	if !strings.HasPrefix(strings.TrimSpace(folder), "/") {
		return p, ""
	}
	segs := strings.Split(p, "/")
	if len(segs) < 2 || segs[1] != "vm" {
		return p, "" // a leading slash before a path under the VM folder
	}
	if segs[0] != pathSegment(readable(dc)) {
		return "", segs[0]
	}
	return strings.Join(segs[2:], "/"), ""
}

// checkCollisions: vCenter refuses a second VM of the same name in one
// folder; elsewhere it is allowed but confuses people.
func (r *resolver) checkCollisions(ctx context.Context, c *vim25.Client, folder *types.ManagedObjectReference) error {
	if len(r.plan.VMs) == 0 {
		return nil
	}
	all, err := listNames(ctx, c, c.ServiceContent.RootFolder, "VirtualMachine")
	if err != nil {
		return err
	}
	index := make(map[string][]named, len(all))
	for _, n := range all {
		index[n.Name] = append(index[n.Name], n)
	}
	for _, v := range r.plan.VMs {
		// One finding per VM, the blocker first: a copy in the folder blocks whichever
		// copy is listed first.
		same := index[v.Name]
		switch {
		case folder != nil && slices.ContainsFunc(same, func(o named) bool { return o.Parent == *folder }):
			r.block(v.Name, fmt.Sprintf("a VM named %s already exists in %s folder %s", v.Name, r.spec.Target, r.plan.Folder),
				"rename or remove the existing VM, or choose another folder")
		case len(same) > 0:
			r.add(Warning, v.Name, fmt.Sprintf("a VM named %s already exists elsewhere in %s", v.Name, r.spec.Target),
				"make sure it is not the same machine moved before")
		}
	}
	return nil
}
