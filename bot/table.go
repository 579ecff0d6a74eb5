package bot

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
)

// A request of more than Config.TableAbove VMs shows its progress in its thread as one
// table message, edited in place within the edit budget, instead of one message per VM:
// a 200-VM wave would otherwise post two hundred messages at Slack's pace of about one a
// second per channel (docs/slack-facts.md S3) and spend the edit budget many times over.
// Failures are still posted one by one: each is something a person acts on.

// Budgets of the table message.
const (
	maxTableRunning = 10 // running VMs named
	maxTableCauses  = 8  // failure causes shown
	maxCauseVMs     = 10 // VMs named per cause
)

// tabled reports whether r's thread shows its progress as one table.
func (b *Bot) tabled(r *approvals.Request) bool {
	return b.cfg.TableAbove >= 0 && r.JobCount() > b.cfg.TableAbove
}

// RenderTable renders the progress table of a large request: how many VMs are in each
// state, the rate of moves and when the rest should be done, the VMs moving now, and the
// failures grouped by cause with what to check. now sets the rate and the ETA.
func RenderTable(r *approvals.Request, now time.Time) (text string, blocks []slack.Block) {
	c := r.Counts()
	n := len(r.Jobs)
	ended := c[approvals.StateSucceeded] + c[approvals.StateFailed] + c[approvals.StateCancelled]
	head := fmt.Sprintf("📊 *Progress of %s* · %s · %s → %s", esc(r.ID), countVMs(n), esc(sourceName(r)), esc(targetName(r)))
	counts := fmt.Sprintf("🕐 %d queued · 🔄 %d running · ✅ %d succeeded · ❌ %d failed",
		c[approvals.StateQueued]+c[""], c[approvals.StateRunning], c[approvals.StateSucceeded], c[approvals.StateFailed])
	if k := c[approvals.StateCancelled]; k > 0 {
		counts += fmt.Sprintf(" · 🚫 %d cancelled", k)
	}
	lines := []string{head, counts, "`" + ProgressBar(r.Progress()) + "`", paceText(r, ended, now)}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(strings.Join(lines, "\n")), nil, nil))
	if s := runningText(r); s != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(s), nil, nil))
	}
	if s := waitingText(r); s != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(s), nil, nil))
	}
	if s := causesText(r); s != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(s), nil, nil))
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf(
		"This table is edited as the request moves; each failure is also posted below · `/xvm status %s`", esc(r.ID)))))
	text = fmt.Sprintf("Progress of %s: %d of %d VMs done, %d succeeded, %d failed", r.ID, ended, n,
		c[approvals.StateSucceeded], c[approvals.StateFailed])
	return esc(text), blocks
}

// paceText is the rate of moves since the first started and, while some are left, when
// the last should end at that rate.
func paceText(r *approvals.Request, ended int, now time.Time) string {
	var first time.Time
	for _, j := range r.Jobs {
		if !j.StartedAt.IsZero() && (first.IsZero() || j.StartedAt.Before(first)) {
			first = j.StartedAt
		}
	}
	if r.State.Final() && !r.EndedAt.IsZero() {
		now = r.EndedAt
	}
	elapsed := now.Sub(first)
	if first.IsZero() || ended == 0 || elapsed <= 0 {
		return "⏱ Rate: — · ETA: —"
	}
	perMin := float64(ended) / elapsed.Minutes()
	line := fmt.Sprintf("⏱ Rate: %.1f moves/min", perMin)
	if left := len(r.Jobs) - ended; left > 0 && !r.State.Final() {
		eta := time.Duration(float64(left) / perMin * float64(time.Minute))
		line += fmt.Sprintf(" · ETA: %s (about %s)", clock(now.Add(eta)), humanDuration(eta))
	} else {
		line += " · took " + humanDuration(elapsed)
	}
	return line
}

// runningText names the VMs moving now, with their progress.
func runningText(r *approvals.Request) string {
	var running []approvals.Job
	for _, j := range r.Jobs {
		if j.State == approvals.StateRunning {
			running = append(running, j)
		}
	}
	if len(running) == 0 {
		return ""
	}
	parts := make([]string, 0, min(len(running), maxTableRunning))
	for _, j := range running[:min(len(running), maxTableRunning)] {
		parts = append(parts, fmt.Sprintf("%s %d%%", vmCode(j.VM), j.Progress))
	}
	s := "*Moving now:* " + strings.Join(parts, " · ")
	if more := len(running) - maxTableRunning; more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return clipRunes(s, maxSectionChars)
}

// waitingText says what queued VMs wait for (a change window), once per reason.
func waitingText(r *approvals.Request) string {
	notes := map[string]int{}
	var order []string
	for _, j := range r.Jobs {
		if j.Note == "" || j.State.Final() {
			continue
		}
		if notes[j.Note] == 0 {
			order = append(order, j.Note)
		}
		notes[j.Note]++
	}
	var lines []string
	for _, note := range order[:min(len(order), 3)] {
		lines = append(lines, fmt.Sprintf("⏳ %s: %s", countVMs(notes[note]), escClip(note, 300)))
	}
	return strings.Join(lines, "\n")
}

// cause is the failures of a request that share a cause.
type cause struct {
	fault, message, hint string
	vms                  []string
}

// causeOf is what groups a failure: the fault's kind (the last part of "step · fault",
// the step naming the very task), else the message.
func causeOf(j approvals.Job) string {
	if j.Fault != "" {
		parts := strings.Split(j.Fault, " · ")
		return parts[len(parts)-1]
	}
	return cmp.Or(j.Error, "no reason given")
}

// causesText lists the failures grouped by cause, the largest group first.
func causesText(r *approvals.Request) string {
	byCause := map[string]*cause{}
	var all []*cause
	for _, j := range r.Jobs {
		if j.State != approvals.StateFailed {
			continue
		}
		k := causeOf(j)
		c := byCause[k]
		if c == nil {
			c = &cause{message: j.Error, hint: j.Hint}
			if j.Fault != "" {
				c.fault = k
			}
			byCause[k] = c
			all = append(all, c)
		}
		c.vms = append(c.vms, j.VM)
	}
	if len(all) == 0 {
		return ""
	}
	slices.SortStableFunc(all, func(a, b *cause) int { return len(b.vms) - len(a.vms) })
	var b strings.Builder
	b.WriteString("*Failures by cause*")
	for i, c := range all {
		if i == maxTableCauses {
			fmt.Fprintf(&b, "\n…and %d more %s", len(all)-i, plural(len(all)-i, "cause"))
			break
		}
		line := fmt.Sprintf("\n❌ *%s*", countVMs(len(c.vms)))
		if c.fault != "" {
			line += " · `" + escClip(strings.ReplaceAll(c.fault, "`", "'"), 100) + "`"
		}
		line += ": " + escClip(cmp.Or(c.message, "no reason given"), 300)
		if c.hint != "" {
			line += " — _" + escClip(c.hint, 300) + "_"
		}
		names := make([]string, 0, maxCauseVMs)
		for _, vm := range c.vms[:min(len(c.vms), maxCauseVMs)] {
			names = append(names, vmCode(vm))
		}
		line += "\n      " + strings.Join(names, ", ")
		if more := len(c.vms) - maxCauseVMs; more > 0 {
			line += fmt.Sprintf(" and %d more", more)
		}
		if b.Len()+len(line) > maxSectionChars-40 {
			fmt.Fprintf(&b, "\n…and %d more %s", len(all)-i, plural(len(all)-i, "cause"))
			break
		}
		b.WriteString(line)
	}
	return b.String()
}
