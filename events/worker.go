package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// ErrRetry marks a handler error as temporary: the job is delivered again after a delay
// (RetryDelay doubled per attempt, or the delay given to RetryAfter). Any other error
// ends the job for good.
var ErrRetry = errors.New("retry later")

// RetryAfter wraps err as a retryable error (errors.Is(err, ErrRetry) holds) that asks
// for the job to come back after d, e.g. when vCenter says a host is busy for a while.
func RetryAfter(err error, d time.Duration) error {
	return &retryError{err: err, after: d}
}

type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string {
	if e.err == nil {
		return ErrRetry.Error()
	}
	return e.err.Error()
}

func (e *retryError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrRetry}
	}
	return []error{ErrRetry, e.err}
}

// JobHandler runs one job. Return nil when the job is done (succeeded, or failed and
// reported), an error wrapping ErrRetry to have it delivered again later, or any other
// error when it can never succeed (the handler publishes the failed event itself).
// ctx is cancelled when the worker shuts down: return promptly; the job is then handed
// back to the queue and another worker picks it up at once.
type JobHandler func(ctx context.Context, j Job, d Delivery) error

// Delivery is what a handler may know and do about the delivery of its job.
type Delivery interface {
	// Attempt is 1 on the first delivery, 2 on the second, and so on: above 1 the job
	// may already have been started by a worker that died.
	Attempt() uint64
	// InProgress resets the AckWait timer. The runner already calls it every AckWait/3
	// while the handler runs; call it before a single step that may block longer.
	InProgress() error
	// Token names this delivery to the NATS server. Kept in the job's record, it lets a
	// later run of the same worker hand the job back (Bus.HandBack) if this one dies
	// without settling it, instead of the job waiting out AckWait.
	Token() string
}

const (
	// fetchWait bounds one pull request; shutdown does not wait for it (FetchContext).
	fetchWait = 30 * time.Second
	// fetchErrorBackoff spaces out pulls while the server is unreachable.
	fetchErrorBackoff = time.Second
	// settleTimeout bounds the ack/nak/term round trip after a handler returns.
	settleTimeout = 5 * time.Second
	// maxRetryDelay caps the doubling retry delay.
	maxRetryDelay = 5 * time.Minute
	// handBackDelay is how soon a job handed back at shutdown is delivered again. Not at
	// once: the server gives a message to the oldest pull request whose subscriber is
	// still there, and the stopping worker's other slots withdraw theirs (unsubscribe) a
	// moment after their context ends. A nak that overtook one of those would hand the job
	// to a pull nobody reads, and it would wait out AckWait after all.
	handBackDelay = time.Second
	// termReasonMax keeps term reasons (sent in server advisories) short.
	termReasonMax = 200
)

// RunWorker takes jobs from the work queue and runs h on them, with at most slots jobs
// at a time. Each slot pulls exactly one job when it is free (never a batch: a busy
// worker must not sit on jobs other workers could run) and heartbeats it while h runs.
// It returns nil once ctx is done and every running handler has returned; an error if
// the connection is closed for good, or if handlers are still running ShutdownGrace
// after ctx is done (they are then abandoned to the process exit).
//
// Outcomes: h returns nil → ack (confirmed by the server); an error wrapping ErrRetry →
// nak with a delay; any other error → term (never redelivered); malformed JSON → term;
// ctx cancelled → nak: heartbeats stop and the next worker takes the job a second later (and
// follows its relocation, which runs on in vCenter).
func (b *Bus) RunWorker(ctx context.Context, slots int, h JobHandler) error {
	if h == nil {
		return errors.New("run worker: nil handler")
	}
	if slots < 1 {
		slots = 1
	}
	b.logger.InfoContext(ctx, "worker started", "slots", slots)
	g, gctx := errgroup.WithContext(ctx)
	for slot := range slots {
		g.Go(func() error { return b.runSlot(gctx, slot, h) })
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }() // owned: RunWorker waits for it below, up to the grace

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// Handlers were told (ctx) and their jobs are already left for redelivery; a
		// handler that ignores ctx must not hold up the process's shutdown forever.
		select {
		case err = <-done:
		case <-time.After(b.cfg.ShutdownGrace):
			err = fmt.Errorf("run worker: handlers still running %s after shutdown; their jobs go to other workers after ack wait", b.cfg.ShutdownGrace)
		}
	}
	b.logger.Info("worker stopped", "slots", slots, "err", err)
	return err
}

func (b *Bus) runSlot(ctx context.Context, slot int, h JobHandler) error {
	log := b.logger.With("slot", slot)
	for ctx.Err() == nil {
		msg, err := b.fetchOne(ctx)
		switch {
		case ctx.Err() != nil:
			if msg != nil {
				// Taken just as we stopped: hand it back rather than start work.
				b.settle(ctx, log, kindJob, outcomeNak, func(context.Context) error { return msg.NakWithDelay(handBackDelay) })
			}
			return nil
		case errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed):
			return fmt.Errorf("worker slot %d: %w", slot, err)
		case err != nil:
			log.WarnContext(ctx, "fetch job", "err", err)
			if !sleepCtx(ctx, fetchErrorBackoff) {
				return nil
			}
			continue
		case msg == nil:
			continue // pull expired with no job
		}
		b.handleJob(ctx, log, msg, h)
	}
	return nil
}

// fetchOne pulls at most one job; (nil, nil) means none arrived in fetchWait.
func (b *Bus) fetchOne(ctx context.Context) (jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	batch, err := b.workers.Fetch(1, jetstream.FetchContext(fctx))
	if err != nil {
		return nil, err
	}
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	if err := batch.Error(); err != nil && msg == nil &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, nats.ErrTimeout) {
		return nil, err
	}
	return msg, nil
}

func (b *Bus) handleJob(ctx context.Context, log *slog.Logger, msg jetstream.Msg, h JobHandler) {
	d := &delivery{msg: msg, done: ctx.Done()}
	if md, err := msg.Metadata(); err == nil {
		d.attempt = md.NumDelivered
	}
	var j Job
	if err := json.Unmarshal(msg.Data(), &j); err != nil {
		log.ErrorContext(ctx, "malformed job dropped", "err", err, "attempt", d.attempt, "bytes", len(msg.Data()))
		b.settle(ctx, log, kindJob, outcomeTerm, func(context.Context) error { return msg.TermWithReason("malformed job json") })
		return
	}
	log = log.With("job_id", j.ID, "request_id", j.RequestID, "vm", j.VM, "attempt", d.attempt)
	if j.V > SchemaVersion {
		// Written by a newer bot during a rolling upgrade: leave it to an upgraded worker.
		log.WarnContext(ctx, "job from a newer schema left for an upgraded worker", "v", j.V, "supported_v", SchemaVersion)
		b.settle(ctx, log, kindJob, outcomeNak, func(context.Context) error { return msg.NakWithDelay(b.cfg.AckWait) })
		return
	}

	log.InfoContext(ctx, "job started")
	start := time.Now()
	err := b.runWithHeartbeat(ctx, log, d, j, h)
	log = log.With("elapsed", time.Since(start).Round(time.Millisecond))

	switch {
	case err == nil:
		b.retries.forget(j.ID)
		log.InfoContext(ctx, "job done")
		b.settle(ctx, log, kindJob, outcomeAck, msg.DoubleAck)
	case ctx.Err() != nil:
		// Shutdown: the relocation keeps running in vCenter; the next worker re-attaches.
		// Handed back at once, so that it does not wait out AckWait.
		log.InfoContext(ctx, "job handed back at shutdown; the next worker follows it", "err", err, "after", handBackDelay)
		b.settle(ctx, log, kindJob, outcomeNak, func(context.Context) error { return msg.NakWithDelay(handBackDelay) })
	case errors.Is(err, ErrRetry):
		delay := b.delayFor(j.ID, err)
		log.WarnContext(ctx, "job will be retried", "err", err, "delay", delay)
		b.settle(ctx, log, kindJob, outcomeNak, func(context.Context) error { return msg.NakWithDelay(delay) })
	default:
		b.retries.forget(j.ID)
		log.ErrorContext(ctx, "job failed permanently", "err", err)
		b.settle(ctx, log, kindJob, outcomeTerm, func(context.Context) error { return msg.TermWithReason(truncate(err.Error(), termReasonMax)) })
	}
}

// runWithHeartbeat runs h while telling the server every AckWait/3 that the job is
// still in progress. Heartbeats stop as soon as h returns or ctx is cancelled.
func (b *Bus) runWithHeartbeat(ctx context.Context, log *slog.Logger, d *delivery, j Job, h JobHandler) error {
	defer heartbeat(ctx, log, "job heartbeat", b.cfg.AckWait/3, d.InProgress)()
	return callHandler(ctx, h, j, d)
}

// heartbeat calls inProgress every `every` until ctx ends or the returned stop is called
// (stop waits for it), and logs a failure as what: a delivery whose handler runs long
// keeps its message from being handed out again.
func heartbeat(ctx context.Context, log *slog.Logger, what string, every time.Duration, inProgress func() error) (stop func()) {
	hbCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				if err := inProgress(); err != nil && hbCtx.Err() == nil {
					log.WarnContext(hbCtx, what, "err", err)
				}
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// callHandler turns a handler panic into a permanent error: one bad job must not take
// the worker, and every other slot's job, down with it.
func callHandler(ctx context.Context, h JobHandler, j Job, d Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job handler panic: %v", r)
		}
	}()
	return h(ctx, j, d)
}

// delayFor is how long job id waits before its next delivery after err (an ErrRetry): the
// delay err asks for (RetryAfter: a slot, a change window, a task to follow), else
// RetryDelay doubled for each plain retry of this job in a row here. A job's deliveries
// also count the waits for a slot, dozens in a long wave; doubling by those put a
// transient error (a NATS leader election) off for the 5-minute cap.
func (b *Bus) delayFor(id string, err error) time.Duration {
	var retry *retryError
	if errors.As(err, &retry) && retry.after > 0 {
		return retry.after
	}
	return b.retryDelay(b.retries.next(id))
}

// retryCounts counts the plain retries of each job in a row in this process; a job that
// moves on to another worker starts again there at one.
type retryCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

// maxRetryCounts bounds the jobs counted: past it the counts start again (each job's next
// retry then waits RetryDelay), which only shortens a wait.
const maxRetryCounts = 10000

func (r *retryCounts) next(id string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil || len(r.n) >= maxRetryCounts {
		r.n = map[string]uint64{}
	}
	r.n[id]++
	return r.n[id]
}

func (r *retryCounts) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.n, id)
}

func (b *Bus) retryDelay(attempt uint64) time.Duration {
	d := b.cfg.RetryDelay
	for i := uint64(1); i < attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// settle sends the final ack/nak/term of a delivery. It uses its own short timeout, not
// ctx: a handler that finished just as shutdown began should still have its result kept.
func (b *Bus) settle(ctx context.Context, log *slog.Logger, kind, outcome string, f func(context.Context) error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := f(sctx); err != nil {
		log.WarnContext(ctx, "settle delivery", "outcome", outcome, "err", err)
		return
	}
	b.metrics.deliveries.WithLabelValues(kind, outcome).Inc()
}

// delivery implements Delivery for one job message.
type delivery struct {
	msg     jetstream.Msg
	done    <-chan struct{} // the worker's ctx: InProgress stops working at shutdown
	attempt uint64
}

func (d *delivery) Attempt() uint64 { return d.attempt }

// Token is the message's reply subject: the server takes an ack or nak of this delivery
// on it, from any connection allowed to publish there.
func (d *delivery) Token() string { return d.msg.Reply() }

// HandBack gives a delivery that a previous run of this worker left unsettled (see
// Delivery.Token) back to the queue at once: the server delivers it again now rather
// than after AckWait. A delivery that was settled meanwhile is not affected.
func (b *Bus) HandBack(ctx context.Context, token string) error {
	if !strings.HasPrefix(token, "$JS.ACK."+StreamJobs+".") {
		return fmt.Errorf("hand back %q: not a job delivery", token)
	}
	if err := b.nc.Publish(token, []byte("-NAK")); err != nil {
		return fmt.Errorf("hand back: %w", err)
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("hand back: %w", err)
	}
	b.metrics.deliveries.WithLabelValues(kindJob, outcomeHandedBack).Inc()
	return nil
}

func (d *delivery) InProgress() error {
	// After shutdown a late heartbeat would keep the job from the next worker.
	select {
	case <-d.done:
		return errors.New("job heartbeat after worker shutdown")
	default:
		return d.msg.InProgress()
	}
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sleepCtx waits for d or until ctx is done; it reports whether the full d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
