package approvals

import (
	"context"
	"slices"
	"time"
)

// AwaitsDecisionOf reports whether user could approve r now: it is pending and not
// expired, user is an approver under p (members resolve the groups), it is not blocked,
// not the user's own (unless self-approval is allowed), and the user has not approved
// it yet. It changes nothing.
func (r *Request) AwaitsDecisionOf(p Policy, user string, members map[string][]string, now time.Time) bool {
	probe := *r
	probe.Approvals = slices.Clone(r.Approvals)
	probe.Jobs = slices.Clone(r.Jobs) // an approval that completes the quorum queues them

	_, err := probe.Approve(p, user, members, now)
	return err == nil
}

// AwaitingDecision returns the requests of all that user could approve now, as given.
// An approver group that cannot be resolved counts for nobody (and is named in the error,
// ErrGroupUnavailable, next to what could be found).
func (s *Service) AwaitingDecision(ctx context.Context, user string, all []*Request) ([]*Request, error) {
	members, unresolved := s.members(ctx)
	now := s.now()
	var out []*Request
	for _, r := range all {
		if r.AwaitsDecisionOf(s.policyFor(r), user, members, now) {
			out = append(out, r)
		}
	}
	return out, unresolved
}
