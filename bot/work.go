package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// afterAck owns the work done after an ack: the pool commands and clicks run on, the
// smaller one that sends "busy, try again" notices, and the context of every task that
// runs, so that shutdown waits for what is in flight and, once its grace is over, cancels
// it. A task's panic is logged, not fatal: one bad payload must not stop the bot.
type afterAck struct {
	pool    *workPool // the work after an ack
	notices *workPool // "busy, try again" notices for refused clicks
	wg      sync.WaitGroup
	log     *slog.Logger
	timeout time.Duration // of one task
	grace   time.Duration // in-flight work may finish after shutdown starts
	// abandons drop what else waits in wg (the post queues) once grace is over, and
	// return its names.
	abandons []func() []string

	mu        sync.Mutex
	closing   bool // no new work is started
	abandoned bool // shutdown grace is over: work still starting is cancelled
	seq       uint64
	cancels   map[uint64]context.CancelFunc // in-flight work
}

func newAfterAck(workers, queue int, logger *slog.Logger) *afterAck {
	a := &afterAck{log: logger, timeout: workTimeout, grace: shutdownGrace, cancels: map[uint64]context.CancelFunc{}}
	a.pool = newWorkPool(workers, queue, &a.wg, a.run)
	a.notices = newWorkPool(noticeWorkers, noticeQueue, &a.wg, a.run)
	return a
}

// run runs one task with its own deadline; its context is cancelled if shutdown grace
// ends first.
func (a *afterAck) run(t task) {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	a.mu.Lock()
	a.seq++
	id := a.seq
	a.cancels[id] = cancel
	if a.abandoned {
		cancel()
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.cancels, id)
		a.mu.Unlock()
		cancel()
	}()
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic in bot work", "work", t.what, "panic", fmt.Sprint(p))
		}
	}()
	t.fn(ctx)
}

// shuttingDown reports whether shutdown has started.
func (a *afterAck) shuttingDown() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closing
}

// wait waits for every task queued or running, and every open reservation.
func (a *afterAck) wait() { a.wg.Wait() }

// shutdown stops new work and waits for what is in flight or queued; past the grace
// period, waiting work is dropped and running work is cancelled.
func (a *afterAck) shutdown() {
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	a.pool.close()
	a.notices.close()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	t := time.NewTimer(a.grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	dropped := append(a.pool.abandon(), a.notices.abandon()...)
	for _, abandon := range a.abandons {
		dropped = append(dropped, abandon()...)
	}
	a.mu.Lock()
	a.abandoned = true
	n := len(a.cancels)
	for _, cancel := range a.cancels {
		cancel()
	}
	a.mu.Unlock()
	a.log.Warn("shutdown grace over: cancelling in-flight work", "in_flight", n, "dropped", len(dropped),
		"dropped_work", strings.Join(dropped, ","))
	<-done
}
