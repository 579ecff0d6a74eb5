package vcenter

import (
	"fmt"
	"path"
	"strings"
)

// isPattern reports whether a requested VM name is a shell-style pattern
// (path.Match syntax: *, ?, [a-z], \ to escape) rather than a name. People
// rarely put those characters in VM names, and when they do, a pattern that
// matches the name literally still selects that VM.
func isPattern(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// requested reports whether vm is one of the VMs a spec asks for, by name
// or through a pattern.
func requested(asked []string, vm string) bool {
	for _, a := range asked {
		if a == vm {
			return true
		}
		if isPattern(a) {
			if ok, err := path.Match(a, vm); err == nil && ok {
				return true
			}
		}
	}
	return false
}

// expandVMs turns the request's names and patterns into VM names, in the
// request's order (a pattern's matches sorted by name), each once, against
// the source's list of every VM. What cannot be expanded becomes a finding.
func (r *resolver) expandVMs(all []named) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, asked := range uniq(r.spec.VMs) {
		if !isPattern(asked) {
			add(asked)
			continue
		}
		if _, err := path.Match(asked, ""); err != nil {
			r.block("", fmt.Sprintf("%s is not a valid name pattern", asked),
				"use * for any characters, ? for one, [abc] or [a-z] for a set; e.g. web-* or bulk-0??")
			continue
		}
		n := 0
		last := ""
		for _, v := range all { // sorted by name
			if ok, _ := path.Match(asked, v.Name); ok && v.Name != last {
				add(v.Name)
				n++
				last = v.Name
			}
		}
		if n == 0 {
			r.block("", fmt.Sprintf("pattern %s matches no VM in %s", asked, r.spec.Source),
				"check the pattern; it must match whole names, e.g. web-* rather than web")
		}
	}
	return out
}
