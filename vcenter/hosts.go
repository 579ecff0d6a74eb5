package vcenter

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// pickHost chooses, among the candidate hosts, one that is connected, powered on (not
// in DPM standby), not in maintenance or quarantine mode, runs ESXi 6.5 or later, sees the datastore and every wanted
// portgroup, and runs the fewest VMs, so successive plans spread over the
// cluster. The other hosts that qualify (on the same networks) become the
// plan's OtherHosts.
func (r *resolver) pickHost(cr *compute, stores []namedRef, wanted map[string]bool, nets map[types.ManagedObjectReference]netInfo) *mo.HostSystem {
	var best *mo.HostSystem
	var eligible []*mo.HostSystem
	var reasons []string
	// fixes says, once each and in this order, what would make a refused host fit.
	var fixes []string
	fix := func(f string) {
		if !slices.Contains(fixes, f) {
			fixes = append(fixes, f)
		}
	}
	for i := range cr.hosts {
		h := &cr.hosts[i]
		var why []string
		if h.Runtime.ConnectionState != types.HostSystemConnectionStateConnected {
			why = append(why, "is "+connectionWords(h.Runtime.ConnectionState))
			fix("reconnect it in the vSphere Client")
		}
		if h.Runtime.InMaintenanceMode {
			why = append(why, "is in maintenance mode")
			fix("take it out of maintenance mode")
		}
		// A host DPM put in standby stays connected and runs no VMs: without this it is
		// the least loaded host of its cluster, and a move onto it fails.
		if ps := h.Runtime.PowerState; ps != "" && ps != types.HostSystemPowerStatePoweredOn {
			why = append(why, "is "+hostPowerWords(ps))
			fix("power it on (Exit Standby Mode), or let DPM do so")
		}
		if q := h.Runtime.InQuarantineMode; q != nil && *q {
			why = append(why, "is in quarantine mode (Proactive HA: a degraded host)")
			fix("let Proactive HA remediate it, or take it out of quarantine mode")
		}
		if v := hostVersion(h); tooOld(v) {
			why = append(why, fmt.Sprintf("runs ESXi %s (cross vCenter vMotion needs 6.5 or later)", v))
			fix("upgrade it to ESXi 6.5 or later")
		}
		for _, ds := range stores {
			if !slices.Contains(h.Datastore, ds.ref) {
				why = append(why, "does not see datastore "+ds.name)
				fix("mount datastore " + ds.name + " on it")
			}
		}
		hn := hostNetworks(*h, nets)
		for _, name := range slices.Sorted(maps.Keys(wanted)) {
			switch len(hn[name]) {
			case 0:
				why = append(why, "does not see portgroup "+name)
				fix("add it to the switch of portgroup " + name)
			case 1:
			default:
				why = append(why, fmt.Sprintf("sees %d portgroups named %s", len(hn[name]), name))
				fix("rename the extra portgroups named " + name)
			}
		}
		if len(why) > 0 {
			reasons = append(reasons, h.Name+" "+strings.Join(why, " and "))
			continue
		}
		eligible = append(eligible, h)
	}
	slices.SortFunc(eligible, func(a, b *mo.HostSystem) int {
		return cmp.Or(cmp.Compare(len(a.Vm), len(b.Vm)), cmp.Compare(a.Name, b.Name))
	})
	if len(eligible) > 0 && len(reasons) > 0 && r.spec.Host == "" {
		// The choice was narrowed: say which hosts of the cluster were left out, and why.
		sort.Strings(reasons)
		r.add(OK, "", fmt.Sprintf("hosts of cluster %s not chosen: %s", cr.name, strings.Join(reasons, "; ")), "")
	}
	if len(eligible) > 0 {
		best = eligible[0]
		r.plan.others = map[string]types.ManagedObjectReference{}
		for _, h := range eligible[1:] {
			if sameNetworks(hostNetworks(*best, nets), hostNetworks(*h, nets), wanted) {
				r.plan.OtherHosts = append(r.plan.OtherHosts, h.Name)
				r.plan.others[h.Name] = h.Self
				if hostKind(h) != hostKind(best) {
					r.unlike = append(r.unlike, h.Name)
				}
			}
		}
	}
	if best == nil {
		sort.Strings(reasons)
		if len(reasons) > 4 {
			reasons = append(reasons[:4], fmt.Sprintf("%d more", len(reasons)-4))
		}
		what, hint := "host "+r.spec.Host, "choose another host or cluster, or fix the host: "
		if r.spec.Host == "" {
			what, hint = "no host of cluster "+cr.name+" can take the VMs", "choose another host or cluster, or fix a host: "
		}
		r.block("", fmt.Sprintf("%s: %s", what, strings.Join(reasons, "; ")), hint+strings.Join(fixes, ", "))
		return nil
	}
	r.plan.Host = best.Name
	return best
}

// hostPowerWords is a host power state as people say it.
func hostPowerWords(s types.HostSystemPowerState) string {
	switch s {
	case types.HostSystemPowerStateStandBy:
		return "in standby (DPM)"
	case types.HostSystemPowerStatePoweredOff:
		return "powered off"
	}
	return "in power state " + string(s)
}

// connectionWords is a host connection state as people say it.
func connectionWords(s types.HostSystemConnectionState) string {
	if s == types.HostSystemConnectionStateNotResponding {
		return "not responding"
	}
	return string(s)
}

// hostKind is what decides how vCenter's compatibility check judges a host for a VM
// (beyond the storage and networks the plan already matched): its CPU and its ESXi build.
func hostKind(h *mo.HostSystem) string {
	kind := ""
	if hw := h.Summary.Hardware; hw != nil {
		kind = hw.CpuModel
	}
	if p := h.Summary.Config.Product; p != nil {
		kind += "|" + p.Build
	}
	return kind
}

// hostVersion is the ESXi version a host reports, "" when it reports none (a host
// vCenter lost touch with may not).
func hostVersion(h *mo.HostSystem) string {
	if p := h.Summary.Config.Product; p != nil {
		return p.Version
	}
	return ""
}

// tooOld reports whether an ESXi or vCenter version is below 6.5, the oldest that
// does cross vCenter vMotion. A version that cannot be read is not judged here.
func tooOld(version string) bool {
	major, minor, ok := parseVersion(version)
	return ok && (major < minMajor || (major == minMajor && minor < minMinor))
}

// sameNetworks reports whether two hosts see every wanted portgroup as the same network
// object, so that NIC backings resolved for one are right for the other.
func sameNetworks(a, b map[string][]netInfo, wanted map[string]bool) bool {
	for name := range wanted {
		if len(a[name]) != 1 || len(b[name]) != 1 || a[name][0].Ref != b[name][0].Ref {
			return false
		}
	}
	return true
}
