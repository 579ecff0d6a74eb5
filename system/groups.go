package system

import (
	"context"
	"log/slog"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/config"
)

// slackGroups asks Slack for the members of a user group (usergroups.users.list). It
// keeps nothing: approvals.GroupCache decides how long an answer is used.
type slackGroups struct {
	api *slack.Client
}

var _ approvals.GroupMembers = (*slackGroups)(nil)

func newSlackGroups(cfg config.SlackConfig) *slackGroups {
	opts := []slack.Option{}
	if cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
	}
	return &slackGroups{api: slack.New(cfg.BotToken.Reveal(), opts...)}
}

// Members returns the members of a user group.
func (g *slackGroups) Members(ctx context.Context, id string) ([]string, error) {
	return g.api.GetUserGroupMembersContext(ctx, id)
}

// newGroupMembers resolves approver groups through Slack, each answer used for a minute
// and, while Slack does not answer, for at most approvals.group_max_stale.
func newGroupMembers(cfg *config.Config, logger *slog.Logger) *approvals.GroupCache {
	return approvals.NewGroupCache(newSlackGroups(cfg.Slack), approvals.DefaultGroupFresh, cfg.Approvals.GroupMaxStale, logger)
}
