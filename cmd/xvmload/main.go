// Command xvmload measures xvmbot on this machine: Slack acknowledgement latency under
// load, approve click → RelocateVM_Task, a 200-VM wave against the ideal for the configured
// limits and against a one-at-a-time loop, and the memory of a real `xvmbot serve`
// process idle and with 10,000 jobs queued. Everything runs in-process on simulated
// vCenters (xvmsim), a local Slack (slacksim) and embedded NATS; nothing is asserted —
// it prints numbers for BENCHMARKS.md.
//
//	go run ./cmd/xvmload                       # every scenario
//	go run ./cmd/xvmload -scenario ack -rate 300 -duration 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

type flags struct {
	scenario     string
	rate         int
	duration     time.Duration
	slowVC       time.Duration
	mirrorMaxAge time.Duration
	workers      int
	migrateEvery int
	samples      int
	planReuse    time.Duration
	split        bool
	vms          int
	sizes        []int // wave: every size of -vms, in order (vms is the first)
	slots        int
	taskDuration time.Duration
	serial       bool
	perHost      int
	perDatastore int
	tableAbove   int
	jobs         int
	requestVMs   int
	xvmbot       string
	heapProfiles string
	verbose      bool
	cpuProfile   string
}

func main() {
	var f flags
	flag.StringVar(&f.scenario, "scenario", "all", "ack | approve | wave | memory | all (comma-separated)")
	flag.IntVar(&f.rate, "rate", 300, "ack: requests per second (half slash commands, half clicks)")
	flag.DurationVar(&f.duration, "duration", 10*time.Second, "ack: how long to send")
	flag.DurationVar(&f.slowVC, "slow-vc", 20*time.Millisecond, "ack: delay added to every request chunk sent to the source vCenter")
	flag.DurationVar(&f.mirrorMaxAge, "mirror-max-age", 0, "ack: vcenters[].mirror_max_age of both vCenters (0: no inventory mirror; pre-flights read live)")
	flag.IntVar(&f.migrateEvery, "migrate-every", 10, "ack: one slash command in this many is a migrate as well as a check (its approval message is posted in the one channel, which Slack and the bot pace to about one post a second); 0: checks only")
	flag.IntVar(&f.workers, "slack-workers", 0, "ack: slack.workers, the bot's workers after the ack (0: the default)")
	flag.IntVar(&f.samples, "samples", 30, "approve: how many approve clicks to time")
	flag.DurationVar(&f.planReuse, "plan-reuse", 0, "approve: worker.plan_reuse (0: the default 30s, under which the worker starts on the bot's own pre-flight; 1ns: it plans again, as a worker in another process does)")
	flag.BoolVar(&f.split, "split", false, "approve: the bot and the worker as separate `xvmbot bot` and `xvmbot worker` processes on a nats-server process (built from this tree)")
	vmsList := flag.String("vms", "200", "wave: VMs in the wave; a comma list (50,200,1000) runs each size on a fresh stack, one after another, and prints the curve")
	flag.IntVar(&f.slots, "slots", 8, "wave: limits.max_concurrent of the worker")
	flag.DurationVar(&f.taskDuration, "task-delay", 500*time.Millisecond, "wave: duration of one emulated relocation task")
	flag.IntVar(&f.perHost, "per-host", 2, "wave: limits.per_host")
	flag.IntVar(&f.perDatastore, "per-datastore", 8, "wave: limits.per_datastore")
	flag.IntVar(&f.tableAbove, "table-above", 0, "wave: slack.table_above (0: the default, 20; -1: one thread message per VM)")
	flag.BoolVar(&f.serial, "serial", true, "wave: also run the same moves one at a time (a loop over govc/PowerCLI)")
	flag.IntVar(&f.jobs, "jobs", 10000, "memory: jobs to queue")
	flag.IntVar(&f.requestVMs, "request-vms", 0, "memory: instead of -jobs, ask for and approve through Slack one request of this many VMs (bulk-0001…), and measure serve with it in flight")
	flag.StringVar(&f.xvmbot, "xvmbot", "", "memory: path of a built xvmbot binary (default: go build it)")
	flag.StringVar(&f.heapProfiles, "heap-profiles", "", "memory: build serve with -tags pprof and write heap profiles of its live heap into this directory, every 2 s during the pre-flight and once the jobs are queued (go tool pprof -sample_index=inuse_space)")
	flag.BoolVar(&f.verbose, "verbose", false, "print the components' warnings")
	flag.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (every component is in this process) to this file")
	flag.Parse()
	sizes, err := parseSizes(*vmsList)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xvmload: -vms:", err)
		os.Exit(2)
	}
	f.sizes, f.vms = sizes, sizes[0]
	if f.cpuProfile != "" {
		out, err := os.Create(f.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "xvmload: cpu profile:", err)
			os.Exit(2)
		}
		defer func() { pprof.StopCPUProfile(); _ = out.Close() }()
	}

	// Everything runs in this one process: the bot, its vCenter sessions, the simulated
	// vCenters and Slack, and the clients. Hundreds of connections a second need more
	// than the usual 1024 descriptors.
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("xvmload on %s/%s, %d CPU, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	scenarios := map[string]func(context.Context, flags) error{
		"ack": runAck, "approve": runApprove, "wave": runWave, "memory": runMemory,
		"chaos": runChaos, // not in "all": minutes of SIGKILLs on separate processes
	}
	names := strings.Split(f.scenario, ",")
	if f.scenario == "all" {
		names = []string{"ack", "approve", "wave", "memory"}
	}
	failed := false
	for _, n := range names {
		run, ok := scenarios[n]
		if !ok {
			fmt.Fprintf(os.Stderr, "xvmload: unknown scenario %q\n", n)
			os.Exit(2)
		}
		fmt.Printf("\n== %s\n", n)
		if err := run(ctx, f); err != nil {
			fmt.Fprintf(os.Stderr, "xvmload: %s: %v\n", n, err)
			failed = true
		}
	}
	if failed {
		pprof.StopCPUProfile() // flushes the profile; os.Exit skips the deferred stop
		os.Exit(1)
	}
}
