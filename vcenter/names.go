package vcenter

import (
	"slices"
	"strings"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// similar lists names that share a prefix or substring with name, else all.
func similar(all []named, name string) []string {
	l := strings.ToLower(name)
	var out []string
	for _, n := range all {
		ln := strings.ToLower(n.Name)
		if strings.Contains(ln, l) || strings.Contains(l, ln) || commonPrefix(ln, l) >= 3 {
			out = append(out, n.Name)
		}
	}
	if len(out) == 0 {
		for _, n := range all {
			out = append(out, n.Name)
		}
	}
	return out
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func quoteIfSpace(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func uniqRefs(in []types.ManagedObjectReference) []types.ManagedObjectReference {
	seen := map[types.ManagedObjectReference]bool{}
	var out []types.ManagedObjectReference
	for _, r := range in {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// vCenter escapes three characters in the names of inventory objects (VMs, folders,
// networks, pools, datastores, hosts): "/" as %2f, "\" as %5c and "%" as %25, and returns
// the names that way, while the vSphere Client shows them as typed. A portgroup named
// after its subnet, "10.10.12.0/24", is "10.10.12.0%2f24" in every API answer. Names are
// compared and shown in the readable form; a name written back to vCenter where it
// expects its own form (a standard portgroup's backing) is the one vCenter returned.
// See docs/vsphere-behaviours.md.

// readable is an inventory name as the vSphere Client shows it: vCenter's escapes
// (%2f, %5c, %25, of either case) decoded; any other "%" is left as it is. A name a
// person typed goes through it too, so that either form matches.
func readable(name string) string {
	if !strings.Contains(name, "%") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] == '%' && i+2 < len(name) {
			switch strings.ToLower(name[i+1 : i+3]) {
			case "2f":
				b.WriteByte('/')
				i += 2
				continue
			case "5c":
				b.WriteByte('\\')
				i += 2
				continue
			case "25":
				b.WriteByte('%')
				i += 2
				continue
			}
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

// escaped is a readable name in the form vCenter stores and returns it.
func escaped(name string) string {
	return strings.NewReplacer("%", "%25", "/", "%2f", `\`, "%5c").Replace(name)
}

// pathSegment is a folder's readable name inside a path: a slash stays %2f, as in the
// inventory paths govc prints, so that the path still splits into its folders.
func pathSegment(name string) string {
	return strings.ReplaceAll(name, "/", "%2f")
}

// readablePath is a folder path a person typed, each folder's name made readable the
// way pathSegment shows it.
func readablePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = pathSegment(readable(s))
	}
	return strings.Join(segs, "/")
}

// readableNames is s with every name a person typed in the readable form, the form
// names read from vCenter are compared in.
func readableNames(s MoveSpec) MoveSpec {
	s.VMs = slices.Clone(s.VMs)
	for i, v := range s.VMs {
		s.VMs[i] = readable(v)
	}
	s.Cluster, s.Host, s.Pool, s.Datastore = readable(s.Cluster), readable(s.Host), readable(s.Pool), readable(s.Datastore)
	s.Folder = readablePath(s.Folder)
	s.Networks = slices.Clone(s.Networks)
	for i, n := range s.Networks {
		s.Networks[i] = move.Network{Source: readable(n.Source), Target: readable(n.Target)}
	}
	s.Disks = slices.Clone(s.Disks)
	for i := range s.Disks {
		s.Disks[i].Datastore = readable(s.Disks[i].Datastore)
	}
	return s
}
