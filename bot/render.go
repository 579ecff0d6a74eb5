package bot

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
)

// Action IDs of the buttons on a request message; each button's value is the request ID.
const (
	ActionApprove = "xvm_approve"
	ActionReject  = "xvm_reject"
	ActionCancel  = "xvm_cancel"
	// ActionRetry asks again for the VMs of an ended request that failed without moving:
	// a new request, for approvers only, that needs approval.
	ActionRetry = "xvm_retry"
)

// Budgets that keep a message inside Slack's limits (docs/slack-facts.md S1, S2: 50 blocks,
// 3,000 chars per section text, 2,000 per field, ~13 k chars per message). The review page
// uses ≤ 8 blocks.
const (
	maxSectionChars   = 2800
	maxFieldChars     = 1900
	maxListedVMs      = 20
	maxListedOK       = 5
	maxListedProblems = 10
	maxListedNets     = 10
	maxFinalLines     = 30
)

// RenderRequest renders the parent message of a request: while pending, the wizard-like review
// page with Approve/Reject buttons; afterwards the same summary with the decision, the state and
// the overall progress (a Cancel button while it can still be cancelled). It also returns the
// notification fallback text. now only says whether it is past its expiry.
func RenderRequest(r *approvals.Request, now time.Time) (text string, blocks []slack.Block) {
	blocks = append(blocks,
		slack.NewHeaderBlock(plain(clipRunes(requestTitle(r), 150))),
		slack.NewContextBlock("", mrkdwn(requestedBy(r))),
		slack.NewSectionBlock(nil, placementFields(r), nil),
		slack.NewSectionBlock(mrkdwn(vmList(r)), nil, nil),
	)
	if f := findingsText(r); f != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(f), nil, nil))
	}
	blocks = append(blocks, slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn(statusText(r, now)), nil, nil))
	if a := requestActions(r); a != nil {
		blocks = append(blocks, a)
	}
	text = fmt.Sprintf("%s by <@%s>: %s %s → %s — %s", requestTitle(r), r.Requester, countVMs(len(requestVMs(r))),
		esc(sourceName(r)), esc(targetName(r)), statusPhrase(r))
	if r.State == approvals.StatePending && !r.Review.Blocked() && mentionsApprovers(r) {
		// The notification names the approvers too: it is what Slack shows in a DM's
		// preview and reads to a screen reader.
		text += " — approvers: " + approverMentions(r.AskedOf)
	}
	return text, blocks
}

// approversLine says who may approve and how many must: "Approvers: @vm-admins · 2
// needed". With notify none it names nobody, so that nobody is notified; with notify dm
// it says they were asked by direct message: a mention here too would notify each of
// them twice.
func approversLine(r *approvals.Request) string {
	q := max(r.Quorum, 1)
	need := fmt.Sprintf("%d needed", q)
	switch {
	case mentionsApprovers(r):
		return "Approvers: " + approverMentions(r.AskedOf) + " · " + need
	case r.Notify == approvals.NotifyDM && len(r.AskedOf) > 0:
		return "Approvers: each asked by direct message · " + need
	}
	return "Approvers: " + need
}

// mentionsApprovers says whether r's messages mention its approvers: only when they are
// told by mention (with notify dm, the direct message is what tells them).
func mentionsApprovers(r *approvals.Request) bool {
	return len(r.AskedOf) > 0 && r.Notify != approvals.NotifyNone && r.Notify != approvals.NotifyDM
}

// approverMentions writes user IDs as <@U…> and group IDs as <!subteam^S…>, which Slack
// shows as names in each reader's workspace; past a few, the rest are counted.
func approverMentions(ids []string) string {
	const shown = 10
	var out []string
	for i, id := range ids {
		if i == shown {
			out = append(out, fmt.Sprintf("%d more", len(ids)-i))
			break
		}
		if approvals.IsGroupID(id) {
			out = append(out, "<!subteam^"+id+">")
		} else {
			out = append(out, "<@"+id+">")
		}
	}
	return strings.Join(out, ", ")
}

// RenderUnverified renders the parent message of a request whose record says it was
// approved but carries no approval the bot can verify (why says what is wrong): the
// record's claims about who approved are not repeated, and no button is offered.
func RenderUnverified(r *approvals.Request, why string) (text string, blocks []slack.Block) {
	status := fmt.Sprintf("⛔ *Approval not verified* — this request's record says it is %s, but it carries no approval "+
		"signed by xvmbot (%s). Nothing of it will move. Its record was changed outside xvmbot: tell whoever runs "+
		"xvmbot and its NATS server.", esc(string(r.State)), esc(why))
	blocks = append(blocks,
		slack.NewHeaderBlock(plain(clipRunes(requestTitle(r), 150))),
		slack.NewContextBlock("", mrkdwn(requestedBy(r))),
		slack.NewSectionBlock(nil, placementFields(r), nil),
		slack.NewSectionBlock(mrkdwn(vmList(r)), nil, nil),
		slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn(clipEscaped(status, 2900)), nil, nil),
	)
	return fmt.Sprintf("%s: approval not verified, nothing will move", requestTitle(r)), blocks
}

// RenderJobProgress renders one job's threaded progress message: the VM, source → target,
// the state and a text progress bar.
func RenderJobProgress(r *approvals.Request, j *approvals.Job) (text string, blocks []slack.Block) {
	pct := j.Progress
	if j.State == approvals.StateSucceeded {
		pct = 100
	}
	line := fmt.Sprintf("%s *%s*", stateIcon(j.State), stateWord(j.State))
	if !j.State.Final() || j.State == approvals.StateSucceeded {
		line += "  `" + ProgressBar(pct) + "`"
	}
	body := fmt.Sprintf("%s · %s → %s\n%s", vmInSource(r, j.VM), esc(sourceName(r)), esc(targetName(r)), line)
	switch {
	case j.State == approvals.StateFailed:
		// What happened and what to check are said once, in the failure's own reply.
		body += " — why, and what to check: in the reply below"
	case j.Error != "":
		body += "\n" + escClip(j.Error, maxFieldChars)
	}
	if j.Note != "" {
		body += "\n⏳ " + escClip(j.Note, maxFieldChars)
	}
	if j.Warning != "" {
		body += "\n⚠️ " + escClip(j.Warning, maxFieldChars)
	}
	ctx := []string{"Job " + j.ID}
	if t := taskText(r, j); t != "" {
		ctx = append(ctx, t)
	}
	if !j.StartedAt.IsZero() {
		ctx = append(ctx, "started "+clock(j.StartedAt))
	}
	if !j.StartedAt.IsZero() && !j.EndedAt.IsZero() {
		took := "took "
		if j.State == approvals.StateFailed {
			took = "failed after "
		}
		ctx = append(ctx, took+humanDuration(j.EndedAt.Sub(j.StartedAt)))
	}
	text = esc(fmt.Sprintf("%s: %s %d%% (%s → %s)", j.VM, stateWord(j.State), pct, sourceName(r), targetName(r)))
	return text, []slack.Block{
		slack.NewSectionBlock(mrkdwn(body), nil, nil),
		slack.NewContextBlock("", mrkdwn(strings.Join(ctx, " · "))),
	}
}

// RenderFinal renders the final threaded reply when a request ends: it mentions the requester,
// gives each VM's outcome (failures first, with the error in plain words) and the total duration.
func RenderFinal(r *approvals.Request) (text string, blocks []slack.Block) {
	c := r.Counts()
	n := len(r.Jobs)
	var head string
	switch r.State {
	case approvals.StateRejected:
		head = fmt.Sprintf("❌ <@%s>, your %s request %s was rejected%s.", r.Requester, r.Direction, r.ID, byWhom(r.Rejection, true))
	case approvals.StateExpired:
		head = fmt.Sprintf("⌛ <@%s>, your %s request %s expired with %s; ask again if the move is still wanted.",
			r.Requester, r.Direction, r.ID, approvalCount(r))
	case approvals.StateSucceeded:
		head = fmt.Sprintf("✅ <@%s>, your %s request %s is done: %s moved to %s%s.", r.Requester, r.Direction, r.ID,
			allOrCount(c[approvals.StateSucceeded], n), esc(targetName(r)), warningsSuffix(r))
	case approvals.StateFailed:
		head = fmt.Sprintf("⚠️ <@%s>, your %s request %s finished with failures: %d of %d VMs moved to %s, %d failed%s.",
			r.Requester, r.Direction, r.ID, c[approvals.StateSucceeded], n, esc(targetName(r)), c[approvals.StateFailed], cancelledSuffix(c))
	case approvals.StateCancelled:
		head = fmt.Sprintf("🚫 <@%s>, your %s request %s was cancelled%s: %d of %d VMs moved.", r.Requester, r.Direction, r.ID,
			byWhom(r.Cancellation, true), c[approvals.StateSucceeded], n)
	default:
		head = fmt.Sprintf("<@%s>, your %s request %s is %s: %d of %d VMs moved so far.", r.Requester, r.Direction, r.ID,
			r.State, c[approvals.StateSucceeded], n)
	}
	text = stripMrkdwn(head)
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(head), nil, nil))
	if jobsRan(r) {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(finalLines(r)), nil, nil))
	}
	ctx := []string{r.ID, esc(sourceName(r)) + " → " + esc(targetName(r))}
	if d := totalDuration(r); d > 0 && jobsRan(r) {
		// From the decision, queueing included: longer than any one VM's own time.
		ctx = append(ctx, humanDuration(d)+" from approval to end", bytesText(movedGB(r))+" moved")
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(strings.Join(ctx, " · "))))
	return text, blocks
}

// RenderJobFault renders a failed job for /xvm status: the failure reply, and the raw
// error behind its plain words, for whoever digs into it.
func RenderJobFault(r *approvals.Request, j *approvals.Job) (text string, blocks []slack.Block) {
	text, blocks = RenderJobFailure(r, j, j.Fault, j.Hint)
	if j.Detail != "" {
		raw := "Raw error: `" + escClip(strings.ReplaceAll(j.Detail, "`", "'"), maxFieldChars) + "`"
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(raw)))
	}
	return text, blocks
}

// RenderJobFailure renders a job failure reply in the thread: the VM, the step or fault, the
// message in plain words and what to check.
func RenderJobFailure(r *approvals.Request, j *approvals.Job, fault, hint string) (text string, blocks []slack.Block) {
	msg := j.Error
	if msg == "" {
		msg = "the move failed"
	}
	body := fmt.Sprintf("❌ %s failed to move · %s → %s", vmInSource(r, j.VM), esc(sourceName(r)), esc(targetName(r)))
	fields := []*slack.TextBlockObject{mrkdwn("*What happened*\n" + escClip(msg, maxFieldChars))}
	if fault != "" {
		fields = append(fields, mrkdwn("*Step / fault*\n`"+escClip(strings.ReplaceAll(fault, "`", "'"), 200)+"`"))
	}
	if hint != "" {
		fields = append(fields, mrkdwn("*What to check*\n"+escClip(hint, maxFieldChars)))
	}
	text = esc(fmt.Sprintf("%s failed to move to %s: %s", j.VM, targetName(r), msg))
	return text, []slack.Block{
		slack.NewSectionBlock(mrkdwn(body), fields, nil),
		slack.NewContextBlock("", mrkdwn(failureContext(r, j))),
	}
}

// RenderError renders an ephemeral error answer: the problem and, if given, the usage in a
// code block.
func RenderError(problem, usage string) (text string, blocks []slack.Block) {
	blocks = []slack.Block{slack.NewSectionBlock(mrkdwn("⚠️ "+escClip(problem, maxSectionChars)), nil, nil)}
	if usage != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("```"+escClip(usage, maxSectionChars-10)+"```"), nil, nil))
	}
	return esc(problem), blocks
}

// RenderHelp renders the help of one verb, or of every command when verb is "", as code
// blocks (escaped, so "<vm>" shows as typed).
func RenderHelp(verb string) (text string, blocks []slack.Block) {
	u := Usage(verb)
	var chunk strings.Builder
	flush := func() {
		if chunk.Len() > 0 {
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn("```"+strings.TrimRight(chunk.String(), "\n")+"```"), nil, nil))
			chunk.Reset()
		}
	}
	for _, line := range strings.Split(u, "\n") {
		line = escClip(line, 500) + "\n"
		if chunk.Len()+len(line) > maxSectionChars {
			flush()
		}
		chunk.WriteString(line)
	}
	flush()
	return esc(strings.SplitN(u, "\n", 2)[0]), blocks
}

// ProgressBar returns a 10-cell text bar for 0–100, such as "▓▓▓▓▓░░░░░ 50%". Values out of
// range are clamped.
func ProgressBar(pct int) string {
	pct = min(max(pct, 0), 100)
	return strings.Repeat("▓", pct/10) + strings.Repeat("░", 10-pct/10) + fmt.Sprintf(" %d%%", pct)
}

// requestTitle is "Cross vCenter migrate request xvm-k3m9q2".
// A review that was never stored (a check, or a request refused by pre-flight) has no id.
func requestTitle(r *approvals.Request) string {
	if r.ID == "" {
		return fmt.Sprintf("Pre-flight check of a cross vCenter %s (nothing was queued)", r.Direction)
	}
	return fmt.Sprintf("Cross vCenter %s request %s", r.Direction, r.ID)
}

func requestedBy(r *approvals.Request) string {
	by := "Requested by"
	if r.ID == "" {
		by = "Checked by" // a pre-flight check or a wizard's review: nothing was requested
	}
	parts := []string{fmt.Sprintf("%s <@%s>", by, r.Requester)}
	if !r.CreatedAt.IsZero() {
		parts[0] += ", " + clock(r.CreatedAt)
	}
	if r.Placement.Priority == move.PriorityHigh {
		parts = append(parts, "high priority")
	}
	switch {
	case r.RetryOf != "":
		parts = append(parts, "🔁 a retry of the failed VMs of request "+esc(r.RetryOf))
	case r.UndoOf != "" && approvals.RequestIDOf(r.UndoOf) == r.UndoOf:
		parts = append(parts, "↩️ the way back of request "+esc(r.UndoOf))
	case r.UndoOf != "":
		parts = append(parts, "↩️ the way back of job "+esc(r.UndoOf))
	}
	return strings.Join(parts, " · ")
}

// placementFields is the wizard's review: where each part of the VMs goes. Resolved values
// (Review) win over requested names (Placement).
func placementFields(r *approvals.Request) []*slack.TextBlockObject {
	rv, p := r.Review, r.Placement
	compute := []string{}
	if c := cmp.Or(rv.Cluster, p.Cluster); c != "" {
		compute = append(compute, esc(c)+" (cluster)")
	}
	if h := cmp.Or(rv.Host, p.Host); h != "" {
		host := esc(h) + " (host)"
		if n := len(rv.OtherHosts); n > 0 {
			others := rv.OtherHosts
			if n > 3 {
				others = append(slices.Clone(others[:3]), fmt.Sprintf("%d more", n-3))
			}
			host = fmt.Sprintf("%s (host; when it is busy, also %s)", esc(h), esc(strings.Join(others, ", ")))
		}
		compute = append(compute, host)
	}
	storage := orDefault(esc(cmp.Or(rv.Datastore, p.Datastore)))
	storage += " · " + DiskFormatName(cmp.Or(rv.DiskFormat, p.DiskFormat))
	disks := rv.Disks
	if len(disks) == 0 {
		disks = p.Disks
	}
	switch {
	case p.Policy != "":
		storage += "\nVM storage policy: " + esc(p.Policy)
	case rv.Policy != "":
		storage += "\nVM storage policy: " + esc(rv.Policy) + " (kept by name)"
	}
	for _, d := range disks {
		storage += fmt.Sprintf("\nHard disk %d: %s · %s", d.Disk, orDefault(esc(cmp.Or(d.Datastore, rv.Datastore, p.Datastore))),
			DiskFormatName(cmp.Or(d.DiskFormat, rv.DiskFormat, p.DiskFormat)))
		if d.Policy != "" {
			storage += " · " + esc(d.Policy)
		}
	}
	nets := rv.Networks
	if len(nets) == 0 {
		nets = p.Networks
	}
	field := func(title, value string) *slack.TextBlockObject {
		return mrkdwn("*" + title + "*\n" + clipEscaped(value, maxFieldChars))
	}
	return []*slack.TextBlockObject{
		field("Source vCenter", vcenterText(rv.Source, r.SourceVC)),
		field("Target vCenter", vcenterText(rv.Target, r.TargetVC)),
		field("Compute resource", orDefault(strings.Join(compute, " / "))),
		field("Resource pool", orDefault(esc(cmp.Or(rv.Pool, p.Pool)))),
		field("Storage", storage),
		field("VM folder", orDefault(esc(cmp.Or(rv.Folder, p.Folder)))),
		field("Networks", networksText(nets, p.Networks)),
	}
}

// DiskFormatName names a disk format as the vSphere Client does ("thin" → "Thin provision").
func DiskFormatName(f move.DiskFormat) string {
	switch move.DiskFormat(strings.ToLower(string(f))) {
	case move.Thin:
		return "Thin provision"
	case move.Thick:
		return "Thick provision lazy zeroed"
	case move.Eager:
		return "Thick provision eager zeroed"
	case "", move.Same:
		return "Same format as source"
	}
	return esc(string(f))
}

func vcenterText(ref approvals.VCenterRef, name string) string {
	s := esc(cmp.Or(ref.Name, name))
	if s == "" {
		return "_unknown_"
	}
	s = "*" + s + "*"
	if ref.Version != "" {
		s += " · vCenter " + esc(ref.Version)
	}
	if ref.Thumbprint != "" {
		s += "\n`" + esc(shortThumbprint(ref.Thumbprint)) + "`"
	}
	return s
}

// shortThumbprint keeps the first three and last two bytes: "AB:CD:EF…9A:BC".
func shortThumbprint(t string) string {
	if parts := strings.Split(t, ":"); len(parts) > 6 {
		return strings.Join(parts[:3], ":") + "…" + strings.Join(parts[len(parts)-2:], ":")
	}
	if utf8.RuneCountInString(t) > 16 {
		r := []rune(t)
		return string(r[:6]) + "…" + string(r[len(r)-4:])
	}
	return t
}

// A NIC kept on a portgroup of the same name because the request gave no mapping for it
// says so: the approver should know nobody chose it.
func networksText(nets, rules []move.Network) string {
	if len(nets) == 0 {
		return "_default_"
	}
	var lines []string
	for i, m := range nets {
		if i == maxListedNets {
			lines = append(lines, fmt.Sprintf("…and %d more", len(nets)-i))
			break
		}
		src := "all NICs"
		if m.Source != "" {
			src = esc(m.Source)
		}
		line := src + " → " + esc(m.Target)
		chosen := slices.ContainsFunc(rules, func(r move.Network) bool { return r.Source == "" || r.Source == m.Source })
		if m.Source != "" && m.Source == m.Target && !chosen {
			line += " _(same name, no mapping given)_"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// requestVMs are the VMs as the review shows them, or by name only before resolution.
func requestVMs(r *approvals.Request) []approvals.ReviewVM {
	if len(r.Review.VMs) > 0 {
		return r.Review.VMs
	}
	out := make([]approvals.ReviewVM, len(r.VMs))
	for i, n := range r.VMs {
		out[i] = approvals.ReviewVM{VM: move.VM{Name: n}}
	}
	return out
}

// vmList lists the first VMs with their size, and totals when there are several.
func vmList(r *approvals.Request) string {
	vms := requestVMs(r)
	var b strings.Builder
	fmt.Fprintf(&b, "*Virtual machines (%d)*", len(vms))
	cpus, mem, disk := 0, 0, 0.0
	for _, v := range vms {
		cpus, mem, disk = cpus+v.CPUs, mem+v.MemoryMB, disk+v.DiskGB
	}
	var total string
	if len(vms) > 1 && (cpus > 0 || mem > 0 || disk > 0) {
		total = "\nTotal: " + strings.Join(sizes(cpus, mem, disk), " · ")
	}
	for i, v := range vms {
		line := "\n• " + vmInSource(r, v.Name)
		if details := append(powerWords(v.PowerState), sizes(v.CPUs, v.MemoryMB, v.DiskGB)...); len(details) > 0 {
			line += " · " + strings.Join(details, " · ")
		}
		more := fmt.Sprintf("\n…and %d more", len(vms)-i)
		if i == maxListedVMs || b.Len()+len(line)+len(more)+len(total) > maxSectionChars {
			b.WriteString(more)
			break
		}
		b.WriteString(line)
	}
	b.WriteString(total)
	return b.String()
}

func powerWords(s string) []string {
	switch s {
	case "":
		return nil
	case "poweredOn":
		return []string{"powered on"}
	case "poweredOff":
		return []string{"powered off"}
	}
	return []string{esc(s)}
}

func sizes(cpus, memMB int, diskGB float64) []string {
	var out []string
	if cpus > 0 {
		out = append(out, fmt.Sprintf("%d vCPU", cpus))
	}
	if memMB > 0 {
		out = append(out, bytesText(float64(memMB)/1024)+" memory")
	}
	if diskGB > 0 {
		out = append(out, bytesText(diskGB)+" disk")
	}
	return out
}

// bytesText writes a size given in GB: "512 MB", "4 GB", "40.5 GB", "1.2 TB".
func bytesText(gb float64) string {
	switch {
	case gb < 1:
		return fmt.Sprintf("%.0f MB", gb*1024)
	case gb >= 1024:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", gb/1024), ".0") + " TB"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", gb), ".0") + " GB"
}

// findingsText lists blockers and warnings first, each with its hint; passed checks are
// counted rather than listed when there are many, so a large request stays readable.
func findingsText(r *approvals.Request) string {
	if len(r.Review.Findings) == 0 {
		return ""
	}
	var problems, passed []approvals.Finding
	for _, f := range r.Review.Findings {
		if f.Severity == approvals.SeverityOK {
			passed = append(passed, f)
		} else {
			problems = append(problems, f)
		}
	}
	slices.SortStableFunc(problems, func(a, b approvals.Finding) int {
		return severityRank(a.Severity) - severityRank(b.Severity)
	})
	var tail strings.Builder
	if len(passed) > maxListedOK {
		fmt.Fprintf(&tail, "\n✅ %d checks passed", len(passed))
	} else {
		for _, f := range passed {
			tail.WriteString(findingLine(f))
		}
	}
	if r.State == approvals.StatePending && r.Review.Blocked() {
		tail.WriteString("\n*This request cannot be approved until the blockers are fixed; run* `/xvm check` *and ask again.*")
	}
	var b strings.Builder
	b.WriteString("*Pre-flight checks*")
	for i, f := range problems {
		line := findingLine(f)
		more := fmt.Sprintf("\n…and %d more %s", len(problems)-i, plural(len(problems)-i, "finding"))
		if i == maxListedProblems || b.Len()+len(line)+len(more)+tail.Len() > maxSectionChars {
			b.WriteString(more)
			break
		}
		b.WriteString(line)
	}
	b.WriteString(tail.String())
	return b.String()
}

func findingLine(f approvals.Finding) string {
	line := "\n" + severityIcon(f.Severity) + " "
	if f.VM != "" {
		line += vmCode(f.VM) + ": "
	}
	line += escClip(f.Message, 300)
	if f.Hint != "" {
		line += " — _" + escClip(f.Hint, 300) + "_"
	}
	return line
}

func severityRank(s approvals.Severity) int {
	switch s {
	case approvals.SeverityBlocker:
		return 0
	case approvals.SeverityWarning:
		return 1
	}
	return 2
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func severityIcon(s approvals.Severity) string {
	switch s {
	case approvals.SeverityOK:
		return "✅"
	case approvals.SeverityBlocker:
		return "⛔"
	}
	return "⚠️"
}

// statusText is the decision so far and, once approved, the state of the jobs.
func statusText(r *approvals.Request, now time.Time) string {
	var lines []string
	switch r.State {
	case approvals.StatePending:
		line := "⏳ *Waiting for approval* — " + approvalCount(r)
		if r.Review.Blocked() {
			line = "⛔ *Blocked by pre-flight checks* — it cannot be approved; " + approvalCount(r)
		}
		if len(r.Approvals) > 0 {
			line += ": " + users(r.Approvers())
		}
		lines = append(lines, line)
		if !r.Review.Blocked() {
			lines = append(lines, approversLine(r))
		}
		if !r.ExpiresAt.IsZero() {
			// An absolute time stays true without an edit; a countdown would not.
			if r.ExpiresAt.After(now) {
				lines = append(lines, "Expires "+clock(r.ExpiresAt))
			} else {
				lines = append(lines, "Expiring now")
			}
		}
		return strings.Join(lines, "\n")
	case approvals.StateRejected:
		lines = append(lines, "❌ *Rejected*"+byWhom(r.Rejection, false))
	case approvals.StateExpired:
		at := ""
		if !r.ExpiresAt.IsZero() {
			at = " " + clock(r.ExpiresAt)
		}
		lines = append(lines, fmt.Sprintf("⌛ *Expired*%s with %s", at, approvalCount(r)))
	default:
		if len(r.Approvals) > 0 {
			at := r.DecidedAt
			if at.IsZero() {
				at = r.Approvals[len(r.Approvals)-1].At
			}
			lines = append(lines, fmt.Sprintf("✅ *Approved* by %s, %s", users(r.Approvers()), clock(at)))
		}
		if r.State == approvals.StateCancelled {
			lines = append(lines, "🚫 *Cancelled*"+byWhom(r.Cancellation, false))
		}
	}
	// Job counts mean something only once the request was approved.
	if jobsRan(r) {
		c := r.Counts()
		counts := fmt.Sprintf("%d queued · %d running · %d succeeded · %d failed",
			c[approvals.StateQueued]+c[""], c[approvals.StateRunning], c[approvals.StateSucceeded], c[approvals.StateFailed])
		if c[approvals.StateCancelled] > 0 {
			counts += fmt.Sprintf(" · %d cancelled", c[approvals.StateCancelled])
		}
		lines = append(lines, fmt.Sprintf("%s *%s* — %s", stateIcon(r.State), stateWord(r.State), counts),
			"`"+ProgressBar(r.Progress())+"`")
	}
	if d := totalDuration(r); d > 0 && r.State.Final() && jobsRan(r) {
		lines = append(lines, "Took "+humanDuration(d)+" · "+bytesText(movedGB(r))+" moved")
	}
	if q := r.RetriedBy.Request; q != "" {
		lines = append(lines, "🔁 The failed VMs are asked again in request "+esc(q))
	}
	return strings.Join(lines, "\n")
}

// statusPhrase is the state in a few plain words, for notifications.
func statusPhrase(r *approvals.Request) string {
	switch r.State {
	case approvals.StatePending:
		if r.Review.Blocked() {
			return "blocked by pre-flight checks"
		}
		return "waiting for approval (" + approvalCount(r) + ")"
	case approvals.StateQueued, approvals.StateRunning:
		return fmt.Sprintf("%s, %d%%", r.State, r.Progress())
	}
	return string(r.State)
}

func requestActions(r *approvals.Request) slack.Block {
	switch r.State {
	case approvals.StatePending:
		// No confirmation: Reject opens a dialog that asks for the reason, which is one.
		reject := slack.NewButtonBlockElement(ActionReject, r.ID, plain("Reject")).WithStyle(slack.StyleDanger)
		if r.Review.Blocked() {
			return slack.NewActionBlock("", reject)
		}
		approve := slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve")).WithStyle(slack.StylePrimary)
		return slack.NewActionBlock("", approve, reject)
	case approvals.StateApproved, approvals.StateQueued, approvals.StateRunning:
		cancel := slack.NewButtonBlockElement(ActionCancel, r.ID, plain("Cancel")).WithStyle(slack.StyleDanger).
			WithConfirm(slack.NewConfirmationBlockObject(plain("Cancel this request?"),
				mrkdwn("VMs that have not finished moving stay where they are; VMs already moved stay moved."),
				plain("Cancel request"), plain("Keep going")).WithStyle(slack.StyleDanger))
		return slack.NewActionBlock("", cancel)
	case approvals.StateFailed:
		if n := len(r.RetryVMs()); n > 0 && r.RetriedBy.Request == "" {
			retry := slack.NewButtonBlockElement(ActionRetry, r.ID, plain("Retry failed VMs")).
				WithConfirm(slack.NewConfirmationBlockObject(plain("Retry the failed VMs?"),
					mrkdwn(fmt.Sprintf("This asks again for the %s that failed without moving, to the same place, as a new request that needs approval. Only approvers may ask.", countVMs(n))),
					plain("Ask again"), plain("Not now")))
			return slack.NewActionBlock("", retry)
		}
	}
	return nil
}

// warningsSuffix counts the moves that succeeded with something left to look at.
func warningsSuffix(r *approvals.Request) string {
	n := 0
	for _, j := range r.Jobs {
		if j.State == approvals.StateSucceeded && j.Warning != "" {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d with a warning to look at, below)", n)
}

// finalLines gives each VM's outcome, failures first.
func finalLines(r *approvals.Request) string {
	rank := map[approvals.State]int{approvals.StateFailed: 0, approvals.StateCancelled: 1, approvals.StateRunning: 2, approvals.StateQueued: 3, approvals.StateSucceeded: 4}
	jobs := slices.Clone(r.Jobs)
	// Moves that left something to look at come before the ones that did not.
	key := func(j approvals.Job) int {
		k := rank[j.State] * 2
		if j.State == approvals.StateSucceeded && j.Warning == "" {
			k++
		}
		return k
	}
	slices.SortStableFunc(jobs, func(a, b approvals.Job) int { return key(a) - key(b) })
	var b strings.Builder
	nFailed := 0
	for _, j := range jobs {
		if j.State == approvals.StateFailed {
			nFailed++
		}
	}
	if nFailed > 0 {
		b.WriteString(failedLine(jobs[:nFailed]))
		jobs = jobs[nFailed:]
	}
	for i, j := range jobs {
		if i == 0 && b.Len() > 0 {
			b.WriteString("\n")
		}
		line := stateIcon(j.State) + " " + vmCode(j.VM) + " "
		switch j.State {
		case approvals.StateSucceeded:
			line += "moved"
			if !j.StartedAt.IsZero() && !j.EndedAt.IsZero() {
				line += " in " + humanDuration(j.EndedAt.Sub(j.StartedAt))
			}
			if j.Warning != "" {
				line += " — ⚠️ _" + escClip(j.Warning, 300) + "_"
			}
		case approvals.StateFailed:
			line += "failed" // not reached: failedLine says them all
		case approvals.StateCancelled:
			line += "cancelled"
			if j.Error != "" {
				line += ": " + escClip(j.Error, 400)
			}
		default:
			line += fmt.Sprintf("%s %d%%", stateWord(j.State), j.Progress)
		}
		if i > 0 {
			line = "\n" + line
		}
		more := fmt.Sprintf("\n…and %d more", len(jobs)-i)
		if i == maxFinalLines || b.Len()+len(line)+len(more) > maxSectionChars {
			b.WriteString(more)
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// jobsRan reports whether r's jobs were ever meant to run: it was approved. A request
// rejected, expired or withdrawn before that has jobs that were never queued, and its
// messages must not list them as waiting.
func jobsRan(r *approvals.Request) bool {
	return len(r.Jobs) > 0 && len(r.Approvals) >= max(r.Quorum, 1) &&
		r.State != approvals.StateRejected && r.State != approvals.StateExpired
}

// failedLine names the VMs that failed in one line: why each failed, and what to
// check, is said once, in the failure's own reply in the thread.
func failedLine(failed []approvals.Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "❌ *%s failed* — why, and what to check, in %s above: ", countVMs(len(failed)),
		map[bool]string{true: "its reply", false: "each one's reply"}[len(failed) == 1])
	for i, j := range failed {
		name := vmCode(j.VM)
		more := fmt.Sprintf(" and %d more", len(failed)-i)
		if i == maxListedVMs || b.Len()+len(name)+len(more)+2 > maxSectionChars/2 {
			b.WriteString(more)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
	}
	return b.String()
}

// movedGB is the disk size of the request's VMs whose job succeeded.
func movedGB(r *approvals.Request) float64 {
	disk := map[string]float64{}
	for _, v := range r.Review.VMs {
		disk[v.Name] = v.DiskGB
	}
	total := 0.0
	for _, j := range r.Jobs {
		if j.State == approvals.StateSucceeded {
			total += disk[j.VM]
		}
	}
	return total
}

// totalDuration runs from the decision (or the request) to the end.
func totalDuration(r *approvals.Request) time.Duration {
	if r.EndedAt.IsZero() {
		return 0
	}
	start := r.DecidedAt
	if start.IsZero() {
		start = r.CreatedAt
	}
	if start.IsZero() || r.EndedAt.Before(start) {
		return 0
	}
	return r.EndedAt.Sub(start)
}

func stateIcon(s approvals.State) string {
	switch s {
	case approvals.StatePending:
		return "⏳"
	case approvals.StateApproved, approvals.StateQueued, "":
		return "🕐"
	case approvals.StateRunning:
		return "🔄"
	case approvals.StateSucceeded:
		return "✅"
	case approvals.StateFailed, approvals.StateRejected:
		return "❌"
	case approvals.StateExpired:
		return "⌛"
	case approvals.StateCancelled:
		return "🚫"
	}
	return "•"
}

func stateWord(s approvals.State) string {
	if s == "" {
		return "Queued"
	}
	return capitalize(string(s))
}

func approvalCount(r *approvals.Request) string {
	q := max(r.Quorum, 1)
	return fmt.Sprintf("%d of %d %s", len(r.Approvals), q, plural(q, "approval"))
}

// byWhom is " by <@U…> at 15:04 UTC: reason" (or "… (reason)" inline in a sentence).
func byWhom(d *approvals.Decision, inline bool) string {
	if d == nil {
		return ""
	}
	s := ""
	if d.User != "" {
		s = fmt.Sprintf(" by <@%s>", d.User)
	}
	if !d.At.IsZero() && !inline {
		s += ", " + clock(d.At)
	}
	if d.Reason != "" {
		if inline {
			s += " (“" + escClip(d.Reason, 500) + "”)"
		} else {
			s += ": " + escClip(d.Reason, 1000)
		}
	}
	return s
}

func cancelledSuffix(c map[approvals.State]int) string {
	if n := c[approvals.StateCancelled]; n > 0 {
		return fmt.Sprintf(", %d cancelled", n)
	}
	return ""
}

func allOrCount(n, of int) string {
	switch {
	case of == 1:
		return "the VM"
	case n == of:
		return fmt.Sprintf("all %d VMs", of)
	}
	return fmt.Sprintf("%d of %d VMs", n, of)
}

func countVMs(n int) string {
	if n == 1 {
		return "1 VM"
	}
	return fmt.Sprintf("%d VMs", n)
}

func users(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "<@" + id + ">"
	}
	return strings.Join(out, ", ")
}

func sourceName(r *approvals.Request) string { return cmp.Or(r.SourceVC, r.Review.Source.Name) }
func targetName(r *approvals.Request) string { return cmp.Or(r.TargetVC, r.Review.Target.Name) }

// clock writes a time for Slack to show in each reader's own time zone, with the date
// unless it is today ("today at 15:04", "Dec 9, 2026 at 09:30"); clients that cannot
// format it show the fallback in UTC. The text is the same wherever the bot runs.
// (docs/slack-facts.md S4)
func clock(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} at {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// humanDuration writes "45s", "12m 30s", "3h 59m" or "2d 3h".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// vmCode writes a VM name as inline code, so _ and * in names do not turn into formatting.
func vmCode(name string) string {
	return "`" + escClip(strings.ReplaceAll(name, "`", "'"), 80) + "`"
}

// esc escapes the three characters Slack's mrkdwn reserves.
func esc(s string) string { return entityEncoder.Replace(s) }

// stripMrkdwn turns a mrkdwn sentence into notification text: no bold or code marks.
func stripMrkdwn(s string) string { return strings.NewReplacer("*", "", "`", "").Replace(s) }

func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func orDefault(s string) string { return cmp.Or(s, "_default_") }

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}
