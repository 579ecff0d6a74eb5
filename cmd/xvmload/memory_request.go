package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/bot/slacksim"
)

// memoryRequest asks for one request of f.requestVMs VMs (bulk-0001…) as a person would,
// in the local Slack, has an approver approve it, and reads the serve process's resident
// memory while the request is in flight: the worker's one slot holds a relocation that
// takes ten minutes, so every other job of the request stays queued.
func memoryRequest(ctx context.Context, f flags, ws *slacksim.Workspace, httpAddr, opsAddr string, pid int) error {
	ws.AddUser(alice, "alice")
	ws.AddUser(bob, "bob")
	ws.UseHTTP("http://"+httpAddr, signing)
	ws.LimitPosts(1, 5) // Slack's pace of posts in a channel
	metrics := "http://" + opsAddr + "/metrics"

	askAt := time.Now()
	stopProfiles := heapProfiles(ctx, f, opsAddr, "preflight")
	defer func() { stopProfiles() }() // on the early returns; stopping twice is harmless
	id, ts, err := submitTo(ctx, ws, "bulk-*")
	stopProfiles()
	if err != nil {
		return err
	}
	preflight := time.Since(askAt)
	afterPlan, err := rss(pid)
	if err != nil {
		return err
	}
	planPeak, _ := procStatus(pid, "VmHWM")
	fmt.Printf("request %s of %d VMs asked (\"migrate bulk-* %s\"): approval message after %v; VmRSS %.1f MB, VmHWM so far %.1f MB\n",
		id, f.requestVMs, moveOpts, preflight.Round(time.Millisecond), afterPlan, planPeak)

	clickAt := time.Now()
	stopProfiles = heapProfiles(ctx, f, opsAddr, "queueing")
	rep, err := ws.Click(ctx, bob, channel, ts, "xvm_approve", id)
	if err != nil || rep.Status != 200 {
		return fmt.Errorf("approve: status %d: %v", rep.Status, err)
	}
	// In flight: all but the running job are in the work queue.
	want := f.requestVMs - 1
	deadline := time.Now().Add(10 * time.Minute)
	queued := -1
	for queued < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d jobs queued 10 minutes after the approve; the thread says: %s", queued, want, lastThreadMessage(ws, ts))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		queued, _ = strconv.Atoi(scrape(ctx, metrics, "xvm_jobs_queued"))
	}
	stopProfiles()
	fmt.Printf("approved; %d jobs queued %v after the click\n", queued, time.Since(clickAt).Round(time.Millisecond))
	heapProfile(ctx, f, opsAddr, "inflight.pb.gz")
	// Two readings: once the queue is full, and after the bot has had time to show the
	// request's progress (its table, its edits) a few times.
	for _, wait := range []time.Duration{5 * time.Second, 30 * time.Second} {
		time.Sleep(wait)
		now, err := rss(pid)
		if err != nil {
			return err
		}
		peak, _ := procStatus(pid, "VmHWM")
		fmt.Printf("serve with the %d-VM request in flight (%s queued, %v after the approve): VmRSS %.1f MB, peak VmHWM %.1f MB\n",
			f.requestVMs, scrape(ctx, metrics, "xvm_jobs_queued"), time.Since(clickAt).Round(time.Second), now, peak)
		if wait == 30*time.Second {
			fmt.Printf("goal RSS with a %d-VM request in flight < 150 MB: %s (peak %s)\n", f.requestVMs, verdict(now < 150), verdict(peak < 150))
		}
	}
	// What the memory costs in collections: a soft memory limit trades RSS for GC work.
	fmt.Printf("serve so far: %s garbage collections, %s s of CPU\n",
		scrape(ctx, metrics, "go_gc_duration_seconds_count"), scrape(ctx, metrics, "process_cpu_seconds_total"))
	fmt.Printf("thread: %d messages; last: %s\n", len(ws.Thread(ts)), lastThreadMessage(ws, ts))
	return nil
}

// heapProfiles takes a heap profile of serve every 2 s (prefix-NN.pb.gz) until the
// returned function is called, and has stopped when that function returns.
func heapProfiles(ctx context.Context, f flags, opsAddr, prefix string) (stop func()) {
	if f.heapProfiles == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			heapProfile(ctx, f, opsAddr, fmt.Sprintf("%s-%02d.pb.gz", prefix, i))
		}
	}()
	return func() { cancel(); <-done }
}

func lastThreadMessage(ws *slacksim.Workspace, ts string) string {
	th := ws.Thread(ts)
	if len(th) == 0 {
		return "nothing"
	}
	return firstLine(strings.TrimSpace(ws.Plain(th[len(th)-1])))
}
