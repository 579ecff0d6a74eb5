package vcenter

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// candidateLimit is how many existing names a "not found" finding lists.
const candidateLimit = 8

// Plan resolves spec against both live inventories, read-only. What a person
// typed that cannot be resolved becomes a Blocker finding on the returned
// plan; a Go error means an infrastructure failure (unknown vCenter name,
// vCenter unreachable, login refused, certificate mismatch). An empty Source
// or Target means the home vCenter.
//
// Plans of the same spec (defaults applied) asked for while one is being resolved
// wait for it and share its result (see coalesce.go); every caller gets a plan of its
// own.
func (m *Manager) Plan(ctx context.Context, spec MoveSpec) (*Plan, error) {
	return m.flights.do(ctx, m.specKey(spec), m.metrics.coalesced, func(ctx context.Context) (*Plan, error) {
		return m.plan(ctx, spec)
	})
}

// plan is Plan without the coalescing.
func (m *Manager) plan(ctx context.Context, spec MoveSpec) (*Plan, error) {
	spec = m.withDefaults(spec)
	src, err := m.conn(spec.Source)
	if err != nil {
		return nil, err
	}
	dst, err := m.conn(spec.Target)
	if err != nil {
		return nil, err
	}

	p := &Plan{Spec: spec, DiskFormat: spec.DiskFormat, ResolvedAt: time.Now(),
		Source: Endpoint{Name: spec.Source, URL: src.url.String(), Home: spec.Source == m.home},
		Target: Endpoint{Name: spec.Target, URL: dst.url.String(), Home: spec.Target == m.home},
	}
	r := &resolver{plan: p, spec: spec, refs: &m.refs}
	r.checkRequest()

	// The source's VMs and the target's placement are read side by side: neither needs the
	// other. What joins them (networks, host choice, collisions, space) comes after.
	var (
		srcVMs         map[string]*sourceVM
		base           *targetBase
		loc            *types.ServiceLocator
		srcErr, dstErr error
		wg             sync.WaitGroup
	)
	rt := r.fork()
	wg.Go(func() {
		srcErr = m.withSession(ctx, spec.Source, func(c *vim25.Client, peer *x509.Certificate) error {
			c = m.planClient(spec.Source, c)
			p.Source = endpointOf(p.Source, c, peer)
			r.checkVersion(p.Source, c.ServiceContent.About.Version)
			var err error
			srcVMs, err = r.resolveSource(ctx, c)
			if err == nil {
				r.readSourcePolicies(ctx, c, srcVMs)
				r.checkVGPUHotMigrate(ctx, c, srcVMs)
			}
			return err
		})
	})
	wg.Go(func() {
		dstErr = m.withSession(ctx, spec.Target, func(c *vim25.Client, peer *x509.Certificate) error {
			c = m.planClient(spec.Target, c)
			p.Target = endpointOf(p.Target, c, peer)
			rt.checkVersion(p.Target, c.ServiceContent.About.Version)
			loc = serviceLocator(dst.cfg, dst.url, c.ServiceContent.About.InstanceUuid, peer)
			var err error
			base, err = rt.resolveTargetBase(ctx, c)
			return err
		})
	})
	wg.Wait()
	if srcErr != nil {
		return nil, m.scrub(classify(srcErr, spec.Source, "", "", StepResolve))
	}
	if dstErr != nil {
		return nil, m.scrub(classify(dstErr, spec.Target, "", "", StepResolve))
	}
	r.join(rt)
	if err := m.checkEncryption(ctx, r, srcVMs); err != nil {
		return nil, m.scrub(classify(err, spec.Target, "", "", StepResolve))
	}
	if base != nil {
		err = m.withSession(ctx, spec.Target, func(c *vim25.Client, _ *x509.Certificate) error {
			return r.resolveTarget(ctx, m.planClient(spec.Target, c), base, srcVMs)
		})
		if err != nil {
			return nil, m.scrub(classify(err, spec.Target, "", "", StepResolve))
		}
	}
	if p.Source.InstanceUUID != "" && strings.EqualFold(p.Source.InstanceUUID, p.Target.InstanceUUID) {
		r.block("", fmt.Sprintf("%s and %s are the same vCenter (instance %s)", spec.Source, spec.Target, p.Source.InstanceUUID),
			"cross vCenter vMotion needs two different vCenters; check the vcenters configuration")
	}
	// vCenter's own check of the exact spec comes last: it needs the full
	// placement, and is pointless for a request already blocked. It is always asked
	// live, never of the mirror: it is the vCenter's judgement of the move now.
	err = m.withSession(ctx, spec.Source, func(c *vim25.Client, _ *x509.Certificate) error {
		r.checkRelocate(ctx, c, srcVMs, loc)
		return nil
	})
	if err != nil {
		return nil, m.scrub(classify(err, spec.Source, "", "", StepResolve))
	}
	p.Findings = summarize(p.Findings)
	for i := range p.Findings {
		// vCenter's messages may echo the spec, locator credentials included.
		p.Findings[i].Message = m.scrubString(p.Findings[i].Message)
		p.Findings[i].Hint = m.scrubString(p.Findings[i].Hint)
	}
	m.remember(p)
	m.log.Debug("plan resolved", "src_vc", spec.Source, "dst_vc", spec.Target, "vms", len(spec.VMs),
		"host", p.Host, "datastore", p.Datastore, "blocked", p.Blocked())
	return p, nil
}

// withDefaults fills what a spec may leave out: the home vCenter on either side, and
// the source's disk format.
func (m *Manager) withDefaults(s MoveSpec) MoveSpec {
	if s.Source == "" {
		s.Source = m.home
	}
	if s.Target == "" {
		s.Target = m.home
	}
	if s.DiskFormat == "" {
		s.DiskFormat = move.Same
	}
	return readableNames(s)
}

// resolver accumulates findings while resolving one plan.
type resolver struct {
	plan *Plan
	spec MoveSpec
	refs *vmRefs // VMs found by name, for later lookups of the same VMs
	// own, when set, collects this resolver's findings apart from the plan's, so that two
	// resolvers of one plan can work side by side (fork, join).
	own *[]Finding
	// unlike are the plan's other hosts that differ from the planned one in CPU model or
	// ESXi build: vCenter's compatibility check may judge them otherwise, so they are
	// checked too.
	unlike []string
}

func (r *resolver) add(sev Severity, vm, msg, hint string) {
	f := Finding{Severity: sev, VM: vm, Message: msg, Hint: hint}
	if r.own != nil {
		*r.own = append(*r.own, f)
		return
	}
	r.plan.Findings = append(r.plan.Findings, f)
}

// fork returns a resolver of the same plan whose findings are kept apart until join.
func (r *resolver) fork() *resolver {
	return &resolver{plan: r.plan, spec: r.spec, refs: r.refs, own: new([]Finding)}
}

// join adds a fork's findings after r's own.
func (r *resolver) join(f *resolver) {
	r.plan.Findings = append(r.plan.Findings, *f.own...)
	*f.own = nil
}

func (r *resolver) block(vm, msg, hint string) { r.add(Blocker, vm, msg, hint) }

// checkRequest checks what needs no vCenter.
func (r *resolver) checkRequest() {
	s := r.spec
	if len(s.VMs) == 0 {
		r.block("", "no VM named in the request", "name one or more VMs")
	}
	if s.Source == s.Target {
		r.block("", fmt.Sprintf("source and target are both %s", s.Source),
			"cross vCenter vMotion moves VMs between two vCenters; name the other one")
	}
	if !s.DiskFormat.Valid() { // withDefaults made "" Same
		r.block("", fmt.Sprintf("unknown disk format %q", s.DiskFormat), "use same, thin, thick or eager")
	}
	if s.Priority != "" && !s.Priority.Valid() {
		r.block("", fmt.Sprintf("unknown priority %q", s.Priority), "use default or high")
	}
	seen := map[string]bool{}
	for _, vm := range s.VMs {
		if seen[vm] && !isPattern(vm) {
			r.add(Warning, vm, fmt.Sprintf("%s is named twice in the request; it will be moved once", vm),
				"check that you did not mean another VM in its place; if not, there is nothing to do")
		}
		seen[vm] = true
	}
}
