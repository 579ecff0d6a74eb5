package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

var requestIDRE = regexp.MustCompile(`xvm-[a-z0-9]{8}`)

const moveOpts = "to vc-west cluster=west-prod datastore=ds-gold network=app-pg"

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func summary(name string, d []time.Duration) string {
	slices.Sort(d)
	if len(d) == 0 {
		return name + ": no samples"
	}
	return fmt.Sprintf("%-16s n=%-5d p50 %-10s p90 %-10s p99 %-10s max %s", name, len(d),
		ms(percentile(d, 50)), ms(percentile(d, 90)), ms(percentile(d, 99)), ms(d[len(d)-1]))
}

// submit sends a migrate command and returns the id and ts of the approval message.
func submit(ctx context.Context, s *stack, vms string) (id, ts string, err error) {
	before := len(s.ws.Channel(channel))
	rep, err := s.ws.Command(ctx, alice, channel, "migrate "+vms+" "+moveOpts)
	if err != nil || rep.Status != 200 {
		return "", "", fmt.Errorf("command: status %d: %v", rep.Status, err)
	}
	var msg slacksim.Message
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = s.ws.WaitFor(wctx, func() bool {
		ch := s.ws.Channel(channel)
		for _, m := range ch[min(before, len(ch)):] {
			if strings.Contains(string(m.Blocks), `"xvm_approve"`) {
				msg = m
				return true
			}
		}
		return false
	})
	if err != nil {
		return "", "", fmt.Errorf("no approval message for %q", vms)
	}
	id = requestIDRE.FindString(s.ws.Plain(msg))
	if id == "" {
		return "", "", errors.New("the approval message names no request")
	}
	return id, msg.TS, nil
}

// runAck sends slash commands and clicks at a fixed rate (open loop: a slow answer does
// not slow the sender) while the source vCenter answers slowly, and reports how long
// the bot took to acknowledge each, as the Slack side measures it.
func runAck(ctx context.Context, f flags) error {
	s, err := startStack(ctx, stackOpts{taskDuration: 30 * time.Second, slots: 8, slowVC: f.slowVC, mirrorMaxAge: f.mirrorMaxAge, workers: f.workers, verbose: f.verbose})
	if err != nil {
		return err
	}
	defer s.close()
	// The local Slack refuses posts above Slack's rate per channel, as Slack does: the
	// migrates' approval messages wait for that pace in the bot's queue of the channel.
	s.ws.LimitPosts(1, 5)
	// Requests to click on: dave's clicks are refused (not an approver), bob's first click
	// approves and later ones are duplicates — the paths real clicks take.
	var targets []string
	var tss []string
	for i := range 5 {
		_, ts, err := submit(ctx, s, []string{"web-01", "web-02", "web-03", "db-01", "web-01"}[i])
		if err != nil {
			return err
		}
		tss = append(tss, ts)
		targets = append(targets, requestIDRE.FindString(s.ws.Plain(mustMessage(s, ts))))
	}
	fmt.Printf("source vCenter slowed by %v per request chunk; relocation tasks take 30s; sending %d req/s for %v\n", f.slowVC, f.rate, f.duration)

	var mu sync.Mutex
	var cmdLat, clickLat []time.Duration
	var errs, non200, busyAcks int
	var wg sync.WaitGroup
	n := int(f.duration.Seconds() * float64(f.rate))
	interval := time.Second / time.Duration(f.rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rep slacksim.Reply
			var err error
			click := i%2 == 1
			if click {
				user := dave
				if i%10 == 1 {
					user = bob
				}
				k := i % len(tss)
				rep, err = s.ws.Click(ctx, user, channel, tss[k], "xvm_approve", targets[k])
			} else {
				vm := []string{"web-01", "web-02", "web-03", "db-01"}[i%4]
				rep, err = s.ws.Command(ctx, alice, channel, "check migrate "+vm+" "+moveOpts)
				if f.migrateEvery > 0 && i%(2*f.migrateEvery) == 0 {
					rep, err = s.ws.Command(ctx, alice, channel, "migrate "+vm+" "+moveOpts)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs++
			case rep.Status != 200:
				non200++
			case click:
				clickLat = append(clickLat, rep.Latency)
			default:
				cmdLat = append(cmdLat, rep.Latency)
				if strings.Contains(rep.Body, "busy right now") {
					busyAcks++
				}
			}
		}()
	}
	sent := time.Since(start)
	wg.Wait()
	fmt.Printf("sent %d requests in %v (%.0f req/s); transport errors %d, non-200 %d\n", n, sent.Round(time.Millisecond), float64(n)/sent.Seconds(), errs, non200)
	all := append(append([]time.Duration(nil), cmdLat...), clickLat...)
	fmt.Println(summary("slash commands", cmdLat))
	fmt.Println(summary("clicks", clickLat))
	fmt.Println(summary("all", all))
	fmt.Printf("goal p99 < 25 ms: %s\n", verdict(percentile(all, 99) < 25*time.Millisecond))
	// A refused command or click is acknowledged too (that is the point), so say how much
	// of the load the bot took on and how much it turned away with "busy, try again".
	fmt.Printf("turned away busy: %d of %d slash commands (answered in the ack); xvm_slack_work_refused_total{reason=\"busy\"} by work: %s\n",
		busyAcks, len(cmdLat), refusedByWork(s))
	// Migrates are answered with their pre-flight and stored; their approval messages are
	// posted at the channel's pace after the run's end, which the run does not wait for.
	fmt.Printf("approval messages: %d posted by the end, %.0f waiting for the channel's pace, refused by the local Slack %d; migrates refused for a full channel queue: %.0f\n",
		len(s.ws.Channel(channel)), counterOf(s, "xvm_slack_posts_queued", nil), s.ws.RateLimited("chat.postMessage"),
		counterOf(s, "xvm_slack_work_refused_total", map[string]string{"work": "post", "reason": "channel_full"}))
	// The bot's own measure (xvm_slack_ack_seconds) starts once the request is read and
	// ends when the handler returns: what is left of the latency above is waiting for a
	// CPU to accept, read and answer the connection.
	fmt.Printf("inside the handler (xvm_slack_ack_seconds): %s\n", ackBuckets(s))
	fmt.Printf("pre-flight inventory reads (xvm_inventory_mirror_reads_total): %s\n", mirrorReads(s))
	return nil
}

// ackBuckets says which share of the bot's ack handler times fell within 5, 10 and 25 ms.
func ackBuckets(s *stack) string {
	mfs, err := s.reg.Gather()
	if err != nil {
		return err.Error()
	}
	var total uint64
	within := map[float64]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "xvm_slack_ack_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			total += h.GetSampleCount()
			for _, b := range h.GetBucket() {
				within[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
	}
	if total == 0 {
		return "no samples"
	}
	var out []string
	for _, le := range []float64{0.005, 0.01, 0.025} {
		out = append(out, fmt.Sprintf("≤ %.0f ms %.1f%%", le*1000, 100*float64(within[le])/float64(total)))
	}
	return fmt.Sprintf("n=%d, %s", total, strings.Join(out, ", "))
}

// counterOf sums the counter or gauge name over the series whose labels include want.
func counterOf(s *stack, name string, want map[string]string) float64 {
	mfs, err := s.reg.Gather()
	if err != nil {
		return -1
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// refusedByWork lists the bot's busy refusals by kind of work, e.g. "plan 1204, xvm_approve 1380".
func refusedByWork(s *stack) string {
	mfs, err := s.reg.Gather()
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "xvm_slack_work_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["reason"] == "busy" {
				out = append(out, fmt.Sprintf("%s %.0f", labels["work"], m.GetCounter().GetValue()))
			}
		}
	}
	if len(out) == 0 {
		return "none"
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// mirrorReads says where the pre-flights read each vCenter's inventory, e.g.
// "vc-east: mirror 812, live 4"; "no mirror" when none is configured.
func mirrorReads(s *stack) string {
	mfs, err := s.reg.Gather()
	if err != nil {
		return err.Error()
	}
	byVC := map[string]map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "xvm_inventory_mirror_reads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if byVC[labels["vcenter"]] == nil {
				byVC[labels["vcenter"]] = map[string]float64{}
			}
			byVC[labels["vcenter"]][labels["from"]] = m.GetCounter().GetValue()
		}
	}
	if len(byVC) == 0 {
		return "no mirror"
	}
	var out []string
	for vc, n := range byVC {
		out = append(out, fmt.Sprintf("%s: mirror %.0f, live %.0f", vc, n["mirror"], n["live"]))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

func mustMessage(s *stack, ts string) slacksim.Message {
	m, _ := s.ws.Message(ts)
	return m
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

// eventLog records when each job event reaches a plain NATS subscriber.
type eventLog struct {
	mu     sync.Mutex
	byJob  map[string]map[events.EventType]time.Time
	ref    map[string]string // job → vCenter task ref
	finals int
	notify chan struct{}
}

func watchEvents(nc *nats.Conn) (*eventLog, func(), error) {
	l := &eventLog{byJob: map[string]map[events.EventType]time.Time{}, ref: map[string]string{}, notify: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(events.SubjectEvents+".>", func(m *nats.Msg) {
		at := time.Now()
		var e events.Event
		if json.Unmarshal(m.Data, &e) != nil {
			return
		}
		l.mu.Lock()
		if l.byJob[e.JobID] == nil {
			l.byJob[e.JobID] = map[events.EventType]time.Time{}
		}
		if _, seen := l.byJob[e.JobID][e.Type]; !seen {
			l.byJob[e.JobID][e.Type] = at
			if e.Type.Final() {
				l.finals++
				if e.TaskRef != "" {
					l.ref[e.JobID] = e.TaskRef
				}
			}
		}
		l.mu.Unlock()
		select {
		case l.notify <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return l, func() { _ = sub.Unsubscribe() }, nil
}

func (l *eventLog) waitFinals(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		done := l.finals >= n
		l.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs finished: %w", l.finals, n, ctx.Err())
		case <-l.notify:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runApprove times approve click → RelocateVM_Task received by the source vCenter (the
// simulator stamps the task's startTime when the call arrives; read back over the vSphere
// API) and approve click → the worker's `started` event. With -split the bot and the
// worker are separate processes (split.go).
func runApprove(ctx context.Context, f flags) error {
	if f.split {
		return runApproveSplit(ctx, f)
	}
	s, err := startStack(ctx, stackOpts{taskDuration: 200 * time.Millisecond, extraVMs: f.samples, slots: 8, planReuse: f.planReuse, verbose: f.verbose})
	if err != nil {
		return err
	}
	defer s.close()
	submitVM := func(ctx context.Context, vm string) (string, string, error) {
		_, ts, err := submit(ctx, s, vm)
		if err != nil {
			return "", "", err
		}
		return requestIDRE.FindString(s.ws.Plain(mustMessage(s, ts))), ts, nil
	}
	return timeApprovals(ctx, f.samples, s.ws, s.nc, s.lab.VC("vc-east"), submitVM)
}

// timeApprovals asks for samples moves one after another (submitVM asks for one VM's and
// returns its request id and message), clicks Approve on each as soon as its message is
// posted and waits for its end, and prints the latencies.
func timeApprovals(ctx context.Context, samples int, ws *slacksim.Workspace, nc *nats.Conn, east *xvmsim.VC,
	submitVM func(ctx context.Context, vm string) (id, ts string, err error)) error {
	log, unsub, err := watchEvents(nc)
	if err != nil {
		return err
	}
	defer unsub()
	c, err := east.Client(ctx)
	if err != nil {
		return err
	}
	var toTask, toStarted, ackLat []time.Duration
	for i := 1; i <= samples; i++ {
		id, ts, err := submitVM(ctx, fmt.Sprintf("bulk-%04d", i))
		if err != nil {
			return err
		}
		clickAt := time.Now()
		rep, err := ws.Click(ctx, bob, channel, ts, "xvm_approve", id)
		if err != nil || rep.Status != 200 {
			return fmt.Errorf("approve: %d %v", rep.Status, err)
		}
		ackLat = append(ackLat, rep.Latency)
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = log.waitFinals(wctx, i)
		cancel()
		if err != nil {
			return err
		}
		log.mu.Lock()
		for job, evs := range log.byJob {
			if !strings.HasPrefix(job, id) && !strings.Contains(job, id) {
				continue
			}
			if at, ok := evs[events.EventStarted]; ok {
				toStarted = append(toStarted, at.Sub(clickAt))
			}
			if ref := log.ref[job]; ref != "" {
				var t mo.Task
				tr := types.ManagedObjectReference{Type: "Task", Value: ref}
				if err := object.NewTask(c.Client, tr).Properties(ctx, tr, []string{"info"}, &t); err == nil && t.Info.StartTime != nil {
					toTask = append(toTask, t.Info.StartTime.Sub(clickAt))
				}
			}
		}
		log.mu.Unlock()
	}
	fmt.Println(summary("click ack", ackLat))
	fmt.Println(summary("click→started", toStarted))
	fmt.Println(summary("click→Relocate", toTask))
	fmt.Printf("goal p50 click → RelocateVM_Task < 20 ms: %s\n", verdict(len(toTask) > 0 && percentile(toTask, 50) < 20*time.Millisecond))
	return nil
}

// runWaveOnce approves one request of f.vms VMs and times it to the last final event, then
// moves the same VMs on a fresh lab one at a time, as a loop over govc would.
func runWaveOnce(ctx context.Context, f flags) (res waveResult, err error) {
	s, err := startStack(ctx, stackOpts{taskDuration: f.taskDuration, extraVMs: f.vms, slots: f.slots, perHost: f.perHost,
		perDatastore: f.perDatastore, tableAbove: f.tableAbove, verbose: f.verbose})
	if err != nil {
		return res, err
	}
	// The local Slack refuses posts above Slack's rate per channel, as Slack does.
	s.ws.LimitPosts(1, 5)
	names := make([]string, f.vms)
	for i := range names {
		names[i] = fmt.Sprintf("bulk-%04d", i+1)
	}
	log, unsub, err := watchEvents(s.nc)
	if err != nil {
		s.close()
		return res, err
	}
	submitAt := time.Now()
	id, ts, err := submit(ctx, s, strings.Join(names, ","))
	if err != nil {
		unsub()
		s.close()
		return res, err
	}
	preflight := time.Since(submitAt)
	clickAt := time.Now()
	if _, err := s.ws.Click(ctx, bob, channel, ts, "xvm_approve", id); err != nil {
		unsub()
		s.close()
		return res, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	err = log.waitFinals(wctx, f.vms)
	cancel()
	wave := time.Since(clickAt)
	unsub()
	var failed int
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	log.mu.Lock()
	for _, evs := range log.byJob {
		if _, ok := evs[events.EventFailed]; ok {
			failed++
		}
		st, ok := evs[events.EventStarted]
		if !ok {
			continue
		}
		for t, at := range evs {
			if t.Final() {
				edges = append(edges, edge{st, 1}, edge{at, -1})
			}
		}
	}
	log.mu.Unlock()
	slices.SortFunc(edges, func(a, b edge) int { return a.at.Compare(b.at) })
	cur, peak := 0, 0
	for _, e := range edges {
		cur += e.d
		peak = max(peak, cur)
	}
	moved := s.lab.VC("vc-east").XVMRelocations()
	var busy taskSpan
	if err == nil {
		busy, err = taskSpans(ctx, s, log)
	}
	var thread string
	if err == nil {
		// Every VM has moved: a final reply that never comes is reported with the wave's
		// numbers, not instead of them.
		var terr error
		if thread, terr = threadCounts(ctx, s, ts, clickAt); terr != nil {
			thread = fmt.Sprintf("thread: no final reply: %v", terr)
		}
	}
	s.close()
	if err != nil {
		return res, err
	}
	// The bound the limits set when placement spreads the moves over the 3 source and 3
	// target hosts of the lab: every move holds one slot on its source and target host and
	// datastore.
	const hosts = 3
	bound := min(f.slots, f.perHost*hosts, f.perDatastore)
	ideal := time.Duration(math.Ceil(float64(f.vms)/float64(bound))) * f.taskDuration
	fmt.Printf("wave of %d VMs, task %v, max_concurrent %d, per_host %d, per_datastore %d: pre-flight of the request %v\n",
		f.vms, f.taskDuration, f.slots, f.perHost, f.perDatastore, preflight.Round(time.Millisecond))
	fmt.Printf("approve → last VM finished: %v (relocations completed %d, failed %d, peak concurrency observed %d)\n",
		wave.Round(time.Millisecond), moved, failed, peak)
	fmt.Printf("ideal = ceil(%d / min(max_concurrent %d, per_host×%d hosts %d, per_datastore %d)) × %v = %v; ratio %.3f× (goal ≤ 1.15×: %s)\n",
		f.vms, f.slots, hosts, f.perHost*hosts, f.perDatastore, f.taskDuration, ideal,
		wave.Seconds()/ideal.Seconds(), verdict(wave.Seconds()/ideal.Seconds() <= 1.15))
	if peak > 0 {
		observedIdeal := time.Duration(math.Ceil(float64(f.vms)/float64(peak))) * f.taskDuration
		fmt.Printf("ideal at the observed peak concurrency %d: %v; ratio %.3f×\n", peak, observedIdeal, wave.Seconds()/observedIdeal.Seconds())
	}
	fmt.Println(thread)
	res = waveResult{vms: f.vms, preflight: preflight, wave: wave, ideal: ideal}
	if busy.n > 0 {
		// Where the time between tasks goes: a slot the limits allow is idle whenever no task
		// runs in it; per move, that idle time is what the wave pays above the ideal.
		idle := time.Duration(bound)*wave - busy.total
		res.idle = idle / time.Duration(busy.n)
		fmt.Printf("vCenter tasks: %d, mean %v from RelocateVM_Task to its end; mean tasks running %.2f of %d allowed; idle slot time per move %v\n",
			busy.n, (busy.total / time.Duration(busy.n)).Round(time.Millisecond), busy.total.Seconds()/wave.Seconds(), bound,
			(idle / time.Duration(busy.n)).Round(time.Millisecond))
	}
	if !f.serial {
		return res, nil
	}
	serial, err := runSerial(ctx, f, names)
	if err != nil {
		return res, err
	}
	fmt.Printf("one at a time (Plan+Start+Watch per VM, like a govc loop): %v; ideal %v; xvmbot is %.1f× faster\n",
		serial.Round(time.Millisecond), time.Duration(f.vms)*f.taskDuration, serial.Seconds()/wave.Seconds())
	return res, nil
}

// threadCounts waits for the request's final reply in its thread and says what the thread
// cost in Slack: its messages, the edits of them and of the request message, and the posts
// the local Slack refused for going above the channel's rate.
func threadCounts(ctx context.Context, s *stack, ts string, clickAt time.Time) (string, error) {
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	final := func() bool {
		for _, m := range s.ws.Thread(ts) {
			if strings.Contains(m.Text, "<@"+alice+">") {
				return true
			}
		}
		return false
	}
	if err := s.ws.WaitFor(wctx, final); err != nil {
		return "", fmt.Errorf("wait for the final reply: %w", err)
	}
	settled := time.Since(clickAt)
	thread := s.ws.Thread(ts)
	parent, _ := s.ws.Message(ts)
	edits, failures := parent.Edits, 0
	for _, m := range thread {
		edits += m.Edits
		if strings.Contains(m.Text, "failed to move") {
			failures++
		}
	}
	return fmt.Sprintf("thread: %d messages (%d failure replies), %d edits of them and of the request message (chat.update calls %d), "+
		"posts refused for the channel's rate %d; final reply %v after the approve",
		len(thread), failures, edits, s.ws.Calls("chat.update"), s.ws.RateLimited("chat.postMessage"), settled.Round(time.Millisecond)), nil
}

func runSerial(ctx context.Context, f flags, names []string) (time.Duration, error) {
	s, err := startStack(ctx, stackOpts{taskDuration: f.taskDuration, extraVMs: f.vms, slots: 1, verbose: f.verbose})
	if err != nil {
		return 0, err
	}
	defer s.close()
	start := time.Now()
	for _, vm := range names {
		p, err := s.vc.Plan(ctx, vcenter.MoveSpec{VMs: []string{vm}, Source: "vc-east", Target: "vc-west", Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Networks: []move.Network{{Target: "app-pg"}}}})
		if err != nil {
			return 0, err
		}
		ref, err := s.vc.Start(ctx, p, vm)
		if err != nil {
			return 0, err
		}
		if _, err := s.vc.Watch(ctx, "vc-east", ref, vm, func(int) {}); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// taskSpan sums the vCenter's own times of the relocation tasks of a wave.
type taskSpan struct {
	n     int
	total time.Duration
}

// taskSpans reads, from the source vCenter, when each job's RelocateVM_Task started and
// completed.
func taskSpans(ctx context.Context, s *stack, log *eventLog) (taskSpan, error) {
	log.mu.Lock()
	refs := make([]types.ManagedObjectReference, 0, len(log.ref))
	for _, ref := range log.ref {
		refs = append(refs, types.ManagedObjectReference{Type: "Task", Value: ref})
	}
	log.mu.Unlock()
	var span taskSpan
	if len(refs) == 0 {
		return span, nil
	}
	c, err := s.lab.VC("vc-east").Client(ctx)
	if err != nil {
		return span, err
	}
	defer func() { _ = c.Logout(ctx) }()
	var tasks []mo.Task
	if err := property.DefaultCollector(c.Client).Retrieve(ctx, refs, []string{"info"}, &tasks); err != nil {
		return span, fmt.Errorf("read the wave's tasks: %w", err)
	}
	for _, t := range tasks {
		if t.Info.StartTime != nil && t.Info.CompleteTime != nil {
			span.n++
			span.total += t.Info.CompleteTime.Sub(*t.Info.StartTime)
		}
	}
	return span, nil
}
