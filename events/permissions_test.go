package events

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/xvmbot/xvmbot/approvals"
)

// asyncErrors collects a connection's asynchronous errors: that is where the server's
// permission violations arrive.
type asyncErrors struct {
	mu   sync.Mutex
	errs []string
}

func (a *asyncErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err.Error())
}

func (a *asyncErrors) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.errs...)
}

func (a *asyncErrors) has(part string) bool {
	for _, e := range a.all() {
		if strings.Contains(e, part) {
			return true
		}
	}
	return false
}

// startListening runs an embedded server that listens on loopback.
func startListening(t *testing.T, dir string) *Embedded {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	e, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, Listen: "127.0.0.1:-1"}, testLogger(t))
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// connectRole connects over the server's port as a separate process of role r would:
// with the role's seed file and inbox prefix.
func connectRole(t *testing.T, e *Embedded, r Role) (*nats.Conn, *asyncErrors) {
	t.Helper()
	errs := &asyncErrors{}
	seed, err := nats.NkeyOptionFromSeed(SeedFile(e.dataDir, r))
	if err != nil {
		t.Fatal(err)
	}
	opts := append(ClientOptions(r), seed, nats.ErrorHandler(errs.handler))
	nc, err := nats.Connect(e.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", r, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func TestListeningEmbeddedRequiresCredentials(t *testing.T) {
	t.Parallel()
	// Whatever the listen address, loopback or every interface, a client without the
	// credentials cannot connect, and there is no option that turns the check off.
	for _, listen := range []string{"127.0.0.1:-1", ":-1", "0.0.0.0:-1"} {
		t.Run(listen, func(t *testing.T) {
			ctx := testCtx(t, 15*time.Second)
			dir := t.TempDir()
			e, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir, Listen: listen}, testLogger(t))
			if err != nil {
				t.Fatalf("StartEmbedded: %v", err)
			}
			defer e.Shutdown()
			url := strings.Replace(e.ClientURL(), "0.0.0.0", "127.0.0.1", 1)

			if nc, err := nats.Connect(url); err == nil {
				nc.Close()
				t.Fatal("a client without credentials connected")
			} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Fatalf("connect without credentials: %v, want an authorization violation", err)
			}
			stranger, _ := nkeys.CreateUser()
			pub, _ := stranger.PublicKey()
			if nc, err := nats.Connect(url, nats.Nkey(pub, stranger.Sign)); err == nil {
				nc.Close()
				t.Fatal("a client with an unknown nkey connected")
			}
			if nc, err := nats.Connect(url, nats.UserInfo("xvmbot", "")); err == nil {
				nc.Close()
				t.Fatal("a client with a user name and no password connected")
			}

			for _, r := range []Role{RoleBot, RoleWorker} {
				st, err := os.Stat(SeedFile(dir, r))
				if err != nil {
					t.Fatalf("%s seed: %v", r, err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s seed mode %04o, want 0600", r, st.Mode().Perm())
				}
				seed, _ := nats.NkeyOptionFromSeed(SeedFile(dir, r))
				nc, err := nats.Connect(url, seed)
				if err != nil {
					t.Fatalf("connect with the %s seed: %v", r, err)
				}
				nc.Close()
			}
		})
	}
}

func TestEmbeddedSeedsAreKeptAndChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := startListening(t, dir)
	before, _ := os.ReadFile(SeedFile(dir, RoleWorker))
	e.Shutdown()

	e = startListening(t, dir)
	after, _ := os.ReadFile(SeedFile(dir, RoleWorker))
	if string(before) != string(after) || len(after) == 0 {
		t.Fatal("the worker seed changed across a restart; processes configured with it would be locked out")
	}
	connectRole(t, e, RoleWorker)
	e.Shutdown()

	// An operator-supplied seed others can read is refused, naming the fix.
	if err := os.Chmod(SeedFile(dir, RoleBot), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := StartEmbedded(testCtx(t, 15*time.Second), EmbeddedConfig{DataDir: dir, Listen: "127.0.0.1:-1"}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("StartEmbedded with a world-readable seed: %v, want an error saying chmod 600", err)
	}
	// A seed of the wrong kind is refused too.
	if err := os.Chmod(SeedFile(dir, RoleBot), 0o600); err != nil {
		t.Fatal(err)
	}
	acct, _ := nkeys.CreateAccount()
	aseed, _ := acct.Seed()
	if err := os.WriteFile(SeedFile(dir, RoleBot), aseed, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = StartEmbedded(testCtx(t, 15*time.Second), EmbeddedConfig{DataDir: dir, Listen: "127.0.0.1:-1"}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "user seed") {
		t.Fatalf("StartEmbedded with an account seed: %v, want an error asking for a user seed", err)
	}
}

// The bot and the worker, each over its own credential, do everything they do in
// production — create the layout, queue a job, keep request records, run the job with
// its record, lease and slots, report events, cancel — without one permission violation.
func TestRolesCanDoTheirWork(t *testing.T) {
	t.Parallel()
	e := startListening(t, t.TempDir())
	ctx := testCtx(t, 30*time.Second)
	cfg := BusConfig{AckWait: 3 * time.Second, LeaseTTL: 3 * time.Second, RetryDelay: 50 * time.Millisecond}

	botNC, botErrs := connectRole(t, e, RoleBot)
	workerNC, workerErrs := connectRole(t, e, RoleWorker)

	// A worker that starts before the bot finds nothing, and says why.
	wcfg := cfg
	wcfg.Role = RoleWorker
	wcfg.AckWait = time.Minute // the bot's consumer decides
	if _, err := NewBus(ctx, workerNC, wcfg, testLogger(t), nil); !errors.Is(err, ErrNotProvisioned) {
		t.Fatalf("worker NewBus before the bot: %v, want ErrNotProvisioned", err)
	}

	bcfg := cfg
	bcfg.Role = RoleBot
	bot, err := NewBus(ctx, botNC, bcfg, testLogger(t), nil)
	if err != nil {
		t.Fatalf("bot NewBus: %v", err)
	}
	worker, err := NewBus(ctx, workerNC, wcfg, testLogger(t), nil)
	if err != nil {
		t.Fatalf("worker NewBus: %v", err)
	}
	if got := worker.Config().AckWait; got != cfg.AckWait {
		t.Errorf("worker ack wait %v, want the bot's %v", got, cfg.AckWait)
	}
	if got := worker.Config().LeaseTTL; got != cfg.LeaseTTL {
		t.Errorf("worker lease ttl %v, want the bot's %v", got, cfg.LeaseTTL)
	}

	req := &approvals.Request{ID: "xvm-perm1", Requester: "U1", State: approvals.StatePending, CreatedAt: time.Now(), VMs: []string{"web-01", "web-02"}}
	rev, err := bot.Requests().Create(ctx, req)
	if err != nil {
		t.Fatalf("bot creates a request: %v", err)
	}
	req.State = approvals.StateApproved
	if _, err := bot.Requests().Update(ctx, req, rev); err != nil {
		t.Fatalf("bot updates a request: %v", err)
	}
	if list, err := bot.Requests().List(ctx); err != nil || len(list) != 1 {
		t.Fatalf("bot lists requests: %d, %v", len(list), err)
	}
	for _, vm := range []string{"web-01", "web-02"} {
		if err := bot.PublishJob(ctx, Job{ID: req.ID + "-" + vm, RequestID: req.ID, VM: vm}); err != nil {
			t.Fatalf("bot publishes a job: %v", err)
		}
	}
	if _, err := bot.QueuedJobs(ctx); err != nil {
		t.Fatalf("bot reads the queue depth: %v", err)
	}

	var mu sync.Mutex
	ran := map[string]bool{}
	handler := func(ctx context.Context, j Job, d Delivery) error {
		if _, _, err := worker.Requests().Get(ctx, j.RequestID); err != nil {
			return err
		}
		if err := d.InProgress(); err != nil {
			return err
		}
		rec := &JobRecord{JobID: j.ID, RequestID: j.RequestID, VM: j.VM, State: JobRunning, Worker: "w1"}
		rrev, err := worker.Jobs().Create(ctx, rec)
		if err != nil {
			return err
		}
		lease, err := worker.Leases().Acquire(ctx, j.VM, "w1")
		if err != nil {
			return err
		}
		claim, err := worker.Slots().Acquire(ctx, "w1/"+j.ID, []Want{{Key: "host/vc-west/h1", Limit: 2}})
		if err != nil {
			return err
		}
		if err := errors.Join(lease.Renew(ctx), claim.Renew(ctx)); err != nil {
			return err
		}
		if err := worker.PublishEvent(ctx, Event{Type: EventProgress, RequestID: j.RequestID, JobID: j.ID, VM: j.VM, Progress: 50}); err != nil {
			return err
		}
		rec.State = JobSucceeded
		if _, err := worker.Jobs().Update(ctx, rec, rrev); err != nil {
			return err
		}
		if err := errors.Join(claim.Release(ctx), lease.Release(ctx)); err != nil {
			return err
		}
		if err := worker.PublishEvent(ctx, Event{Type: EventSucceeded, RequestID: j.RequestID, JobID: j.ID, VM: j.VM}); err != nil {
			return err
		}
		mu.Lock()
		ran[j.ID] = true
		mu.Unlock()
		return nil
	}
	wctx, stopWorker := context.WithCancel(ctx)
	wdone := make(chan error, 1)
	go func() { wdone <- worker.RunWorker(wctx, 1, handler) }()

	var got []Event
	var gotMu sync.Mutex
	ectx, stopEvents := context.WithCancel(ctx)
	edone := make(chan error, 1)
	go func() {
		edone <- bot.RunEvents(ectx, func(_ context.Context, ev Event) error {
			gotMu.Lock()
			got = append(got, ev)
			gotMu.Unlock()
			return nil
		})
	}()
	eventually(ctx, t, "both jobs to succeed and their events to reach the bot", func() bool {
		gotMu.Lock()
		defer gotMu.Unlock()
		n := 0
		for _, ev := range got {
			if ev.Type == EventSucceeded {
				n++
			}
		}
		return n == 2
	})
	stopWorker()
	stopEvents()
	if err := errors.Join(<-wdone, <-edone); err != nil {
		t.Fatalf("runners: %v", err)
	}
	if _, err := bot.CancelJob(ctx, req.ID+"-web-01", "U1"); err != nil {
		t.Fatalf("bot cancels a job: %v", err)
	}
	for what, errs := range map[string]*asyncErrors{"bot": botErrs, "worker": workerErrs} {
		if all := errs.all(); len(all) > 0 {
			t.Errorf("the %s's connection reported %d error(s): %q", what, len(all), all)
		}
	}
	if len(ran) != 2 {
		t.Errorf("jobs run: %v", ran)
	}
}

// what a misused credential tries, and how the server must answer it.
func TestCredentialsCannotDoTheOtherRolesWork(t *testing.T) {
	t.Parallel()
	e := startListening(t, t.TempDir())
	ctx := testCtx(t, 30*time.Second)
	admin := connect(t, e)
	if _, err := NewBus(ctx, admin, BusConfig{}, testLogger(t), nil); err != nil {
		t.Fatal(err)
	}
	ajs, _ := jetstream.New(admin)
	count := func(stream string) uint64 {
		st, err := ajs.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	// attempt runs op as role r; a JetStream call must fail (nothing acknowledges it), and
	// whatever the call, the server must report the violation on the subject denied.
	attempt := func(t *testing.T, r Role, what string, op func(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error, denied string) {
		t.Helper()
		nc, errs := connectRole(t, e, r)
		js, _ := jetstream.New(nc)
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := op(octx, nc, js); err == nil {
			t.Errorf("%s: %s succeeded", r, what)
		}
		eventually(ctx, t, "the server's permission violation for "+denied, func() bool {
			return errs.has(`Permissions Violation for Publish to "` + denied)
		})
	}
	t.Run("worker cannot queue a job", func(t *testing.T) {
		attempt(t, RoleWorker, "a job publish", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			_, err := js.Publish(ctx, SubjectJobs, []byte(`{"v":1,"id":"forged","vm":"web-01"}`))
			return err
		}, SubjectJobs)
		attempt(t, RoleWorker, "a plain publish on the jobs subject", func(_ context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			if err := nc.Publish(SubjectJobs, []byte(`{"v":1,"id":"forged2"}`)); err != nil {
				return err
			}
			// A plain publish is fire-and-forget: its only answer is the server's
			// asynchronous violation, awaited below.
			return errors.New("sent")
		}, SubjectJobs)
		if n := count(StreamJobs); n != 0 {
			t.Errorf("%d jobs in the queue after the worker's attempts", n)
		}
	})
	t.Run("worker cannot write a request record", func(t *testing.T) {
		attempt(t, RoleWorker, "a request record put", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			kv, err := js.KeyValue(ctx, BucketRequests)
			if err != nil {
				return nil // the lookup is allowed; reaching here without it is its own failure
			}
			_, err = kv.Put(ctx, "xvm-forged", []byte(`{"id":"xvm-forged","state":"approved"}`))
			return err
		}, "$KV."+BucketRequests+".xvm-forged")
		if n := count(kvStream(BucketRequests)); n != 0 {
			t.Errorf("%d request records after the worker's attempt", n)
		}
	})
	t.Run("worker cannot redefine the jobs stream", func(t *testing.T) {
		attempt(t, RoleWorker, "a stream update", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			_, err := js.UpdateStream(ctx, jetstream.StreamConfig{Name: StreamJobs, Subjects: []string{SubjectJobs, SubjectEvents + ".>"}})
			return err
		}, jsAPI+"STREAM.UPDATE."+StreamJobs)
	})
	t.Run("bot cannot report a job event", func(t *testing.T) {
		before := count(StreamEvents)
		attempt(t, RoleBot, "an event publish", func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			_, err := js.Publish(ctx, EventSubject("xvm-r1", EventSucceeded), []byte(`{"v":1,"type":"succeeded"}`))
			return err
		}, SubjectEvents+".")
		if n := count(StreamEvents); n != before {
			t.Errorf("the events stream went from %d to %d messages after the bot's attempt", before, n)
		}
	})
	t.Run("worker cannot read the bot's replies", func(t *testing.T) {
		nc, _ := connectRole(t, e, RoleWorker)
		nc.SetErrorHandler(nil)
		_, err := nc.SubscribeSync(InboxPrefix(RoleBot) + ".>")
		if err == nil {
			err = nc.Flush()
		}
		if err == nil {
			err = nc.LastError()
		}
		if err == nil || !strings.Contains(err.Error(), "Permissions Violation for Subscription") {
			t.Errorf("a worker subscribing to the bot's inbox: %v, want a subscription violation", err)
		}
	})
}
