//go:build faults

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/events"
)

// Who may do what on NATS, with real processes: the compose file's nats-server (the same
// users and permissions as the chart's and the code's, see deploy/deploy_test.go) under
// `xvmbot bot` and `xvmbot worker`, and `xvmbot serve`'s embedded server on every
// interface. A move runs end to end on each role's credential without one permission
// violation, and each credential is refused the other role's work.

const composeNATSConf = "../../deploy/compose/nats/nats-server.conf"

// serverLog keeps a nats-server's log lines, where it reports permission violations.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) add(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, v...))
}

func (l *serverLog) Noticef(format string, v ...any) { l.add("NOTICE", format, v...) }
func (l *serverLog) Warnf(format string, v ...any)   { l.add("WARN", format, v...) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.add("FATAL", format, v...) }
func (l *serverLog) Errorf(format string, v ...any)  { l.add("ERROR", format, v...) }
func (l *serverLog) Debugf(format string, v ...any)  { l.add("DEBUG", format, v...) }
func (l *serverLog) Tracef(format string, v ...any)  { l.add("TRACE", format, v...) }

// matching returns the lines that contain part.
func (l *serverLog) matching(part string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, part) {
			out = append(out, s)
		}
	}
	return out
}

// startComposeNATS runs nats-server with deploy/compose's configuration file, as parsed
// by nats-server itself; only the addresses and the store move to the test's. The two
// passwords are defined at the top, as the environment defines them in compose.
func startComposeNATS(t *testing.T, botPW, workerPW string) (*natsNode, *serverLog) {
	t.Helper()
	conf, err := os.ReadFile(composeNATSConf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats-server.conf")
	vars := fmt.Sprintf("XVM_NATS_BOT_PASSWORD: %q\nXVM_NATS_WORKER_PASSWORD: %q\n", botPW, workerPW)
	if err := os.WriteFile(path, append([]byte(vars), conf...), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("compose's nats-server.conf: %v", err)
	}
	if len(opts.Users) != 2 {
		t.Fatalf("compose's nats-server.conf defines %d users, want the bot and the worker", len(opts.Users))
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", freePort(t), 0
	opts.StoreDir, opts.NoSigs = filepath.Join(t.TempDir(), "js"), true
	opts.JetStreamMaxMemory, opts.JetStreamMaxStore = 64<<20, 256<<20
	n := &natsNode{t: t, opts: *opts, log: &serverLog{}}
	n.start()
	t.Cleanup(n.stop)
	return n, n.log
}

// forge tries, as a client holding a role's credential, to publish on subject through
// JetStream. It returns the publish error (nil would mean the stream took it).
func forge(t *testing.T, url string, r events.Role, subject string, creds ...nats.Option) error {
	t.Helper()
	opts := append(events.ClientOptions(r), creds...)
	opts = append(opts, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	nc, js, err := dialJS(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", r, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = js.Publish(ctx, subject, []byte(`{"v":1,"id":"xvm-forged-01","request_id":"xvm-forged","direction":"migrate","vm":"web-02",`+
		`"source_vc":"vc-east","target_vc":"vc-west","cluster":"west-prod","datastore":"ds-gold","networks":[{"target":"app-pg"}]}`))
	return err
}

// violations returns the lines of a process log that report a refused NATS operation.
func violations(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(strings.ToLower(l), "violation") || strings.Contains(l, "refused an operation") {
			out = append(out, l)
		}
	}
	return out
}

// `xvmbot bot` and `xvmbot worker` on compose's nats-server, each with its own user: the
// worker, started first, waits for the bot to create the streams and buckets; a move, a
// list and a status run without one permission violation on either side; then the
// worker's credential cannot queue a job and the bot's cannot report a job's end.
func TestFleetRoleCredentialsOnComposeNATS(t *testing.T) {
	t.Parallel() // mostly waiting on processes; two at a time (-parallel = GOMAXPROCS)
	f := newFleet(t, fleetOpt{taskDuration: 300 * time.Millisecond, noNATS: true})
	botPW, workerPW := "bot-pw-"+randomHex(12), "worker-pw-"+randomHex(12)
	node, srvLog := startComposeNATS(t, botPW, workerPW)
	pwFile := map[string]string{}
	for user, pw := range map[string]string{"xvm-bot": botPW, "xvm-worker": workerPW} {
		pwFile[user] = filepath.Join(f.dir, user+".password")
		if err := os.WriteFile(pwFile[user], []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user string) func(map[string]any) {
		return func(c map[string]any) {
			n := c["nats"].(map[string]any)
			n["url"], n["user"], n["password_file"] = node.url(), user, pwFile[user]
		}
	}

	w := f.startNoWait("worker", "w1", as("xvm-worker"))
	f.poll("the worker to wait for the bot's streams", 20*time.Second, func() bool {
		return strings.Contains(w.log(), "waiting for the bot to create the NATS streams")
	})
	b := f.bot(as("xvm-bot"))
	w.awaitReady()
	f.readStoreAt(node.url(), append(events.ClientOptions(events.RoleBot), nats.UserInfo("xvm-bot", botPW))...)

	msg := f.request(uReq, "migrate web-01"+moveTo)
	f.click(uBoss, msg, "xvm_approve")
	f.awaitFinal(msg.TS, approvals.StateSucceeded, 30*time.Second)
	f.checkMovedOnce("vc-east", "vc-west", "web-01")
	n := len(f.ws.Ephemerals(uOps))
	f.command(uOps, "list")
	f.awaitEphemeral(uOps, n, f.requestID(msg))
	n = len(f.ws.Ephemerals(uOps))
	f.command(uOps, "status "+f.requestID(msg))
	f.awaitEphemeral(uOps, n, "succeeded")

	if v := srvLog.matching("Violation"); len(v) > 0 {
		t.Errorf("nats-server refused %d operation(s) of the bot or the worker:\n%s", len(v), strings.Join(v, "\n"))
	}
	for _, p := range []*proc{b, w} {
		if v := violations(p.log()); len(v) > 0 {
			t.Errorf("%s logged refused NATS operations:\n%s", p.name, strings.Join(v, "\n"))
		}
		if strings.Contains(p.log(), "NATS IS NOT PROTECTED") {
			t.Errorf("%s warns that NATS is not protected, yet it has a credential:\n%s", p.name, lastLines(p.log(), 20))
		}
	}

	// check takes each config for what it is: the bot's may set the layout up, the
	// worker's only finds it.
	for p, want := range map[*proc]string{b: "bot permissions; streams and buckets ready", w: "worker permissions; streams and buckets found"} {
		out, err := exec.Command(f.bin, "check", "--config", p.config).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), "note  nats security") {
			t.Errorf("check of the %s's config (%v) does not say %q and note the password in clear:\n%s", p.name, err, want, out)
		}
	}

	// The worker's credential cannot queue a job; the bot's cannot say a job succeeded.
	if err := forge(t, node.url(), events.RoleWorker, events.SubjectJobs, nats.UserInfo("xvm-worker", workerPW)); err == nil {
		t.Error("a job published with the worker's credential was stored")
	}
	if err := forge(t, node.url(), events.RoleBot, events.EventSubject("xvm-forged", events.EventSucceeded), nats.UserInfo("xvm-bot", botPW)); err == nil {
		t.Error("an event published with the bot's credential was stored")
	}
	f.poll("nats-server to refuse both", 10*time.Second, func() bool {
		return len(srvLog.matching(`"$G/user:xvm-worker" - Publish Violation - Subject "xvm.jobs"`)) > 0 &&
			len(srvLog.matching(`"$G/user:xvm-bot" - Publish Violation - Subject "xvm.events.`)) > 0
	})
	if c := f.lab.VC("vc-east").XVMRelocationsOf("web-02"); c != 0 {
		t.Errorf("the forged job for web-02 ran %d time(s)", c)
	}
	f.assertNoSecrets(botPW, workerPW)
}

// `xvmbot serve` with its embedded NATS open on every interface (nats.listen 0.0.0.0):
// a client without credentials cannot connect, so cannot queue a job; a separate
// `xvmbot worker` with the worker seed from the data dir takes part in a move; the
// worker seed cannot queue a job.
func TestFleetEmbeddedNATSOnEveryInterfaceRequiresCredentials(t *testing.T) {
	t.Parallel() // mostly waiting on processes; two at a time (-parallel = GOMAXPROCS)
	f := newFleet(t, fleetOpt{taskDuration: 300 * time.Millisecond, extraVMs: 4, noNATS: true})
	dataDir := filepath.Join(f.dir, "nats-data")
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	s := f.start("serve", "s1", func(c map[string]any) {
		n := c["nats"].(map[string]any)
		n["data_dir"], n["listen"] = dataDir, fmt.Sprintf("0.0.0.0:%d", port)
	})
	f.ws.UseHTTP("http://"+s.addr(), f.signing)
	if !strings.Contains(s.log(), "listens beyond this machine") {
		t.Errorf("serve does not warn that its NATS listens beyond the machine:\n%s", lastLines(s.log(), 20))
	}

	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected to the embedded NATS on 0.0.0.0")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("connect without credentials: %v, want an authorization violation", err)
	}

	seed := events.SeedFile(dataDir, events.RoleWorker)
	w := f.start("worker", "w2", func(c map[string]any) {
		n := c["nats"].(map[string]any)
		n["url"], n["nkey_file"] = url, seed
	})
	botSeed, err := nats.NkeyOptionFromSeed(events.SeedFile(dataDir, events.RoleBot))
	if err != nil {
		t.Fatal(err)
	}
	f.readStoreAt(url, append(events.ClientOptions(events.RoleBot), botSeed)...)
	vms := []string{"bulk-0001", "bulk-0002", "bulk-0003", "bulk-0004"}
	msg := f.request(uReq, "migrate "+strings.Join(vms, ",")+moveTo)
	f.click(uBoss, msg, "xvm_approve")
	f.awaitFinal(msg.TS, approvals.StateSucceeded, 40*time.Second)
	f.checkMovedOnce("vc-east", "vc-west", vms...)
	for _, p := range []*proc{s, w} {
		if v := violations(p.log()); len(v) > 0 {
			t.Errorf("%s logged refused NATS operations:\n%s", p.name, strings.Join(v, "\n"))
		}
	}

	seedOpt, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := forge(t, url, events.RoleWorker, events.SubjectJobs, seedOpt); err == nil {
		t.Error("a job published with the worker's seed was stored")
	}
	f.poll("serve's NATS to refuse the worker's job", 10*time.Second, func() bool {
		return strings.Contains(s.log(), `Publish Violation - `) && strings.Contains(s.log(), `Subject \"xvm.jobs\"`)
	})
	if c := f.lab.VC("vc-east").XVMRelocationsOf("web-02"); c != 0 {
		t.Errorf("the forged job for web-02 ran %d time(s)", c)
	}
}

// An external NATS without credentials or TLS: every process says so loudly at start,
// and `xvmbot check` reports it.
func TestFleetUnprotectedExternalNATSIsReported(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOpt{})
	b := f.bot(nil)
	if !strings.Contains(b.log(), "NATS IS NOT PROTECTED") || !strings.Contains(b.log(), "without credentials") {
		t.Errorf("the bot does not warn about an unauthenticated NATS:\n%s", lastLines(b.log(), 20))
	}
	out, err := exec.Command(f.bin, "check", "--config", b.config).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "WARN  nats security") || !strings.Contains(string(out), "without credentials") {
		t.Errorf("check does not report the unauthenticated NATS:\n%s", out)
	}
}
