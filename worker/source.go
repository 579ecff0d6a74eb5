package worker

import (
	"context"
	"log/slog"
	"sync"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// sourceRead reads, in the background, what a move must know of its VM before the source
// forgets it: where the VM is, for undo, and its tags and custom attributes, for the copy
// after the move. A run starts it the moment vCenter has taken the task, while the task is
// recorded: the source keeps both until the switch-over, and a worker killed before they
// are recorded leaves the move marked unread for whoever follows its task. (Read before
// the task started, they took the CPU of the very processes the start goes through: 7 ms
// more from a click to RelocateVM_Task on a split deployment.) Whoever starts one stops or
// waits for it (every goroutine has an owner that waits for it).
type sourceRead struct {
	cancel  context.CancelFunc
	done    chan struct{}
	origin  *vcenter.Where
	meta    *vcenter.Metadata
	metaErr error
	cut     bool // ended by its context before it was read: nothing to record
}

// readSource starts reading the source of j's VM.
func (w *Worker) readSource(ctx context.Context, j events.Job, log *slog.Logger) *sourceRead {
	ctx, cancel := context.WithCancel(ctx)
	s := &sourceRead{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var reading sync.WaitGroup
		reading.Go(func() {
			var err error
			if s.origin, err = w.look.Where(ctx, j.SourceVC, j.VM); err != nil && ctx.Err() == nil {
				log.Warn("could not record the original placement; undo will not be offered", "err", err)
			}
		})
		reading.Go(func() {
			if s.meta, s.metaErr = w.tags.ReadMetadata(ctx, j.SourceVC, j.VM); s.metaErr != nil && ctx.Err() == nil {
				log.Warn("could not read tags and custom attributes; they will not be copied", "err", s.metaErr)
			}
		})
		reading.Wait()
		s.cut = ctx.Err() != nil
	}()
	return s
}

// wait waits for the reads to end.
func (s *sourceRead) wait() { <-s.done }

// stop ends the reads, unless they are over, and waits for them.
func (s *sourceRead) stop() {
	s.cancel()
	<-s.done
}

// into records what was read in mv, once the reads are over, and reports whether it did:
// reads cut short (the worker stops) leave mv as it was, so that a move marked unread
// stays so for whoever follows its task.
func (s *sourceRead) into(mv *events.JobMove) bool {
	if s.cut {
		return false
	}
	withSource(mv, s.origin, s.meta, s.metaErr)
	return true
}
