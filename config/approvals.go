package config

import (
	"slices"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/xvmbot/xvmbot/approvals"
)

// ApprovalsConfig is the approval policy.
type ApprovalsConfig struct {
	Approvers         []string       `yaml:"approvers"`
	Quorum            int            `yaml:"quorum"`
	QuorumByVCenter   map[string]int `yaml:"quorum_by_vcenter"` // target vCenter → approvers needed
	AllowSelfApproval bool           `yaml:"allow_self_approval"`
	ExpireAfter       time.Duration  `yaml:"expire_after"`
	// SigningKeyFile holds the bot's approval signing key (an nkey seed, SU…, made with
	// `xvmbot keygen`); `serve` generates one in nats.data_dir when it is unset.
	SigningKeyFile string `yaml:"signing_key_file"`
	// TrustedKeys are the public keys (U…) of the bots whose approvals workers accept; more
	// than one while a key is being replaced. `serve` trusts its own key as well.
	TrustedKeys []string `yaml:"trusted_keys"`
	// RunWithin is how long after its approval a job may still start (default 168h).
	RunWithin time.Duration `yaml:"run_within"`
	// GroupMaxStale is how long the last known members of an approver group may still be
	// used while Slack's usergroups.users.list does not answer (default 10m). Past that,
	// only approvers listed by user ID can decide until Slack answers again; 0 never uses
	// a list older than a minute.
	GroupMaxStale time.Duration `yaml:"group_max_stale"`
	// Notify is how approvers hear of a new request: mention (the message names them, so
	// Slack notifies them; the default), dm (each approver, groups' members included, gets a
	// direct message with the same buttons, kept in step with the channel's) or none.
	Notify approvals.Notify `yaml:"notify"`
	// RemindBefore are the times before its expiry at which a pending request reminds its
	// approvers in its thread, once each (default [1h]; [] for none).
	RemindBefore []time.Duration `yaml:"remind_before"`
}

// DefaultApprovalsConfig is the approvals section's default: one approver, requests
// expire after 4h. The approvers themselves have no default.
var DefaultApprovalsConfig = ApprovalsConfig{Quorum: 1, ExpireAfter: 4 * time.Hour, RunWithin: approvals.DefaultRunWithin,
	GroupMaxStale: approvals.DefaultGroupMaxStale, Notify: approvals.NotifyMention, RemindBefore: approvals.DefaultRemindBefore}

// UnmarshalYAML starts from DefaultApprovalsConfig. Left out, remind_before is the
// default reminder an hour before expiry, or halfway through a request's life when that
// is shorter (expire_after: 1h reminds at 30m): a default must never make a valid
// expire_after refused.
func (a *ApprovalsConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*a = DefaultApprovalsConfig
	a.RemindBefore = nil
	type plain ApprovalsConfig
	if err := unmarshal((*plain)(a)); err != nil {
		return err
	}
	var keys map[string]any // which keys the file sets
	if err := unmarshal(&keys); err != nil {
		return err
	}
	if _, set := keys["remind_before"]; !set {
		a.RemindBefore = defaultReminders(a.ExpireAfter)
	}
	return nil
}

// defaultReminders is remind_before when the file does not say: DefaultRemindBefore, each
// one that is not shorter than expireAfter taken as half of it instead.
func defaultReminders(expireAfter time.Duration) []time.Duration {
	var out []time.Duration
	for _, d := range approvals.DefaultRemindBefore {
		if d >= expireAfter {
			d = expireAfter / 2
		}
		if d > 0 && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// Policy is the approval policy these settings make.
func (a ApprovalsConfig) Policy() approvals.Policy {
	return approvals.Policy{Approvers: a.Approvers, Quorum: a.Quorum, QuorumByVCenter: a.QuorumByVCenter,
		AllowSelfApproval: a.AllowSelfApproval, ExpireAfter: a.ExpireAfter, RunWithin: a.RunWithin,
		Notify: a.Notify, RemindBefore: slices.Clone(a.RemindBefore)}
}

func (a ApprovalsConfig) validate() error {
	var p problems
	if len(a.Approvers) == 0 {
		p.add("approvals.approvers: list at least one Slack user ID (U…) or user-group ID (S…)")
	}
	for _, id := range a.Approvers {
		if !approvals.IsUserID(id) && !approvals.IsGroupID(id) {
			p.add("approvals.approvers: %q is not a Slack user (U…/W…) or user-group (S…) ID: write the ID as Slack shows it (upper-case letters and digits, e.g. U012ABC or S0123GRP)", id)
		}
	}
	if a.GroupMaxStale < 0 {
		p.add("approvals.group_max_stale must not be negative (e.g. 10m; 0 never uses an approver group's members older than a minute)")
	}
	if !a.Notify.Valid() {
		p.add("approvals.notify: %q is not one of mention, dm, none", string(a.Notify))
	}
	for _, d := range a.RemindBefore {
		if d <= 0 || d >= a.ExpireAfter {
			p.add("approvals.remind_before: %s must be more than 0 and less than approvals.expire_after (%s): it is how long before a request expires its approvers are reminded", d, a.ExpireAfter)
		}
	}
	if a.Quorum < 1 {
		p.add("approvals.quorum must be at least 1")
	}
	for _, k := range a.TrustedKeys {
		if !nkeys.IsValidPublicUserKey(k) {
			p.add("approvals.trusted_keys: %q is not a public key as `xvmbot keygen` prints it (U…, 56 characters)", k)
		}
	}
	if a.RunWithin < time.Second {
		p.add("approvals.run_within must be at least 1s (default 168h): it is how long after its approval a job may still start")
	}
	// A request that never expires can be approved weeks later, on a plan made for an
	// inventory that has changed since; 0 used to mean that, silently.
	if a.ExpireAfter <= 0 {
		p.add("approvals.expire_after must be a positive duration such as 4h (have %s); requests always expire, "+
			"so write a long one (e.g. 168h) for approvals that may take days", a.ExpireAfter)
	}
	for name, q := range a.QuorumByVCenter {
		if q < 1 {
			p.add("approvals.quorum_by_vcenter[%s] must be at least 1", name)
		}
	}
	return p.err()
}
