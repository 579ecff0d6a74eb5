package approvals

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// An approval of more than ListedVMs VMs signs a digest per chunk: it stays small, it
// opens with every VM when the record holds them, a job is admitted from the request's
// head and its own chunk, and a VM changed in a chunk after the approval is refused.
func TestLargeApprovalSignsChunks(t *testing.T) {
	signer := testSigner(t, 1)
	keys := keyringOf(signer)
	const n = 2*VMsPerChunk + 7 // three chunks, the last one short
	vms := make([]string, n)
	for i := range vms {
		vms[i] = fmt.Sprintf("bulk-%04d", i+1)
	}
	_, c, r := approved(t, signer, vms...)
	if len(r.Approval.Payload) > 4<<10 {
		t.Fatalf("the approval of %d VMs is %d bytes: it grows with the VMs", n, len(r.Approval.Payload))
	}
	a, err := keys.OpenApproval(r)
	if err != nil || len(a.VMs) != n || len(a.Chunks) != 3 || !sameJSON(a.VMs[n-1], r.JobVMs()[n-1]) {
		t.Fatalf("open: %d VMs in %d chunks, %v", len(a.VMs), len(a.Chunks), err)
	}
	grants, err := signer.Grants(a)
	if err != nil {
		t.Fatal(err)
	}
	g, err := keys.OpenGrant(grants[VMsPerChunk+3])
	if err != nil {
		t.Fatal(err)
	}

	head := r.Clone()
	head.VMs, head.Jobs, head.Review.VMs, head.Tally = nil, nil, nil, TallyOf(r.Jobs)
	job := r.Jobs[VMsPerChunk+3]
	chunk := r.JobVMs()[VMsPerChunk : 2*VMsPerChunk]
	now := c.now()
	if err := keys.AdmitJob(g, Admission{Request: head, Job: &job, Chunk: chunk}, now); err != nil {
		t.Fatalf("admit from the head and the job's chunk: %v", err)
	}
	swapped := append([]ApprovedVM(nil), chunk...)
	altered := r.JobVMs()[VMsPerChunk : 2*VMsPerChunk]
	altered[10].Ref = "vm-replaced"
	if err := keys.AdmitJob(g, Admission{Request: head, Job: &job, Chunk: altered}, now); ReasonOf(err) != ReasonNotListed {
		t.Fatalf("admit against a chunk altered after the approval: %v, want refused as not listed", err)
	}
	if ChunkDigest(swapped) != a.Chunks[1] {
		t.Fatal("a chunk's digest is not what was signed")
	}

	r.Review.VMs[2*VMsPerChunk+1].Ref = "vm-replaced"
	if _, err := keys.OpenApproval(r); ReasonOf(err) != ReasonNotListed {
		t.Fatalf("open a record whose VM changed after the approval: %v, want refused as not listed", err)
	}
}

// A request read without its jobs settles from its tally as it would from its jobs: the
// first start makes it running, the last end ends it (failed if any failed), once.
func TestTallySettlesAsTheJobsWould(t *testing.T) {
	now := time.Unix(100, 0)
	r := &Request{ID: "xvm-tally", State: StateApproved, Tally: &Tally{Jobs: 3}}
	steps := []struct {
		job   int
		state State
		want  State
		noted bool
	}{
		{0, StateRunning, StateRunning, true},
		{0, StateRunning, StateRunning, false},
		{1, StateRunning, StateRunning, true},
		{0, StateSucceeded, StateRunning, true},
		{1, StateFailed, StateRunning, true},
		{2, StateCancelled, StateFailed, true},
		{2, StateCancelled, StateFailed, false},
	}
	for i, st := range steps {
		noted, err := r.NoteJobState(st.job, Job{State: st.state}, now)
		if err != nil || noted != st.noted || r.State != st.want {
			t.Fatalf("step %d (job %d %s): noted %v, request %s, %v; want %v, %s", i, st.job+1, st.state, noted, r.State, err, st.noted, st.want)
		}
	}
	if !r.FinalReplyDue || r.EndedAt != now {
		t.Fatalf("the request ended without its final reply due (%v) or its end time (%v)", r.FinalReplyDue, r.EndedAt)
	}
}

// An approval lists its VMs up to ListedVMs, as earlier versions signed it, and by chunk
// beyond, even when they fit in one chunk.
func TestApprovalListsFewVMs(t *testing.T) {
	for _, n := range []int{ListedVMs, ListedVMs + 1} {
		vms := make([]string, n)
		for i := range vms {
			vms[i] = fmt.Sprintf("web-%03d", i+1)
		}
		signer := testSigner(t, 1)
		_, _, r := approved(t, signer, vms...)
		var a Approval
		if err := keyringOf(signer).open(r.Approval, &a); err != nil {
			t.Fatal(err)
		}
		if listed := n <= ListedVMs; listed != (len(a.VMs) == n && len(a.Chunks) == 0) || !listed && len(a.Chunks) != 1 {
			t.Fatalf("%d VMs: the approval lists %d VMs and %d chunks", n, len(a.VMs), len(a.Chunks))
		}
	}
}

// An approval of more VMs than it lists binds each VM's resolved placement through its
// chunk's digest: the grants carry it, and a grant whose placement differs from the
// approved one is refused even when validly signed.
func TestChunkedApprovalBindsResolvedPlacements(t *testing.T) {
	signer := testSigner(t, 1)
	keys := keyringOf(signer)
	s, c := newService(t, Policy{Approvers: []string{"U0BOSS"}, ExpireAfter: time.Hour, RunWithin: 24 * time.Hour})
	s.WithSigner(signer)
	const n = VMsPerChunk + 3
	vms := make([]string, n)
	for i := range vms {
		vms[i] = fmt.Sprintf("bulk-%04d", i+1)
	}
	r := identified(&Request{Direction: Migrate, VMs: vms, SourceVC: "vc-east", TargetVC: "vc-west", Requester: "U0REQ", Channel: "C1"})
	for i := range r.Review.VMs {
		r.Review.VMs[i].Resolved = &move.Resolved{PowerState: "poweredOn", Host: move.Object{Type: "HostSystem", Value: fmt.Sprintf("host-%d", i%3)}}
	}
	if err := s.Submit(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	r, won, err := s.Approve(context.Background(), r.ID, "U0BOSS")
	if err != nil || !won {
		t.Fatalf("approve: won=%v err=%v", won, err)
	}
	a, err := keys.OpenApproval(r)
	if err != nil || len(a.Chunks) != 2 {
		t.Fatalf("open: %d chunks, %v", len(a.Chunks), err)
	}
	seals, err := signer.Grants(a)
	if err != nil {
		t.Fatal(err)
	}
	i := VMsPerChunk + 1
	g, err := keys.OpenGrant(seals[i])
	if err != nil {
		t.Fatal(err)
	}
	if g.VM.Resolved == nil || g.VM.Resolved.Host.Value != fmt.Sprintf("host-%d", i%3) {
		t.Fatalf("the grant of job %d carries placement %+v", i+1, g.VM.Resolved)
	}
	head := r.Clone()
	head.VMs, head.Jobs, head.Review.VMs, head.Tally = nil, nil, nil, TallyOf(r.Jobs)
	job := r.Jobs[i]
	chunk := r.JobVMs()[VMsPerChunk:]
	if err := keys.AdmitJob(g, Admission{Request: head, Job: &job, Chunk: chunk}, c.now()); err != nil {
		t.Fatalf("admit: %v", err)
	}
	moved := *g
	moved.VM.Resolved = &move.Resolved{PowerState: "poweredOn", Host: move.Object{Type: "HostSystem", Value: "host-elsewhere"}}
	forged, err := signer.seal(moved)
	if err != nil {
		t.Fatal(err)
	}
	fg, err := keys.OpenGrant(forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.AdmitJob(fg, Admission{Request: head, Job: &job, Chunk: chunk}, c.now()); ReasonOf(err) != ReasonNotListed {
		t.Fatalf("admit a grant for another host than approved: %v, want refused as not listed", err)
	}
}
