package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// outsideWindow holds a job that may not start yet because its target vCenter's change
// window is closed; it says so once in the thread and hands the job back until the window
// opens (checking again at least every five minutes, so a config change takes effect).
func (w *Worker) outsideWindow(ctx context.Context, j events.Job, log *slog.Logger) (bool, error) {
	ws := w.cfg.Windows[j.TargetVC]
	now := w.now()
	next := approvals.NextStart(ws, now)
	if !next.After(now) {
		return false, nil
	}
	log.Info("target change window closed; job waits", "opens_at", next)
	e := w.event(j, events.EventQueued, fmt.Sprintf("%s waits for %s's change window, which opens %s", j.VM, j.TargetVC,
		next.Format("Mon 2 Jan 15:04 MST")), 0)
	e.ID = fmt.Sprintf("%s.window.%d", j.ID, next.Unix()) // said once per window
	w.publish(ctx, log, e)
	return true, events.RetryAfter(fmt.Errorf("%s: change window of %s opens %s", j.VM, j.TargetVC, next.Format(time.RFC3339)),
		min(next.Sub(now), 5*time.Minute))
}
