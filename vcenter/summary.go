package vcenter

import (
	"fmt"
	"slices"
	"strings"
)

// A request of thousands of VMs makes thousands of findings that say the same of each
// VM ("bulk-0004 is powered off and will be moved powered off"). A review that lists
// them all is read by nobody, and carries them in every copy of the request. Above
// summarizeAbove VMs, such findings become one, which keeps the first VM's words and
// says how many others, naming a few.
const (
	summarizeAbove = 10
	summaryNames   = 3
)

// summarize folds the warnings and passed checks that say the same of more than
// summarizeAbove VMs into one finding each, where the first of them was; everything
// else stays as it was, in order. Blockers always stay one per VM: a worker decides by
// them whether its VM may move (Plan.BlockedFor).
func summarize(fs []Finding) []Finding {
	type group struct {
		first int // index in fs
		vms   []string
	}
	groups := map[[3]string]*group{}
	keys := make([][3]string, len(fs))
	for i, f := range fs {
		if f.Severity == Blocker || f.VM == "" {
			continue
		}
		k := [3]string{string(f.Severity), withoutName(f.Message, f.VM), withoutName(f.Hint, f.VM)}
		keys[i] = k
		g := groups[k]
		if g == nil {
			g = &group{first: i}
			groups[k] = g
		}
		g.vms = append(g.vms, f.VM)
	}
	out := make([]Finding, 0, len(fs))
	for i, f := range fs {
		g := groups[keys[i]]
		switch {
		case g == nil || len(g.vms) <= summarizeAbove:
			out = append(out, f)
		case g.first == i:
			others := g.vms[1:]
			f.Message = fmt.Sprintf("%s; the same for %d other VMs (%s)", f.Message, len(others),
				nameList(slices.Clone(others), summaryNames))
			f.VM = ""
			out = append(out, f)
		}
	}
	return out
}

// withoutName is s with every mention of the VM name vm taken out, so that two VMs'
// findings compare equal when they say the same of each. A mention is vm as a whole
// name: not part of a longer one ("app" in portgroup "app-pg"), which could otherwise
// make findings about different portgroups look alike.
func withoutName(s, vm string) string {
	if vm == "" {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, vm)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(vm)
		if (i > 0 && nameByte(s[i-1])) || (end < len(s) && nameByte(s[end])) {
			b.WriteString(s[:end])
		} else {
			b.WriteString(s[:i])
			b.WriteByte(0)
		}
		s = s[end:]
	}
}

// nameByte reports whether c may be part of an inventory name around a mention of one.
func nameByte(c byte) bool {
	return c == '-' || c == '_' || c == '.' || c == '%' || c >= 0x80 ||
		('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
