package approvals

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Policy says who may approve and how many must.
type Policy struct {
	// Approvers are Slack user IDs (U…, W…) and user-group IDs (S…).
	Approvers []string
	// Quorum is how many distinct approvers a request needs (at least 1).
	Quorum int
	// QuorumByVCenter overrides Quorum for requests whose target is the named vCenter,
	// e.g. the production vCenter needs two approvers.
	QuorumByVCenter   map[string]int
	AllowSelfApproval bool
	ExpireAfter       time.Duration
	// RunWithin is how long after its approval a job may still start (default
	// DefaultRunWithin); it is signed into the approval, so workers hold to it.
	RunWithin time.Duration
	// Notify is how approvers hear of a new request (default NotifyMention).
	Notify Notify
	// RemindBefore are the times before its expiry at which a pending request reminds its
	// approvers, once each (empty: no reminder).
	RemindBefore []time.Duration
}

// QuorumFor returns how many distinct approvers a request moving VMs into target needs.
func (p Policy) QuorumFor(target string) int {
	if q, ok := p.QuorumByVCenter[target]; ok && q > 0 {
		return q
	}
	return max(p.Quorum, 1)
}

// Errors a caller shows to the person who clicked.
var (
	ErrNotApprover    = errors.New("not an approver")
	ErrSelfApproval   = errors.New("requesters may not approve their own request")
	ErrAlreadyDecided = errors.New("request already decided")
	ErrExpired        = errors.New("request expired")
	ErrAlreadyCounted = errors.New("approval already counted")
	ErrNotAllowed     = errors.New("not allowed")
	// ErrBlocked refuses an approval of a request whose pre-flight found a blocker. The
	// bot never offers such a request for approval; this holds whatever reaches Approve.
	ErrBlocked = errors.New("pre-flight found a blocker")
	// ErrNotUser refuses a decision made in the name of something that is not a Slack
	// user: a user-group ID, or an ID of no known shape. Nothing is changed.
	ErrNotUser = errors.New("not a Slack user ID")
	// ErrGroupUnavailable refuses a decision by someone who is not listed by name while
	// the members of an approver group cannot be known (Slack does not answer, and the
	// last list it gave is older than the cache may serve). Approvers listed by name are
	// not affected.
	ErrGroupUnavailable = errors.New("approver group members unavailable")
)

// Shapes of Slack IDs: users are U… (W… on Enterprise Grid), user groups S…, followed by
// upper-case letters and digits.
var (
	userIDShape  = regexp.MustCompile(`^[UW][A-Z0-9]+$`)
	groupIDShape = regexp.MustCompile(`^S[A-Z0-9]+$`)
)

// IsUserID reports whether id has the shape of a Slack user ID. Only such IDs may decide,
// and only approver entries of that shape are compared with them: a group ID presented
// as a user is nobody.
func IsUserID(id string) bool { return userIDShape.MatchString(id) }

// IsGroupID reports whether id has the shape of a Slack user-group ID.
func IsGroupID(id string) bool { return groupIDShape.MatchString(id) }

// Groups returns the user-group IDs among the approvers.
func (p Policy) Groups() []string {
	var out []string
	for _, a := range p.Approvers {
		if IsGroupID(a) {
			out = append(out, a)
		}
	}
	return out
}

// IsApprover reports whether user is listed directly or is a member of a listed group.
// members holds the resolved members of each approver group. A user is compared only
// with the user entries of the list, and a user ID of any other shape is never an approver.
func (p Policy) IsApprover(user string, members map[string][]string) bool {
	if !IsUserID(user) {
		return false
	}
	for _, a := range p.Approvers {
		switch {
		case IsUserID(a):
			if a == user {
				return true
			}
		case IsGroupID(a):
			if slices.Contains(members[a], user) {
				return true
			}
		}
	}
	return false
}

// checkUser refuses a decision in the name of anything but a Slack user.
func checkUser(user string) error {
	if !IsUserID(user) {
		return fmt.Errorf("%q: %w", user, ErrNotUser)
	}
	return nil
}

// Approve records user's approval if the policy allows it. It returns true when this
// approval completed the quorum and moved the request to approved: the caller that sees
// true (after storing the record with CAS) is the one that queues the jobs.
func (r *Request) Approve(p Policy, user string, members map[string][]string, now time.Time) (bool, error) {
	if err := checkUser(user); err != nil {
		return false, err
	}
	if err := r.decidable(now); err != nil {
		return false, err
	}
	if !p.IsApprover(user, members) {
		return false, fmt.Errorf("%s may not approve %s: %w", user, r.ID, ErrNotApprover)
	}
	if r.Review.Blocked() {
		return false, fmt.Errorf("%s cannot be approved: %w", r.ID, ErrBlocked)
	}
	if user == r.Requester && !p.AllowSelfApproval {
		return false, ErrSelfApproval
	}
	if slices.Contains(r.Approvers(), user) {
		return false, ErrAlreadyCounted
	}
	r.Approvals = append(r.Approvals, Decision{User: user, At: now})
	if len(r.Approvals) < max(r.Quorum, 1) {
		return false, nil
	}
	r.DecidedAt = now
	if err := r.moveTo(StateApproved, now); err != nil {
		return false, err
	}
	for i := range r.Jobs {
		r.Jobs[i].State = StateQueued
	}
	return true, nil
}

// Reject records an approver's rejection.
func (r *Request) Reject(p Policy, user, reason string, members map[string][]string, now time.Time) error {
	if err := checkUser(user); err != nil {
		return err
	}
	if err := r.decidable(now); err != nil {
		return err
	}
	if !p.IsApprover(user, members) {
		return fmt.Errorf("%s may not reject %s: %w", user, r.ID, ErrNotApprover)
	}
	r.Rejection = &Decision{User: user, At: now, Reason: reason}
	r.DecidedAt = now
	return r.moveTo(StateRejected, now)
}

// Cancel withdraws a request that has not started; only the requester or an approver may.
func (r *Request) Cancel(p Policy, user, reason string, members map[string][]string, now time.Time) error {
	if err := checkUser(user); err != nil {
		return err
	}
	if user != r.Requester && !p.IsApprover(user, members) {
		return fmt.Errorf("%s may not cancel %s: %w", user, r.ID, ErrNotAllowed)
	}
	if r.State.Final() {
		return fmt.Errorf("%s is %s: %w", r.ID, r.State, ErrAlreadyDecided)
	}
	if err := r.moveTo(StateCancelled, now); err != nil {
		return err
	}
	r.Cancellation = &Decision{User: user, At: now, Reason: reason}
	for i := range r.Jobs {
		if !r.Jobs[i].State.Final() && r.Jobs[i].State != StateRunning {
			r.Jobs[i].State = StateCancelled
		}
	}
	return nil
}

// Expire moves a pending request past its deadline to expired.
func (r *Request) Expire(now time.Time) error {
	if r.State != StatePending || r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt) {
		return fmt.Errorf("%s is not due to expire: %w", r.ID, ErrTransition)
	}
	r.DecidedAt = now
	return r.moveTo(StateExpired, now)
}

func (r *Request) decidable(now time.Time) error {
	if r.State != StatePending {
		return fmt.Errorf("%s is already %s: %w", r.ID, r.State, ErrAlreadyDecided)
	}
	if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
		return fmt.Errorf("%s expired at %s: %w", r.ID, r.ExpiresAt.Format(time.RFC3339), ErrExpired)
	}
	return nil
}
