package bot

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// Past its grace, shutdown cancels what still runs and drops what still waits; a task's
// panic stops only that task.
func TestShutdownGraceCancelsRunningAndDropsWaitingWork(t *testing.T) {
	t.Parallel()
	a := newAfterAck(1, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.grace = time.Millisecond // the running task never ends by itself

	ran := make(chan string, 4)
	submit := func(name string, fn func(ctx context.Context)) {
		t.Helper()
		r, err := a.pool.reserve()
		if err != nil {
			t.Fatal(err)
		}
		r.submit(task{what: name, fn: fn})
	}
	submit("panics", func(context.Context) { panic("bad payload") })
	started, cancelled := make(chan struct{}), make(chan error, 1)
	submit("runs", func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
	})
	<-started // so the one worker is busy with it, past the panic
	submit("waits", func(context.Context) { ran <- "waits" })

	a.shutdown()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("the running task ended with %v, want cancelled", err)
	}
	select {
	case name := <-ran:
		t.Fatalf("%s ran after the grace was over", name)
	default:
	}
	if !a.shuttingDown() {
		t.Fatal("not shutting down after shutdown")
	}
	if _, err := a.pool.reserve(); !errors.Is(err, errShuttingDown) {
		t.Fatalf("work taken after shutdown: %v", err)
	}
}
