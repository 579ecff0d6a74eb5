package bot

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
)

// changeWindows are the change windows of target vCenters (Config.Windows): what a
// review says of when approved moves start.
type changeWindows map[string][]approvals.Window

// finding tells the review when approved moves into target start, as of now, if target
// has change windows.
func (cw changeWindows) finding(target string, now time.Time) (approvals.Finding, bool) {
	ws := cw[target]
	if len(ws) == 0 {
		return approvals.Finding{}, false
	}
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.String()
	}
	next := approvals.NextStart(ws, now)
	if !next.After(now) {
		return approvals.Finding{Severity: approvals.SeverityOK, Kind: approvals.FindingChangeWindow, Message: fmt.Sprintf(
			"%s's change window is open now (%s): approved moves start at once", target, strings.Join(names, ", "))}, true
	}
	return approvals.Finding{Severity: approvals.SeverityWarning, Kind: approvals.FindingChangeWindow, Message: fmt.Sprintf(
		"moves into %s start only in its change windows (%s): once approved, they wait until %s",
		target, strings.Join(names, ", "), next.Format("Mon 2 Jan 15:04 MST")),
		Hint: "approve ahead of the window; the jobs start on their own when it opens"}, true
}

// current returns r with its change-window finding as of now, while its moves have not
// started: a review written while the window was open must not tell an approver who
// clicks after it closed that the moves start at once (nor the other way round). The
// stored record is not changed.
func (cw changeWindows) current(r *approvals.Request, now time.Time) *approvals.Request {
	switch r.State {
	case approvals.StatePending, approvals.StateApproved, approvals.StateQueued:
	default:
		return r
	}
	i := slices.IndexFunc(r.Review.Findings, func(f approvals.Finding) bool {
		// (Records written before findings had a Kind name it in words.)
		return f.Kind == approvals.FindingChangeWindow || (f.Kind == "" && strings.Contains(f.Message, "change window"))
	})
	f, ok := cw.finding(r.TargetVC, now)
	if i < 0 || !ok || r.Review.Findings[i] == f {
		return r
	}
	c := *r
	c.Review.Findings = slices.Clone(r.Review.Findings)
	c.Review.Findings[i] = f
	return &c
}
