package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
)

// invocation is who asked, where, and how to answer them later.
type invocation struct {
	User        string
	Channel     string
	TriggerID   string
	ResponseURL string // from the signed payload; the fallback when chat.postEphemeral fails
	MessageTS   string // for clicks: the message the button was on
	// Home says the click came from the App Home tab: Channel and MessageTS are then the
	// request's, and what the bot has to tell the person is shown on the tab itself.
	Home bool
}

// onCommand handles a slash command up to its ack: it answers at once what needs no I/O
// (usage errors, refusals, help) and queues the rest on the Bot's work pool. The
// returned message, if any, is the ephemeral reply carried by the ack.
//
// once says, after the ack, whether this delivery of the command is its first: the verbs
// that store something (a request, a cancellation, a way back) ask it before they do, so
// that a retried or replayed command does it once; it tells the person itself when it
// cannot say.
func (b *Bot) onCommand(sc slack.SlashCommand, once func(ctx context.Context, who invocation, outcome string) bool) *message {
	who := invocation{User: sc.UserID, Channel: sc.ChannelID, TriggerID: sc.TriggerID, ResponseURL: sc.ResponseURL}
	log := b.log.With("user", who.User, "channel", who.Channel)

	// What needs no reading of the text comes first: a command from outside the allowed
	// channels, or too long to be one, costs nothing more. Help is answered anywhere.
	word := firstWord(sc.Text)
	refuse := func(outcome, text string) *message {
		b.m.commands.WithLabelValues(verbLabel(word), outcome).Inc()
		return replyOf(notice(text))
	}
	switch {
	case word != "" && word != VerbHelp && !b.channelAllowed(who.Channel):
		return refuse(outcomeRefused, "xvmbot does not take requests in this channel. Ask in one of: "+channelList(b.cfg.Channels)+".")
	case !approvals.IsUserID(who.User):
		// Every answer names the requester as <@user>: an ID of another shape is no one
		// Slack would send, and is not written into a message.
		log.Warn("command from an ID that is not a Slack user's refused")
		return refuse(outcomeRefused, "xvmbot takes commands from Slack users only (user IDs start with U or W).")
	case len(sc.Text) > b.cfg.MaxCommandBytes:
		return refuse(outcomeTooLarge, fmt.Sprintf("This command is %d bytes long; xvmbot reads at most %d (slack.max_command_bytes). "+
			"Split the VMs over several requests, or name them with a pattern such as web-*.", len(sc.Text), b.cfg.MaxCommandBytes))
	}

	cmd, err := ParseCommand(sc.Text)
	if err != nil {
		var ue *UsageError
		if !errors.As(err, &ue) {
			ue = &UsageError{Problem: err.Error(), Usage: Usage("")}
		}
		b.m.commands.WithLabelValues(verbLabel(word), outcomeUsageError).Inc()
		return replyOf(asMessage(RenderError(ue.Problem, ue.Usage)))
	}
	verb := verbLabel(cmd.Verb)
	count := func(outcome string) { b.m.commands.WithLabelValues(verb, outcome).Inc() }
	log = log.With("command", cmd.Verb)
	if n := len(cmd.VMs); n > b.cfg.MaxVMsPerRequest {
		count(outcomeTooLarge)
		return replyOf(notice(b.tooManyVMs(n, "names")))
	}

	switch cmd.Verb {
	case VerbHelp:
		count(outcomeOK)
		m := b.withHelpActions(asMessage(RenderHelp(cmd.Arg)))
		return &m
	case VerbMigrate, VerbImport, VerbCheck:
		if cmd.Wizard {
			if b.inv == nil || who.TriggerID == "" {
				count(outcomeUnavailable)
				return replyOf(asMessage(RenderError("The wizard is not available here: type the whole command.", Usage(cmd.Verb))))
			}
			if err := b.spawn(workWizard, func(ctx context.Context) { count(b.openWizard(ctx, cmd, who)) }); err != nil {
				return refuseCommand(count, err, "The wizard was not opened.")
			}
			return nil
		}
		src, dst, problem := b.resolveVCenters(cmd)
		if problem != "" {
			count(outcomeUnknownVCenter)
			return replyOf(asMessage(RenderError(problem, "")))
		}
		if err := b.spawn(workPlan, func(ctx context.Context) {
			if !cmd.Check && !once(ctx, who, "Nothing was stored and nobody was asked to approve anything.") {
				return
			}
			count(b.planAndSubmit(ctx, cmd, src, dst, who))
		}); err != nil {
			if cmd.Check {
				return refuseCommand(count, err, "Nothing was checked.")
			}
			return refuseCommand(count, err, escf("Nothing was stored and nobody was asked to approve moving %s.", vmNamesText(cmd.VMs)))
		}
		log.Info("command accepted", "direction", cmd.Direction, "vms", len(cmd.VMs), "src_vc", src, "dst_vc", dst, "check", cmd.Check)
		return &message{Text: escf("Checking %s from %s to %s…", vmNamesText(cmd.VMs), src, dst)}
	case VerbStatus, VerbList, VerbCancel, VerbVCenters, VerbStats:
		if err := b.spawn(cmd.Verb, func(ctx context.Context) {
			if cmd.Verb == VerbCancel && !once(ctx, who, escf("Nothing was cancelled: %s is as it was.", cmd.Arg)) {
				return
			}
			count(b.runInfoVerb(ctx, cmd, who))
		}); err != nil {
			if cmd.Verb == VerbCancel {
				return refuseCommand(count, err, escf("Nothing was cancelled: %s is as it was.", cmd.Arg))
			}
			return refuseCommand(count, err, "")
		}
		return nil
	case VerbUndo:
		if err := b.spawn(VerbUndo, func(ctx context.Context) {
			if !once(ctx, who, "Nothing was stored: no way back was asked for.") {
				return
			}
			count(b.undo(ctx, cmd.Arg, who))
		}); err != nil {
			return refuseCommand(count, err, "Nothing was stored: no way back was asked for.")
		}
		return &message{Text: escf("Checking the way back for %s…", cmd.Arg)}
	}
	count(outcomeUnavailable)
	return replyOf(asMessage(RenderError(fmt.Sprintf("/xvm %s is not available.", cmd.Verb), Usage(cmd.Verb))))
}

// refuseCommand answers a command whose work could not be queued, in the ack itself.
func refuseCommand(count func(outcome string), err error, outcome string) *message {
	count(refusalOutcome(err))
	return replyOf(notice(refusalText(err, outcome)))
}

// refusalOutcome is the xvm_commands_total outcome of a command refused before its work.
func refusalOutcome(err error) string {
	if errors.Is(err, errShuttingDown) {
		return outcomeUnavailable
	}
	return outcomeBusy
}

// undo asks for the way back of a finished move: a new request, from where the VM is now
// to where it was before (host, pool, datastore, folder, portgroups and disk format as
// recorded by the worker), which goes through pre-flight and approval like any other.
func (b *Bot) undo(ctx context.Context, jobID string, who invocation) string {
	r, err := b.svc.Get(ctx, requestIDOf(jobID))
	if err != nil {
		b.tell(ctx, who, notice(escf("There is no job %s to undo.", jobID)))
		return outcomeFailed
	}
	j := r.Job(jobID)
	if j == nil && len(r.Jobs) == 1 {
		j = &r.Jobs[0] // a one-VM request's id names its only job
	}
	if j == nil && jobID == r.ID && len(r.Jobs) > 1 {
		return b.undoRequest(ctx, r, who)
	}
	if j == nil {
		b.tell(ctx, who, notice(escf("There is no job %s to undo.", jobID)))
		return outcomeFailed
	}
	if problem := undoProblem(j, j.Undoable()); problem != "" {
		b.tell(ctx, who, notice(problem))
		return outcomeFailed
	}
	cmd := undoCommand(r, j)
	// One way back per move: the job is checked and reserved in one write of its record,
	// so two undos of it at once cannot both be asked for.
	mine, err := b.svc.ReserveUndo(ctx, r.ID, j.ID, who.User)
	switch problem := undoProblem(j, err); {
	case problem != "":
		b.tell(ctx, who, notice(problem))
		return outcomeFailed
	case err != nil:
		b.tell(ctx, who, asMessage(RenderError(fmt.Sprintf("Could not ask for the way back of %s: %v. Try again in a moment.", j.ID, err), "")))
		return outcomeFailed
	}
	b.log.Info("undo requested", "job_id", j.ID, "vm", j.VM, "user", who.User)
	outcome := b.planAndSubmit(ctx, cmd, cmd.From, cmd.To, who)
	if outcome != outcomeSubmitted {
		// Nothing stands for the way back: free it.
		if err := b.svc.ReleaseUndo(ctx, r.ID, j.ID, mine); err != nil {
			b.log.Error("release the way back", "job_id", j.ID, "err", err)
		}
	}
	return outcome
}

// maxUndoRequests is how many requests an undo of a whole request may ask for (one per
// placement its VMs came from): more would flood the channel with approvals.
const maxUndoRequests = 10

// undoRequest asks for the way back of every VM a request moved: its jobs' ways back are
// reserved in one write of its record, and one new request (which needs approval like any
// other) is asked per placement the VMs came from — one, when they came from one host,
// pool, datastore and folder. VMs whose way back another undo holds are left out and named.
func (b *Bot) undoRequest(ctx context.Context, r *approvals.Request, who invocation) string {
	mine, reserved, taken, err := b.svc.ReserveRequestUndo(ctx, r.ID, who.User)
	if err != nil {
		b.tell(ctx, who, asMessage(RenderError(fmt.Sprintf("Could not ask for the way back of %s: %v. Try again in a moment.", r.ID, err), "")))
		return outcomeFailed
	}
	var notes []string
	for _, t := range taken {
		notes = append(notes, undoProblem(r.Job(t.Job), &approvals.UndoTakenError{Job: t.Job, By: t.By}))
	}
	if len(reserved) == 0 {
		if len(notes) == 0 {
			notes = append(notes, escf("%s moved no VM (it is %s): there is nothing to undo.", r.ID, string(r.State)))
		}
		b.tell(ctx, who, notice(strings.Join(notes, "\n")))
		return outcomeFailed
	}
	groups := undoGroups(r, reserved)
	release := func(jobs []string) {
		for _, id := range jobs {
			if err := b.svc.ReleaseUndo(ctx, r.ID, id, mine); err != nil {
				b.log.Error("release the way back", "job_id", id, "err", err)
			}
		}
	}
	if len(groups) > maxUndoRequests {
		release(reserved)
		b.tell(ctx, who, notice(escf("The %d moved VMs of %s came from %d different placements (host, pool, datastore, folder): "+
			"that would be %d requests to approve, more than %d. Undo them by job (/xvm undo %s) or move them back with a migrate command.",
			len(reserved), r.ID, len(groups), len(groups), maxUndoRequests, reserved[0])))
		return outcomeFailed
	}
	b.log.Info("undo of a request asked", "request_id", r.ID, "vms", len(reserved), "requests", len(groups), "user", who.User)
	outcome := outcomeSubmitted
	asked := 0
	for _, g := range groups {
		cmd := Command{Verb: VerbMigrate, Direction: approvals.Migrate, VMs: g.vms, From: r.TargetVC,
			To: g.origin.VCenter, Placement: g.origin.Placement.Clone(), UndoOf: r.ID}
		if o := b.planAndSubmit(ctx, cmd, cmd.From, cmd.To, who); o != outcomeSubmitted {
			release(g.jobs) // nothing stands for their way back
			outcome = o
			continue
		}
		asked++
	}
	if len(groups) > 1 || len(notes) > 0 {
		notes = append([]string{escf("Asked for the way back of %s of %s in %d %s (one per placement they came from), each to approve like any request.",
			countVMs(len(reserved)), r.ID, asked, plural(asked, "request"))}, notes...)
		b.tell(ctx, who, notice(strings.Join(notes, "\n")))
	}
	return outcome
}

// undoGroup is the moved VMs of a request that came from one placement.
type undoGroup struct {
	origin move.Origin
	jobs   []string
	vms    []string
}

// undoGroups groups the jobs of r by the placement their VMs came from, in job order.
func undoGroups(r *approvals.Request, jobs []string) []*undoGroup {
	var out []*undoGroup
	byOrigin := map[string]*undoGroup{}
	for _, id := range jobs {
		j := r.Job(id)
		if j == nil || j.Origin == nil {
			continue
		}
		key, _ := json.Marshal(j.Origin)
		g := byOrigin[string(key)]
		if g == nil {
			g = &undoGroup{origin: j.Origin.Clone()}
			byOrigin[string(key)] = g
			out = append(out, g)
		}
		g.jobs, g.vms = append(g.jobs, j.ID), append(g.vms, j.VM)
	}
	return out
}

// undoProblem says in plain words why the way back of j is not asked for: "" if err is
// nil or none of the reasons a person can act on.
func undoProblem(j *approvals.Job, err error) string {
	var taken *approvals.UndoTakenError
	switch {
	case errors.Is(err, approvals.ErrNotMoved):
		return escf("%s did not move %s (it is %s): there is nothing to undo.", j.ID, j.VM, string(j.State))
	case errors.Is(err, approvals.ErrNoOrigin):
		return escf("xvmbot did not record where %s was before %s, so it cannot ask for the way back; "+
			"type the migrate command with the original placement.", j.VM, j.ID)
	case errors.As(err, &taken) && taken.By.Reserved():
		return escf("The way back of %s (%s) is being asked for right now; see the channel in a moment.", j.VM, j.ID)
	case errors.As(err, &taken):
		return escf("%s already asks for the way back of %s (%s): see `/xvm status %s`.", taken.By.Request, j.VM, j.ID, taken.By.Request)
	}
	return ""
}

// planAndSubmit pre-flights a move and, unless it is a check or blocked, stores the
// request and posts it for approval. It returns the command's outcome.
func (b *Bot) planAndSubmit(ctx context.Context, cmd Command, src, dst string, who invocation) string {
	log := b.log.With("user", who.User, "channel", who.Channel, "command", cmd.Verb, "src_vc", src, "dst_vc", dst)
	plan, err := b.planner.Plan(ctx, moveSpec(cmd, src, dst))
	if err != nil {
		log.Warn("pre-flight failed", "err", err)
		b.tell(ctx, who, asMessage(RenderError(fmt.Sprintf("Could not check %s: %v", vmNamesText(cmd.VMs), err), "")))
		return outcomeFailed
	}
	if n := len(plan.VMs); n > b.cfg.MaxVMsPerRequest {
		// Patterns are expanded by the pre-flight: web-* may match more than was typed.
		log.Info("plan over the VM cap", "vms", n, "max", b.cfg.MaxVMsPerRequest)
		b.tell(ctx, who, notice(b.tooManyVMs(n, "matches")))
		return outcomeTooLarge
	}
	r := requestOf(cmd, plan, src, dst, who)
	r.Review.Source.UIURL, r.Review.Target.UIURL = b.cfg.ClientURLs[r.Review.Source.Name], b.cfg.ClientURLs[r.Review.Target.Name]
	if f, ok := changeWindows(b.cfg.Windows).finding(dst, b.now()); ok {
		r.Review.Findings = append(r.Review.Findings, f)
	}
	if plan.Blocked() || cmd.Check {
		// A review only: nothing is stored, nobody is asked to approve.
		b.tell(ctx, who, withoutButtons(asMessage(RenderRequest(r, b.now()))))
		if plan.Blocked() {
			log.Info("plan blocked", "findings", len(plan.Findings))
			return outcomeBlocked
		}
		return outcomeChecked
	}
	// A place in the channel's post queue first: a full queue refuses the request before
	// anything is stored. The post itself waits for the channel's pace on the queue's own
	// goroutine (poster.go), not on this worker.
	slot, err := b.posts.reserve(r.Channel)
	if err != nil {
		b.m.refused.WithLabelValues(workPost, postRefusalReason(err)).Inc()
		var full *channelFullError
		if errors.As(err, &full) {
			log.Warn("request refused: channel post queue full", "waiting", full.Waiting)
			b.tell(ctx, who, notice(b.channelFullText(full)))
			return outcomeBusy
		}
		b.tell(ctx, who, notice(refusalText(err, "Nothing was stored and nobody was asked to approve anything.")))
		return outcomeUnavailable
	}
	r.PostQueue = b.cfg.Instance
	if err := b.svc.Submit(ctx, r); err != nil {
		slot.release()
		log.Error("store request", "err", err)
		b.tell(ctx, who, asMessage(RenderError("Could not store the request: "+err.Error(), "")))
		return outcomeFailed
	}
	b.queueApproval(ctx, slot, r, who)
	return outcomeSubmitted
}

// runInfoVerb answers status, list and cancel after the ack.
func (b *Bot) runInfoVerb(ctx context.Context, cmd Command, who invocation) string {
	switch cmd.Verb {
	case VerbStatus:
		r, err := b.svc.Get(ctx, requestIDOf(cmd.Arg))
		if err != nil {
			b.tell(ctx, who, notice(lookupProblem(cmd.Arg, err)))
			return outcomeFailed
		}
		b.tell(ctx, who, withoutButtons(b.requestMessage(r)))
		if j := r.Job(cmd.Arg); j != nil {
			// A job asked for by id: its own state too, and for a failure where and why.
			if j.State == approvals.StateFailed {
				b.tell(ctx, who, asMessage(RenderJobFault(r, j)))
			} else {
				b.tell(ctx, who, asMessage(RenderJobProgress(r, j)))
			}
		}
		return outcomeOK
	case VerbList:
		all, err := b.svc.Store().List(ctx)
		if err != nil {
			b.tell(ctx, who, asMessage(RenderError("Could not list requests: "+err.Error(), "")))
			return outcomeFailed
		}
		b.tell(ctx, who, asMessage(RenderList(all, b.now())))
		return outcomeOK
	case VerbVCenters:
		ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
		infos := b.vcInfos.get(ictx, true)
		cancel()
		b.tell(ctx, who, asMessage(RenderVCenters(infos)))
		return outcomeOK
	case VerbStats:
		window, title := windowOf(cmd.Arg)
		s, err := b.stats(ctx, window)
		if err != nil {
			b.tell(ctx, who, asMessage(RenderError("Could not compute the stats: "+err.Error(), "")))
			return outcomeFailed
		}
		// Answered privately; "Share in channel" posts them for everyone there.
		b.tell(ctx, who, privateStats(s, title, cmd.Arg))
		return outcomeOK
	case VerbCancel:
		id := requestIDOf(cmd.Arg)
		r, err := b.svc.Cancel(ctx, id, who.User, "")
		if err != nil {
			b.tell(ctx, who, notice(b.decisionProblem("cancel", id, r, err)))
			if errors.Is(err, approvals.ErrNotAllowed) {
				return outcomeDenied
			}
			return outcomeFailed
		}
		b.m.approvals.WithLabelValues(decisionCancelled).Inc()
		b.log.Info("request cancelled", "request_id", id, "user", who.User)
		b.stopJobs(ctx, r, who.User)
		b.refreshParent(ctx, r)
		b.tell(ctx, who, message{Text: escf("Request %s is cancelled; moves already running are being cancelled in vCenter where it can still roll them back.", id)})
		return outcomeOK
	}
	return outcomeUnavailable
}

// tell shows msg to the person who asked, in the channel they asked in.
// If chat.postEphemeral fails (the bot is not in the channel, a DM) it answers through
// the response_url of the command or click instead.
func (b *Bot) tell(ctx context.Context, who invocation, msg message) {
	if ctx.Err() != nil {
		// The work ran out of time (a store that did not answer): the person must still
		// hear that it did not happen, within a short bound of its own.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), tellTimeout)
		defer cancel()
	}
	if who.Home {
		// A click on the Home tab is answered there: a private note in the request's
		// channel would reach someone who is looking at the tab, not at the channel.
		b.homeNotes.set(who.User, msg.Text, b.now())
		b.publishHome(ctx, who.User)
		return
	}
	err := b.slack.ephemeral(ctx, who.Channel, who.User, msg)
	if err != nil && b.responseURLAllowed(who.ResponseURL) {
		b.log.Debug("ephemeral reply failed; using response_url", "user", who.User, "channel", who.Channel, "err", err)
		err = b.slack.respond(ctx, who.ResponseURL, msg)
	}
	if err != nil {
		b.log.Error("ephemeral reply", "user", who.User, "channel", who.Channel, "err", err)
	}
}

// tellTimeout bounds a private answer sent after its work's own time ran out.
const tellTimeout = 5 * time.Second

// responseURLAllowed keeps response_url posts on Slack (https) or on the configured API
// host (proxies, tests): the URL comes from a verified payload, but the bot should still
// not be talked into calling arbitrary plain-http endpoints.
func (b *Bot) responseURLAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	api, err := url.Parse(b.cfg.APIURL)
	return err == nil && b.cfg.APIURL != "" && u.Scheme == api.Scheme && u.Host == api.Host
}

// refreshParent re-renders a request's approval message in place after its state changed:
// at once if the edit budget has room, else before any other put-off edit.
func (b *Bot) refreshParent(ctx context.Context, r *approvals.Request) {
	if r == nil || r.MessageTS == "" {
		return
	}
	b.show(ctx, r, r.MessageTS, true)
	b.syncDMs(ctx, r)
}

func (b *Bot) channelAllowed(ch string) bool {
	return len(b.cfg.Channels) == 0 || slices.Contains(b.cfg.Channels, ch)
}

// resolveVCenters applies the defaults (migrate: from home; import: to home) and checks
// the names against the configuration. problem is what to tell the user, if anything.
func (b *Bot) resolveVCenters(cmd Command) (src, dst, problem string) {
	home := b.planner.Home()
	src, dst = cmd.From, cmd.To
	if cmd.Direction == approvals.Import {
		if dst == "" {
			dst = home
		}
	} else if src == "" {
		src = home
	}
	names := b.planner.Names()
	var unknown []string
	canon := func(name string) string {
		if name == "" {
			return ""
		}
		for _, n := range names {
			if strings.EqualFold(n, name) {
				return n
			}
		}
		unknown = append(unknown, name)
		return name
	}
	src, dst = canon(src), canon(dst)
	switch {
	case len(unknown) > 0:
		return src, dst, fmt.Sprintf("Unknown vCenter %s. Configured: %s.", quoteList(unknown), b.vcenterNames())
	case src == "" && cmd.Direction == approvals.Import:
		return src, dst, fmt.Sprintf("Say which vCenter to import from (from <vcenter>). Configured: %s.", b.vcenterNames())
	case src == "" || dst == "":
		return src, dst, fmt.Sprintf("Say which vCenter to move to (to <vcenter>). Configured: %s.", b.vcenterNames())
	case src == dst:
		return src, dst, fmt.Sprintf("%s is both source and target: Advanced Cross vCenter vMotion moves between two different vCenters.", src)
	}
	return src, dst, ""
}

func (b *Bot) vcenterNames() string {
	home := b.planner.Home()
	var parts []string
	for _, n := range b.planner.Names() {
		if n == home {
			n += " (home)"
		}
		parts = append(parts, n)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func lookupProblem(id string, err error) string {
	id = escapeText(id)
	if errors.Is(err, approvals.ErrNotFound) {
		return fmt.Sprintf("There is no request %s.", id)
	}
	return fmt.Sprintf("Could not read request %s: %s", id, escapeText(err.Error()))
}

// requestIDOf is the request a typed id names: status, cancel and undo take a request's
// id or one of its jobs'.
func requestIDOf(id string) string { return approvals.RequestIDOf(id) }

// undoCommand is the command that takes job j of request r back to where its VM was.
func undoCommand(r *approvals.Request, j *approvals.Job) Command {
	return Command{Verb: VerbMigrate, Direction: approvals.Migrate, VMs: []string{j.VM}, From: r.TargetVC,
		To: j.Origin.VCenter, Placement: j.Origin.Placement.Clone(), UndoOf: j.ID}
}

// moveSpec turns a parsed command into what the planner resolves.
func moveSpec(cmd Command, src, dst string) vcenter.MoveSpec {
	return vcenter.MoveSpec{VMs: cmd.VMs, Source: src, Target: dst, Placement: cmd.Placement.Clone()}
}

// requestOf is the request of cmd from src to dst, as plan resolved it, asked for by who.
func requestOf(cmd Command, plan *vcenter.Plan, src, dst string, who invocation) *approvals.Request {
	return &approvals.Request{
		Direction: cmd.Direction,
		VMs:       planVMs(plan, cmd.VMs),
		SourceVC:  src,
		TargetVC:  dst,
		Placement: cmd.Placement.Clone(),
		Review:    reviewOf(plan),
		UndoOf:    cmd.UndoOf,
		RetryOf:   cmd.RetryOf,
		Requester: who.User,
		Channel:   who.Channel,
	}
}

// planVMs are the VM names the plan resolved (patterns expanded), or those asked for.
func planVMs(p *vcenter.Plan, asked []string) []string {
	if len(p.VMs) == 0 {
		return slices.Clone(asked)
	}
	out := make([]string, 0, len(p.VMs))
	for _, vm := range p.VMs {
		out = append(out, vm.Name)
	}
	return out
}

// reviewOf copies a plan into the request's review, the page approvers read.
func reviewOf(p *vcenter.Plan) approvals.Review {
	r := approvals.Review{
		Source: approvals.VCenterRef{Name: p.Source.Name, Version: p.Source.Version, Thumbprint: p.Source.Thumbprint,
			InstanceUUID: p.Source.InstanceUUID},
		Target: approvals.VCenterRef{Name: p.Target.Name, Version: p.Target.Version, Thumbprint: p.Target.Thumbprint,
			InstanceUUID: p.Target.InstanceUUID},
		Placement: move.Placement{Cluster: p.Cluster, Host: p.Host, Pool: p.Pool, Datastore: p.Datastore,
			DiskFormat: p.DiskFormat, Folder: p.Folder, Disks: slices.Clone(p.Spec.Disks), Policy: p.Policy()},
		OtherHosts: slices.Clone(p.OtherHosts),
	}
	seen := map[move.Network]bool{}
	for _, vm := range p.VMs {
		r.VMs = append(r.VMs, approvals.ReviewVM{VM: vm.VM, PowerState: vm.PowerState, CPUs: vm.CPUs, MemoryMB: vm.MemoryMB, DiskGB: vm.DiskGB, NICs: len(vm.NICs),
			Resolved: p.Resolved(vm.Name)})
		for _, nic := range vm.NICs {
			nm := move.Network{Source: nic.Network, Target: nic.Target}
			if nic.Target != "" && !seen[nm] {
				seen[nm] = true
				r.Networks = append(r.Networks, nm)
			}
		}
	}
	if len(r.Networks) == 0 {
		r.Networks = slices.Clone(p.Spec.Networks)
	}
	for _, f := range p.Findings {
		r.Findings = append(r.Findings, approvals.Finding{Severity: severityOf(f.Severity), VM: f.VM, Message: f.Message, Hint: f.Hint})
	}
	return r
}

func severityOf(s vcenter.Severity) approvals.Severity {
	switch s {
	case vcenter.Blocker:
		return approvals.SeverityBlocker
	case vcenter.Warning:
		return approvals.SeverityWarning
	}
	return approvals.SeverityOK
}

// tooManyVMs answers a request over the VM cap; how is "names" (typed or chosen) or
// "matches" (its patterns matched that many).
func (b *Bot) tooManyVMs(n int, how string) string {
	return fmt.Sprintf("This request %s %d VMs; one request may move at most %d (limits.max_vms_per_request). "+
		"Split the VMs over several requests. Nothing was stored.", how, n, b.cfg.MaxVMsPerRequest)
}

// notice is a short ephemeral answer written by the bot itself: unlike RenderError it
// keeps mentions (<@U…>, <#C…>) live, so anything a user typed or a vCenter named must go
// through escapeText (escf does that to every argument).
func notice(text string) message {
	text = "⚠️ " + text
	return message{Text: text, Blocks: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}}
}

// escapeText makes user-supplied text inert in mrkdwn (no mentions, no links).
func escapeText(s string) string { return entityEncoder.Replace(s) }

// escf is fmt.Sprintf for mrkdwn written by the bot around what others supplied: every
// string, error or Stringer argument is escaped, so a VM called "<!channel>" or an id
// typed as "<@U123>" shows as typed and notifies nobody. The format itself is the bot's
// and may hold markup.
func escf(format string, args ...any) string {
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			safe[i] = escapeText(v)
		case error:
			safe[i] = escapeText(v.Error())
		case fmt.Stringer:
			safe[i] = escapeText(v.String())
		default:
			safe[i] = a
		}
	}
	return fmt.Sprintf(format, safe...)
}

// render adapts a renderer's (text, blocks) pair.
func asMessage(text string, blocks []slack.Block) message { return message{Text: text, Blocks: blocks} }

// withoutButtons drops action blocks: a review or a status answer offers no decision.
func withoutButtons(m message) message {
	out := make([]slack.Block, 0, len(m.Blocks))
	for _, blk := range m.Blocks {
		if blk.BlockType() != slack.MBTAction {
			out = append(out, blk)
		}
	}
	m.Blocks = out
	return m
}

func replyOf[T any](v T) *T { return &v }

func vmNamesText(vms []string) string {
	const show = 5
	if len(vms) <= show {
		return strings.Join(vms, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(vms[:show], ", "), len(vms)-show)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func channelList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = "<#" + id + ">"
	}
	return strings.Join(q, ", ")
}

// firstWord is the first word of text, lower-cased; it reads no further, however long
// the text.
func firstWord(text string) string {
	text = strings.TrimLeftFunc(text, unicode.IsSpace)
	if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
		text = text[:i]
	}
	return strings.ToLower(text)
}

// verbLabel keeps the command label bounded: the verbs of the command table, or "unknown".
func verbLabel(verb string) string {
	if lookupCommand(verb) != nil {
		return verb
	}
	return "unknown"
}
