package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/config"
)

// botScopes are the OAuth scopes the bot token needs, as deploy/slack-app-manifest.yaml
// asks for them (a test keeps the two the same). dmScope is needed only with
// approvals.notify: dm, to open a direct message with each approver.
var botScopes = []string{"commands", "chat:write", "usergroups:read", dmScope}

const dmScope = "im:write"

// slackClient is a Web API client for the configured workspace; scopes receives the
// scopes Slack says the token has (the x-oauth-scopes header of any answer).
func slackClient(cfg *config.Config, token string, scopes func(string)) *slack.Client {
	opts := []slack.Option{}
	if cfg.Slack.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.Slack.APIURL))
	}
	if scopes != nil {
		opts = append(opts, slack.OptionOnResponseHeaders(func(_ string, h http.Header) {
			if v := h.Get("X-OAuth-Scopes"); v != "" {
				scopes(v)
			}
		}))
	}
	return slack.New(token, opts...)
}

// checkSlack tries the bot token (auth.test), its scopes, and in Socket Mode the app token
// (apps.connections.open).
func checkSlack(ctx context.Context, cfg *config.Config, r *checkReport) {
	if cfg.Slack.BotToken.IsZero() {
		r.line("skip", "slack", "no slack.bot_token: nothing to try (see config above)")
		return
	}
	granted := "" // set during the call: slack-go hands the headers over before it returns
	auth, err := slackClient(cfg, cfg.Slack.BotToken.Reveal(), func(s string) { granted = s }).AuthTestContext(ctx)
	detail := ""
	if err == nil {
		detail = fmt.Sprintf("workspace %s as @%s (%s mode)", auth.Team, auth.User, cfg.Slack.Mode)
	}
	r.report("slack auth.test", err, detail)
	if err == nil {
		checkScopes(granted, cfg.Approvals.Notify == approvals.NotifyDM, r)
	}

	switch {
	case cfg.Slack.Mode == "http":
		r.line("skip", "slack signing secret", "only Slack can prove it (it signs each request with it): send /xvm help once the app runs")
	case cfg.Slack.AppToken.IsZero():
		r.line("skip", "slack app token", "no slack.app_token: Socket Mode cannot connect (see config above)")
	default:
		opts := []slack.Option{slack.OptionAppLevelToken(cfg.Slack.AppToken.Reveal())}
		if cfg.Slack.APIURL != "" {
			opts = append(opts, slack.OptionAPIURL(cfg.Slack.APIURL))
		}
		_, _, err := slack.New("", opts...).StartSocketModeContext(ctx)
		r.report("slack app token", err, "apps.connections.open answered: Socket Mode can connect")
	}
}

// checkScopes compares the scopes Slack says the bot token has with those it needs.
func checkScopes(header string, dms bool, r *checkReport) {
	if header == "" {
		r.line("skip", "slack scopes", "Slack did not say which scopes the token has (no x-oauth-scopes header)")
		return
	}
	have := map[string]bool{}
	for s := range strings.SplitSeq(header, ",") {
		have[strings.TrimSpace(s)] = true
	}
	var missing, needed []string
	for _, s := range botScopes {
		if s == dmScope && !dms {
			continue // approvals.notify is not dm: no direct messages are opened
		}
		needed = append(needed, s)
		if !have[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		r.report("slack scopes", fmt.Errorf("the bot token lacks %s: add them under OAuth & Permissions (as deploy/slack-app-manifest.yaml does) and reinstall the app",
			strings.Join(missing, ", ")), "")
		return
	}
	r.report("slack scopes", nil, "the bot token has "+strings.Join(needed, ", "))
}

// checkApprovers looks up every approver ID (users.info, usergroups.list) and counts the
// people they make, to tell whether the quorum can be met at all.
func checkApprovers(ctx context.Context, cfg *config.Config, r *checkReport) {
	a := cfg.Approvals
	if cfg.Slack.BotToken.IsZero() {
		r.line("skip", "approvers", "no slack.bot_token: approver IDs cannot be looked up")
		return
	}
	api := slackClient(cfg, cfg.Slack.BotToken.Reveal(), nil)
	people := map[string]bool{}
	unverified := 0
	var groups []slack.UserGroup
	var groupsErr error
	groupsRead := false
	for _, id := range a.Approvers {
		what := "approver " + id
		switch {
		case approvals.IsGroupID(id):
			if !groupsRead {
				groups, groupsErr = api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeDisabled(true), slack.GetUserGroupsOptionIncludeUsers(true))
				groupsRead = true
			}
			if groupsErr != nil {
				r.report(what, fmt.Errorf("usergroups.list: %w", groupsErr), "")
				continue
			}
			i := slices.IndexFunc(groups, func(g slack.UserGroup) bool { return g.ID == id })
			switch {
			case i < 0:
				r.report(what, errors.New("no such user group in this workspace (usergroups.list)"), "")
			case groups[i].DateDelete != 0:
				r.report(what, fmt.Errorf("user group @%s is disabled: its members cannot approve", groups[i].Handle), "")
			case len(groups[i].Users) == 0:
				r.report(what, fmt.Errorf("user group @%s has no members", groups[i].Handle), "")
			default:
				for _, u := range groups[i].Users {
					people[u] = true
				}
				r.report(what, nil, fmt.Sprintf("user group @%s, %d member(s)", groups[i].Handle, len(groups[i].Users)))
			}
		default:
			u, err := api.GetUserInfoContext(ctx, id)
			var se slack.SlackErrorResponse
			switch {
			case errors.As(err, &se) && se.Err == "missing_scope":
				unverified++
				people[id] = true
				r.line("skip", what, "not looked up: the bot token lacks users:read (optional; add it to let check verify user IDs)")
			case err != nil:
				r.report(what, fmt.Errorf("users.info: %w", err), "")
			case u.Deleted:
				r.report(what, fmt.Errorf("@%s is deactivated", u.Name), "")
			case u.IsBot:
				r.report(what, fmt.Errorf("@%s is a bot, not a person", u.Name), "")
			default:
				people[id] = true
				r.report(what, nil, "@"+u.Name)
			}
		}
	}

	need, where := a.Quorum, "approvals.quorum"
	for vc, q := range a.QuorumByVCenter {
		if q > need {
			need, where = q, "approvals.quorum_by_vcenter["+vc+"]"
		}
	}
	n := len(people)
	detail := fmt.Sprintf("%d approver(s) for a quorum of %d", n, need)
	if unverified > 0 {
		detail += fmt.Sprintf(" (%d not looked up)", unverified)
	}
	switch {
	case n < need:
		r.report("quorum", fmt.Errorf("%s is %d but the approvers are %d people: no request could ever be approved", where, need, n), "")
	case !a.AllowSelfApproval && n == need:
		r.report("quorum", nil, detail+"; note: self-approval is off, so a request made by one of them can never be approved")
	default:
		r.report("quorum", nil, detail)
	}
}

// checkDataDir writes and removes a file where the data dir is (or, before its first
// start, where serve will create it).
func checkDataDir(cfg *config.Config, r *checkReport) {
	dir, err := filepath.Abs(cfg.NATS.DataDir)
	if err != nil {
		r.report("data dir", err, "")
		return
	}
	if cfg.NATS.URL != "" && cfg.Approvals.SigningKeyFile != "" {
		r.line("skip", "data dir", "not used: NATS is external and approvals.signing_key_file is set")
		return
	}
	at, note := dir, ""
	for {
		st, err := os.Stat(at)
		if err == nil {
			if !st.IsDir() {
				r.report("data dir", fmt.Errorf("%s is not a directory", at), "")
				return
			}
			break
		}
		parent := filepath.Dir(at)
		// A path through a file (ENOTDIR) is walked up too, to name the file.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || parent == at {
			r.report("data dir", err, "")
			return
		}
		at, note = parent, fmt.Sprintf(" (%s does not exist yet: serve creates it)", dir)
	}
	f, err := os.CreateTemp(at, ".xvmbot-check-*")
	if err == nil {
		_, err = f.WriteString("xvmbot check\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := os.Remove(f.Name()); err == nil {
			err = rerr
		}
	}
	if err != nil {
		r.report("data dir", fmt.Errorf("%s is not writable: %w", at, err), "")
		return
	}
	r.report("data dir", nil, "wrote and removed a file in "+at+note)
}
