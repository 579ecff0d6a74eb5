package bot

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// The wizard modal: /xvm migrate or /xvm import with no arguments. It follows the vSphere
// Client's cross vCenter wizard page by page — direction and the two vCenters, VMs,
// compute resource, storage and disk format, folder, networks — and its submission goes
// through the same pre-flight as a typed command, shown as a review page in the modal
// (wizard_review.go) from which the request is posted as a typed command posts it.
const (
	callbackWizard = "xvm_wizard"

	wizSource    = "src_vc"
	wizTarget    = "dst_vc"
	wizVMs       = "vms"
	wizCompute   = "compute"
	wizPool      = "pool"
	wizDatastore = "datastore"
	wizDisk      = "disk"
	wizPolicy    = "policy"
	wizPriority  = "priority"
	wizFolder    = "folder"
	wizNetAll    = "net_all" // one portgroup for every NIC, until the VMs are known
	wizNetPrefix = "net_"    // net_0, net_1…: one per source network of the chosen VMs

	// Typing this many characters fills a select: VMs can be thousands, the rest are few.
	minQueryVMs   = 1
	minQueryOther = 0

	maxWizardNetworks = 20
	maxOptionValue    = 150  // Slack's limit on an option's value
	maxOpenViews      = 1024 // views counted before those never submitted are forgotten
	wizardPlanTimeout = 20 * time.Second
	wizardOpenTimeout = 1500 * time.Millisecond
)

// wizardViews counts the changes of each open wizard view, so that only the newest is
// rendered: each change carries the whole state of the view, and an older one finishing
// late must not undo a newer one.
type wizardViews struct {
	mu  sync.Mutex
	seq map[string]uint64 // view id → changes seen
}

func newWizardViews() *wizardViews { return &wizardViews{seq: map[string]uint64{}} }

// changed counts a change of view id and returns its number.
func (w *wizardViews) changed(id string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seq) > maxOpenViews { // views closed without a submission
		clear(w.seq)
	}
	w.seq[id]++
	return w.seq[id]
}

// latest reports whether change seq is the newest of view id.
func (w *wizardViews) latest(id string, seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq[id] == seq
}

// closed forgets view id: it was submitted.
func (w *wizardViews) closed(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.seq, id)
}

// wizardState is everything the wizard view shows; it is rebuilt from the view's state on
// every change, so the modal itself is the only place it lives.
type wizardState struct {
	Direction approvals.Direction `json:"direction,omitempty"`
	Check     bool                `json:"check,omitempty"`
	Channel   string              `json:"channel,omitempty"`
	Home      string              `json:"-"`
	VCenters  []vcenter.Endpoint  `json:"-"` // configured vCenters, with what is known of each
	Source    string              `json:"src,omitempty"`
	Target    string              `json:"dst,omitempty"`
	VMs       []string            `json:"vms,omitempty"`
	Compute   string              `json:"compute,omitempty"` // "cluster:<name>" or "host:<name>"
	Pool      string              `json:"pool,omitempty"`
	Datastore string              `json:"ds,omitempty"`
	Disk      string              `json:"disk,omitempty"`
	Policy    string              `json:"policy,omitempty"` // VM storage policy of the target; "" keeps each VM's own by name
	Priority  string              `json:"prio,omitempty"`   // vMotion priority: default or high, as priority= typed
	Folder    string              `json:"folder,omitempty"`
	NetAll    string              `json:"net_all,omitempty"`
	Networks  []string            `json:"nets,omitempty"`      // source networks of the chosen VMs, one row each
	NetsLeft  int                 `json:"nets_left,omitempty"` // source networks beyond maxWizardNetworks, without a row
	NetTarget map[string]string   `json:"net_to,omitempty"`    // source network → chosen target portgroup
}

func (ws wizardState) metadata() string {
	return modalContext{Channel: ws.Channel, Direction: string(ws.Direction), Check: ws.Check, Networks: ws.Networks}.encode()
}

// RenderWizard renders the wizard modal for a state. It is pure: golden files pin it.
func RenderWizard(ws wizardState) slack.ModalViewRequest {
	title := "Migrate VMs"
	intro := "*Cross vCenter Server export* — move VMs from one vCenter to another, as the vSphere Client's Migrate wizard does."
	if ws.Direction == approvals.Import {
		title = "Import VMs"
		intro = "*Import VMs* — pull VMs from a remote vCenter into this one, as the vSphere Client's Import VMs wizard does."
	}
	if ws.Check {
		title = "Pre-flight check"
	}
	var vcOpts []*slack.OptionBlockObject
	for _, ep := range ws.VCenters {
		vcOpts = append(vcOpts, vcenterOption(ep))
	}
	vcSelect := func(id, placeholder, chosen string) *slack.InputBlock {
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain(placeholder), id, vcOpts...)
		for _, o := range vcOpts {
			if o.Value == chosen {
				sel.InitialOption = o
			}
		}
		return slack.NewInputBlock(id, plain(map[string]string{wizSource: "1 · Source vCenter", wizTarget: "1 · Target vCenter"}[id]), nil, sel).
			WithDispatchAction(true)
	}
	external := func(id, label, placeholder string, minQuery int, chosen string, optional bool, hint string) *slack.InputBlock {
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, plain(placeholder), id)
		sel.MinQueryLength = &minQuery
		if chosen != "" {
			sel.InitialOption = valueOption(chosen)
		}
		in := slack.NewInputBlock(id, plain(label), nil, sel)
		in.Optional = optional
		if hint != "" {
			in.Hint = plain(hint)
		}
		return in
	}

	vms := slack.NewOptionsMultiSelectBlockElement(slack.MultiOptTypeExternal, plain("Type to search VMs"), wizVMs)
	vms.WithMinQueryLength(minQueryVMs)
	for _, v := range ws.VMs {
		vms.InitialOptions = append(vms.InitialOptions, valueOption(v))
	}
	vmsHint := "Searched in the source vCenter."
	disk := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Disk format"), wizDisk)
	for _, f := range diskFormats {
		o := slack.NewOptionBlockObject(f, plain(DiskFormatName(move.DiskFormat(f))), nil)
		disk.Options = append(disk.Options, o)
		if f == cmp.Or(ws.Disk, "same") {
			disk.InitialOption = o
		}
	}

	prio := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("vMotion priority"), wizPriority)
	for _, p := range move.Priorities {
		o := slack.NewOptionBlockObject(string(p), plain(priorityLabels[p]), nil)
		prio.Options = append(prio.Options, o)
		if p == cmp.Or(move.Priority(ws.Priority), move.PriorityDefault) {
			prio.InitialOption = o
		}
	}

	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(intro), nil, nil),
		vcSelect(wizSource, "Move from", ws.Source),
		vcSelect(wizTarget, "Move to", ws.Target),
		slack.NewInputBlock(wizVMs, plain("2 · Virtual machines"), plain(vmsHint), vms).WithDispatchAction(true),
		external(wizCompute, "3 · Compute resource", "Cluster or host in the target", minQueryOther, ws.Compute, false, "Datastores and networks below are those this cluster or host can use."),
		external(wizPool, "Resource pool", "Default: the cluster's root pool", minQueryOther, ws.Pool, true, ""),
		external(wizDatastore, "4 · Datastore", "Datastore visible from the compute resource", minQueryOther, ws.Datastore, false, ""),
		slack.NewInputBlock(wizDisk, plain("Disk format"), nil, disk),
		external(wizPolicy, "VM storage policy", "Default: keep existing VM storage policies", minQueryOther, ws.Policy, true,
			"A policy of the target vCenter, for the VMs' files and disks; pre-flight checks that the datastore fits it. By default each VM keeps its own where the target has one of that name."),
		slack.NewInputBlock(wizPriority, plain("vMotion priority"), plain("As priority= typed: high asks vCenter to reserve resources for the move first."), prio),
		external(wizFolder, "5 · VM folder", "Default: the datacenter's VM folder", minQueryOther, ws.Folder, true, ""),
	}
	if len(ws.Networks) == 0 {
		blocks = append(blocks, external(wizNetAll, "6 · Network (every NIC)", "Portgroup in the target", minQueryOther, ws.NetAll, true,
			"Choose the VMs to map each source network separately."))
	} else {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*6 · Networks* — a target portgroup for each source network"), nil, nil))
		if ws.NetsLeft > 0 {
			blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf(
				":warning: The chosen VMs use %d more networks than the %d shown here: choose fewer VMs, or type the command with `network=&lt;source&gt;:&lt;target&gt;` for each.",
				ws.NetsLeft, maxWizardNetworks))))
		}
		for i, src := range ws.Networks {
			blocks = append(blocks, external(fmt.Sprintf("%s%d", wizNetPrefix, i), clipRunes("From "+src, 150), "Target portgroup", minQueryOther,
				ws.NetTarget[src], false, ""))
		}
	}
	review := "7 · *Review*: submitting runs the pre-flight checks and shows their review here; nothing is asked for before *Request approval* on that page."
	submit := "Review"
	if ws.Check {
		review = "7 · *Check*: runs the pre-flight checks and shows their review here; a check asks for nothing."
		submit = "Check"
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(review)))
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackWizard,
		Title:           plain(title),
		Submit:          plain(submit),
		Close:           plain("Cancel"),
		PrivateMetadata: ws.metadata(),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

// priorityLabels name the vMotion priorities as the vSphere Client's wizard does.
var priorityLabels = map[move.Priority]string{
	move.PriorityDefault: "Default: regular vMotion",
	move.PriorityHigh:    "High: schedule vMotion with high priority",
}

// vcenterOption shows a vCenter with its version and certificate thumbprint, as the
// wizard's "accept this certificate" step does.
func vcenterOption(ep vcenter.Endpoint) *slack.OptionBlockObject {
	var desc []string
	if ep.Home {
		desc = append(desc, "home")
	}
	if ep.Thumbprint != "" {
		desc = append(desc, shortThumbprint(ep.Thumbprint))
	}
	if ep.Version != "" {
		desc = append(desc, "vCenter "+strings.SplitN(ep.Version, " ", 2)[0])
	}
	var d *slack.TextBlockObject
	if len(desc) > 0 {
		d = plain(clipRunes(strings.Join(desc, " · "), maxChoiceLabel))
	}
	return slack.NewOptionBlockObject(ep.Name, plain(ep.Name), d)
}

// valueOption is an option whose label is its value (or "cluster:x" shown as "x (cluster)").
func valueOption(v string) *slack.OptionBlockObject {
	label := v
	if kind, name, ok := strings.Cut(v, ":"); ok && (kind == "cluster" || kind == "host") {
		label = name + " (" + kind + ")"
	}
	return slack.NewOptionBlockObject(v, plain(clipRunes(label, maxChoiceLabel)), nil)
}

// openWizard opens the modal for a migrate, import or check typed without arguments.
func (b *Bot) openWizard(ctx context.Context, cmd Command, who invocation) string {
	ictx, cancel := context.WithTimeout(ctx, wizardOpenTimeout)
	infos := b.vcInfos.get(ictx, false)
	cancel()
	ws := wizardState{Direction: cmd.Direction, Check: cmd.Check, Channel: who.Channel, Home: b.planner.Home()}
	for _, in := range infos {
		ws.VCenters = append(ws.VCenters, in.ep)
	}
	if ws.Direction == approvals.Import {
		ws.Target = ws.Home
	} else {
		ws.Source = ws.Home
	}
	if _, err := b.slack.openView(ctx, who.TriggerID, RenderWizard(ws)); err != nil {
		b.log.Warn("open wizard", "user", who.User, "err", err)
		b.tell(ctx, who, asMessage(RenderError("Could not open the wizard ("+err.Error()+"): type the whole command instead.", Usage(cmd.Verb))))
		return outcomeFailed
	}
	return outcomeOK
}

// wizardStateOf reads a wizard view back: its metadata and what the person chose so far.
func (b *Bot) wizardStateOf(v slack.View) wizardState {
	mc := decodeModalContext(v.PrivateMetadata)
	ws := wizardState{Direction: approvals.Direction(mc.Direction), Check: mc.Check, Channel: mc.Channel, Home: b.planner.Home(),
		Networks: mc.Networks, NetTarget: map[string]string{}}
	if ws.Direction != approvals.Import {
		ws.Direction = approvals.Migrate
	}
	sel := func(id string) string { return stateValue(v.State, id, id).SelectedOption.Value }
	ws.Source, ws.Target = sel(wizSource), sel(wizTarget)
	for _, o := range stateValue(v.State, wizVMs, wizVMs).SelectedOptions {
		ws.VMs = append(ws.VMs, o.Value)
	}
	ws.Compute, ws.Pool, ws.Datastore = sel(wizCompute), sel(wizPool), sel(wizDatastore)
	ws.Disk, ws.Folder, ws.NetAll = sel(wizDisk), sel(wizFolder), sel(wizNetAll)
	ws.Policy, ws.Priority = sel(wizPolicy), sel(wizPriority)
	for i, src := range ws.Networks {
		if t := sel(fmt.Sprintf("%s%d", wizNetPrefix, i)); t != "" {
			ws.NetTarget[src] = t
		}
	}
	return ws
}

// onWizardAction follows a change in the wizard: choosing the VMs (or another source)
// turns the one network select into one per source network of those VMs. Each change
// carries the whole state of the view, so only the newest change of a view is rendered: an
// older one finishing late must not undo it.
func (b *Bot) onWizardAction(cb slack.InteractionCallback) {
	view := cb.View
	slot, err := b.reserve(workWizardUpdate)
	if err != nil {
		// The view keeps showing what it showed; the submission is checked in full anyway.
		b.log.Info("wizard update refused", "user", cb.User.ID, "err", err)
		b.tellLater(invocation{User: cb.User.ID, Channel: decodeModalContext(view.PrivateMetadata).Channel},
			refusalText(err, "The wizard did not follow your last choice."))
		return
	}
	// Counted only once the update is queued: a refused change must not make an older,
	// queued update of the same view think it is stale.
	seq := b.views.changed(view.ID)
	slot.submit(task{what: workWizardUpdate, fn: func(ctx context.Context) {
		ws := b.wizardStateOf(view)
		ictx, cancel := context.WithTimeout(ctx, wizardOpenTimeout)
		for _, in := range b.vcInfos.get(ictx, false) {
			ws.VCenters = append(ws.VCenters, in.ep)
		}
		cancel()
		ws.Networks, ws.NetsLeft = nil, 0
		if len(ws.VMs) > 0 && ws.Source != "" {
			ws.Networks, ws.NetsLeft = b.sourceNetworks(ctx, ws)
		}
		unlock := b.locks.lock("view:" + view.ID)
		defer unlock()
		if !b.views.latest(view.ID, seq) {
			return // a newer change of this view renders instead
		}
		if err := b.slack.updateView(ctx, view.ID, "", RenderWizard(ws)); err != nil {
			b.log.Info("update wizard", "user", cb.User.ID, "err", err)
		}
	}})
}

// sourceNetworks are the networks the chosen VMs' NICs use in the source vCenter, as the
// pre-flight resolves them: the first maxWizardNetworks, and how many more there are.
func (b *Bot) sourceNetworks(ctx context.Context, ws wizardState) ([]string, int) {
	ctx, cancel := context.WithTimeout(ctx, wizardPlanTimeout)
	defer cancel()
	target := ws.Target
	if target == "" || target == ws.Source {
		for _, n := range b.planner.Names() {
			if n != ws.Source {
				target = n
				break
			}
		}
	}
	plan, err := b.planner.Plan(ctx, vcenter.MoveSpec{VMs: ws.VMs, Source: ws.Source, Target: target})
	if err != nil || plan == nil {
		b.log.Info("wizard: networks of the chosen VMs unknown", "err", err)
		return nil, 0
	}
	return networksOf(plan)
}

// networksOf lists the source networks of a plan's NICs in order, the first
// maxWizardNetworks (one select each), and how many more there are.
func networksOf(plan *vcenter.Plan) ([]string, int) {
	var out []string
	for _, vm := range plan.VMs {
		for _, nic := range vm.NICs {
			if nic.Network != "" && !slices.Contains(out, nic.Network) {
				out = append(out, nic.Network)
			}
		}
	}
	if len(out) > maxWizardNetworks {
		return out[:maxWizardNetworks], len(out) - maxWizardNetworks
	}
	return out, 0
}

// onSuggestion answers an option request of one of the wizard's searchable selects, in
// the ack: the source's VMs, or the target's compute resources, pools, datastores,
// storage policies, folders and portgroups — pools, datastores and portgroups narrowed to
// the chosen cluster or host.
func (b *Bot) onSuggestion(cb slack.InteractionCallback) any {
	if b.inv == nil || cb.View.CallbackID != callbackWizard {
		return slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
	}
	ws := b.wizardStateOf(cb.View)
	ctx, cancel := context.WithTimeout(context.Background(), suggestTimeout)
	defer cancel()
	query := strings.TrimSpace(cb.Value)
	scope := scopeOf(ws.Compute)
	list := func(vc string, kind inventoryKind, sc scopeRef) any {
		if vc == "" {
			return slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
		}
		got, err := b.inv.choices(ctx, vc, kind, query, sc)
		if err != nil {
			b.log.Warn("wizard options", "vcenter", vc, "kind", kind, "err", err)
			return slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
		}
		opts, cut := choiceOptions(got, func(c choice) string { return c.Value })
		if cut == "" {
			return slack.OptionsResponse{Options: opts}
		}
		// The only place a list can say something: the label of its one group.
		return slack.OptionGroupsResponse{OptionGroups: []*slack.OptionGroupBlockObject{
			slack.NewOptionGroupBlockElement(plain(clipRunes(cut, maxChoiceLabel)), opts...)}}
	}
	switch id := cb.ActionID; {
	case id == wizVMs:
		return list(ws.Source, kindVMs, scopeRef{})
	case id == wizCompute:
		var groups []*slack.OptionGroupBlockObject
		for _, k := range []struct {
			kind  inventoryKind
			label string
			pre   string
		}{{kindClusters, "Clusters", "cluster:"}, {kindHosts, "Hosts", "host:"}} {
			got, err := b.inv.choices(ctx, ws.Target, k.kind, query, scopeRef{})
			if err != nil || ws.Target == "" {
				continue
			}
			if o, cut := choiceOptions(got, func(c choice) string { return k.pre + c.Value }); len(o) > 0 {
				label := k.label
				if cut != "" {
					label += " — " + cut
				}
				groups = append(groups, slack.NewOptionGroupBlockElement(plain(clipRunes(label, maxChoiceLabel)), o...))
			}
		}
		return slack.OptionGroupsResponse{OptionGroups: groups}
	case id == wizPool:
		return list(ws.Target, kindPools, scope)
	case id == wizDatastore:
		return list(ws.Target, kindDatastores, scope)
	case id == wizFolder:
		return list(ws.Target, kindFolders, scopeRef{})
	case id == wizPolicy:
		return list(ws.Target, kindPolicies, scopeRef{})
	case id == wizNetAll || strings.HasPrefix(id, wizNetPrefix):
		return list(ws.Target, kindPortgroups, scope)
	}
	return slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
}

func scopeOf(compute string) scopeRef {
	kind, name, _ := strings.Cut(compute, ":")
	switch kind {
	case "cluster":
		return scopeRef{Cluster: name}
	case "host":
		return scopeRef{Host: name}
	}
	return scopeRef{}
}

// choiceOptions turns listed objects into at most maxChoices options (Slack shows 100;
// a Socket Mode ack over 20 KB is dropped), and says, if the list was cut, what was left
// out and how to narrow it ("" if nothing was).
func choiceOptions(cs []choice, value func(choice) string) ([]*slack.OptionBlockObject, string) {
	out := []*slack.OptionBlockObject{}
	more, long := false, 0
	for _, c := range cs {
		v := value(c)
		switch {
		case v == "":
			continue
		case len(v) > maxOptionValue:
			long++
			continue
		case len(out) == maxChoices:
			more = true
			continue
		}
		var desc *slack.TextBlockObject
		if c.Description != "" {
			desc = plain(clipRunes(c.Description, maxChoiceLabel))
		}
		out = append(out, slack.NewOptionBlockObject(v, plain(clipRunes(cmp.Or(c.Label, c.Value), maxChoiceLabel)), desc))
	}
	// A group label holds 75 characters.
	switch {
	case more && long > 0:
		return out, fmt.Sprintf("First %d shown, %d too long: type more, or the command", maxChoices, long)
	case more:
		return out, fmt.Sprintf("First %d shown: type more of the name", maxChoices)
	case long > 0:
		if long == 1 {
			return out, "1 name too long to list: type the command"
		}
		return out, fmt.Sprintf("%d names too long to list: type the command", long)
	}
	return out, ""
}

// onWizardSubmission checks the wizard's answers and, if they hold, turns the modal into
// the review page (wizard_review.go). Mistakes are shown under the field at fault.
func (b *Bot) onWizardSubmission(cb slack.InteractionCallback) any {
	started := time.Now()
	ws := b.wizardStateOf(cb.View)
	// The request is posted in the channel the wizard was opened from: that must be one
	// where xvmbot takes requests, whatever the submission says.
	if problem := b.wizardPlace(ws.Channel, cb.User.ID); problem != "" {
		verb := string(ws.Direction)
		if ws.Check {
			verb = VerbCheck
		}
		b.m.commands.WithLabelValues(verbLabel(verb), outcomeRefused).Inc()
		b.log.Warn("wizard submission refused", "user", cb.User.ID, "channel", ws.Channel, "problem", problem)
		return viewErrors(map[string]string{wizSource: problem})
	}
	cmd, errs := b.wizardCommand(ws)
	if len(errs) == 0 && b.inv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), submitTimeout)
		b.checkVisible(ctx, ws, errs)
		cancel()
	}
	if len(errs) > 0 {
		return viewErrors(errs)
	}
	src, dst, problem := b.resolveVCenters(cmd)
	if problem != "" {
		return viewErrors(map[string]string{wizTarget: problem})
	}
	return b.reviewWizard(cb, ws, cmd, src, dst, started)
}

// wizardPlace says why a wizard submission by user cannot post its request into channel
// ("" if it can), in plain words for the dialog.
func (b *Bot) wizardPlace(channel, user string) string {
	switch {
	case !approvals.IsUserID(user):
		return "xvmbot takes requests from Slack users only."
	case len(b.cfg.Channels) > 0 && !b.channelAllowed(channel):
		return "xvmbot does not take requests in that channel. Open the wizard with /xvm migrate in one of: " +
			strings.Join(b.cfg.Channels, ", ") + "."
	case channel == "":
		return "xvmbot does not take requests in that channel: this dialog names none. Open the wizard again with /xvm migrate in a channel."
	}
	return ""
}

// wizardCommand turns the wizard's answers into the command a person would have typed,
// with the problems that can be seen without asking a vCenter.
func (b *Bot) wizardCommand(ws wizardState) (Command, map[string]string) {
	errs := map[string]string{}
	names := b.planner.Names()
	switch {
	case ws.Source == "" || !slices.Contains(names, ws.Source):
		errs[wizSource] = "Choose the vCenter to move from."
	case ws.Target == "" || !slices.Contains(names, ws.Target):
		errs[wizTarget] = "Choose the vCenter to move to."
	case ws.Source == ws.Target:
		errs[wizTarget] = "Source and target are the same vCenter: choose another target."
	}
	switch n := len(ws.VMs); {
	case n == 0:
		errs[wizVMs] = "Choose at least one VM."
	case n > b.cfg.MaxVMsPerRequest:
		errs[wizVMs] = fmt.Sprintf("%d VMs chosen; one request may move at most %d (limits.max_vms_per_request): split them over several requests.",
			n, b.cfg.MaxVMsPerRequest)
	}
	if scopeOf(ws.Compute) == (scopeRef{}) {
		errs[wizCompute] = "Choose a cluster or host in the target."
	}
	if ws.Datastore == "" {
		errs[wizDatastore] = "Choose a datastore."
	}
	if ws.Disk != "" && !move.DiskFormat(ws.Disk).Valid() {
		errs[wizDisk] = "Choose a disk format."
	}
	prio, err := move.ParsePriority(cmp.Or(ws.Priority, string(move.PriorityDefault)))
	if err != nil {
		errs[wizPriority] = "Choose default or high."
	}
	if prio == move.PriorityDefault {
		prio = "" // what a command typed without priority= stores
	}
	verb := string(ws.Direction)
	if ws.Check {
		verb = VerbCheck
	}
	sc := scopeOf(ws.Compute)
	cmd := Command{Verb: verb, Direction: ws.Direction, Check: ws.Check, VMs: ws.VMs, From: ws.Source, To: ws.Target,
		Placement: move.Placement{Cluster: sc.Cluster, Host: sc.Host, Pool: ws.Pool, Datastore: ws.Datastore,
			Folder: ws.Folder, DiskFormat: move.DiskFormat(ws.Disk), Policy: ws.Policy, Priority: prio}}
	if cmd.Placement.DiskFormat == move.Same {
		cmd.Placement.DiskFormat = ""
	}
	if len(ws.Networks) == 0 && ws.NetAll != "" {
		cmd.Placement.Networks = []move.Network{{Target: ws.NetAll}}
	}
	for i, src := range ws.Networks {
		t := ws.NetTarget[src]
		if t == "" {
			errs[fmt.Sprintf("%s%d", wizNetPrefix, i)] = "Choose a portgroup for " + clipRunes(src, 60) + "."
			continue
		}
		cmd.Placement.Networks = append(cmd.Placement.Networks, move.Network{Source: src, Target: t})
	}
	return cmd, errs
}

// checkVisible makes sure the datastore and portgroups are ones the chosen cluster or host
// can use: the selects offered only those, but a view can be submitted after its target
// changed. An inventory that does not answer in time is not an error here: the pre-flight
// checks it again.
func (b *Bot) checkVisible(ctx context.Context, ws wizardState, errs map[string]string) {
	sc := scopeOf(ws.Compute)
	where := cmp.Or(sc.Cluster, sc.Host)
	visible := func(kind inventoryKind, name string) bool {
		got, err := b.inv.choices(ctx, ws.Target, kind, name, sc)
		if err != nil {
			b.log.Info("wizard: could not check visibility", "kind", kind, "err", err)
			return true
		}
		return slices.ContainsFunc(got, func(c choice) bool { return c.Value == name })
	}
	if !visible(kindDatastores, ws.Datastore) {
		errs[wizDatastore] = fmt.Sprintf("%s is not visible from %s: choose another datastore.", clipRunes(ws.Datastore, 60), clipRunes(where, 60))
	}
	check := func(block, pg string) {
		if pg != "" && !visible(kindPortgroups, pg) {
			errs[block] = fmt.Sprintf("%s is not available on %s: choose another portgroup.", clipRunes(pg, 60), clipRunes(where, 60))
		}
	}
	check(wizNetAll, ws.NetAll)
	for i, src := range ws.Networks {
		check(fmt.Sprintf("%s%d", wizNetPrefix, i), ws.NetTarget[src])
	}
}
