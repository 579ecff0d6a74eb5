package bot

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
)

// queueDepth reports how many jobs wait for a worker; *events.Bus satisfies it.
type queueDepth interface {
	QueuedJobs(ctx context.Context) (uint64, error)
}

// Stats is what /xvm stats and the digest report about one window of time.
type Stats struct {
	From, To  time.Time
	Routes    []RouteStats  // by source → target, busiest first
	Median    time.Duration // of finished jobs' durations
	P95       time.Duration
	Timed     int     // jobs the durations are computed from
	MovedGB   float64 // disk of the VMs that moved
	Queued    int64   // jobs waiting for a worker; -1 when unknown
	Waiting   int     // requests waiting for approval
	Requested int     // requests made in the window
}

// RouteStats counts the jobs that ended in the window on one source → target route.
type RouteStats struct {
	Source, Target    string
	Succeeded, Failed int
}

// ComputeStats derives the stats of the window ending at now from the request records:
// jobs that ended in it, by route, their durations and the data they moved.
func ComputeStats(all []*approvals.Request, now time.Time, window time.Duration) Stats {
	s := Stats{From: now.Add(-window), To: now, Queued: -1}
	routes := map[[2]string]*RouteStats{}
	var durations []time.Duration
	for _, r := range all {
		if r.State == approvals.StatePending && (r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt)) {
			s.Waiting++
		}
		if !r.CreatedAt.Before(s.From) {
			s.Requested++
		}
		disk := map[string]float64{}
		for _, v := range r.Review.VMs {
			disk[v.Name] = v.DiskGB
		}
		for _, j := range r.Jobs {
			if j.EndedAt.IsZero() || j.EndedAt.Before(s.From) || j.EndedAt.After(now) {
				continue
			}
			if j.State != approvals.StateSucceeded && j.State != approvals.StateFailed {
				continue
			}
			key := [2]string{r.SourceVC, r.TargetVC}
			rs := routes[key]
			if rs == nil {
				rs = &RouteStats{Source: r.SourceVC, Target: r.TargetVC}
				routes[key] = rs
			}
			if j.State == approvals.StateSucceeded {
				rs.Succeeded++
				s.MovedGB += disk[j.VM]
			} else {
				rs.Failed++
			}
			if !j.StartedAt.IsZero() && !j.EndedAt.Before(j.StartedAt) {
				durations = append(durations, j.EndedAt.Sub(j.StartedAt))
			}
		}
	}
	for _, rs := range routes {
		s.Routes = append(s.Routes, *rs)
	}
	sort.Slice(s.Routes, func(i, j int) bool {
		a, b := s.Routes[i], s.Routes[j]
		if a.Succeeded+a.Failed != b.Succeeded+b.Failed {
			return a.Succeeded+a.Failed > b.Succeeded+b.Failed
		}
		return a.Source+"→"+a.Target < b.Source+"→"+b.Target
	})
	slices.Sort(durations)
	s.Timed = len(durations)
	s.Median, s.P95 = percentile(durations, 50), percentile(durations, 95)
	return s
}

// percentile is the nearest-rank percentile of sorted durations (0 when there are none).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 · n)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// RenderStats renders stats for the channel; title names the window ("last 24 hours").
func RenderStats(s Stats, title string) (text string, blocks []slack.Block) {
	succeeded, failed := 0, 0
	for _, r := range s.Routes {
		succeeded, failed = succeeded+r.Succeeded, failed+r.Failed
	}
	head := fmt.Sprintf("📊 xvmbot, %s: %d %s moved, %d failed", title, succeeded, plural(succeeded, "VM"), failed)
	var routes []string
	for i, r := range s.Routes {
		if i == 20 {
			routes = append(routes, fmt.Sprintf("…and %d more routes", len(s.Routes)-i))
			break
		}
		routes = append(routes, fmt.Sprintf("• %s → %s: ✅ %d succeeded · ❌ %d failed", esc(r.Source), esc(r.Target), r.Succeeded, r.Failed))
	}
	if len(routes) == 0 {
		routes = []string{"_No moves ended in this window._"}
	}
	dur := "_no finished moves_"
	if s.Timed > 0 {
		dur = fmt.Sprintf("median %s · p95 %s (%d %s)", humanDuration(s.Median), humanDuration(s.P95), s.Timed, plural(s.Timed, "move"))
	}
	queued := "unknown"
	if s.Queued >= 0 {
		queued = fmt.Sprint(s.Queued)
	}
	field := func(title, v string) *slack.TextBlockObject { return mrkdwn("*" + title + "*\n" + v) }
	blocks = []slack.Block{
		slack.NewSectionBlock(mrkdwn("*"+head+"*"), nil, nil),
		slack.NewSectionBlock(mrkdwn("*By route*\n"+strings.Join(routes, "\n")), nil, nil),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{
			field("Duration", dur),
			field("Data moved", bytesText(s.MovedGB)),
			field("Queue", queued+" "+plural(int(max(s.Queued, 0)), "job")+" waiting for a worker"),
			field("Approvals waiting", fmt.Sprintf("%d %s", s.Waiting, plural(s.Waiting, "request"))),
		}, nil),
		slack.NewContextBlock("", mrkdwn(fmt.Sprintf("%s – %s · %d %s made in this window", s.From.UTC().Format("Jan 2 15:04"),
			s.To.UTC().Format("Jan 2 15:04 UTC"), s.Requested, plural(s.Requested, "request")))),
	}
	return head, blocks
}

// windowOf turns a stats argument into a duration and its title.
func windowOf(arg string) (time.Duration, string) {
	if arg == "7d" {
		return 7 * 24 * time.Hour, "last 7 days"
	}
	return 24 * time.Hour, "last 24 hours"
}

// stats computes the stats of a window now.
func (b *Bot) stats(ctx context.Context, window time.Duration) (Stats, error) {
	return b.statsAt(ctx, b.now(), window)
}

// statsAt computes the stats of the window that ends at end; the queue depth is now's.
func (b *Bot) statsAt(ctx context.Context, end time.Time, window time.Duration) (Stats, error) {
	all, err := b.svc.Store().List(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("list requests: %w", err)
	}
	s := ComputeStats(all, end, window)
	if b.depth != nil {
		if n, err := b.depth.QueuedJobs(ctx); err == nil {
			s.Queued = int64(n)
		} else {
			b.log.Warn("queue depth for stats", "err", err)
		}
	}
	return s, nil
}
