package main

import (
	"context"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// groupMembers resolves approver user groups through usergroups.users.list, cached for a
// minute so a burst of clicks costs one call.
type groupMembers struct {
	api *slack.Client
	ttl time.Duration

	mu    sync.Mutex
	cache map[string]cachedGroup
}

type cachedGroup struct {
	members []string
	at      time.Time
}

func newGroupMembers(cfg SlackConfig) *groupMembers {
	opts := []slack.Option{}
	if cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
	}
	return &groupMembers{api: slack.New(cfg.BotToken.Reveal(), opts...), ttl: time.Minute, cache: map[string]cachedGroup{}}
}

// Members returns the members of a user group.
func (g *groupMembers) Members(ctx context.Context, id string) ([]string, error) {
	g.mu.Lock()
	c, ok := g.cache[id]
	g.mu.Unlock()
	if ok && time.Since(c.at) < g.ttl {
		return c.members, nil
	}
	m, err := g.api.GetUserGroupMembersContext(ctx, id)
	if err != nil {
		if ok {
			return c.members, nil // stale beats refusing every approver while Slack hiccups
		}
		return nil, err
	}
	g.mu.Lock()
	g.cache[id] = cachedGroup{members: m, at: time.Now()}
	g.mu.Unlock()
	return m, nil
}
