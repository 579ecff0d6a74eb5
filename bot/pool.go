package bot

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Sizes of the pools that run the work after an ack.
const (
	// defaultWorkersPerCPU × GOMAXPROCS is the default of Config.Workers. Most post-ack
	// work waits on a vCenter or Slack rather than computing: a pre-flight holds its
	// worker for a few round trips to the source vCenter (its compatibility check, and
	// every read when it has no inventory mirror), and identical pre-flights wait for
	// one. At 300 commands a second against a vCenter 20 ms away, 4 per core turned most
	// away while the CPU idled; 16 per core take them all with a mirror, and still bound
	// what a burst can start (BENCHMARKS.md, 2026-12-07).
	defaultWorkersPerCPU = 16
	defaultWorkQueue     = 64 // Config.WorkQueue
	// Overload notices (a refused click is told so with chat.postEphemeral) have a small
	// pool of their own: on the main pool they would wait behind the work that filled it.
	noticeWorkers = 2
	noticeQueue   = 64
)

// errShuttingDown refuses work once the bot has begun to shut down.
var errShuttingDown = errors.New("bot is shutting down")

// busyError refuses work because every worker is busy and the queue is full.
type busyError struct {
	Waiting int // tasks queued (or about to be) when the work was refused
}

func (e *busyError) Error() string {
	return fmt.Sprintf("bot is busy: %d tasks waiting", e.Waiting)
}

// task is one piece of work after an ack; what names it in logs and metrics.
type task struct {
	what string
	fn   func(ctx context.Context)
}

// workPool runs the work that follows an acknowledgement (pre-flight, Slack posts, store
// updates) on at most workers goroutines, with at most queue tasks waiting for one. Without
// the bound a burst of commands starts as many pre-flights as arrive, and on a small
// machine the acks then wait for CPU behind that work; with it, work beyond the bound is
// refused at once, the caller tells the person so, and the acks stay fast.
//
// Workers are started as work arrives and end when the queue is empty, so an idle bot runs
// none and every worker is counted in wg, which shutdown waits for.
type workPool struct {
	workers int
	queue   int
	wg      *sync.WaitGroup // the Bot's: counts workers and open reservations
	run     func(task)

	mu        sync.Mutex
	waiting   []task
	reserved  int  // places taken by reserve and not yet submitted or released
	active    int  // tasks running now
	live      int  // worker goroutines
	closed    bool // no new reservations
	abandoned bool // shutdown grace is over: waiting tasks are dropped, not run
}

func newWorkPool(workers, queue int, wg *sync.WaitGroup, run func(task)) *workPool {
	return &workPool{workers: max(workers, 1), queue: max(queue, 0), wg: wg, run: run}
}

// defaultWorkers is Config.Workers when it is not set.
func defaultWorkers() int { return defaultWorkersPerCPU * runtime.GOMAXPROCS(0) }

// reservation is a place in a workPool's queue, taken before work whose first part runs
// inside the ack (an approval is stored before the click is acknowledged) so that the rest
// cannot be refused once the first part is done. Exactly one of submit or release must
// be called.
type reservation struct {
	p    *workPool
	done bool
}

// reserve takes a place for one task: an error (errShuttingDown or *busyError) when there
// is none.
func (p *workPool) reserve() (*reservation, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errShuttingDown
	}
	waiting := len(p.waiting) + p.reserved
	if p.active+waiting >= p.workers+p.queue {
		return nil, &busyError{Waiting: waiting}
	}
	p.reserved++
	p.wg.Add(1)
	return &reservation{p: p}, nil
}

// submit queues the task in the reserved place and starts a worker if fewer than the
// pool's number run. A reservation is honoured even while the pool closes: the first part
// of its work is done already. Only once shutdown grace is over (abandon) is the task
// dropped, like every task still waiting then; an approval's jobs are then queued by
// the re-publish loop of the next start.
func (r *reservation) submit(t task) {
	p := r.p
	p.mu.Lock()
	if r.done {
		p.mu.Unlock()
		panic("bot: reservation used twice")
	}
	r.done = true
	p.reserved--
	var start bool
	if !p.abandoned {
		p.waiting = append(p.waiting, t)
		if start = p.live < p.workers; start {
			p.live++
			p.wg.Add(1) // before the reservation's Done: wg never reaches zero in between
		}
	}
	p.mu.Unlock()
	if start {
		go p.work()
	}
	p.wg.Done()
}

// release gives the place back unused.
func (r *reservation) release() {
	p := r.p
	p.mu.Lock()
	if r.done {
		p.mu.Unlock()
		return
	}
	r.done = true
	p.reserved--
	p.mu.Unlock()
	p.wg.Done()
}

// work runs queued tasks in order until there are none left.
func (p *workPool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		if len(p.waiting) == 0 {
			p.live--
			p.mu.Unlock()
			return
		}
		t := p.waiting[0]
		p.waiting[0] = task{}
		p.waiting = p.waiting[1:]
		p.active++
		p.mu.Unlock()

		p.run(t)

		p.mu.Lock()
		p.active--
		p.mu.Unlock()
	}
}

// close refuses new reservations; queued work still runs.
func (p *workPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// abandon drops the tasks still waiting (shutdown grace is over) and returns their names;
// the ones running are left to their contexts.
func (p *workPool) abandon() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed, p.abandoned = true, true
	names := make([]string, 0, len(p.waiting))
	for _, t := range p.waiting {
		names = append(names, t.what)
	}
	p.waiting = nil
	return names
}

// poolLoad is what a pool holds now.
type poolLoad struct {
	queued  int // waiting for a worker
	running int
}

func (p *workPool) load() poolLoad {
	p.mu.Lock()
	defer p.mu.Unlock()
	return poolLoad{queued: len(p.waiting) + p.reserved, running: p.active}
}
