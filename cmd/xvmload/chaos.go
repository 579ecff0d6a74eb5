package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// The chaos scenario's own flags. -vms, -duration, -task-delay, -slots, -per-host,
// -per-datastore and -xvmbot are the shared ones; -vms and -duration take the
// chaos defaults below when not given.
var (
	chaosKillEvery = flag.Duration("kill-every", 5*time.Second, "chaos: time between two SIGKILLs")
	chaosDownFor   = flag.Duration("down-for", time.Second, "chaos: how long a SIGKILLed process stays down before it is started again")
	chaosBots      = flag.Int("bots", 2, "chaos: `xvmbot bot` processes")
	chaosWorkers   = flag.Int("workers", 3, "chaos: `xvmbot worker` processes")
	chaosSettle    = flag.Duration("settle", 10*time.Second, "chaos: how long to keep watching the thread after the final reply, for a doubled one")
	chaosNATS      = flag.String("nats-server", "", "chaos: path of a built nats-server binary (default: go build the module's github.com/nats-io/nats-server/v2)")
	chaosKeep      = flag.Bool("keep", false, "chaos: keep the run's directory (configs, every process's logs, NATS stores)")
)

const (
	chaosDefaultVMs   = 1000
	chaosDefaultBound = 30 * time.Minute
)

// Kinds of process the chaos scenario SIGKILLs.
const (
	kindBot    = "bot"
	kindWorker = "worker"
	kindNATS   = "nats"
)

// runChaos moves f.vms VMs in one request on separate `xvmbot bot` and `xvmbot worker`
// processes over a three-node NATS cluster (real nats-server processes, streams and
// buckets R3), SIGKILLing a bot, a worker or a NATS node every -kill-every until the
// request's final reply is posted, and then checks what a user would: every VM moved
// exactly once by the source vCenter's own count and is in the target, and exactly one
// final reply in the thread. It fails on any violation, and when the bound (-duration)
// passes first.
func runChaos(ctx context.Context, f flags) error {
	set := map[string]bool{}
	flag.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	o := chaosOpts{vms: f.vms, bound: f.duration, taskDelay: f.taskDuration, killEvery: *chaosKillEvery, downFor: *chaosDownFor,
		bots: *chaosBots, workers: *chaosWorkers, slots: f.slots, perHost: f.perHost, perDatastore: f.perDatastore,
		settle: *chaosSettle, xvmbot: f.xvmbot, natsServer: *chaosNATS, keep: *chaosKeep}
	if !set["vms"] {
		o.vms = chaosDefaultVMs
	}
	if !set["duration"] {
		o.bound = chaosDefaultBound
	}
	if o.vms < 1 || o.bots < 1 || o.workers < 1 {
		return errors.New("chaos needs at least one VM, one bot and one worker (-vms, -bots, -workers)")
	}
	res, err := chaos(ctx, o)
	if res != nil {
		fmt.Print(res.String())
	}
	if err != nil {
		return err
	}
	if v := res.verdict.violations(); len(v) > 0 {
		return fmt.Errorf("%d violations: %s", len(v), strings.Join(v, "; "))
	}
	return nil
}

type chaosOpts struct {
	vms                          int
	bound                        time.Duration // the whole run, from the approval to the final reply
	taskDelay                    time.Duration
	killEvery, downFor, settle   time.Duration
	bots, workers                int
	slots, perHost, perDatastore int
	xvmbot, natsServer           string
	keep                         bool
	quiet                        bool // no progress lines (tests)
}

// chaosResult is what a run measured.
type chaosResult struct {
	opts      chaosOpts
	request   string
	preflight time.Duration
	wall      time.Duration // approve click → final reply
	kills     map[string]int
	crashes   []string      // processes that exited without being killed
	thread    int           // messages in the request's thread
	final     string        // the first final reply, in plain words
	stored    string        // the request's state in the store at the end
	queuedFor time.Duration // how long the jobs stream took to empty after the final reply
	verdict   chaosVerdict
}

func (r *chaosResult) String() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "chaos: %d VMs in request %s; %d bots, %d workers (max_concurrent %d, per_host %d, per_datastore %d), 3 NATS nodes (R3); task %v; a SIGKILL every %v, down %v\n",
		o.vms, r.request, o.bots, o.workers, o.slots, o.perHost, o.perDatastore, o.taskDelay, o.killEvery, o.downFor)
	fmt.Fprintf(&b, "pre-flight of the request %v; approve → final reply %v\n", r.preflight.Round(time.Millisecond), r.wall.Round(time.Millisecond))
	fmt.Fprintf(&b, "SIGKILLs: %d (bot %d, worker %d, nats %d)", r.kills[kindBot]+r.kills[kindWorker]+r.kills[kindNATS],
		r.kills[kindBot], r.kills[kindWorker], r.kills[kindNATS])
	if len(r.crashes) > 0 {
		fmt.Fprintf(&b, "; exited on their own: %s", strings.Join(r.crashes, ", "))
	}
	b.WriteString("\n")
	v := r.verdict
	fmt.Fprintf(&b, "moved exactly once (source vCenter's count) %d of %d; lost %d; doubled %d; not in the target %d; still in the source %d\n",
		v.movedOnce, v.vms, v.lost, v.doubled, v.notInTarget, v.inSource)
	fmt.Fprintf(&b, "final replies in the thread %d; thread messages %d; request stored as %s; jobs left queued %d (waited %v for the queue to empty)\n",
		v.finals, r.thread, r.stored, v.queued, r.queuedFor.Round(time.Second))
	if r.final != "" {
		fmt.Fprintf(&b, "final reply: %s\n", firstLine(r.final))
	}
	if vs := v.violations(); len(vs) > 0 {
		fmt.Fprintf(&b, "VIOLATIONS: %s\n", strings.Join(vs, "; "))
	} else {
		b.WriteString("no violation\n")
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// chaosVerdict is the check of a run: what the source vCenter counted per VM, where the
// VMs are, and the final replies in the thread.
type chaosVerdict struct {
	vms                                             int
	movedOnce, lost, doubled, notInTarget, inSource int
	finals                                          int
	queued                                          int      // jobs still in the jobs stream at the end (-1: unknown)
	examples                                        []string // the first few VMs in violation, with what is wrong
}

// judge checks a run. relocations is the source vCenter's own count of completed
// cross-vCenter relocations of a VM; inTarget and inSource say where a VM is now.
func judge(vms []string, relocations func(string) int, inTarget, inSource func(string) bool, finals int) chaosVerdict {
	v := chaosVerdict{vms: len(vms), finals: finals}
	note := func(format string, a ...any) {
		if len(v.examples) < 5 {
			v.examples = append(v.examples, fmt.Sprintf(format, a...))
		}
	}
	for _, vm := range vms {
		switch n := relocations(vm); {
		case n == 0:
			v.lost++
			note("%s never relocated", vm)
		case n > 1:
			v.doubled++
			note("%s relocated %d times", vm, n)
		default:
			v.movedOnce++
		}
		if !inTarget(vm) {
			v.notInTarget++
			note("%s not in the target", vm)
		}
		if inSource(vm) {
			v.inSource++
			note("%s still in the source", vm)
		}
	}
	return v
}

// violations lists what a user would call wrong; empty when the run kept every promise.
func (v chaosVerdict) violations() []string {
	var out []string
	if v.lost > 0 {
		out = append(out, fmt.Sprintf("%d VMs never moved", v.lost))
	}
	if v.doubled > 0 {
		out = append(out, fmt.Sprintf("%d VMs moved more than once", v.doubled))
	}
	if v.notInTarget > 0 {
		out = append(out, fmt.Sprintf("%d VMs not in the target", v.notInTarget))
	}
	if v.inSource > 0 {
		out = append(out, fmt.Sprintf("%d VMs still in the source", v.inSource))
	}
	if v.finals != 1 {
		out = append(out, fmt.Sprintf("%d final replies in the thread, want 1", v.finals))
	}
	switch {
	case v.queued < 0:
		out = append(out, "the jobs queue could not be read")
	case v.queued > 0:
		out = append(out, fmt.Sprintf("%d jobs left in the queue, want 0", v.queued))
	}
	if len(out) > 0 && len(v.examples) > 0 {
		out = append(out, "e.g. "+strings.Join(v.examples, ", "))
	}
	return out
}

// isFinalReply says whether a thread message is the reply that tells the requester how
// the request ended (bot/render.go RenderFinal: it mentions them, "<@U…>, your …").
func isFinalReply(m slacksim.Message) bool {
	return strings.Contains(m.Text+string(m.Blocks), "<@"+alice+">, your ")
}

func chaos(ctx context.Context, o chaosOpts) (_ *chaosResult, err error) {
	res := &chaosResult{opts: o, kills: map[string]int{}}
	say := func(format string, a ...any) {
		if !o.quiet {
			fmt.Printf(format+"\n", a...)
		}
	}
	dir, err := os.MkdirTemp("", "xvmload-chaos-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.keep || err != nil {
			fmt.Fprintf(os.Stderr, "chaos: the run's configs and logs are kept in %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()

	xvmbotBin, natsBin, err := chaosBinaries(ctx, dir, o)
	if err != nil {
		return nil, err
	}
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(o.taskDelay), xvmsim.WithExtraVMs(o.vms))
	if err != nil {
		return nil, fmt.Errorf("start simulated vCenters: %w", err)
	}
	defer lab.Close()
	ws := slacksim.New()
	defer ws.Close()
	for id, n := range map[string]string{alice: "alice", bob: "bob", dave: "dave"} {
		ws.AddUser(id, n)
	}
	ws.LimitPosts(1, 5) // Slack's posting rate per channel, as the wave scenario has it

	fl := &chaosFleet{dir: dir}
	defer fl.stopAll()
	cluster, err := fl.startCluster(ctx, natsBin, 3)
	if err != nil {
		return nil, err
	}
	say("3 NATS nodes up: %s", strings.Join(cluster, ","))
	common, err := chaosCommonConfig(dir, lab, ws, cluster, o)
	if err != nil {
		return nil, err
	}
	var bots, workers []*chaosProc
	for i := range o.bots {
		p, err := fl.startXVMBot(ctx, xvmbotBin, kindBot, fmt.Sprintf("bot%d", i+1), common)
		if err != nil {
			return nil, err
		}
		bots = append(bots, p)
	}
	for i := range o.workers {
		p, err := fl.startXVMBot(ctx, xvmbotBin, kindWorker, fmt.Sprintf("w%d", i+1), common)
		if err != nil {
			return nil, err
		}
		workers = append(workers, p)
	}
	say("%d bots and %d workers ready", len(bots), len(workers))
	ws.UseHTTP("http://"+bots[0].httpAddr, signing)

	names := make([]string, o.vms)
	for i := range names {
		names[i] = fmt.Sprintf("bulk-%04d", i+1)
	}
	start := time.Now()
	id, ts, err := submitTo(ctx, ws, strings.Join(names, ","))
	if err != nil {
		return nil, err
	}
	res.request, res.preflight = id, time.Since(start)
	say("request %s: pre-flight %v", id, res.preflight.Round(time.Millisecond))
	clickAt := time.Now()
	if rep, err := ws.Click(ctx, bob, channel, ts, "xvm_approve", id); err != nil || rep.Status != 200 {
		return nil, fmt.Errorf("approve: status %d: %v", rep.Status, err)
	}

	// The chaos: one victim at a time, so that a three-node cluster always has a quorum
	// and a bot and a worker are always up; kinds take turns, and so do the instances of
	// each kind (every one of them is killed, leaders and followers alike).
	stop := make(chan struct{})
	chaosDone := make(chan struct{})
	next := map[string]int{}
	var mu sync.Mutex
	go func() {
		defer close(chaosDone)
		kinds := []string{kindWorker, kindBot, kindNATS}
		for turn := 0; ; turn++ {
			select {
			case <-stop:
				return
			case <-time.After(o.killEvery):
			}
			kind := kinds[turn%len(kinds)]
			var pool []*chaosProc
			switch kind {
			case kindBot:
				pool = bots
			case kindWorker:
				pool = workers
			case kindNATS:
				// A node is killed only while the whole cluster is current: the node
				// killed before has caught up, so the streams keep a quorum.
				if !fl.clusterHealthy(ctx, 30*time.Second, stop) {
					say("  %s: the NATS cluster is not healthy after 30s; no NATS kill this turn", time.Since(clickAt).Round(time.Second))
					continue
				}
				pool = fl.nats
			}
			victim := pool[next[kind]%len(pool)]
			next[kind]++
			if err := victim.kill(); err != nil {
				say("  kill %s: %v", victim.name, err)
				continue
			}
			mu.Lock()
			res.kills[kind]++
			mu.Unlock()
			say("  %s: SIGKILL %s; relocations so far %d", time.Since(clickAt).Round(time.Second), victim.name, lab.VC(xvmsim.EastVC).XVMRelocations())
			select {
			case <-stop:
			case <-time.After(o.downFor):
			}
			if err := victim.start(); err != nil {
				say("  restart %s: %v", victim.name, err)
			}
		}
	}()
	// A process that exits without being killed is restarted, as a supervisor would,
	// and reported.
	go fl.supervise(stop, func(p *chaosProc) {
		mu.Lock()
		res.crashes = append(res.crashes, p.name)
		mu.Unlock()
		say("  %s exited on its own (%v); started again. Last lines:\n%s", p.name, p.exitErr(), lastLinesOf(p.logText(), 15))
	})

	wctx, cancel := context.WithTimeout(ctx, o.bound)
	werr := ws.WaitFor(wctx, func() bool {
		return slices.ContainsFunc(ws.Thread(ts), isFinalReply)
	})
	cancel()
	res.wall = time.Since(clickAt)
	close(stop)
	<-chaosDone
	// Whatever was down when the chaos stopped is up again: a doubled final reply or a
	// late move has every chance to show.
	for _, p := range fl.all() {
		if !p.running() {
			_ = p.start()
		}
	}
	if werr == nil {
		time.Sleep(o.settle) // a doubled final reply, if any, has time to arrive
	}
	east, west := lab.VC(xvmsim.EastVC), lab.VC(xvmsim.WestVC)
	thread := ws.Thread(ts)
	finals := 0
	for _, m := range thread {
		if isFinalReply(m) {
			finals++
			if res.final == "" {
				res.final = ws.Plain(m)
			}
		}
	}
	res.thread = len(thread)
	inWest, err := vmNames(ctx, west)
	if err != nil {
		return res, err
	}
	inEast, err := vmNames(ctx, east)
	if err != nil {
		return res, err
	}
	res.verdict = judge(names, east.XVMRelocationsOf, func(vm string) bool { return inWest[vm] },
		func(vm string) bool { return inEast[vm] }, finals)
	// A job whose ack was lost with a NATS node comes back after the ack wait, and the
	// worker that takes it finds it done: the queue must be empty by then.
	queuedAt := time.Now()
	res.stored, res.verdict.queued = chaosStoreState(ctx, cluster, id, time.Minute)
	res.queuedFor = time.Since(queuedAt)
	if werr != nil {
		return res, fmt.Errorf("no final reply within the bound %v: %d of %d VMs relocated, %d SIGKILLs", o.bound,
			east.XVMRelocations(), o.vms, res.kills[kindBot]+res.kills[kindWorker]+res.kills[kindNATS])
	}
	return res, nil
}

// submitTo sends a migrate command as alice and returns the request id and the ts of the
// approval message.
func submitTo(ctx context.Context, ws *slacksim.Workspace, vms string) (id, ts string, err error) {
	before := len(ws.Channel(channel))
	rep, err := ws.Command(ctx, alice, channel, "migrate "+vms+" "+moveOpts)
	if err != nil || rep.Status != 200 {
		return "", "", fmt.Errorf("command: status %d: %v", rep.Status, err)
	}
	var msg slacksim.Message
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := ws.WaitFor(wctx, func() bool {
		ch := ws.Channel(channel)
		for _, m := range ch[min(before, len(ch)):] {
			if strings.Contains(string(m.Blocks), `"xvm_approve"`) {
				msg = m
				return true
			}
		}
		return false
	}); err != nil {
		return "", "", fmt.Errorf("no approval message for the request (%w); the channel says: %s", err, lastChannelMessage(ws))
	}
	id = requestIDRE.FindString(ws.Plain(msg))
	if id == "" {
		return "", "", errors.New("the approval message names no request")
	}
	return id, msg.TS, nil
}

func lastChannelMessage(ws *slacksim.Workspace) string {
	ch := ws.Channel(channel)
	if len(ch) == 0 {
		return "nothing"
	}
	return firstLine(ws.Plain(ch[len(ch)-1]))
}

// chaosStoreState reads, as anyone with access to the cluster could, the request's state
// and the jobs still queued, waiting up to wait for the queue to empty.
func chaosStoreState(ctx context.Context, cluster []string, id string, wait time.Duration) (state string, queued int) {
	state, queued = "?", -1
	nc, err := nats.Connect(strings.Join(cluster, ","), nats.Name("xvmload-chaos"), nats.MaxReconnects(-1))
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	if store, err := events.OpenRequestStore(rctx, js); err == nil {
		var r *approvals.Request
		if r, _, err = store.Get(rctx, id); err == nil {
			state = string(r.State)
		}
	}
	deadline := time.Now().Add(wait)
	for {
		if st, err := js.Stream(rctx, events.StreamJobs); err == nil {
			if info, err := st.Info(rctx); err == nil {
				queued = int(info.State.Msgs)
			}
		}
		if queued == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Second)
	}
}

// chaosCommonConfig is the YAML every bot and worker shares; each process adds its
// listen addresses and name.
func chaosCommonConfig(dir string, lab *xvmsim.Lab, ws *slacksim.Workspace, cluster []string, o chaosOpts) (map[string]any, error) {
	secretFile := filepath.Join(dir, "signing-secret")
	if err := os.WriteFile(secretFile, []byte(signing), 0o600); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "approval-signing.nk")
	pub, err := system.WriteSigningKey(keyFile)
	if err != nil {
		return nil, err
	}
	var vcs []any
	for i, vc := range lab.VCs() {
		pw := filepath.Join(dir, vc.Name+".password")
		if err := os.WriteFile(pw, []byte(vc.Password+"\n"), 0o600); err != nil {
			return nil, err
		}
		vcs = append(vcs, map[string]any{"name": vc.Name, "url": vc.URL.String(), "username": vc.Username,
			"password_file": pw, "thumbprint": vc.Thumbprint, "home": i == 0})
	}
	return map[string]any{
		"slack": map[string]any{"mode": "http", "bot_token": botToken, "signing_secret_file": secretFile,
			"api_url": ws.APIURL(), "channels": []string{channel}, "progress_interval": "1s"},
		// The cluster's three nodes; every stream and bucket replicated on all of them.
		"nats":     map[string]any{"url": strings.Join(cluster, ","), "replicas": 3},
		"vcenters": vcs,
		"approvals": map[string]any{"approvers": []string{bob}, "signing_key_file": keyFile,
			"trusted_keys": []string{pub}},
		"limits": map[string]any{"max_concurrent": o.slots, "per_host": o.perHost, "per_datastore": o.perDatastore},
		"log":    map[string]any{"level": "info", "format": "json"},
	}, nil
}

// vmNames reads the names of every VM in a vCenter's inventory in one property retrieve
// (xvmsim's FindVM logs in and searches once per VM: minutes for a thousand).
func vmNames(ctx context.Context, vc *xvmsim.VC) (map[string]bool, error) {
	c, err := vc.Client(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the VMs of %s: %w", vc.Name, err)
	}
	defer func() { _ = c.Logout(context.WithoutCancel(ctx)) }()
	cv, err := view.NewManager(c.Client).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, fmt.Errorf("read the VMs of %s: %w", vc.Name, err)
	}
	defer func() { _ = cv.Destroy(context.WithoutCancel(ctx)) }()
	var vms []mo.VirtualMachine
	if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms); err != nil {
		return nil, fmt.Errorf("read the VMs of %s: %w", vc.Name, err)
	}
	out := make(map[string]bool, len(vms))
	for _, vm := range vms {
		out[vm.Name] = true
	}
	return out, nil
}
