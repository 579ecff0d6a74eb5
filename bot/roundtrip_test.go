package bot

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/approvals/approvaltest"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/vcenter"
	"github.com/xvmbot/xvmbot/worker"
)

// roundTripSamples is a value of every placement option, by key (numbered options as
// key + "N", written with N = 2). An option added to placementOptions without one here
// fails TestPlacementTravelsFromCommandToUndo.
var roundTripSamples = map[string]string{
	"cluster":   "west-prod",
	"host":      "esx-w1",
	"pool":      "prod",
	"datastore": "ds-gold",
	"folder":    `"migrated/web apps"`,
	"network":   `east-app-pg:app-pg,"VM Network":vm-pg`,
	"disk":      "thin",
	"diskN":     "ds-silver:eager:silver-policy",
	"policy":    "gold-policy",
	"priority":  "high",
}

// everyFieldSet fails t for each field of p that is zero but for those in except: a
// field no step sets is one some step forgot.
func everyFieldSet(t *testing.T, what string, p move.Placement, except ...string) {
	t.Helper()
	v := reflect.ValueOf(p)
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if v.Field(i).IsZero() && !slices.Contains(except, name) {
			t.Errorf("%s leaves %s unset", what, name)
		}
	}
}

// samePlacement fails t if a step handed on other than it was given.
func samePlacement(t *testing.T, step string, got, want move.Placement) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s changes the placement:\n got %+v\nwant %+v", step, got, want)
	}
}

// jsonTrip encodes v and decodes it into a new value, as a store or the bus does.
func jsonTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A move's placement travels whole through every step that carries it in production: the
// command, the pre-flight spec, the stored request, its signed approval, the queued job,
// the worker's spec, the origin the worker records, and the undo command built from it.
// A placement option the table has but a step drops fails here.
func TestPlacementTravelsFromCommandToUndo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	text := "migrate web-01 from vc-east to vc-west"
	for _, o := range placementOptions {
		key, typed := o.key, o.key
		if o.numbered {
			key, typed = o.key+"N", o.key+"2"
		}
		v, ok := roundTripSamples[key]
		if !ok {
			t.Fatalf("option %s= has no sample in roundTripSamples", key)
		}
		text += " " + typed + "=" + v
	}

	// 1. The command: every field of the placement is set by some option.
	cmd, err := ParseCommand(text)
	if err != nil {
		t.Fatal(err)
	}
	want := cmd.Placement
	everyFieldSet(t, "the command "+text, want)
	if again, err := ParseCommand(cmd.String()); err != nil || !reflect.DeepEqual(again, cmd) {
		t.Fatalf("the command written back (%s) reads as %+v (%v)", cmd.String(), again, err)
	}

	// 2. The pre-flight spec.
	spec := moveSpec(cmd, "vc-east", "vc-west")
	samePlacement(t, "the pre-flight spec", spec.Placement, want)
	if !slices.Equal(spec.VMs, []string{"web-01"}) || spec.Source != "vc-east" || spec.Target != "vc-west" {
		t.Fatalf("the pre-flight spec moves %v from %q to %q", spec.VMs, spec.Source, spec.Target)
	}

	// 3. The request, as stored, approved and signed.
	plan := &vcenter.Plan{Spec: spec,
		Source: vcenter.Endpoint{Name: "vc-east", InstanceUUID: "uuid-east"},
		Target: vcenter.Endpoint{Name: "vc-west", InstanceUUID: "uuid-west"},
		VMs:    []vcenter.VM{{VM: move.VM{Name: "web-01", Ref: "vm-42"}}}}
	r := requestOf(cmd, plan, "vc-east", "vc-west", invocation{User: requester, Channel: testChannel})
	samePlacement(t, "the request", r.Placement, want)
	signer, keys := approvaltest.Key(1)
	svc := approvals.NewService(approvals.NewMemoryStore(), approvals.Policy{Approvers: []string{approver}, Quorum: 1},
		nil, slog.New(slog.NewTextHandler(io.Discard, nil))).WithSigner(signer)
	if err := svc.Submit(ctx, r); err != nil {
		t.Fatal(err)
	}
	r, won, err := svc.Approve(ctx, r.ID, approver)
	if err != nil || !won {
		t.Fatalf("approve: won=%v err=%v", won, err)
	}
	r = jsonTrip(t, r)
	samePlacement(t, "the stored request", r.Placement, want)
	a, err := keys.OpenApproval(r)
	if err != nil {
		t.Fatal(err)
	}
	samePlacement(t, "the signed approval", a.Placement, want)

	// 4. The job on the bus.
	now := time.Now()
	jobs, err := (&Bot{cfg: Config{Signer: signer, Keys: keys}}).jobsOf(r, now)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %+v (%v)", jobs, err)
	}
	job := jsonTrip(t, jobs[0])
	samePlacement(t, "the queued job", job.Placement, want)

	// 5. The worker's spec.
	wspec := worker.MoveSpec(job)
	samePlacement(t, "the worker's spec", wspec.Placement, want)
	if !slices.Equal(wspec.VMs, []string{"web-01"}) || wspec.Source != "vc-east" || wspec.Target != "vc-west" {
		t.Fatalf("the worker's spec moves %v from %q to %q", wspec.VMs, wspec.Source, wspec.Target)
	}

	// 6. The origin: where web-01 was, as the worker reads it before the move (every
	// field different from the target), with its NICs mapped back from where the spec
	// put them; recorded with the job, reported in the succeeded event, stored on the job.
	before := &vcenter.Where{VCenter: "vc-east", Cluster: "east-prod", Host: "esx-e1", Pool: "apps",
		Datastore: "east-ds-01", Folder: "apps/web", DiskFormat: move.Thick, Policy: "gold-policy",
		Disks: []move.Disk{{Disk: 1, Datastore: "east-ds-01", DiskFormat: move.Thick, Policy: "gold-policy"},
			{Disk: 2, Datastore: "east-ds-02", DiskFormat: move.Thin, Policy: "silver-policy"}},
		Networks: []string{"east-app-pg", "VM Network"}}
	var after []string
	for _, pg := range before.Networks {
		i := slices.IndexFunc(wspec.Networks, func(n move.Network) bool { return n.Source == pg || n.Source == "" })
		after = append(after, wspec.Networks[i].Target)
	}
	origin := before.Origin()
	origin.Networks = move.NetworksBack(after, before.Networks)
	rec := jsonTrip(t, events.JobRecord{JobID: job.ID, Move: &events.JobMove{Origin: &origin}})
	ev := jsonTrip(t, events.Event{Type: events.EventSucceeded, RequestID: r.ID, JobID: job.ID, VM: job.VM, Origin: rec.Move.Origin})
	if _, err := r.ApplyReport(reportOf(ev, approvals.StateSucceeded), now); err != nil {
		t.Fatal(err)
	}
	r = jsonTrip(t, r)
	j := r.Job(job.ID)
	if err := j.Undoable(); err != nil {
		t.Fatal(err)
	}
	everyFieldSet(t, "the recorded origin", j.Origin.Placement, "Priority")
	if j.Origin.VCenter != "vc-east" {
		t.Fatalf("the origin is in %q", j.Origin.VCenter)
	}

	// 7. The undo command: back from where the job put the VM to where it was, every
	// field of the origin typed out as options, which the grammar reads back as they are
	// (a VM in a cluster goes back to its cluster and its host).
	undo := undoCommand(r, j)
	samePlacement(t, "the undo command", undo.Placement, j.Origin.Placement)
	const wantText = `migrate web-01 from vc-west to vc-east cluster=east-prod host=esx-e1 pool=apps datastore=east-ds-01 ` +
		`folder=apps/web network=app-pg:east-app-pg,vm-pg:"VM Network" disk=thick disk2=east-ds-02:thin:silver-policy policy=gold-policy`
	if got := undo.String(); got != wantText {
		t.Fatalf("the undo command reads\n %s\nwant\n %s", got, wantText)
	}
	typed, err := ParseCommand(wantText)
	if err != nil {
		t.Fatalf("the undo command, typed: %v", err)
	}
	samePlacement(t, "the undo command, typed", typed.Placement, j.Origin.Placement)
}
