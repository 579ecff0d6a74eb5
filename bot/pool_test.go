package bot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// gatedTasks are pool tasks that say when they start and wait to be let go, one by one.
type gatedTasks struct {
	started chan string
	mu      sync.Mutex
	gates   map[string]chan struct{}
}

func newGatedTasks() *gatedTasks {
	return &gatedTasks{started: make(chan string, 64), gates: map[string]chan struct{}{}}
}

func (g *gatedTasks) task(name string) task {
	gate := make(chan struct{})
	g.mu.Lock()
	g.gates[name] = gate
	g.mu.Unlock()
	return task{what: name, fn: func(context.Context) {
		g.started <- name
		<-gate
	}}
}

func (g *gatedTasks) finish(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gates[name])
}

func runPlain(t task) { t.fn(context.Background()) }

func mustSubmit(t *testing.T, p *workPool, tk task) {
	t.Helper()
	r, err := p.reserve()
	if err != nil {
		t.Fatalf("reserve for %s: %v", tk.what, err)
	}
	r.submit(tk)
}

func TestWorkPoolBoundsWorkersAndQueue(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	p := newWorkPool(2, 3, &wg, runPlain)
	g := newGatedTasks()
	for i := range 5 {
		mustSubmit(t, p, g.task(fmt.Sprint("t", i)))
	}
	first := map[string]bool{<-g.started: true, <-g.started: true}
	if !first["t0"] || !first["t1"] {
		t.Fatalf("the first two tasks to run were %v, want t0 and t1", first)
	}
	if l := p.load(); l.running != 2 || l.queued != 3 {
		t.Fatalf("load %+v, want 2 running and 3 queued", l)
	}

	_, err := p.reserve()
	var busy *busyError
	if !errors.As(err, &busy) || busy.Waiting != 3 {
		t.Fatalf("reserve beyond 2 workers + 3 queued: %v, want busy with 3 waiting", err)
	}

	// Tasks start in the order they were queued, as places free up.
	for i, want := range []string{"t2", "t3", "t4"} {
		g.finish(fmt.Sprint("t", i))
		if got := <-g.started; got != want {
			t.Fatalf("after t%d finished, %s started; want %s", i, got, want)
		}
	}
	// A freed place can be taken again.
	mustSubmit(t, p, g.task("t5"))
	for i := 3; i <= 5; i++ {
		g.finish(fmt.Sprint("t", i))
	}
	if got := <-g.started; got != "t5" {
		t.Fatalf("%s started, want t5", got)
	}
	wg.Wait()
	if l := p.load(); l != (poolLoad{}) {
		t.Fatalf("load after all finished: %+v", l)
	}
}

func TestWorkPoolReservation(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	p := newWorkPool(1, 1, &wg, runPlain)
	g := newGatedTasks()
	mustSubmit(t, p, g.task("running"))
	<-g.started

	r, err := p.reserve()
	if err != nil {
		t.Fatalf("reserve the one queue place: %v", err)
	}
	if l := p.load(); l.queued != 1 {
		t.Fatalf("a reservation is not counted as queued: %+v", l)
	}
	if _, err := p.reserve(); err == nil {
		t.Fatal("a second reservation was granted with the queue full")
	}
	r.release()
	r.release() // harmless
	r2, err := p.reserve()
	if err != nil {
		t.Fatalf("a released place was not given back: %v", err)
	}

	// A reservation taken before close is still honoured after it.
	p.close()
	if _, err := p.reserve(); !errors.Is(err, errShuttingDown) {
		t.Fatalf("reserve after close: %v, want errShuttingDown", err)
	}
	r2.submit(g.task("reserved"))
	g.finish("running")
	if got := <-g.started; got != "reserved" {
		t.Fatalf("%s started, want the reserved task", got)
	}
	g.finish("reserved")
	wg.Wait()
}

func TestWorkPoolAbandonDropsWaitingTasks(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	p := newWorkPool(1, 5, &wg, runPlain)
	g := newGatedTasks()
	mustSubmit(t, p, g.task("running"))
	<-g.started
	ran := make(chan string, 2)
	for _, name := range []string{"a", "b"} {
		mustSubmit(t, p, task{what: name, fn: func(context.Context) { ran <- name }})
	}
	if dropped := p.abandon(); len(dropped) != 2 || dropped[0] != "a" || dropped[1] != "b" {
		t.Fatalf("abandon dropped %v, want [a b]", dropped)
	}
	g.finish("running")
	wg.Wait()
	close(ran)
	for name := range ran {
		t.Errorf("abandoned task %s ran", name)
	}
}
