package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// deliveryLog records what the handler saw, for assertions after the fact.
type deliveryLog struct {
	mu       sync.Mutex
	attempts map[string][]uint64
}

func (l *deliveryLog) add(id string, attempt uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.attempts == nil {
		l.attempts = map[string][]uint64{}
	}
	l.attempts[id] = append(l.attempts[id], attempt)
}

func (l *deliveryLog) get(id string) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint64(nil), l.attempts[id]...)
}

func TestRunWorkerOutcomes(t *testing.T) {
	t.Parallel()
	// Two seconds leaves heartbeats (every AckWait/3) room on a loaded CI box.
	const ackWait = 2 * time.Second
	tb := newTestBus(t, BusConfig{AckWait: ackWait, RetryDelay: 100 * time.Millisecond})
	ctx := testCtx(t, 45*time.Second)

	// Slow jobs outlive AckWait twice over: only heartbeats keep them from being
	// handed to the other slot.
	jobs := []struct {
		id      string
		handler func(ctx context.Context, d Delivery) error
	}{
		{"slow-1", sleepFor(2 * ackWait)},
		{"slow-2", sleepFor(2 * ackWait)},
		{"slow-3", sleepFor(2 * ackWait)},
		{"retry", func(_ context.Context, d Delivery) error {
			if d.Attempt() == 1 {
				return fmt.Errorf("host busy: %w", ErrRetry)
			}
			return nil
		}},
		{"permanent", func(context.Context, Delivery) error { return errors.New("invalid argument: no such datastore") }},
		{"panics", func(context.Context, Delivery) error { panic("nil pointer somewhere") }},
	}
	handlers := map[string]func(context.Context, Delivery) error{}
	for _, j := range jobs {
		handlers[j.id] = j.handler
		if err := tb.PublishJob(ctx, Job{ID: j.id, VM: "vm-" + j.id}); err != nil {
			t.Fatal(err)
		}
	}
	// A message no worker can read.
	js, _ := jetstream.New(tb.nc)
	if _, err := js.Publish(ctx, SubjectJobs, []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	var running, maxRunning atomic.Int32
	var log deliveryLog
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- tb.RunWorker(wctx, 2, func(ctx context.Context, j Job, d Delivery) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
			log.add(j.ID, d.Attempt())
			return handlers[j.ID](ctx, d)
		})
	}()

	// Done when every message is settled: the work queue removes acked and termed ones.
	eventually(ctx, t, "all jobs settled", func() bool {
		s, err := js.Stream(ctx, StreamJobs)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("RunWorker: %v", err)
	}

	if got := maxRunning.Load(); got != 2 {
		t.Errorf("max handlers at once = %d, want exactly 2 (slots)", got)
	}
	want := map[string][]uint64{
		"slow-1": {1}, "slow-2": {1}, "slow-3": {1}, // heartbeats: no redelivery
		"retry":     {1, 2}, // nak → back once
		"permanent": {1},    // term → never again
		"panics":    {1},    // a panic is permanent, and the worker survives it
	}
	for id, w := range want {
		if got := log.get(id); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("job %s delivered with attempts %v, want %v", id, got, w)
		}
	}
	for outcome, w := range map[string]float64{"ack": 4, "nak": 1, "term": 3} {
		if got := metricValue(t, tb.reg, "xvm_nats_deliveries_total", map[string]string{"kind": "job", "outcome": outcome}); got != w {
			t.Errorf("job deliveries %s = %v, want %v", outcome, got, w)
		}
	}
}

func sleepFor(d time.Duration) func(context.Context, Delivery) error {
	return func(ctx context.Context, _ Delivery) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// A worker shut down mid-job hands it back: the next worker gets it a second later, not after
// AckWait (ten minutes here, far beyond the test's deadline).
func TestRunWorkerShutdownHandsTheJobToAnotherWorker(t *testing.T) {
	t.Parallel()
	const ackWait = 10 * time.Minute
	tb := newTestBus(t, BusConfig{AckWait: ackWait})
	ctx := testCtx(t, 20*time.Second)
	if err := tb.PublishJob(ctx, Job{ID: "job-long", VM: "db-01"}); err != nil {
		t.Fatal(err)
	}

	// Worker A takes the job, then is shut down mid-relocation.
	started := make(chan struct{})
	actx, stopA := context.WithCancel(ctx)
	doneA := make(chan error, 1)
	go func() {
		doneA <- tb.RunWorker(actx, 2, func(ctx context.Context, _ Job, _ Delivery) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("worker A never got the job")
	}
	stopA()
	select {
	case err := <-doneA:
		if err != nil {
			t.Fatalf("worker A: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("worker A did not stop within 5s of shutdown")
	}

	// Worker B, on its own connection like a second process, gets it a second later.
	ncB := connect(t, tb.srv)
	busB, err := NewBus(ctx, ncB, BusConfig{AckWait: ackWait}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, 1)
	bctx, stopB := context.WithCancel(ctx)
	doneB := make(chan error, 1)
	go func() {
		doneB <- busB.RunWorker(bctx, 1, func(_ context.Context, j Job, d Delivery) error {
			if j.ID == "job-long" {
				got <- d.Attempt()
			}
			return nil
		})
	}()
	select {
	case attempt := <-got:
		if attempt != 2 {
			t.Errorf("worker B saw attempt %d, want 2", attempt)
		}
	case <-ctx.Done():
		t.Fatal("the job of a worker shut down mid-job was not handed to the next worker")
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatalf("worker B: %v", err)
	}
	if got := metricValue(t, tb.reg, "xvm_nats_deliveries_total", map[string]string{"kind": "job", "outcome": "nak"}); got != 1 {
		t.Errorf("naks = %v, want 1: the job handed back at shutdown", got)
	}
}

// A worker killed mid-job settles nothing. Its next run hands the delivery back by the
// token it recorded, and the job comes again at once, not after AckWait (ten minutes
// here). A token that is not a job delivery's is refused.
func TestHandBackRedeliversADeadWorkersJobAtOnce(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{AckWait: 10 * time.Minute})
	ctx := testCtx(t, 20*time.Second)
	if err := tb.PublishJob(ctx, Job{ID: "job-dead", VM: "db-02"}); err != nil {
		t.Fatal(err)
	}
	ncA := connect(t, tb.srv)
	busA, err := NewBus(ctx, ncA, BusConfig{AckWait: 10 * time.Minute}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	token := make(chan string, 1)
	actx, stopA := context.WithCancel(ctx)
	defer stopA()
	go func() { // ends when ncA closes under it
		_ = busA.RunWorker(actx, 1, func(ctx context.Context, _ Job, d Delivery) error {
			token <- d.Token()
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	var tok string
	select {
	case tok = <-token:
	case <-ctx.Done():
		t.Fatal("worker A never got the job")
	}
	ncA.Close() // killed: nothing is settled

	if err := tb.HandBack(ctx, "$JS.ACK.other.x.1.1.1.1.0"); err == nil {
		t.Error("HandBack took a token of another stream")
	}
	if err := tb.HandBack(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, 1)
	bctx, stopB := context.WithCancel(ctx)
	doneB := make(chan error, 1)
	go func() {
		doneB <- tb.RunWorker(bctx, 1, func(_ context.Context, j Job, d Delivery) error {
			if j.ID == "job-dead" {
				got <- d.Attempt()
			}
			return nil
		})
	}()
	select {
	case attempt := <-got:
		if attempt != 2 {
			t.Errorf("attempt %d, want 2", attempt)
		}
	case <-ctx.Done():
		t.Fatal("the dead worker's job did not come back after HandBack")
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, tb.reg, "xvm_nats_deliveries_total", map[string]string{"kind": "job", "outcome": "handed_back"}); got != 1 {
		t.Errorf("handed back = %v, want 1", got)
	}
}

func TestRetryDelayDoublesAndCaps(t *testing.T) {
	t.Parallel()
	b := &Bus{cfg: BusConfig{RetryDelay: time.Second}}
	tests := []struct {
		attempt uint64
		want    time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{9, 256 * time.Second}, {10, maxRetryDelay}, {1000, maxRetryDelay},
	}
	for _, tt := range tests {
		if got := b.retryDelay(tt.attempt); got != tt.want {
			t.Errorf("retryDelay(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
	// The delay of a plain retry doubles with the job's plain retries, not with its
	// deliveries: a wave's waits for a slot (RetryAfter) are deliveries too, dozens of
	// them, and must not put a transient error off for the cap.
	for range 30 {
		if got := b.delayFor("xvm-a-01", RetryAfter(errors.New("waits for a slot"), 3*time.Second)); got != 3*time.Second {
			t.Fatalf("a wait for a slot asked 3s and got %v", got)
		}
	}
	plain := fmt.Errorf("save job record: nats: no response from stream: %w", ErrRetry)
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if got := b.delayFor("xvm-a-01", plain); got != want {
			t.Errorf("plain retry %d after 30 waits: delay %v, want %v", i+1, got, want)
		}
	}
	if got := b.delayFor("xvm-b-01", plain); got != time.Second {
		t.Errorf("another job's first plain retry waits %v, want 1s", got)
	}
	b.retries.forget("xvm-a-01")
	if got := b.delayFor("xvm-a-01", plain); got != time.Second {
		t.Errorf("after the job ended, its first plain retry waits %v, want 1s", got)
	}
	err := RetryAfter(errors.New("host in maintenance"), time.Minute)
	if !errors.Is(err, ErrRetry) || err.Error() != "host in maintenance" {
		t.Errorf("RetryAfter: Is(ErrRetry)=%v, Error()=%q", errors.Is(err, ErrRetry), err)
	}
}

func TestRunWorkerShutdownIsBounded(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{AckWait: time.Second, ShutdownGrace: 200 * time.Millisecond})
	ctx := testCtx(t, 10*time.Second)
	if err := tb.PublishJob(ctx, Job{ID: "job-stuck", VM: "web-01"}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- tb.RunWorker(wctx, 1, func(context.Context, Job, Delivery) error {
			close(started)
			<-release // ignores ctx, like a handler stuck in a blocking call
			return nil
		})
	}()
	<-started
	stop()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("RunWorker with a stuck handler returned nil, want an error naming the grace")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunWorker did not return within 5s with ShutdownGrace 200ms")
	}
}
