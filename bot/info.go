package bot

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/vcenter"
)

// How much /xvm list shows: live requests and those that ended recently, a few per group.
const (
	listRecentFor  = 24 * time.Hour
	maxListedGroup = 15
)

// RenderList renders /xvm list: requests grouped as pending, queued, running and recent
// (ended in the last 24 hours), newest first, each with who asked and its progress.
func RenderList(all []*approvals.Request, now time.Time) (text string, blocks []slack.Block) {
	groups := []struct {
		title string
		match func(*approvals.Request) bool
	}{
		{"⏳ Waiting for approval", func(r *approvals.Request) bool { return r.State == approvals.StatePending }},
		{"🕐 Queued", func(r *approvals.Request) bool {
			return r.State == approvals.StateApproved || r.State == approvals.StateQueued
		}},
		{"🔄 Running", func(r *approvals.Request) bool { return r.State == approvals.StateRunning }},
		{"Recent (ended in the last 24 hours)", func(r *approvals.Request) bool {
			return r.State.Final() && now.Sub(r.EndedAt) <= listRecentFor
		}},
	}
	newest := slices.Clone(all)
	slices.SortStableFunc(newest, func(a, b *approvals.Request) int { return b.CreatedAt.Compare(a.CreatedAt) })
	total := 0
	var counts []string
	for _, g := range groups {
		var lines []string
		n := 0
		for _, r := range newest {
			if !g.match(r) {
				continue
			}
			n++
			if n <= maxListedGroup {
				lines = append(lines, listLine(r, now))
			}
		}
		if n == 0 {
			continue
		}
		total += n
		counts = append(counts, fmt.Sprintf("%d %s", n, strings.ToLower(strings.TrimLeft(g.title, "⏳🕐🔄 "))))
		if n > maxListedGroup {
			lines = append(lines, fmt.Sprintf("…and %d more", n-maxListedGroup))
		}
		body := fmt.Sprintf("*%s (%d)*\n%s", g.title, n, strings.Join(lines, "\n"))
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipEscaped(body, maxSectionChars)), nil, nil))
	}
	if total == 0 {
		text = "No requests pending, queued, running or ended in the last 24 hours."
		return text, []slack.Block{slack.NewSectionBlock(mrkdwn(text), nil, nil)}
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn("`/xvm status &lt;id&gt;` shows one request with its decisions; `/xvm cancel &lt;id&gt;` withdraws it.")))
	return "Requests: " + strings.Join(counts, ", "), blocks
}

func listLine(r *approvals.Request, now time.Time) string {
	line := fmt.Sprintf("• `%s` %s %s · %s → %s · <@%s>", r.ID, r.Direction, countVMs(len(r.VMs)), esc(r.SourceVC), esc(r.TargetVC), r.Requester)
	switch r.State {
	case approvals.StatePending:
		line += " · " + approvalCount(r)
		if !r.ExpiresAt.IsZero() && r.ExpiresAt.After(now) {
			line += ", expires " + clock(r.ExpiresAt) // stays true while the answer is on screen
		}
	case approvals.StateQueued, approvals.StateRunning, approvals.StateApproved:
		c := r.Counts()
		line += fmt.Sprintf(" · %d/%d done `%s`", c[approvals.StateSucceeded]+c[approvals.StateFailed]+c[approvals.StateCancelled], len(r.Jobs), ProgressBar(r.Progress()))
	default:
		line += " · " + stateIcon(r.State) + " " + string(r.State)
		if d := totalDuration(r); d > 0 && len(r.Jobs) > 0 && (r.State == approvals.StateSucceeded || r.State == approvals.StateFailed) {
			line += " in " + humanDuration(d)
		}
	}
	return line
}

// RenderVCenters renders /xvm vcenters: each configured vCenter with whether it answers,
// its version and the full certificate thumbprint, a loud warning for those whose
// certificate is not verified, and a note where insecure: true is set but has no effect.
// Past maxOwnSections vCenters each gets a line instead of a section, and past what one
// message holds the rest are counted.
func RenderVCenters(infos []vcInfo) (text string, blocks []slack.Block) {
	var names, each []string
	compact := len(infos) > maxOwnSections
	for _, in := range infos {
		names = append(names, in.ep.Name)
		each = append(each, vcenterListing(in, compact))
	}
	blocks = packSections(each, "vCenters")
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn("`migrate` moves from the home vCenter unless you say `from`; `import` moves into it unless you say `to`.")))
	return clipRunes("vCenters: "+strings.Join(names, ", "), maxSectionChars), blocks
}

// vcenterListing is one vCenter of /xvm vcenters, escaped; compact leaves out the URL and the
// SHA-256 and keeps the warnings short.
func vcenterListing(in vcInfo, compact bool) string {
	ep := in.ep
	head := "✅ *" + esc(ep.Name) + "*"
	var f *vcenter.Fault
	switch {
	case errors.As(in.err, &f) && f.Kind == vcenter.KindInvalidLogin:
		head = "❌ *" + esc(ep.Name) + "* — login refused"
	case in.err != nil || !ep.Reachable:
		head = "❌ *" + esc(ep.Name) + "* — not reachable"
	}
	if ep.Home {
		head += " (home)"
	}
	lines := []string{head}
	if ep.Version != "" {
		lines = append(lines, "vCenter "+esc(ep.Version))
	}
	if ep.URL != "" && !compact {
		lines = append(lines, esc(ep.URL))
	}
	if ep.Thumbprint != "" {
		lines = append(lines, "SHA-1 `"+esc(ep.Thumbprint)+"`")
	}
	if ep.ThumbprintSHA256 != "" && !compact {
		lines = append(lines, "SHA-256 `"+esc(ep.ThumbprintSHA256)+"`")
	}
	errChars := 500
	if compact {
		errChars = 150
	}
	if in.err != nil {
		lines = append(lines, "_"+escClip(in.err.Error(), errChars)+"_")
	}
	switch {
	case ep.CertCheck == vcenter.CertUnverified && compact:
		lines = append(lines, "🚨 *INSECURE: certificate NOT verified* — pin its thumbprint")
	case ep.CertCheck == vcenter.CertUnverified:
		lines = append(lines, "🚨 *INSECURE: certificate NOT verified* (insecure: true and no thumbprint) — anyone on the path can impersonate this vCenter and receive the service account's password. Pin its thumbprint.")
	case ep.CertCheck == vcenter.CertPinnedInsecureIgnored && compact:
		lines = append(lines, "🔒 pinned; `insecure: true` has no effect")
	case ep.CertCheck == vcenter.CertPinnedInsecureIgnored:
		lines = append(lines, "🔒 Certificate pinned to the configured thumbprint (the certificate chain is not verified); `insecure: true` has no effect while a thumbprint is set.")
	}
	if compact {
		return clipEscaped(strings.Join(lines, " · "), maxSectionChars)
	}
	return clipEscaped(strings.Join(lines, "\n"), maxSectionChars)
}

// Lists that grow with the configuration: up to maxOwnSections items get a section each;
// more share sections, one a line, and past maxListChars (with room left in the message
// for what surrounds the list: Slack refuses a message of about 13,000 characters of
// blocks) the rest is counted, not shown.
const (
	maxOwnSections = 20
	maxListChars   = 9000
)

// packSections makes sections of items (each already escaped and clipped to a section):
// one per item while there are few, else as many per section as fit.
func packSections(items []string, what string) []slack.Block {
	var texts []string
	var counts []int // items in each text
	total, shown := 0, 0
	for _, it := range items {
		n := utf8.RuneCountInString(it)
		if total+n > maxListChars {
			break
		}
		total += n
		shown++
		last := len(texts) - 1
		if len(items) > maxOwnSections && last >= 0 && utf8.RuneCountInString(texts[last])+1+n <= maxSectionChars {
			texts[last] += "\n" + it
			counts[last]++
			continue
		}
		texts, counts = append(texts, it), append(counts, 1)
	}
	var blocks []slack.Block
	for _, t := range texts {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(t), nil, nil))
	}
	if shown < len(items) {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(fmt.Sprintf("…and %d more %s, not shown here.", len(items)-shown, what)), nil, nil))
	}
	return blocks
}
