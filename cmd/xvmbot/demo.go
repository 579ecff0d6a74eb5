package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/secret"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// The people in the demo channel.
const (
	demoChannel = "C0VMMOVES"
	alice       = "U0ALICE" // application owner: asks for moves
	bob         = "U0BOB"   // vSphere admin: approver by user ID
	carol       = "U0CAROL" // vSphere admin: approver through the @vm-admins group
	dave        = "U0DAVE"  // a colleague who is not an approver
	adminsGroup = "S0VMADMINS"
)

// demo is a whole conversation on real components: embedded NATS, two simulated vCenters
// with cross-vCenter relocation, a local Slack workspace, and xvmbot's own HTTP transport
// with signed requests. It prints the channel as a person would read it and fails loudly
// when anything does not happen as it should.
type demo struct {
	out   io.Writer
	ws    *slacksim.Workspace
	lab   *xvmsim.Lab
	sys   *system.System
	shown map[string]int    // message key → edits already printed
	last  map[string]string // message key → text last printed
	first map[string]string // message key → text first printed, to name its edits
	fails []string
}

func runDemo(ctx context.Context, out io.Writer, verbose bool) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "xvmbot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	logw := io.Discard
	if verbose {
		logw = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))

	fmt.Fprintln(out, "Starting: embedded NATS JetStream, simulated vCenters vc-east and vc-west, a local Slack workspace…")
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(2*time.Second))
	if err != nil {
		return fmt.Errorf("start simulated vCenters: %w", err)
	}
	defer lab.Close()
	ws := slacksim.New()
	defer ws.Close()
	ws.EnableModals() // the wizard and the reject-reason dialog, as in a real workspace
	for id, name := range map[string]string{alice: "alice", bob: "bob", carol: "carol", dave: "dave", "U0XVMBOT": "xvmbot", adminsGroup: "vm-admins"} {
		ws.AddUser(id, name)
	}
	ws.SetGroup(adminsGroup, carol)

	signing := randomHex(16)
	cfg := config.Default()
	cfg.Slack = config.SlackConfig{Mode: "http", BotToken: secret.Secret("xoxb-demo-" + randomHex(8)), SigningSecret: secret.Secret(signing),
		APIURL: ws.APIURL(), Channels: []string{demoChannel}, ProgressInterval: 400 * time.Millisecond}
	cfg.HTTP.Listen, cfg.HTTP.OpsListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.NATS.DataDir = filepath.Join(dir, "nats")
	cfg.NATS.RetryDelay = 300 * time.Millisecond
	cfg.Worker = config.WorkerConfig{Name: "demo-worker", MaxAttempts: 2}
	cfg.Approvals.Approvers = []string{bob, adminsGroup} // the rest of the policy as shipped,
	cfg.Approvals.Notify = approvals.NotifyDM            // except that approvers are asked by DM
	for i, vc := range lab.VCs() {
		cfg.VCenters = append(cfg.VCenters, config.VCenterConfig{Name: vc.Name, URL: vc.URL.String(), Username: vc.Username,
			Password: secret.Secret(vc.Password), Thumbprint: vc.Thumbprint, Home: i == 0})
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}

	sys, err := system.New(ctx, cfg, system.RoleServe, logger, system.WithStamp(stamp()))
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sys.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	ws.UseHTTP("http://"+sys.SlackAddr(), signing)

	d := &demo{out: out, ws: ws, lab: lab, sys: sys, shown: map[string]int{}, last: map[string]string{}, first: map[string]string{}}
	d.script(ctx)
	return d.verdict()
}

func (d *demo) script(ctx context.Context) {
	d.heading("1. alice asks to move web-01 to vc-west; bob approves")
	req := d.command(ctx, alice, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold folder=migrated/web network=app-pg disk=thin")
	if req == "" {
		return
	}
	d.click(ctx, dave, req, "xvm_approve")
	d.expectEphemeral(dave, "approve")
	d.click(ctx, alice, req, "xvm_approve")
	d.expectEphemeral(alice, "not an approver")
	d.click(ctx, bob, req, "xvm_approve")
	d.awaitFinal(ctx, req, approvals.StateSucceeded)
	d.click(ctx, carol, req, "xvm_approve")
	d.expectEphemeral(carol, "already")
	d.verifyMoved(ctx, "web-01", "vc-east", "vc-west", "migrated/web", "ds-gold", "app-pg", true)

	d.heading("2. alice pulls legacy-01 from vc-west into vc-east (import); carol, of @vm-admins, approves in her DM")
	req = d.command(ctx, alice, "import legacy-01 from vc-west cluster=east-prod pool=apps datastore=east-ds-02 folder=apps/web network=east-app-pg disk=same")
	if req != "" {
		d.clickDM(ctx, carol, req, "xvm_approve")
		if err := d.wait(ctx, 10*time.Second, func() bool {
			m, ok := d.requestMessage(req)
			return ok && !slices.Contains(m.ActionIDs(), "xvm_approve")
		}); err != nil {
			d.fail("carol approved %s in her DM, but the channel message still offers Approve", req)
		}
		d.awaitFinal(ctx, req, approvals.StateSucceeded)
		d.verifyMoved(ctx, "legacy-01", "vc-west", "vc-east", "apps/web", "east-ds-02", "east-app-pg", false)
	}

	d.heading("3. alice fills the Migrate wizard for web-02; bob rejects it, saying why: nothing moves")
	req = d.wizard(ctx, alice, [][]string{{"dst_vc", "vc-west"}, {"vms", "web-02"}, {"compute", "cluster:west-prod"},
		{"datastore", "ds-silver"}, {"net_0", "app-pg"}})
	rejected := req
	if req != "" {
		const reason = "web-02 serves the quarter-end batch: move it after the 5th, please"
		d.rejectWithReason(ctx, bob, req, reason)
		d.awaitState(ctx, req, "rejected")
		if msg, _ := d.requestMessage(req); !strings.Contains(d.ws.Plain(msg), reason) {
			d.fail("the rejected request %s does not show bob's reason", req)
		}
		d.verifyStayed(ctx, "web-02", "vc-east", "vc-west")
	}

	d.heading("4. a mistyped command, an unknown VM and a VM that cannot move: clear answers, nothing queued")
	d.commandExpectingRefusal(ctx, alice, "migrate web-01 to", "to")
	d.commandExpectingRefusal(ctx, alice, "migrate web-99 to vc-west cluster=west-prod datastore=ds-gold network=app-pg", "web-99")
	d.commandExpectingRefusal(ctx, alice, "migrate trip-usb to vc-west cluster=west-prod datastore=ds-gold network=app-pg", "USB")

	d.heading("5. vc-west stops answering after approval: the move fails and says why")
	req = d.command(ctx, alice, "migrate web-03 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	if req != "" {
		d.lab.VC("vc-west").SetDown(true)
		d.narrate("(vc-west stops answering)")
		d.click(ctx, bob, req, "xvm_approve")
		d.awaitFinal(ctx, req, "failed")
		d.lab.VC("vc-west").SetDown(false)
		d.verifyStayed(ctx, "web-03", "vc-east", "vc-west")
	}

	d.heading("6. someone who can write to the bus queues web-02 anyway: the worker refuses the job")
	if rejected != "" {
		d.forgeJob(ctx, rejected, "web-02")
	}

	d.heading("7. what Prometheus sees")
	d.metrics(ctx)
}

// forgeJob publishes on the jobs subject, as anyone with access to NATS could, a job that
// nobody approved: vm for the request bob rejected, "approved by" bob. The worker must
// refuse it, nothing may move, and the request's thread must say so.
func (d *demo) forgeJob(ctx context.Context, requestID, vm string) {
	d.narrate(fmt.Sprintf("(a hand-made job appears on %s: %s to vc-west for %s, \"approved by\" bob, with no signed approval)",
		events.SubjectJobs, vm, requestID))
	nc, err := d.sys.Embedded().Connect()
	if err != nil {
		d.fail("connect to NATS: %v", err)
		return
	}
	defer nc.Close()
	job, _ := json.Marshal(events.Job{V: events.SchemaVersion, ID: requestID + "-01", RequestID: requestID, Direction: "migrate",
		VM: vm, SourceVC: "vc-east", TargetVC: "vc-west",
		Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-silver", Networks: []move.Network{{Target: "app-pg"}}}, RequestedBy: alice, ApprovedBy: []string{bob}, QueuedAt: time.Now()})
	if err := nc.Publish(events.SubjectJobs, job); err != nil {
		d.fail("publish the forged job: %v", err)
		return
	}
	msg, ok := d.requestMessage(requestID)
	err = d.wait(ctx, 30*time.Second, func() bool {
		d.flush()
		for _, m := range d.ws.Thread(msg.TS) {
			if strings.Contains(d.ws.Plain(m), "refused a job") {
				return true
			}
		}
		return false
	})
	d.flush()
	if !ok || err != nil {
		d.fail("the forged job of %s was not refused in the request's thread", vm)
		return
	}
	d.verifyStayed(ctx, vm, "vc-east", "vc-west")
}

var requestIDRE = regexp.MustCompile(`xvm-[a-z0-9]{8}`)

// command sends a slash command and returns the id of the request it posted ("" if none).
func (d *demo) command(ctx context.Context, user, text string) string {
	d.say(user, "/xvm "+text)
	before := len(d.ws.Channel(demoChannel))
	rep, err := d.ws.Command(ctx, user, demoChannel, text)
	if err != nil || rep.Status != http.StatusOK {
		d.fail("slash command %q: status %d, %v", text, rep.Status, err)
		return ""
	}
	var msg slacksim.Message
	err = d.wait(ctx, 30*time.Second, func() bool {
		ch := d.ws.Channel(demoChannel)
		if len(ch) > before {
			msg = ch[len(ch)-1]
			return true
		}
		return false
	})
	d.flush()
	if err != nil {
		d.fail("no approval message was posted for %q", text)
		return ""
	}
	id := requestIDRE.FindString(d.ws.Plain(msg))
	if id == "" {
		d.fail("the approval message does not name its request id")
	}
	if !strings.Contains(string(msg.Blocks), `"xvm_approve"`) {
		d.fail("the approval message has no Approve button")
	}
	return id
}

// wizard opens the Migrate wizard as user (/xvm migrate with nothing after it), enters
// each {block, values…} in turn, submits it, and returns the id of the request it posted.
func (d *demo) wizard(ctx context.Context, user string, fills [][]string) string {
	d.say(user, "/xvm migrate")
	before := len(d.ws.Channel(demoChannel))
	if rep, err := d.ws.Command(ctx, user, demoChannel, "migrate"); err != nil || rep.Status != http.StatusOK {
		d.fail("slash command /xvm migrate: status %d, %v", rep.Status, err)
		return ""
	}
	var view slacksim.View
	if err := d.wait(ctx, 30*time.Second, func() bool {
		var ok bool
		view, ok = d.ws.OpenView(user, "xvm_wizard")
		return ok
	}); err != nil {
		d.flush()
		d.fail("/xvm migrate did not open the wizard")
		return ""
	}
	d.flush()
	name := d.ws.Names()[user]
	for _, f := range fills {
		v, _ := d.ws.View(view.ID)
		if _, err := d.ws.Fill(ctx, user, view.ID, f[0], f[1:]...); err != nil {
			d.fail("%s could not fill %s in the wizard: %v", name, f[0], err)
			return ""
		}
		if f[0] == "vms" { // the wizard adds a network row for each of the VMs' networks
			if err := d.wait(ctx, 30*time.Second, func() bool {
				now, _ := d.ws.View(view.ID)
				return now.Hash != v.Hash && strings.Contains(string(now.Blocks), `"net_0"`)
			}); err != nil {
				d.fail("choosing %v in the wizard did not add a row for its network", f[1:])
				return ""
			}
		}
	}
	d.narrate(fmt.Sprintf("%s clicks [Review] in the wizard:", name))
	d.show(d.ws.ViewPlain(view.ID))
	errs, err := d.ws.SubmitView(ctx, view.ID)
	if err != nil || len(errs) > 0 {
		d.show(d.ws.ViewPlain(view.ID))
		d.fail("the wizard refused its submission: %v %v", errs, err)
		return ""
	}
	// The wizard turns into the review page once the pre-flight is done.
	if err := d.wait(ctx, 30*time.Second, func() bool {
		v, _ := d.ws.View(view.ID)
		return v.Open && v.CallbackID == "xvm_wizard_review" && v.Submit != ""
	}); err != nil {
		d.show(d.ws.ViewPlain(view.ID))
		d.fail("the wizard showed no review page that can be requested")
		return ""
	}
	d.narrate(fmt.Sprintf("the wizard shows the pre-flight's review; %s clicks [Request approval]:", name))
	d.show(d.ws.ViewPlain(view.ID))
	if errs, err := d.ws.SubmitView(ctx, view.ID); err != nil || len(errs) > 0 {
		d.fail("the review page refused the request: %v %v", errs, err)
		return ""
	}
	var msg slacksim.Message
	if err := d.wait(ctx, 30*time.Second, func() bool {
		ch := d.ws.Channel(demoChannel)
		if len(ch) > before {
			msg = ch[len(ch)-1]
			return true
		}
		return false
	}); err != nil {
		d.flush()
		d.fail("the wizard posted no request for approval")
		return ""
	}
	d.flush()
	id := requestIDRE.FindString(d.ws.Plain(msg))
	if id == "" || !strings.Contains(string(msg.Blocks), `"xvm_approve"`) {
		d.fail("the wizard's request message has no request id or no Approve button")
	}
	return id
}

// rejectWithReason clicks Reject as user, and writes the reason in the dialog that opens.
func (d *demo) rejectWithReason(ctx context.Context, user, requestID, reason string) {
	d.click(ctx, user, requestID, "xvm_reject")
	var view slacksim.View
	if err := d.wait(ctx, 30*time.Second, func() bool {
		var ok bool
		view, ok = d.ws.OpenView(user, "xvm_reject_reason")
		return ok
	}); err != nil {
		d.fail("[Reject] did not open the dialog that asks %s why", d.ws.Names()[user])
		return
	}
	if _, err := d.ws.Fill(ctx, user, view.ID, "reason", reason); err != nil {
		d.fail("the reason dialog: %v", err)
		return
	}
	d.narrate(fmt.Sprintf("%s writes why, and clicks [Reject]:", d.ws.Names()[user]))
	d.show(d.ws.ViewPlain(view.ID))
	if errs, err := d.ws.SubmitView(ctx, view.ID); err != nil || len(errs) > 0 {
		d.fail("the rejection was refused: %v %v", errs, err)
	}
	d.flush()
}

func (d *demo) commandExpectingRefusal(ctx context.Context, user, text, mention string) {
	d.say(user, "/xvm "+text)
	before := len(d.ws.Ephemerals(user))
	chBefore := len(d.ws.Channel(demoChannel))
	if _, err := d.ws.Command(ctx, user, demoChannel, text); err != nil {
		d.fail("slash command %q: %v", text, err)
		return
	}
	err := d.wait(ctx, 30*time.Second, func() bool {
		for _, m := range d.ws.Ephemerals(user)[before:] {
			if p := d.ws.Plain(m); strings.Contains(p, mention) && !strings.HasPrefix(p, "Checking") {
				return true
			}
		}
		return false
	})
	d.flush()
	if err != nil {
		d.fail("the answer to %q does not mention %q", text, mention)
		return
	}
	time.Sleep(300 * time.Millisecond) // nothing else should appear
	if len(d.ws.Channel(demoChannel)) != chBefore {
		d.fail("%q posted something in the channel", text)
	}
}

func (d *demo) click(ctx context.Context, user, requestID, action string) {
	msg, ok := d.requestMessage(requestID)
	if !ok {
		d.fail("request %s has no message to click on", requestID)
		return
	}
	d.press(ctx, user, requestID, action, msg, "")
}

// clickDM clicks a button of the request in the DM xvmbot sent user, as an approver told
// by DM does.
func (d *demo) clickDM(ctx context.Context, user, requestID, action string) {
	var dm slacksim.Message
	if err := d.wait(ctx, 10*time.Second, func() bool {
		for _, m := range d.ws.Channel(slacksim.DMChannel(user)) {
			if strings.Contains(d.ws.Plain(m), requestID) {
				dm = m
				return true
			}
		}
		return false
	}); err != nil {
		d.fail("%s got no DM asking to approve %s", d.ws.Names()[user], requestID)
		return
	}
	d.press(ctx, user, requestID, action, dm, " in her DM from xvmbot")
}

// press clicks action on msg as user, saying so (where: " in her DM…", or ""), and shows
// what followed.
func (d *demo) press(ctx context.Context, user, requestID, action string, msg slacksim.Message, where string) {
	d.flush() // what was posted before the click comes before it
	d.narrate(fmt.Sprintf("%s clicks [%s]%s", d.ws.Names()[user], buttonLabels[action], where))
	rep, err := d.ws.Click(ctx, user, msg.Channel, msg.TS, action, requestID)
	if err != nil || rep.Status != http.StatusOK {
		d.fail("click %s by %s%s: status %d, %v", action, user, where, rep.Status, err)
	}
	time.Sleep(300 * time.Millisecond)
	d.flush()
}

// buttonLabels are the request buttons' labels, as the client shows them.
var buttonLabels = map[string]string{"xvm_approve": "Approve", "xvm_reject": "Reject", "xvm_cancel": "Cancel"}

func (d *demo) requestMessage(id string) (slacksim.Message, bool) {
	for _, m := range d.ws.Channel(demoChannel) {
		if strings.Contains(d.ws.Plain(m), id) {
			return m, true
		}
	}
	return slacksim.Message{}, false
}

func (d *demo) expectEphemeral(user, mention string) {
	eph := d.ws.Ephemerals(user)
	if len(eph) == 0 || !strings.Contains(strings.ToLower(d.ws.Plain(eph[len(eph)-1])), mention) {
		d.fail("%s was not told (expected a private answer mentioning %q)", d.ws.Names()[user], mention)
	}
}

// awaitFinal waits for the request's thread to carry its final reply, the parent to show
// state, and every job's progress message its job's end (edits the bot put off to stay
// within Slack's edit budget arrive a little later).
func (d *demo) awaitFinal(ctx context.Context, id string, state approvals.State) {
	err := d.wait(ctx, 90*time.Second, func() bool {
		d.flush()
		msg, ok := d.requestMessage(id)
		if !ok {
			return false
		}
		r, _, err := d.sys.Approvals().Store().Get(ctx, id)
		th := d.ws.Thread(msg.TS)
		return err == nil && r.State.Final() && len(th) > 0 && strings.Contains(d.ws.Plain(th[len(th)-1]), "@alice") &&
			strings.Contains(strings.ToLower(d.ws.Plain(msg)), string(state))
	})
	d.flush()
	if err != nil {
		d.fail("request %s did not end %s with a reply to its requester in the thread", id, state)
		return
	}
	// What was stored, not only what a message says: the message's counts name every state.
	if r, _, err := d.sys.Approvals().Store().Get(ctx, id); err != nil {
		d.fail("read request %s: %v", id, err)
	} else if bad := approvals.CheckOutcome(r, state); bad != "" {
		d.fail("request %s did not end %s: %s", id, state, bad)
	}
	unfinished := func() (stale []string) {
		msg, _ := d.requestMessage(id)
		for _, m := range d.ws.Thread(msg.TS) {
			if p := d.ws.Plain(m); strings.Contains(p, "🔄") || strings.Contains(p, "🕐") {
				stale = append(stale, p)
			}
		}
		return stale
	}
	err = d.wait(ctx, 30*time.Second, func() bool { d.flush(); return len(unfinished()) == 0 })
	d.flush()
	if err != nil {
		d.fail("request %s ended but its thread still shows jobs as not finished: %q", id, unfinished())
	}
}

func (d *demo) awaitState(ctx context.Context, id, state string) {
	err := d.wait(ctx, 30*time.Second, func() bool {
		msg, ok := d.requestMessage(id)
		return ok && strings.Contains(strings.ToLower(d.ws.Plain(msg)), state) && !strings.Contains(string(msg.Blocks), `"xvm_approve"`)
	})
	d.flush()
	if err != nil {
		d.fail("request %s did not show %q with its buttons removed", id, state)
	}
}

func (d *demo) verifyMoved(ctx context.Context, vm, from, to, folder, datastore, network string, thin bool) {
	p, err := d.lab.VC(to).FindVM(ctx, vm)
	if err != nil {
		d.fail("%s is not in %s: %v", vm, to, err)
		return
	}
	if _, err := d.lab.VC(from).FindVM(ctx, vm); !errors.Is(err, xvmsim.ErrNotFound) {
		d.fail("%s is still in %s", vm, from)
	}
	var problems []string
	if p.Folder != folder {
		problems = append(problems, fmt.Sprintf("folder %q, want %q", p.Folder, folder))
	}
	if len(p.Datastores) == 0 || p.Datastores[0] != datastore {
		problems = append(problems, fmt.Sprintf("datastores %v, want %s", p.Datastores, datastore))
	}
	if len(p.NICs) == 0 || p.NICs[0].Network != network {
		problems = append(problems, fmt.Sprintf("NICs %+v, want %s", p.NICs, network))
	}
	if thin && (len(p.Disks) == 0 || !p.Disks[0].Thin) {
		problems = append(problems, "disk is not thin")
	}
	if n := d.lab.VC(from).XVMRelocationsOf(vm); n != 1 {
		problems = append(problems, fmt.Sprintf("%d relocations ran, want exactly 1", n))
	}
	if len(problems) > 0 {
		d.fail("%s in %s: %s", vm, to, strings.Join(problems, "; "))
		return
	}
	nic := p.NICs[0]
	d.check(fmt.Sprintf("vCenter %s: %s is in folder %s, host %s, pool %s, datastore %s (thin=%v), NIC on %s with MAC %s, %s; gone from %s; moved exactly once",
		to, vm, p.Folder, p.Host, p.Pool, p.Datastores[0], p.Disks[0].Thin, nic.Network, nic.MAC, p.PowerState, from))
}

func (d *demo) verifyStayed(ctx context.Context, vm, from, to string) {
	if _, err := d.lab.VC(from).FindVM(ctx, vm); err != nil {
		d.fail("%s is no longer in %s: %v", vm, from, err)
		return
	}
	if _, err := d.lab.VC(to).FindVM(ctx, vm); !errors.Is(err, xvmsim.ErrNotFound) {
		d.fail("%s appeared in %s", vm, to)
		return
	}
	d.check(fmt.Sprintf("vCenter %s: %s is still there, untouched; nothing arrived in %s", from, vm, to))
}

func (d *demo) metrics(ctx context.Context) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.sys.OpsAddr()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.fail("GET /metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	want := map[string]bool{
		`xvm_jobs_refused_total{reason="unsigned"} 1`:              false,
		`xvm_jobs_total{direction="migrate",result="succeeded"} 1`: false,
		`xvm_jobs_total{direction="import",result="succeeded"} 1`:  false,
		`xvm_jobs_total{direction="migrate",result="failed"} 1`:    false,
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "xvm_jobs_total") || strings.HasPrefix(line, "xvm_approvals_total") ||
			strings.HasPrefix(line, `xvm_jobs_refused_total{reason="unsigned"}`) ||
			strings.HasPrefix(line, "xvm_commands_total") {
			fmt.Fprintf(d.out, "    %s\n", line)
		}
		if _, ok := want[line]; ok {
			want[line] = true
		}
	}
	for line, seen := range want {
		if !seen {
			d.fail("/metrics lacks %s", line)
		}
	}
}

// flush prints every message and edit that appeared since the last flush.
func (d *demo) flush() {
	names := d.ws.Names()
	for i, m := range d.ws.Messages() {
		key := m.TS
		if key == "" {
			key = fmt.Sprintf("eph-%d", i)
		}
		edits, seen := d.shown[key]
		if seen && edits == m.Edits {
			continue
		}
		d.shown[key] = m.Edits
		text := slacksim.PlainText(m.Blocks, m.Text, names)
		full := text
		if seen {
			// An edit shows only what changed, as the eye catches it in the client.
			if text = changedLines(d.last[key], text); text == "" {
				d.last[key] = full
				continue
			}
		}
		d.last[key] = full
		who, indent := "xvmbot", ""
		dm := d.dmUser(m.Channel)
		switch {
		case dm != "" && m.ThreadTS == "" && !seen:
			// An approver's DM is the channel message again: its head and buttons say enough.
			who, text = "xvmbot → DM to "+dm, firstLine(text)+"  "+buttons(m)
		case dm != "" && m.ThreadTS != "":
			indent = "    ↳ "
		case dm != "":
		case m.To != "":
			who = fmt.Sprintf("xvmbot → only %s sees", names[m.To])
		case m.ThreadTS != "":
			indent = "    ↳ "
		}
		if seen {
			// Edits arrive late and out of order (progress is paced): say whose they are.
			who = "xvmbot edits " + d.nameOf(m, d.first[key])
			if dm != "" {
				who = fmt.Sprintf("xvmbot edits %s's DM of %s", dm, requestIDRE.FindString(full))
				text = stateLine(text)
			}
		} else {
			d.first[key] = full
		}
		d.print(indent, who, text)
	}
}

// nameOf names a message for an edit line: its request, and for a reply in a thread what
// the reply first said.
func (d *demo) nameOf(m slacksim.Message, first string) string {
	if m.ThreadTS == "" {
		if id := requestIDRE.FindString(first); id != "" {
			return "the request " + id
		}
		return fmt.Sprintf("%q", clip(firstLine(first), 40))
	}
	parent, _ := d.ws.Message(m.ThreadTS)
	id := requestIDRE.FindString(d.ws.Plain(parent))
	return fmt.Sprintf("%q in %s's thread", clip(firstLine(first), 40), id)
}

// dmUser names the user whose DM with the app channel is ("" for any other channel).
func (d *demo) dmUser(channel string) string {
	for id, name := range d.ws.Names() {
		if slacksim.DMChannel(id) == channel {
			return name
		}
	}
	return ""
}

// buttons lists m's buttons as the client shows them: "[Approve] [Reject]".
func buttons(m slacksim.Message) string {
	var out []string
	for _, a := range m.ActionIDs() {
		out = append(out, "["+buttonLabels[a]+"]")
	}
	return strings.Join(out, " ")
}

// stateLine picks from the changed lines of a request message the one that says its
// decision or state (an approver's DM follows the channel message: that is the news).
func stateLine(changed string) string {
	lines := strings.Split(changed, "\n")
	for _, l := range lines {
		for _, w := range []string{"*Approved*", "*Rejected*", "*Cancelled*", "*Expired*", "*Succeeded*", "*Failed*", "*Running*", "*Queued*"} {
			if strings.Contains(l, w) {
				return strings.TrimSpace(l)
			}
		}
	}
	return strings.TrimSpace(lines[0])
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.Trim(l, "* ")
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// show prints a dialog (a modal) as its user sees it.
func (d *demo) show(text string) {
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintf(d.out, "%s%s\n", strings.Repeat(" ", 11), l)
	}
}

// changedLines returns the lines of now that were not in before.
func changedLines(before, now string) string {
	had := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		had[l] = true
	}
	var out []string
	for _, l := range strings.Split(now, "\n") {
		if !had[l] && strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (d *demo) print(indent, who, text string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	fmt.Fprintf(d.out, "%s%-10s %s\n", indent, who+":", lines[0])
	pad := strings.Repeat(" ", len([]rune(indent))+11)
	for _, l := range lines[1:] {
		fmt.Fprintf(d.out, "%s%s\n", pad, l)
	}
}

func (d *demo) say(user, text string) { d.print("", d.ws.Names()[user], text) }

func (d *demo) heading(s string) { fmt.Fprintf(d.out, "\n━━ %s\n", s) }

func (d *demo) narrate(s string) { fmt.Fprintf(d.out, "   · %s\n", s) }

func (d *demo) check(s string) { fmt.Fprintf(d.out, "   ✔ %s\n", s) }

func (d *demo) fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	d.fails = append(d.fails, msg)
	fmt.Fprintf(d.out, "   ✘ FAILED: %s\n", msg)
}

func (d *demo) wait(ctx context.Context, limit time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return d.ws.WaitFor(ctx, cond)
}

func (d *demo) verdict() error {
	if len(d.fails) > 0 {
		fmt.Fprintf(d.out, "\nDEMO FAILED: %d step(s) did not do what they should:\n", len(d.fails))
		for _, f := range d.fails {
			fmt.Fprintf(d.out, "  - %s\n", f)
		}
		return fmt.Errorf("demo failed: %d step(s)", len(d.fails))
	}
	fmt.Fprintln(d.out, "\nDemo passed: every step did what it should.")
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
