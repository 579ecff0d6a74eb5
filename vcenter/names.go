package vcenter

import (
	"strings"

	"github.com/vmware/govmomi/vim25/types"
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
