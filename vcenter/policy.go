package vcenter

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/pbm"
	pbmtypes "github.com/vmware/govmomi/pbm/types"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/move"
)

// VM storage policies (SPBM) are the wizard's "VM Storage Policy" on its storage page.
// A policy is a profile of one vCenter's storage policy service: two vCenters never share
// its id, so a move names the target's policy by name and sends its id, in
// RelocateSpec.profile for the VM's own files and in each disk locator's profile for the
// disk. Without one vCenter gives the moved VM the target datastore's default policy.
//
// What xvmbot asks for (docs/vsphere-behaviours.md):
//   - policy=<name> and disk<N>=…:…:<name> name a policy of the target; one it does not
//     have is a blocker that lists those it has; a datastore the policy does not fit
//     (the storage policy service's CheckRequirements says why) is a blocker naming both.
//   - Without them the wizard's default, "Keep existing VM storage policies", is followed
//     by name: a VM (or disk) whose policy the target has under the same name keeps it,
//     if it fits the datastore; otherwise a warning says it takes the datastore's
//     default policy.
//   - "Datastore Default" (move.DatastoreDefault), the wizard's other choice, sends no
//     policy and keeps none; Where reports a VM or disk without a policy so, for undo.

// policyNames are the storage policies of a VM in its vCenter, by name ("" for none):
// its own files' and each disk's, by disk key.
type policyNames struct {
	home  string
	disks map[int32]string
}

// profiles are the target's policy ids a VM is moved with ("" for none: the datastore's
// default): its own files' and each disk's, by disk key.
type profiles struct {
	home  string
	disks map[int32]string
}

// withProfiles puts a VM's policies in its RelocateSpec: spec.profile for the VM's own
// files, each disk locator's profile for its disk.
func withProfiles(spec *types.VirtualMachineRelocateSpec, p *profiles) {
	if p == nil {
		return
	}
	spec.Profile = profileSpec(p.home)
	for i := range spec.Disk {
		spec.Disk[i].Profile = profileSpec(p.disks[spec.Disk[i].DiskId])
	}
}

func profileSpec(id string) []types.BaseVirtualMachineProfileSpec {
	if id == "" {
		return nil
	}
	return []types.BaseVirtualMachineProfileSpec{&types.VirtualMachineDefinedProfileSpec{ProfileId: id}}
}

// policyService is a vCenter's storage policy service, with its policies read once.
type policyService struct {
	c      *pbm.Client
	byName map[string]string // profile id by policy name
	byID   map[string]string // policy name by profile id
	about  map[string]string // description by policy name
}

// openPolicies reads the VM storage policies (requirement profiles) of the vCenter c
// is logged in to.
func openPolicies(ctx context.Context, c *vim25.Client) (*policyService, error) {
	pc, err := pbmClient(ctx, c)
	if err != nil {
		return nil, err
	}
	ids, err := pc.QueryProfile(ctx, pbmtypes.PbmProfileResourceType{ResourceType: string(pbmtypes.PbmProfileResourceTypeEnumSTORAGE)},
		string(pbmtypes.PbmProfileCategoryEnumREQUIREMENT))
	if err != nil {
		return nil, err
	}
	s := &policyService{c: pc, byName: map[string]string{}, byID: map[string]string{}, about: map[string]string{}}
	if len(ids) == 0 {
		return s, nil
	}
	content, err := pc.RetrieveContent(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, p := range content {
		pp := p.GetPbmProfile()
		s.byName[pp.Name], s.byID[pp.ProfileId.UniqueId] = pp.ProfileId.UniqueId, pp.Name
		s.about[pp.Name] = pp.Description
	}
	return s, nil
}

// policyOptions lists the VM storage policies of the vCenter c is logged in to, sorted by
// name, for the wizard's policy select.
func policyOptions(ctx context.Context, c *vim25.Client) ([]Option, error) {
	s, err := openPolicies(ctx, c)
	if err != nil {
		return nil, err
	}
	out := []Option{{Label: move.DatastoreDefault, Value: move.DatastoreDefault, Description: "no policy: the datastore's default applies"}}
	for _, name := range slices.Sorted(maps.Keys(s.byName)) {
		out = append(out, Option{Label: name, Value: name, Description: s.about[name]})
	}
	return out, nil
}

// names lists the policies, for messages.
func (s *policyService) names() string {
	if len(s.byName) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(s.byName)), ", ")
}

// misfits says, for each datastore in stores that the policy id does not fit, why: the
// storage policy service's own words.
func (s *policyService) misfits(ctx context.Context, id string, stores []types.ManagedObjectReference) (map[types.ManagedObjectReference]string, error) {
	var hubs []pbmtypes.PbmPlacementHub
	for _, ds := range stores {
		hubs = append(hubs, pbmtypes.PbmPlacementHub{HubType: ds.Type, HubId: ds.Value})
	}
	res, err := s.c.CheckRequirements(ctx, hubs, nil, []pbmtypes.BasePbmPlacementRequirement{
		&pbmtypes.PbmPlacementCapabilityProfileRequirement{ProfileId: pbmtypes.PbmProfileId{UniqueId: id}}})
	if err != nil {
		return nil, err
	}
	out := map[types.ManagedObjectReference]string{}
	for _, r := range res {
		if len(r.Error) == 0 {
			continue
		}
		var why []string
		for _, e := range r.Error {
			why = append(why, e.LocalizedMessage)
		}
		out[types.ManagedObjectReference{Type: r.Hub.HubType, Value: r.Hub.HubId}] = strings.Join(why, "; ")
	}
	return out, nil
}

// associatedPolicies reads the policy names of VMs and their disks (disk keys by VM) in
// the vCenter c is logged in to, in three round trips to its storage policy service: the
// associations, then the names of the policies found.
func associatedPolicies(ctx context.Context, c *vim25.Client, vms map[types.ManagedObjectReference][]int32) (map[types.ManagedObjectReference]policyNames, error) {
	var entities []pbmtypes.PbmServerObjectRef
	for _, vm := range slices.SortedFunc(maps.Keys(vms), func(a, b types.ManagedObjectReference) int { return strings.Compare(a.Value, b.Value) }) {
		entities = append(entities, pbmtypes.PbmServerObjectRef{ObjectType: string(pbmtypes.PbmObjectTypeVirtualMachine), Key: vm.Value})
		for _, key := range vms[vm] {
			entities = append(entities, pbmtypes.PbmServerObjectRef{ObjectType: string(pbmtypes.PbmObjectTypeVirtualDiskId), Key: diskEntity(vm, key)})
		}
	}
	out := map[types.ManagedObjectReference]policyNames{}
	if len(entities) == 0 {
		return out, nil
	}
	pc, err := pbmClient(ctx, c)
	if err != nil {
		return nil, err
	}
	res, err := pc.QueryAssociatedProfiles(ctx, entities)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{} // entity key → profile id
	var want []pbmtypes.PbmProfileId
	for _, r := range res {
		if len(r.ProfileId) > 0 {
			ids[r.Object.Key] = r.ProfileId[0].UniqueId
			if !slices.Contains(want, r.ProfileId[0]) {
				want = append(want, r.ProfileId[0])
			}
		}
	}
	names := map[string]string{} // profile id → name
	if len(want) > 0 {
		content, err := pc.RetrieveContent(ctx, want)
		if err != nil {
			return nil, err
		}
		for _, p := range content {
			names[p.GetPbmProfile().ProfileId.UniqueId] = p.GetPbmProfile().Name
		}
	}
	for vm, keys := range vms {
		n := policyNames{home: names[ids[vm.Value]], disks: map[int32]string{}}
		for _, key := range keys {
			if name := names[ids[diskEntity(vm, key)]]; name != "" {
				n.disks[key] = name
			}
		}
		out[vm] = n
	}
	return out, nil
}

// noPolicyService reports whether err says the vCenter serves no storage policy service
// at all (HTTP 404 on its /pbm endpoint): there are then no policies to keep. Every
// vCenter serves one; govmomi's stock simulator does not.
func noPolicyService(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), strconv.Itoa(http.StatusNotFound)+" ")
}

// diskEntity is a disk as the storage policy service names it: "vm-42:2000".
func diskEntity(vm types.ManagedObjectReference, key int32) string {
	return fmt.Sprintf("%s:%d", vm.Value, key)
}

// readSourcePolicies reads the storage policy of each VM and disk in the source, which a
// move keeps by name when it names none. Reading them is not worth a failed plan: when
// it fails a warning says the VMs take the datastore's default policy.
func (r *resolver) readSourcePolicies(ctx context.Context, c *vim25.Client, srcVMs map[string]*sourceVM) {
	if len(srcVMs) == 0 || r.spec.Policy != "" { // policy= covers every file and disk
		return
	}
	vms := map[types.ManagedObjectReference][]int32{}
	for _, svm := range srcVMs {
		var keys []int32
		for _, d := range svm.plan.disks {
			keys = append(keys, d.Key)
		}
		vms[svm.plan.ref] = keys
	}
	got, err := associatedPolicies(ctx, c, vms)
	if noPolicyService(err) {
		return
	}
	if err != nil {
		r.add(Warning, "", fmt.Sprintf("the storage policies of the VMs in %s cannot be read (%v): they take the target datastore's default policy",
			r.spec.Source, err), "name the target's policy with policy=<name> to choose one")
		return
	}
	for _, svm := range srcVMs {
		svm.policies = got[svm.plan.ref]
	}
}

// resolvePolicies chooses the target policy of each VM and disk (see the package's rules
// above), checks that it fits the datastore it goes to, and returns what each VM is
// moved with, by VM name. pl is the plan's placement in the target.
func (r *resolver) resolvePolicies(ctx context.Context, c *vim25.Client, pl *placement, srcVMs map[string]*sourceVM) (map[string]*profiles, error) {
	asked := len(r.askedPolicies()) > 0
	kept := false
	for _, svm := range srcVMs {
		kept = kept || svm.policies.home != "" || len(svm.policies.disks) > 0
	}
	if !asked && !kept {
		return nil, nil
	}
	s, err := openPolicies(ctx, c)
	if err != nil {
		if !asked && noPolicyService(err) {
			return nil, nil
		}
		if !asked {
			r.add(Warning, "", fmt.Sprintf("the storage policies of %s cannot be read (%v): the VMs take the target datastore's default policy",
				r.spec.Target, err), "")
			return nil, nil
		}
		return nil, err
	}
	// The policies named in the request must exist, whatever the VMs.
	known := true
	for _, name := range r.askedPolicies() {
		if _, ok := s.byName[name]; !ok {
			known = false
			r.block("", fmt.Sprintf("storage policy %s not found in %s (its VM storage policies: %s)", name, r.spec.Target, s.names()),
				"check the policy name, or leave policy= out to keep each VM's own policy where the target has one of that name")
		}
	}
	if !known {
		return nil, nil
	}

	// choice is one policy a VM's file or disk goes under, and where it goes.
	type choice struct {
		vm, what, name string // what: "" for the VM's own files, else "Hard disk N"
		ds             types.ManagedObjectReference
		explicit       bool
		set            func(id string)
	}
	var choices []choice
	out := map[string]*profiles{}
	for _, v := range r.plan.VMs {
		svm := srcVMs[v.Name]
		if svm == nil || svm.blocked {
			continue
		}
		p := &profiles{disks: map[int32]string{}}
		out[v.Name] = p
		home := choice{vm: v.Name, ds: pl.Datastore, name: r.spec.Policy, explicit: r.spec.Policy != "", set: func(id string) { p.home = id }}
		if !home.explicit {
			home.name = svm.policies.home
		}
		choices = append(choices, home)
		for i, d := range svm.plan.disks {
			ds, _ := pl.disk(d, i, "")
			n := diskNumber(d, i)
			key := d.Key
			ch := choice{vm: v.Name, what: fmt.Sprintf("Hard disk %d", n), ds: ds, name: r.spec.Policy, explicit: r.spec.Policy != "",
				set: func(id string) { p.disks[key] = id }}
			if i := slices.IndexFunc(r.spec.Disks, func(sd move.Disk) bool { return sd.Disk == n && sd.Policy != "" }); i >= 0 {
				ch.name, ch.explicit = r.spec.Disks[i].Policy, true
			} else if !ch.explicit {
				ch.name = svm.policies.disks[key]
			}
			choices = append(choices, ch)
		}
	}
	for i := range choices {
		if move.IsDatastoreDefault(choices[i].name) {
			choices[i].name = "" // asked for no policy: nothing is sent, nothing kept
		}
	}

	// One compatibility check per policy, over every datastore it is asked to fit.
	stores := map[string][]types.ManagedObjectReference{}
	for _, ch := range choices {
		if id, ok := s.byName[ch.name]; ok && !slices.Contains(stores[id], ch.ds) {
			stores[id] = append(stores[id], ch.ds)
		}
	}
	misfit := map[string]map[types.ManagedObjectReference]string{}
	for _, id := range slices.Sorted(maps.Keys(stores)) {
		if misfit[id], err = s.misfits(ctx, id, stores[id]); err != nil {
			return nil, err
		}
	}
	dsNames := r.datastoreNames(pl)
	// A policy that does not fit is said once per VM, policy and datastore, naming every
	// file and disk of the VM it concerns.
	type misfitKey struct {
		vm, name string
		ds       types.ManagedObjectReference
		explicit bool
	}
	var order []misfitKey
	what := map[misfitKey][]string{}
	warned := map[string]bool{}
	for _, ch := range choices {
		if ch.name == "" {
			continue
		}
		id, ok := s.byName[ch.name]
		switch {
		case !ok: // kept by name, but the target has no policy of that name
			if w := ch.vm + "/" + ch.name; !warned[w] {
				warned[w] = true
				r.add(Warning, ch.vm, fmt.Sprintf("%s has storage policy %s, which %s does not have: it takes the target datastore's default policy",
					ch.vm, ch.name, r.spec.Target), fmt.Sprintf("name one of %s's policies with policy=<name> (%s)", r.spec.Target, s.names()))
			}
		case misfit[id][ch.ds] != "":
			k := misfitKey{ch.vm, ch.name, ch.ds, ch.explicit}
			if _, seen := what[k]; !seen {
				order = append(order, k)
			}
			what[k] = append(what[k], cmp.Or(ch.what, "files"))
		default:
			ch.set(id)
		}
	}
	for _, k := range order {
		of, why := k.vm+"'s "+strings.Join(what[k], ", "), misfit[s.byName[k.name]][k.ds]
		if k.explicit {
			r.block(k.vm, fmt.Sprintf("storage policy %s does not fit datastore %s, where %s would go: %s", k.name, dsNames[k.ds], of, why),
				fmt.Sprintf("choose a datastore the policy fits, or another policy of %s", r.spec.Target))
			continue
		}
		r.add(Warning, k.vm, fmt.Sprintf("%s keep storage policy %s by name, but %s's %s does not fit datastore %s (%s): they take the datastore's default policy",
			of, k.name, r.spec.Target, k.name, dsNames[k.ds], why),
			fmt.Sprintf("name a policy of %s that fits with policy=<name> (%s)", r.spec.Target, s.names()))
	}
	for i, v := range r.plan.VMs {
		if p, ok := out[v.Name]; ok {
			r.plan.VMs[i].Policy = s.byID[p.home]
		}
	}
	return out, nil
}

// askedPolicies are the policy names the request gives, each once, but
// move.DatastoreDefault, which names none.
func (r *resolver) askedPolicies() []string {
	var out []string
	for _, name := range append([]string{r.spec.Policy}, diskPolicies(r.spec.Disks)...) {
		if name != "" && !move.IsDatastoreDefault(name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func diskPolicies(ds []move.Disk) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Policy
	}
	return out
}

// datastoreNames names the datastores of a placement, for messages.
func (r *resolver) datastoreNames(pl *placement) map[types.ManagedObjectReference]string {
	out := map[types.ManagedObjectReference]string{pl.Datastore: r.plan.Datastore}
	for _, t := range pl.Disks {
		if t.ds.Value != "" {
			out[t.ds] = t.name
		}
	}
	return out
}

// setPolicies adds the storage policies the policy service associates with the VM (got)
// to w, by name, with move.DatastoreDefault for none. Where that service could not be
// read, it is not called: the policies stay "" (unknown: an undo keeps by name what the
// VM has then).
func (w *Where) setPolicies(got policyNames) {
	// Read, "no policy" is a fact worth keeping: the way back asks for it by name.
	w.Policy = cmp.Or(got.home, move.DatastoreDefault)
	for i := range w.Disks {
		if i < len(w.diskKeys) {
			w.Disks[i].Policy = cmp.Or(got.disks[w.diskKeys[i]], move.DatastoreDefault)
		}
	}
}

// pbmContents keeps the service content of each vCenter's policy service, which
// pbm.NewClient reads with a call of its own and which does not change while the vCenter
// runs, by the vCenter's address and instance UUID: a move reads its VM's policies
// without that call.
var pbmContents sync.Map // string → pbmtypes.PbmServiceInstanceContent

// pbmClient is a client of the policy service of the vCenter c is logged in to, made as
// pbm.NewClient makes it (a service client on c's connection, with c's session cookie),
// from the content read at its first use.
func pbmClient(ctx context.Context, c *vim25.Client) (*pbm.Client, error) {
	key := c.URL().Host + "/" + c.ServiceContent.About.InstanceUuid
	if v, ok := pbmContents.Load(key); ok {
		sc := c.Client.NewServiceClient(pbm.Path, pbm.Namespace)
		sc.Cookie = c.SessionCookie
		return &pbm.Client{Client: sc, ServiceContent: v.(pbmtypes.PbmServiceInstanceContent), RoundTripper: sc}, nil
	}
	pc, err := pbm.NewClient(ctx, c)
	if err != nil {
		return nil, err
	}
	pbmContents.Store(key, pc.ServiceContent)
	return pc, nil
}
