package events

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/move"
)

// startStockServer runs a nats-server as an operator would install it: default options
// (max_payload 1 MB) but for JetStream with its store dir, and a free port.
func startStockServer(t testing.TB) *nats.Conn {
	t.Helper()
	s, err := server.NewServer(&server.Options{JetStream: true, StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if nc.MaxPayload() != 1<<20 {
		t.Fatalf("the server's max payload is %d, want the default 1 MB", nc.MaxPayload())
	}
	return nc
}

// scaleRequest is a request of n VMs as the bot submits one: a review that found every
// VM, and a finding per VM.
func scaleRequest(n int) *approvals.Request {
	r := &approvals.Request{Direction: approvals.Migrate, SourceVC: "vc-east", TargetVC: "vc-west", Requester: "U0REQ",
		Channel: "C0OPS", Placement: move.Placement{Cluster: "west-prod", Datastore: "west-ds-01"}}
	r.Review.Source = approvals.VCenterRef{Name: "vc-east", InstanceUUID: "8a1b6f0c-0000-4000-8000-00000000e457"}
	r.Review.Target = approvals.VCenterRef{Name: "vc-west", InstanceUUID: "8a1b6f0c-0000-4000-8000-0000000we57"}
	for i := range n {
		vm := fmt.Sprintf("app-tier-%04d.prod.example.com", i+1)
		r.VMs = append(r.VMs, vm)
		r.Review.VMs = append(r.Review.VMs, approvals.ReviewVM{VM: move.VM{Name: vm, Ref: fmt.Sprintf("vm-%d", 1000+i)},
			PowerState: "poweredOn", CPUs: 4, MemoryMB: 16384, DiskGB: 120.5, NICs: 2})
		r.Review.Findings = append(r.Review.Findings, approvals.Finding{Severity: approvals.SeverityOK, VM: vm,
			Message: "NIC 1 of " + vm + " stays on a portgroup named app-pg in vc-west (no mapping given)"})
	}
	return r
}

// scaleService is a Service on a fresh bus over nc that signs approvals, and its keyring.
func scaleService(t testing.TB, ctx context.Context, nc *nats.Conn) (*Bus, *approvals.Service, *approvals.Keyring) {
	t.Helper()
	bus, err := NewBus(ctx, nc, BusConfig{}, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	svc, keys := signingService(t, bus.Requests())
	return bus, svc, keys
}

// signingService is a Service on store whose approver is U0BOSS, signing approvals, and
// the keyring that trusts it.
func signingService(t testing.TB, store approvals.Store) (*approvals.Service, *approvals.Keyring) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	svc := approvals.NewService(store, approvals.Policy{Approvers: []string{"U0BOSS"}, Quorum: 1}, nil, testLogger(t)).
		WithSigner(approvals.NewSigner("UKEY", key))
	return svc, approvals.NewKeyring(map[string]ed25519.PublicKey{"UKEY": pub})
}

// A 5,000-VM request, as one JSON value over three times NATS's default message limit,
// is submitted, approved and run to its end against a stock nats-server: every value the
// store writes stays under 256 KB, every VM ends moved, and a worker admits a job from the
// head, the job and one chunk of VMs.
func TestRequestOf5000VMsOnStockNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 jobs")
	}
	t.Parallel()
	ctx := testCtx(t, 5*time.Minute)
	nc := startStockServer(t)
	bus, svc, keys := scaleService(t, ctx, nc)
	const n = 5000

	r := scaleRequest(n)
	if err := svc.Submit(ctx, r); err != nil {
		t.Fatalf("submit: %v", err)
	}
	// As one value, as it was stored before, the request does not fit this server.
	whole, _ := json.Marshal(r)
	if _, err := bus.Requests().kv.Put(ctx, "one-value", whole); err == nil {
		t.Fatalf("the request as one value (%d bytes) was stored: this test is not about what it says", len(whole))
	}
	if _, won, err := svc.Approve(ctx, r.ID, "U0BOSS"); err != nil || !won {
		t.Fatalf("approve: won=%v, %v", won, err)
	}
	if _, err := svc.MarkQueued(ctx, r.ID); err != nil {
		t.Fatalf("mark queued: %v", err)
	}

	// A worker's admission of one job reads the head, the job and its chunk of VMs.
	approved, err := svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := keys.OpenApproval(approved)
	if err != nil || len(a.VMs) != n || len(a.Chunks) != n/approvals.VMsPerChunk {
		t.Fatalf("open approval: %d VMs in %d chunks, %v", len(a.VMs), len(a.Chunks), err)
	}
	store := bus.Requests()
	job := 4321
	grant := &approvals.Grant{Terms: a.Terms, VM: a.VMs[job]}
	head, _, err := store.Head(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	j, err := store.Job(ctx, head, job)
	if err != nil {
		t.Fatal(err)
	}
	chunk, err := store.VMChunk(ctx, r.ID, job/approvals.VMsPerChunk)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.AdmitJob(grant, approvals.Admission{Request: head, Job: j, Chunk: chunk}, time.Now()); err != nil {
		t.Fatalf("admit job %d from its head, job and chunk: %v", job+1, err)
	}
	other, err := store.VMChunk(ctx, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.AdmitJob(grant, approvals.Admission{Request: head, Job: j, Chunk: other}, time.Now()); approvals.ReasonOf(err) != approvals.ReasonNotListed {
		t.Fatalf("admit job %d against another chunk: %v, want refused as not listed", job+1, err)
	}

	for i := range n {
		id := approvals.JobID(r.ID, i)
		if _, _, _, err := svc.ApplyReport(ctx, r.ID, approvals.Report{Job: id, State: approvals.StateRunning, Started: true, Task: "task-1"}); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		origin := &move.Origin{VCenter: "vc-east", Placement: move.Placement{Cluster: "east-prod", Host: "esx-e1", Datastore: "east-ds-02"}}
		if _, _, _, err := svc.ApplyReport(ctx, r.ID, approvals.Report{Job: id, State: approvals.StateSucceeded, Origin: origin}); err != nil {
			t.Fatalf("succeed %s: %v", id, err)
		}
	}

	got, err := svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bad := approvals.CheckOutcome(got, approvals.StateSucceeded); bad != "" {
		t.Fatalf("the request did not end as it should: %.500s", bad)
	}
	if !got.FinalReplyDue || len(got.Jobs) != n || got.Jobs[n-1].Origin == nil {
		t.Fatalf("ended without its final reply due (%v) or its jobs (%d)", got.FinalReplyDue, len(got.Jobs))
	}
	largest, key := largestValue(t, ctx, nc)
	if largest >= 256<<10 {
		t.Fatalf("the largest value stored is %s, %d bytes: want under 256 KB", key, largest)
	}
	t.Logf("largest value stored: %s, %d bytes", key, largest)
	// The head is read with every job event: it must not grow with the request's VMs.
	e, err := bus.Requests().kv.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Value()) > 8<<10 {
		t.Fatalf("the head of the request is %d bytes: want under 8 KB", len(e.Value()))
	}
}

// largestValue returns the largest value (of every revision kept) in the requests
// bucket, and its key.
func largestValue(t testing.TB, ctx context.Context, nc *nats.Conn) (int, string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, BucketRequests)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IncludeHistory())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	largest, key := 0, ""
	for e := range w.Updates() {
		if e == nil {
			break
		}
		if len(e.Value()) > largest {
			largest, key = len(e.Value()), e.Key()
		}
	}
	return largest, key
}
