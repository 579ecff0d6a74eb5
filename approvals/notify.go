package approvals

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Notify is how the approvers of a new request are told of it.
type Notify string

const (
	// NotifyMention names the approvers in the request's message, so Slack notifies them.
	NotifyMention Notify = "mention"
	// NotifyDM sends each approver a direct message with the request and its buttons.
	NotifyDM Notify = "dm"
	// NotifyNone tells nobody: approvers watch the channel themselves.
	NotifyNone Notify = "none"
)

// Valid reports whether n is one of the known ways ("" counts as the default).
func (n Notify) Valid() bool {
	switch n {
	case "", NotifyMention, NotifyDM, NotifyNone:
		return true
	}
	return false
}

// DefaultRemindBefore is when a pending request reminds its approvers by default: once,
// an hour before it expires.
var DefaultRemindBefore = []time.Duration{time.Hour}

// DirectMessage is where the transport shows a request to one approver (in Slack, the IM
// channel and the message's timestamp); opaque here, like Request.MessageTS.
type DirectMessage struct {
	User    string `json:"user"`
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// DM returns the direct message of the request in channel, or nil.
func (r *Request) DM(channel string) *DirectMessage {
	for i := range r.DMs {
		if r.DMs[i].Channel == channel {
			return &r.DMs[i]
		}
	}
	return nil
}

// ReminderDue returns the reminder a pending request owes at now: the earliest of before
// (times before the expiry) whose moment has come and that was not posted yet. A request
// that is decided, has expired or has no expiry owes none; several that came due together
// (a bot that was down) are one reminder.
func (r *Request) ReminderDue(before []time.Duration, now time.Time) (time.Duration, bool) {
	if r.State != StatePending || r.ExpiresAt.IsZero() || !now.Before(r.ExpiresAt) || r.Review.Blocked() {
		return 0, false
	}
	var due []time.Duration
	for _, d := range before {
		if d > 0 && !now.Before(r.ExpiresAt.Add(-d)) && !slices.Contains(r.Reminded, d) {
			due = append(due, d)
		}
	}
	if len(due) == 0 {
		return 0, false
	}
	return slices.Min(due), true
}

// markReminded records reminder d, and every longer one that is due with it, as posted.
func (r *Request) markReminded(before []time.Duration, d time.Duration, now time.Time) bool {
	got, ok := r.ReminderDue(before, now)
	if !ok || got != d {
		return false
	}
	for _, b := range before {
		if b >= d && !slices.Contains(r.Reminded, b) {
			r.Reminded = append(r.Reminded, b)
		}
	}
	return true
}

// Notice is how the approvers of requests are told, from the policy.
func (s *Service) Notice() (Notify, []time.Duration) {
	n := s.policy.Notify
	if n == "" {
		n = NotifyMention
	}
	return n, s.policy.RemindBefore
}

// ClaimReminder records the reminder request id owes now as posted and returns it; only
// one caller wins it (the write is compare-and-swap), so a reminder is posted once even by
// several bots. ErrUnchanged: none is due.
func (s *Service) ClaimReminder(ctx context.Context, id string) (*Request, time.Duration, error) {
	var d time.Duration
	r, err := s.change(ctx, id, func(r *Request) (bool, error) {
		var ok bool
		now := s.now()
		if d, ok = r.ReminderDue(s.policy.RemindBefore, now); !ok {
			return false, nil
		}
		return r.markReminded(s.policy.RemindBefore, d, now), nil
	})
	return r, d, err
}

// RemindersDue lists the pending requests that owe a reminder now.
func (s *Service) RemindersDue(ctx context.Context) ([]*Request, error) {
	all, err := s.ListHeads(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []*Request
	for _, r := range all {
		if _, ok := r.ReminderDue(s.policy.RemindBefore, now); ok {
			if r.Jobs == nil && r.Tally != nil { // a head: the reminder shows the request
				if r, _, err = s.store.Get(ctx, r.ID); err != nil {
					return out, err
				}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// RecordDM records the direct message that shows request id to user (one per user).
func (s *Service) RecordDM(ctx context.Context, id string, dm DirectMessage) (*Request, error) {
	return s.change(ctx, id, func(r *Request) (bool, error) {
		if slices.ContainsFunc(r.DMs, func(d DirectMessage) bool { return d.User == dm.User }) {
			return false, nil
		}
		r.DMs = append(r.DMs, dm)
		return true, nil
	})
}

// ApproverUsers are the users the policy's approvers name, groups resolved to their
// members, without duplicates. A group that cannot be resolved is named in the error;
// the users found are still returned.
func (s *Service) ApproverUsers(ctx context.Context) ([]string, error) {
	members, err := s.members(ctx)
	var out []string
	for _, a := range s.policy.Approvers {
		ids := []string{a}
		if IsGroupID(a) {
			ids = members[a]
		}
		for _, u := range ids {
			if IsUserID(u) && !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("approver users: %w", err)
	}
	return out, err
}
