package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// GroupMembers resolves a user group to its members (Slack's usergroups.users.list);
// GroupCache bounds how long an answer is used.
type GroupMembers interface {
	Members(ctx context.Context, groupID string) ([]string, error)
}

// ErrNoSigner refuses an approval that completes a quorum when no signing key is set.
var ErrNoSigner = errors.New("no approval signing key is configured")

// Service applies requests and decisions to the Store under the Policy.
type Service struct {
	store  Store
	policy Policy
	groups GroupMembers
	signer *Signer
	now    func() time.Time
	log    *slog.Logger
}

// NewService returns a Service. groups may be nil when no approver is a group.
func NewService(store Store, policy Policy, groups GroupMembers, logger *slog.Logger) *Service {
	return &Service{store: store, policy: policy, groups: groups, now: time.Now, log: logger.With("component", "approvals")}
}

// WithSigner sets the key that signs each approval as it completes its quorum. A Service
// without one refuses to complete an approval: an unsigned one could never run.
func (s *Service) WithSigner(signer *Signer) *Service { s.signer = signer; return s }

// WithClock replaces the clock (tests of expiry).
func (s *Service) WithClock(now func() time.Time) *Service { s.now = now; return s }

// Policy returns the policy in force.
func (s *Service) Policy() Policy { return s.policy }

// Store returns the underlying store.
func (s *Service) Store() Store { return s.store }

// Submit stores a new pending request: it fills the id (if empty), jobs, quorum and expiry.
// An undo request (UndoOf set) is recorded on the job whose way back it asks for.
func (s *Service) Submit(ctx context.Context, r *Request) error {
	now := s.now()
	if r.ID == "" {
		r.ID = NewRequestID()
	}
	r.State = StatePending
	r.CreatedAt = now
	r.Quorum = s.policy.QuorumFor(r.TargetVC)
	r.AskedOf = slices.Clone(s.policy.Approvers)
	r.Notify, _ = s.Notice()
	if s.policy.ExpireAfter > 0 {
		r.ExpiresAt = now.Add(s.policy.ExpireAfter)
	}
	r.Jobs = make([]Job, len(r.VMs))
	for i, vm := range r.VMs {
		r.Jobs[i] = Job{ID: JobID(r.ID, i), VM: vm}
	}
	if _, err := s.store.Create(ctx, r); err != nil {
		return fmt.Errorf("store request %s: %w", r.ID, err)
	}
	s.log.Info("request submitted", "request_id", r.ID, "direction", r.Direction, "vms", len(r.VMs), "src_vc", r.SourceVC, "dst_vc", r.TargetVC)
	if r.UndoOf != "" {
		// The way back is now this request's, not its planner's reservation. The request
		// stands without it: a job that does not name it only lets another undo be asked
		// for, which still needs an approval.
		if err := s.recordUndo(ctx, r); err != nil {
			s.log.Error("record the undo on its job", "request_id", r.ID, "job_id", r.UndoOf, "err", err)
		}
	}
	if r.RetryOf != "" {
		if err := s.recordRetry(ctx, r); err != nil {
			s.log.Error("record the retry on its request", "request_id", r.ID, "retry_of", r.RetryOf, "err", err)
		}
	}
	return nil
}

// Get returns a request.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	r, _, err := s.store.Get(ctx, id)
	return r, err
}

// Head returns request id as cheaply as the store can: without its jobs (Jobs nil, Tally
// set) where the store keeps them apart (JobStore), whole otherwise.
func (s *Service) Head(ctx context.Context, id string) (*Request, error) {
	if js, ok := s.store.(JobStore); ok {
		r, _, err := js.Head(ctx, id)
		return r, err
	}
	return s.Get(ctx, id)
}

// ListHeads lists every request, oldest first, as cheaply as the store can: without their
// jobs where it keeps them apart (HeadLister), whole otherwise. A caller that needs a
// request's jobs or VMs reads it with Get.
func (s *Service) ListHeads(ctx context.Context) ([]*Request, error) {
	if hl, ok := s.store.(HeadLister); ok {
		return hl.ListHeads(ctx)
	}
	return s.store.List(ctx)
}

// update applies fn to the stored request with compare-and-swap, retrying on conflict.
// fn must be repeatable: it sees a fresh copy each try. An error from fn aborts, and the
// request as fn left it is returned with it. Every change of a stored request goes
// through a named method of Service, which says what rule the change follows.
func (s *Service) update(ctx context.Context, id string, fn func(r *Request) error) (*Request, error) {
	for attempt := 0; ; attempt++ {
		r, rev, err := s.store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(r); err != nil {
			return r, err
		}
		if _, err := s.store.Update(ctx, r, rev); err == nil {
			return r, nil
		} else if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("update request %s: %w", id, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if attempt > 1000 {
			return nil, fmt.Errorf("update request %s: too much contention: %w", id, ErrConflict)
		}
	}
}

// Approve counts user's approval. won is true for exactly one caller: the one whose
// approval completed the quorum and was stored; that caller queues the jobs.
func (s *Service) Approve(ctx context.Context, id, user string) (r *Request, won bool, err error) {
	members, unresolved := s.members(ctx)
	r, err = s.update(ctx, id, func(r *Request) error {
		if err := s.expireIfDue(r); err != nil {
			return err
		}
		now := s.now()
		won, err = r.Approve(s.policyFor(r), user, members, now)
		if err != nil || !won {
			return orUnresolved(err, unresolved)
		}
		// The approval is signed in the same write that records it: no other write can
		// make a request approved in a way a worker accepts.
		if s.signer == nil {
			return ErrNoSigner
		}
		return s.signer.SealApproval(r, s.policy.RunWithin, now)
	})
	if err != nil {
		won = false
	}
	if errors.Is(err, ErrExpired) {
		// Record the expiry the click discovered, so the message can say so.
		r, _ = s.update(ctx, id, func(r *Request) error { return r.Expire(s.now()) })
		return r, false, fmt.Errorf("%s expired: %w", id, ErrExpired)
	}
	return r, won, err
}

// Reject records a rejection with its reason.
func (s *Service) Reject(ctx context.Context, id, user, reason string) (*Request, error) {
	members, unresolved := s.members(ctx)
	return s.update(ctx, id, func(r *Request) error {
		return orUnresolved(r.Reject(s.policyFor(r), user, reason, members, s.now()), unresolved)
	})
}

// Cancel withdraws a request (requester or approver only).
func (s *Service) Cancel(ctx context.Context, id, user, reason string) (*Request, error) {
	members, unresolved := s.members(ctx)
	return s.update(ctx, id, func(r *Request) error {
		return orUnresolved(r.Cancel(s.policyFor(r), user, reason, members, s.now()), unresolved)
	})
}

// MayReject reports, without changing anything, whether user may reject request id now:
// nil, or the error Reject would return (ErrNotApprover, ErrAlreadyDecided, ErrExpired…).
// The bot asks before opening the reason dialog, and Reject checks again on submission.
func (s *Service) MayReject(ctx context.Context, id, user string) (*Request, error) {
	members, unresolved := s.members(ctx)
	r, _, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	probe := *r
	return r, orUnresolved(probe.Reject(s.policyFor(r), user, "", members, s.now()), unresolved)
}

// ExpireDue moves every pending request past its deadline to expired and returns them.
func (s *Service) ExpireDue(ctx context.Context) ([]*Request, error) {
	all, err := s.ListHeads(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Request
	now := s.now()
	for _, r := range all {
		if r.State != StatePending || r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt) {
			continue
		}
		got, err := s.update(ctx, r.ID, func(r *Request) error { return r.Expire(now) })
		if errors.Is(err, ErrTransition) {
			continue // decided meanwhile
		}
		if err != nil {
			return out, err
		}
		out = append(out, got)
	}
	return out, nil
}

// IsApprover reports whether user may approve under the policy.
func (s *Service) IsApprover(ctx context.Context, user string) (bool, error) {
	members, unresolved := s.members(ctx)
	if s.policy.IsApprover(user, members) {
		return true, nil
	}
	return false, unresolved
}

func (s *Service) policyFor(r *Request) Policy {
	p := s.policy
	if r.Quorum > 0 {
		p.Quorum = r.Quorum
	}
	return p
}

func (s *Service) expireIfDue(r *Request) error {
	if r.State == StatePending && !r.ExpiresAt.IsZero() && !s.now().Before(r.ExpiresAt) {
		return fmt.Errorf("%s expired at %s: %w", r.ID, r.ExpiresAt.Format(time.RFC3339), ErrExpired)
	}
	return nil
}

// members resolves the approver groups. A group that cannot be resolved is left out of
// the map and named in the error (ErrGroupUnavailable): approvers listed by name still
// decide, and nobody is let in on a group list that cannot be had.
func (s *Service) members(ctx context.Context) (map[string][]string, error) {
	groups := s.policy.Groups()
	if len(groups) == 0 || s.groups == nil {
		return nil, nil
	}
	out := make(map[string][]string, len(groups))
	var errs []error
	for _, g := range groups {
		m, err := s.groups.Members(ctx, g)
		if err != nil {
			errs = append(errs, fmt.Errorf("approver group %s: %w: %w", g, ErrGroupUnavailable, err))
			continue
		}
		out[g] = m
	}
	return out, errors.Join(errs...)
}

// orUnresolved turns a refusal for not being an approver into ErrGroupUnavailable when
// an approver group could not be resolved: the person may be in it, and must be told
// that, not that they are a stranger.
func orUnresolved(err, unresolved error) error {
	if unresolved != nil && (errors.Is(err, ErrNotApprover) || errors.Is(err, ErrNotAllowed)) {
		return fmt.Errorf("%w (%w)", unresolved, err)
	}
	return err
}
