package vcenter

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// MoveSpec is a move as asked for, by name: which VMs, from and to which configured
// vCenter, and where in the target (see move.Placement for what "" means in each field).
type MoveSpec struct {
	VMs    []string
	Source string
	Target string
	move.Placement
}

// Severity grades a finding.
type Severity string

// The severities.
const (
	OK      Severity = "ok"
	Warning Severity = "warning"
	Blocker Severity = "blocker"
)

// Finding is one pre-flight result in plain words.
type Finding struct {
	Severity Severity
	VM       string // empty when it concerns the whole request
	Message  string
	Hint     string // what to do about it
}

// Endpoint is a vCenter as the review page shows it.
type Endpoint struct {
	Name             string
	Version          string
	InstanceUUID     string
	Thumbprint       string // SHA-1 of the certificate presented, colon-separated upper-case hex
	ThumbprintSHA256 string // the same certificate's SHA-256, for operators who pin that
	URL              string // the SDK URL, with port
	Home             bool
	Reachable        bool      // a session could be made
	CertCheck        CertCheck // how the certificate is checked, from the configuration
}

// NIC is one virtual network adapter of a VM.
type NIC struct {
	Label   string // "Network adapter 1"
	Network string // source portgroup name
	MAC     string
	Target  string // target portgroup name after mapping
}

// VM is one VM to move, as resolved in the source: its identity (name and managed object
// id, which an approval binds) and what the review shows of it.
type VM struct {
	move.VM
	PowerState string
	CPUs       int
	MemoryMB   int
	DiskGB     float64
	NICs       []NIC
	// Policy is the target's storage policy the VM's own files go under, by name; "" is
	// the datastore's default.
	Policy string
}

// Plan is a move resolved against the live inventories: the wizard's review page, and
// everything needed to build the RelocateSpec of each VM.
type Plan struct {
	Spec       MoveSpec
	Source     Endpoint
	Target     Endpoint
	Cluster    string // resolved names, as the review shows them
	Host       string
	Pool       string
	Datastore  string
	DiskFormat move.DiskFormat
	Folder     string
	VMs        []VM
	Findings   []Finding
	ResolvedAt time.Time
	// OtherHosts are the other hosts of the cluster that qualify as well as Host, least
	// loaded first; OnHost moves the plan onto one (a scheduler does, when Host is busy).
	OtherHosts []string

	// Resolved references, kept for Relocate in the process that planned.
	// They do not survive serialisation: Relocate re-resolves a plan that
	// arrives without them (as a job from another process would).
	placement *placement
	vms       map[string]*vmPlan
	others    map[string]types.ManagedObjectReference // OtherHosts by name
}

// OnHost returns the plan with its target host replaced by one of OtherHosts; the
// original plan is unchanged. Everything else (pool, datastore, folder, NIC backings)
// stays: OtherHosts see the same datastore and networks.
func (p *Plan) OnHost(name string) (*Plan, error) {
	ref, ok := p.others[name]
	if !ok || p.placement == nil {
		return nil, fmt.Errorf("host %s is not one of the plan's other hosts (%s)", name, strings.Join(p.OtherHosts, ", "))
	}
	q := *p
	pl := *p.placement
	pl.Host = ref
	q.placement = &pl
	q.Host = name
	q.OtherHosts = nil
	for _, h := range p.OtherHosts {
		if h != name {
			q.OtherHosts = append(q.OtherHosts, h)
		}
	}
	q.OtherHosts = append(q.OtherHosts, p.Host)
	q.others = maps.Clone(p.others)
	delete(q.others, name)
	q.others[p.Host] = p.placement.Host
	return &q, nil
}

// clone returns a copy of p that its receiver may change without changing p: the
// slices and maps people see are copied; the resolved references, which nothing
// changes once resolved, are shared.
func (p *Plan) clone() *Plan {
	q := *p
	q.Spec.VMs = slices.Clone(p.Spec.VMs)
	q.Spec.Networks = slices.Clone(p.Spec.Networks)
	q.Spec.Disks = slices.Clone(p.Spec.Disks)
	q.VMs = slices.Clone(p.VMs)
	for i := range q.VMs {
		q.VMs[i].NICs = slices.Clone(p.VMs[i].NICs)
	}
	q.Findings = slices.Clone(p.Findings)
	q.OtherHosts = slices.Clone(p.OtherHosts)
	q.others = maps.Clone(p.others)
	return &q
}

// Policy is the storage policy of the VMs' own files, by name, as the review shows it:
// the one the request names, else the one every VM keeps by name ("" if they differ, or
// none keeps one).
func (p *Plan) Policy() string {
	if p.Spec.Policy != "" {
		return p.Spec.Policy
	}
	kept := ""
	for i, v := range p.VMs {
		if i > 0 && v.Policy != kept {
			return ""
		}
		kept = v.Policy
	}
	return kept
}

// BlockedFor reports whether a blocker stops vm: one about vm, or about the whole request.
func (p *Plan) BlockedFor(vm string) bool { return blockerFor(p.Findings, vm) != nil }

// Blocked reports whether any finding is a blocker.
func (p *Plan) Blocked() bool {
	for _, f := range p.Findings {
		if f.Severity == Blocker {
			return true
		}
	}
	return false
}

// Result is what a finished relocation reports.
type Result struct {
	VM       string
	TaskRef  string // the vCenter task, e.g. "task-123"
	Duration time.Duration
}

// ProgressFunc receives task progress, 0–100, as the vCenter reports it.
type ProgressFunc func(percent int)
