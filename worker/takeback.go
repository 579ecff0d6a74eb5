package worker

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"
)

// takeBackTimeout bounds the start-up look for what a previous run left behind: a NATS
// that does not answer must not keep the worker from taking jobs.
const takeBackTimeout = 10 * time.Second

// takeBack gives back at once the jobs this worker's previous run (same name) held when
// it stopped without settling them: killed, or a shutdown that outlasted its grace.
// Otherwise they would wait out the delivery's AckWait and the VM lease's TTL (a minute
// each by default) while their relocations run on in vCenter unwatched. For each lease
// the previous run holds, the lease is freed (whichever worker gets the job takes it at
// once) and the job's delivery handed back to the queue; the worker that gets it follows
// the recorded task (resume.go). A failure here only costs that wait: it is logged.
func (w *Worker) takeBack(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, takeBackTimeout)
	defer cancel()
	prefix := w.cfg.Name + "/"
	held, err := w.locks.Held(ctx, prefix)
	if err != nil {
		w.log.Warn("could not look for jobs a previous run of this worker left; they resume after the lease TTL and ack wait", "err", err)
		return
	}
	for _, key := range slices.Sorted(maps.Keys(held)) {
		owner := held[key]
		jobID := strings.TrimPrefix(owner, prefix)
		log := w.log.With("job_id", jobID, "lease", key)
		rec, ok, err := w.records.Load(ctx, jobID)
		if err != nil {
			log.Warn("could not read the job record of a previous run", "err", err)
			continue
		}
		if _, release, err := w.locks.Lock(ctx, key, owner); err != nil {
			log.Warn("could not take back the lease of a previous run", "err", err)
		} else if err := release(ctx); err != nil {
			log.Warn("could not free the lease of a previous run", "err", err)
		}
		if !ok || rec.Delivery == "" {
			// Never recorded: its delivery comes back after the ack wait, and the job
			// then starts as new (nothing ran in vCenter before a record).
			log.Info("freed the lease of a job a previous run had not recorded")
			continue
		}
		if err := w.bus.HandBack(ctx, rec.Delivery); err != nil {
			log.Warn("could not hand back the delivery of a previous run", "err", err)
			continue
		}
		log.Info("took back a job a previous run of this worker left", "state", rec.State, "task", rec.TaskRef)
	}
}
