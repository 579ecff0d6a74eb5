package bot

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunWaitsForInFlightWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.planner.gate, e.planner.entered = make(chan struct{}), make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.Run(ctx) }()

	if d := e.command(requester, "migrate web-01 to vc-west"); d.status != http.StatusOK {
		t.Fatalf("status %d", d.status)
	}
	<-e.planner.entered // the plan is in flight, slowly
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a plan in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	// New commands are turned away politely while shutting down.
	if !strings.Contains(ackText(t, e.command(requester, "migrate web-02 to vc-west")), "restarting") {
		t.Fatal("a command during shutdown was not told to retry")
	}
	close(e.planner.gate)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if all := e.requests(); len(all) != 1 || all[0].MessageTS == "" {
		t.Fatalf("in-flight command did not finish: %+v", all)
	}
	if err := e.bot.Ready(); err == nil {
		t.Fatal("Ready after shutdown")
	}
}

func TestNewRefusesMissingParts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.bot.cfg
	if _, err := New(cfg, nil, e.planner, e.jobs, nil, nil); err == nil {
		t.Fatal("no service accepted")
	}
	cfg.BotToken = ""
	if _, err := New(cfg, e.svc, e.planner, e.jobs, nil, nil); err == nil {
		t.Fatal("no bot token accepted")
	}
}
