//go:build scale

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// scaleVMs is how many VMs TestScaleRequestOnStockNATS moves in one request
// (XVM_SCALE_VMS overrides it for a quicker try).
func scaleVMs(t *testing.T) int {
	if s := os.Getenv("XVM_SCALE_VMS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("XVM_SCALE_VMS=%q: want a positive number", s)
		}
		return n
	}
	return 5000
}

// One request of 5,000 VMs, from one Slack message to the last move, against a nats-server
// with its stock limits (1 MB per message: any record that grew with the request would be
// refused) and a local Slack that refuses what Slack would (one post a second per channel
// after a burst, about 50 edits a minute): every VM moves exactly once by the source
// vCenter's own count, the request ends succeeded, and its thread stays a few dozen
// messages, none refused. Not timed; run with
//
//	go test -tags scale -count=1 -timeout 60m -run TestScaleRequestOnStockNATS ./cmd/xvmbot/
func TestScaleRequestOnStockNATS(t *testing.T) {
	n := scaleVMs(t)
	opts := server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(t.TempDir(), "js"), NoSigs: true, NoLog: true}
	srv, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	if got := opts.MaxPayload; got != 1<<20 { // NewServer fills in its defaults
		t.Fatalf("the server's max_payload is %d, want the stock 1 MB", got)
	}
	onStock := func(c *config.Config) {
		c.NATS.URL = srv.ClientURL()
		c.Limits.MaxConcurrent, c.Limits.PerHost, c.Limits.PerDatastore, c.Limits.PerVCenter = 64, 32, 64, 128
		c.Limits.MaxVMsPerRequest = max(n, config.DefaultLimitsConfig.MaxVMsPerRequest)
		c.Slack.ProgressInterval = time.Second
		c.Slack.EditsPerMinute = 0 // the default budget, as shipped
	}
	h := newHarnessOn(t, system.RoleServe, 50*time.Minute,
		[]xvmsim.Option{xvmsim.WithTaskDuration(50 * time.Millisecond), xvmsim.WithExtraVMs(n)}, nil, onStock)
	h.ws.LimitPosts(1, 3)
	h.ws.Limit("chat.update", 50, 10)

	msg := h.request(uReq, "migrate bulk-* to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	id := h.requestID(msg)
	if r, err := h.stored(id); err != nil || len(r.VMs) != n {
		t.Fatalf("the request holds %v VMs (%v), want %d", len(r.VMs), err, n)
	}
	started := time.Now()
	h.click(uBoss, msg, "xvm_approve")
	east := h.lab.VC(xvmsim.EastVC)
	// lastMoved is when the source vCenter had completed every relocation (seen within a
	// second): what the bot shows after that is its lag behind the wave.
	var lastMoved time.Time
	long := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Minute)
		for !cond() {
			if lastMoved.IsZero() && east.XVMRelocations() >= n {
				lastMoved = time.Now()
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: not after 40 minutes", what)
			}
			time.Sleep(time.Second)
		}
	}
	// The request is read whole only once its head says it ended: read whole every
	// second, a 5,000-VM request would cost this process a good part of a CPU.
	storedOnceEnded := func(id string) (*approvals.Request, error) {
		head, err := h.sys.Approvals().Head(h.ctx, id)
		if err != nil || !head.State.Final() {
			return head, err
		}
		return h.stored(id)
	}
	h.awaitStoredEnd(msg.TS, approvals.StateSucceeded, long, storedOnceEnded)
	ended := time.Now()
	if lastMoved.IsZero() {
		lastMoved = ended
	}
	t.Logf("%d VMs moved in %s from the approval; the request ended %s after the last VM moved",
		n, lastMoved.Sub(started).Round(time.Second), ended.Sub(lastMoved).Round(time.Second))
	var lost, doubled []string
	for i := 1; i <= n; i++ {
		vm := fmt.Sprintf("bulk-%04d", i)
		switch east.XVMRelocationsOf(vm) {
		case 0:
			lost = append(lost, vm)
		case 1:
		default:
			doubled = append(doubled, vm)
		}
	}
	if len(lost)+len(doubled) > 0 {
		t.Errorf("%d VMs never moved (%s), %d moved more than once (%s)", len(lost), clipList(lost), len(doubled), clipList(doubled))
	}
	thread := h.ws.Thread(msg.TS)
	if len(thread) > 40 {
		t.Errorf("the thread holds %d messages, want a few dozen at most", len(thread))
	}
	if n := repliesTo(h, msg.TS, uReq); n != 1 {
		t.Errorf("%d final replies, want 1", n)
	}
	for _, m := range []string{"chat.postMessage", "chat.update"} {
		if r := h.ws.RateLimited(m); r != 0 {
			t.Errorf("the local Slack refused %d calls of %s: xvmbot went past Slack's limit", r, m)
		}
	}
	t.Logf("thread: %d messages; Slack calls: %d posts, %d edits", len(thread), h.ws.Calls("chat.postMessage"), h.ws.Calls("chat.update"))
}

func clipList(vms []string) string {
	if len(vms) > 5 {
		return strings.Join(vms[:5], ", ") + fmt.Sprintf(" and %d more", len(vms)-5)
	}
	return strings.Join(vms, ", ")
}
