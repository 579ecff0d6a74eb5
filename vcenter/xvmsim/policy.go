package xvmsim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/pbm"
	pbmmethods "github.com/vmware/govmomi/pbm/methods"
	pbmtypes "github.com/vmware/govmomi/pbm/types"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// VM storage policies of the default inventories. Both vCenters have policies of these
// names (their ids differ, as on two real vCenters): in vc-west GoldPolicy fits only
// ds-gold and SilverPolicy only ds-silver; in vc-east both fit every datastore.
const (
	GoldPolicy   = "gold-policy"
	SilverPolicy = "silver-policy"
)

// policySpec is a VM storage policy the lab creates: a tag-based placement rule, which
// fits the datastores listed (nil: every datastore).
type policySpec struct {
	name       string
	datastores []string
}

// labPolicies are the storage policies of the lab's vCenter vc.
func labPolicies(vc string) []policySpec {
	switch vc {
	case WestVC:
		return []policySpec{{GoldPolicy, []string{WestGold}}, {SilverPolicy, []string{WestSilver}}}
	case EastVC:
		return []policySpec{{GoldPolicy, nil}, {SilverPolicy, nil}}
	}
	return nil
}

// tagNamespace is the capability namespace of tag-based placement rules.
const tagNamespace = "http://www.vmware.com/storage/tag"

// policies is a vCenter's storage policy service (SPBM), served at /pbm beside the SDK
// as vCenter serves it. govmomi ships a simulator of it (pbm/simulator), but it needs a
// module this project does not have, and it keeps no state the lab needs: its
// CheckRequirements accepts every datastore for every policy, its QueryAssociatedProfile
// answers none whatever a reconfigure or relocation asked for. The lab's own keeps both.
type policies struct {
	mu       sync.Mutex
	profiles []*pbmtypes.PbmCapabilityProfile
	// fits are the datastore names each policy fits, by profile id (nil: all).
	fits map[string][]string
	// assoc is the profile id of each VM ("vm-42") and disk ("vm-42:2000"), keyed as
	// PbmServerObjectRef keys are.
	assoc map[string]string
}

// The managed objects of the storage policy service, as vCenter names them.
var (
	pbmProfileManager  = types.ManagedObjectReference{Type: "PbmProfileProfileManager", Value: "ProfileManager"}
	pbmPlacementSolver = types.ManagedObjectReference{Type: "PbmPlacementSolver", Value: "placementSolver"}
)

// servePBM serves the storage policy service at /pbm. It runs before the server starts.
func (v *VC) servePBM() {
	v.policies = &policies{fits: map[string][]string{}, assoc: map[string]string{}}
	r := simulator.NewRegistry()
	r.Namespace, r.Path, r.Cookie = pbm.Namespace, pbm.Path, simulator.SOAPCookie
	r.Put(&pbmService{Self: pbm.ServiceInstance, content: pbmtypes.PbmServiceInstanceContent{
		AboutInfo:      pbmtypes.PbmAboutInfo{Name: "PBM", Version: "2.0", InstanceUuid: v.InstanceUUID},
		ProfileManager: pbmProfileManager, PlacementSolver: pbmPlacementSolver,
		SessionManager:            types.ManagedObjectReference{Type: "PbmSessionManager", Value: "SessionManager"},
		CapabilityMetadataManager: types.ManagedObjectReference{Type: "PbmCapabilityMetadataManager", Value: "CapabilityMetadataManager"},
		ComplianceManager:         types.ManagedObjectReference{Type: "PbmComplianceManager", Value: "complianceManager"},
	}})
	r.Put(&pbmProfiles{Self: pbmProfileManager, s: v.policies})
	r.Put(&pbmSolver{Self: pbmPlacementSolver, s: v.policies})
	v.model.Service.RegisterSDK(r)
}

// createPolicies creates the lab's storage policies over the API, as an administrator
// would in the vSphere Client.
func (v *VC) createPolicies(ctx context.Context, c *vim25.Client) error {
	pc, err := pbm.NewClient(ctx, c)
	if err != nil {
		return err
	}
	for _, p := range labPolicies(v.Name) {
		tier := strings.TrimSuffix(p.name, "-policy")
		spec, err := pbm.CreateCapabilityProfileSpec(pbm.CapabilityProfileCreateSpec{
			Name: p.name, SubProfileName: "Tag based placement", Category: string(pbmtypes.PbmProfileCategoryEnumREQUIREMENT),
			Description: "datastores tagged " + tier,
			CapabilityList: []pbm.Capability{{ID: "xvmsim-tier", Namespace: tagNamespace, PropertyList: []pbm.Property{
				{ID: "com.vmware.storage.tag.xvmsim-tier.property", Value: tier, DataType: "set"}}}},
		})
		if err != nil {
			return err
		}
		id, err := pc.CreateProfile(ctx, *spec)
		if err != nil {
			return fmt.Errorf("create storage policy %s: %w", p.name, err)
		}
		v.policies.mu.Lock()
		v.policies.fits[id.UniqueId] = p.datastores
		v.policies.mu.Unlock()
	}
	return nil
}

// pbmService is the service instance of the storage policy service.
type pbmService struct {
	Self    types.ManagedObjectReference
	content pbmtypes.PbmServiceInstanceContent
}

func (p *pbmService) Reference() types.ManagedObjectReference { return p.Self }

// PbmRetrieveServiceContent is found by the simulator's reflection-based dispatch.
func (p *pbmService) PbmRetrieveServiceContent(_ *pbmtypes.PbmRetrieveServiceContent) soap.HasFault {
	return &pbmmethods.PbmRetrieveServiceContentBody{Res: &pbmtypes.PbmRetrieveServiceContentResponse{Returnval: p.content}}
}

// pbmProfiles is the profile manager: the policies, and which VM and disk has which.
type pbmProfiles struct {
	Self types.ManagedObjectReference
	s    *policies
}

func (p *pbmProfiles) Reference() types.ManagedObjectReference { return p.Self }

// PbmQueryProfile lists the ids of the policies of a resource type and category.
func (p *pbmProfiles) PbmQueryProfile(req *pbmtypes.PbmQueryProfile) soap.HasFault {
	body := &pbmmethods.PbmQueryProfileBody{Res: new(pbmtypes.PbmQueryProfileResponse)}
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	for _, pr := range p.s.profiles {
		if pr.ResourceType == req.ResourceType && (req.ProfileCategory == "" || req.ProfileCategory == pr.ProfileCategory) {
			body.Res.Returnval = append(body.Res.Returnval, pr.ProfileId)
		}
	}
	return body
}

// PbmRetrieveContent reads policies by id; an unknown id is an InvalidArgument.
func (p *pbmProfiles) PbmRetrieveContent(req *pbmtypes.PbmRetrieveContent) soap.HasFault {
	body := new(pbmmethods.PbmRetrieveContentBody)
	got, err := p.s.content(req.ProfileIds)
	if err != nil {
		body.Fault_ = err
		return body
	}
	body.Res = new(pbmtypes.PbmRetrieveContentResponse)
	for _, pr := range got {
		body.Res.Returnval = append(body.Res.Returnval, pr)
	}
	return body
}

// PbmCreate creates a policy.
func (p *pbmProfiles) PbmCreate(ctx *simulator.Context, req *pbmtypes.PbmCreate) soap.HasFault {
	body := new(pbmmethods.PbmCreateBody)
	now := time.Now()
	pr := &pbmtypes.PbmCapabilityProfile{
		PbmProfile: pbmtypes.PbmProfile{ProfileId: pbmtypes.PbmProfileId{UniqueId: uuid.NewString()},
			Name: req.CreateSpec.Name, Description: req.CreateSpec.Description,
			CreationTime: now, CreatedBy: ctx.Session.UserName, LastUpdatedTime: now, LastUpdatedBy: ctx.Session.UserName},
		ProfileCategory: req.CreateSpec.Category, ResourceType: req.CreateSpec.ResourceType, Constraints: req.CreateSpec.Constraints,
	}
	p.s.mu.Lock()
	p.s.profiles = append(p.s.profiles, pr)
	p.s.mu.Unlock()
	body.Res = &pbmtypes.PbmCreateResponse{Returnval: pr.ProfileId}
	return body
}

// PbmQueryAssociatedProfile answers the policy recorded for a VM or disk.
func (p *pbmProfiles) PbmQueryAssociatedProfile(req *pbmtypes.PbmQueryAssociatedProfile) soap.HasFault {
	body := &pbmmethods.PbmQueryAssociatedProfileBody{Res: new(pbmtypes.PbmQueryAssociatedProfileResponse)}
	if id := p.s.of(req.Entity.Key); id != "" {
		body.Res.Returnval = []pbmtypes.PbmProfileId{{UniqueId: id}}
	}
	return body
}

// PbmQueryAssociatedProfiles answers the policies recorded for several VMs and disks.
func (p *pbmProfiles) PbmQueryAssociatedProfiles(req *pbmtypes.PbmQueryAssociatedProfiles) soap.HasFault {
	body := &pbmmethods.PbmQueryAssociatedProfilesBody{Res: new(pbmtypes.PbmQueryAssociatedProfilesResponse)}
	for _, e := range req.Entities {
		r := pbmtypes.PbmQueryProfileResult{Object: e}
		if id := p.s.of(e.Key); id != "" {
			r.ProfileId = []pbmtypes.PbmProfileId{{UniqueId: id}}
		}
		body.Res.Returnval = append(body.Res.Returnval, r)
	}
	return body
}

// content reads policies by id.
func (s *policies) content(ids []pbmtypes.PbmProfileId) ([]*pbmtypes.PbmCapabilityProfile, *soap.Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ids) == 0 {
		return nil, simulator.Fault("", &types.InvalidRequest{})
	}
	var out []*pbmtypes.PbmCapabilityProfile
	for _, id := range ids {
		i := slices.IndexFunc(s.profiles, func(p *pbmtypes.PbmCapabilityProfile) bool { return p.ProfileId == id })
		if i < 0 {
			return nil, simulator.Fault("", &types.InvalidArgument{InvalidProperty: "profileId"})
		}
		out = append(out, s.profiles[i])
	}
	return out, nil
}

// pbmSolver is the placement solver: which datastores fit which policies.
type pbmSolver struct {
	Self types.ManagedObjectReference
	s    *policies
}

func (p *pbmSolver) Reference() types.ManagedObjectReference { return p.Self }

// PbmCheckRequirements reports, for each datastore asked about (every datastore when
// none is), whether it fits each policy required; a lab policy fits the datastores it
// lists, and for each it does not the hub's result carries an error.
func (p *pbmSolver) PbmCheckRequirements(ctx *simulator.Context, req *pbmtypes.PbmCheckRequirements) soap.HasFault {
	body := new(pbmmethods.PbmCheckRequirementsBody)
	vim := ctx.For(vim25.Path).Map
	hubs := req.HubsToSearch
	if len(hubs) == 0 {
		for _, ds := range vim.All("Datastore") {
			hubs = append(hubs, pbmtypes.PbmPlacementHub{HubType: "Datastore", HubId: ds.Reference().Value})
		}
	}
	var ids []pbmtypes.PbmProfileId
	for _, r := range req.PlacementSubjectRequirement {
		if pr, ok := r.(*pbmtypes.PbmPlacementCapabilityProfileRequirement); ok {
			ids = append(ids, pr.ProfileId)
		}
	}
	var profiles []*pbmtypes.PbmCapabilityProfile
	if len(ids) > 0 {
		var fault *soap.Fault
		if profiles, fault = p.s.content(ids); fault != nil {
			body.Fault_ = fault
			return body
		}
	}
	res := new(pbmtypes.PbmCheckRequirementsResponse)
	for _, hub := range hubs {
		out := pbmtypes.PbmPlacementCompatibilityResult{Hub: hub}
		ds, ok := vim.Get(types.ManagedObjectReference{Type: "Datastore", Value: hub.HubId}).(*simulator.Datastore)
		if !ok {
			body.Fault_ = simulator.Fault("", &types.InvalidArgument{InvalidProperty: "hubsToSearch"})
			return body
		}
		for _, prof := range profiles {
			if why := p.s.misfit(prof, ds.Name); why != "" {
				out.Error = append(out.Error, types.LocalizedMethodFault{Fault: &pbmtypes.PbmFault{}, LocalizedMessage: why})
			}
		}
		res.Returnval = append(res.Returnval, out)
	}
	body.Res = res
	return body
}

// misfit says why the datastore named ds does not fit prof, "" if it does.
func (s *policies) misfit(prof *pbmtypes.PbmCapabilityProfile, ds string) string {
	s.mu.Lock()
	fits := s.fits[prof.ProfileId.UniqueId]
	s.mu.Unlock()
	if fits == nil || slices.Contains(fits, ds) {
		return ""
	}
	return fmt.Sprintf("Datastore %s does not satisfy the storage policy %s: it has no tag the policy's tag-based placement rule requires", ds, prof.Name)
}

func (s *policies) of(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assoc[key]
}

// set records profile spec ps (nil: leave as it is) for key.
func (s *policies) set(key string, ps []types.BaseVirtualMachineProfileSpec) {
	if len(ps) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch p := ps[0].(type) {
	case *types.VirtualMachineDefinedProfileSpec:
		s.assoc[key] = p.ProfileId
	case *types.VirtualMachineEmptyProfileSpec:
		delete(s.assoc, key)
	}
}

// forget drops what is recorded for vm and its disks (it has left this vCenter).
func (s *policies) forget(vm types.ManagedObjectReference) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.assoc {
		if k == vm.Value || strings.HasPrefix(k, vm.Value+":") {
			delete(s.assoc, k)
		}
	}
}

// reconfigured records the policies a ReconfigVM_Task asks for: the VM's own in
// spec.vmProfile, a disk's in its device change's profile.
func (s *policies) reconfigured(vm types.ManagedObjectReference, spec types.VirtualMachineConfigSpec) {
	s.set(vm.Value, spec.VmProfile)
	for _, dc := range spec.DeviceChange {
		c := dc.GetVirtualDeviceConfigSpec()
		if d, ok := c.Device.(*types.VirtualDisk); ok && c.Operation == types.VirtualDeviceConfigSpecOperationEdit {
			s.set(fmt.Sprintf("%s:%d", vm.Value, d.Key), c.Profile)
		}
	}
}

// relocated records, in the target, the policies a cross-vCenter relocation asked for:
// spec.profile for the VM's own files, each disk locator's profile for its disk. srcDisks
// and newDisks are the disk keys of the VM in the source and in the target, in device
// order. Where the spec names no policy the VM takes the datastore's default: none here.
func (s *policies) relocated(vm types.ManagedObjectReference, spec types.VirtualMachineRelocateSpec, srcDisks, newDisks []int32) {
	s.set(vm.Value, spec.Profile)
	for i, key := range srcDisks {
		if i >= len(newDisks) {
			break
		}
		for _, loc := range spec.Disk {
			if loc.DiskId == key {
				s.set(fmt.Sprintf("%s:%d", vm.Value, newDisks[i]), loc.Profile)
			}
		}
	}
}

// diskKeys are the keys of a VM's disks, in device order.
func diskKeys(devices []types.BaseVirtualDevice) []int32 {
	var out []int32
	for _, d := range devices {
		if disk, ok := d.(*types.VirtualDisk); ok {
			out = append(out, disk.Key)
		}
	}
	return out
}

// SetPolicy gives the VM named vm, and each of its disks, the storage policy named policy,
// with a reconfigure over the API, as the vSphere Client's "Edit VM Storage Policies" does.
func (v *VC) SetPolicy(ctx context.Context, vm, policy string) error {
	c, err := v.Client(ctx)
	if err != nil {
		return err
	}
	defer logout(c)
	pc, err := pbm.NewClient(ctx, c.Client)
	if err != nil {
		return err
	}
	id, err := pc.ProfileIDByName(ctx, policy)
	if err != nil {
		return err
	}
	obj, err := findVMObject(ctx, c, vm)
	if err != nil {
		return err
	}
	var mvm mo.VirtualMachine
	if err := obj.Properties(ctx, obj.Reference(), []string{"config.hardware.device"}, &mvm); err != nil {
		return err
	}
	profile := []types.BaseVirtualMachineProfileSpec{&types.VirtualMachineDefinedProfileSpec{ProfileId: id}}
	spec := types.VirtualMachineConfigSpec{VmProfile: profile}
	for _, d := range mvm.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
				Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: disk, Profile: profile})
		}
	}
	task, err := obj.Reconfigure(ctx, spec)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// Policies reads, through the storage policy service, the policy of the VM named vm
// (its own files) and of each of its disks in device order, by name ("" for none).
func (v *VC) Policies(ctx context.Context, vm string) (home string, disks []string, err error) {
	c, err := v.Client(ctx)
	if err != nil {
		return "", nil, err
	}
	defer logout(c)
	pc, err := pbm.NewClient(ctx, c.Client)
	if err != nil {
		return "", nil, err
	}
	obj, err := findVMObject(ctx, c, vm)
	if err != nil {
		return "", nil, err
	}
	var mvm mo.VirtualMachine
	if err := obj.Properties(ctx, obj.Reference(), []string{"config.hardware.device"}, &mvm); err != nil {
		return "", nil, err
	}
	name := func(objectType, key string) (string, error) {
		ids, err := pc.QueryAssociatedProfile(ctx, pbmtypes.PbmServerObjectRef{ObjectType: objectType, Key: key})
		if err != nil || len(ids) == 0 {
			return "", err
		}
		return pc.GetProfileNameByID(ctx, ids[0].UniqueId)
	}
	if home, err = name(string(pbmtypes.PbmObjectTypeVirtualMachine), obj.Reference().Value); err != nil {
		return "", nil, err
	}
	for _, key := range diskKeys(mvm.Config.Hardware.Device) {
		n, err := name(string(pbmtypes.PbmObjectTypeVirtualDiskId), fmt.Sprintf("%s:%d", obj.Reference().Value, key))
		if err != nil {
			return "", nil, err
		}
		disks = append(disks, n)
	}
	return home, disks, nil
}

// findVMObject finds the one VM named name.
func findVMObject(ctx context.Context, c *govmomi.Client, name string) (*object.VirtualMachine, error) {
	p, err := findVM(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: p.Ref}), nil
}
