package approvals

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/move"
)

// testSigner is a signer with a key derived from n, so tests make as many distinct keys
// as they need without randomness.
func testSigner(t *testing.T, n byte) *Signer {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	return NewSigner(fmt.Sprintf("UKEY%d", n), ed25519.NewKeyFromSeed(seed))
}

func keyringOf(signers ...*Signer) *Keyring {
	keys := map[string]ed25519.PublicKey{}
	for _, s := range signers {
		keys[s.KeyID()] = s.Public()
	}
	return NewKeyring(keys)
}

// approved submits and approves a request of vms through a Service signing with signer.
func approved(t *testing.T, signer *Signer, vms ...string) (*Service, *clock, *Request) {
	t.Helper()
	s, c := newService(t, Policy{Approvers: []string{"U0BOSS"}, ExpireAfter: time.Hour, RunWithin: 24 * time.Hour})
	s.WithSigner(signer)
	r := submit(t, s, "U0REQ", vms...)
	r.Placement = move.Placement{Cluster: "west-prod", Datastore: "ds-gold", DiskFormat: move.Thin}
	r, won, err := s.Approve(context.Background(), r.ID, "U0BOSS")
	if err != nil || !won {
		t.Fatalf("approve: won=%v err=%v", won, err)
	}
	return s, c, r
}

func TestApprovalIsSignedInTheWriteThatApproves(t *testing.T) {
	signer := testSigner(t, 1)
	s, c, r := approved(t, signer, "web-01", "web-02")
	stored, err := s.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := keyringOf(signer).OpenApproval(stored)
	if err != nil {
		t.Fatalf("the stored record's approval does not open: %v", err)
	}
	if a.RequestID != r.ID || len(a.VMs) != 2 || a.VMs[1] != (ApprovedVM{Job: JobID(r.ID, 1), VM: move.VM{Name: "web-02", Ref: "vm-41"}}) {
		t.Fatalf("approval = %+v", a)
	}
	if a.Source.UUID != "uuid-east" || a.Target.UUID != "uuid-west" || len(a.Approvers) != 1 || a.Approvers[0] != "U0BOSS" || a.Quorum != 1 {
		t.Fatalf("terms = %+v", a.Terms)
	}
	if !a.ApprovedAt.Equal(c.t) || !a.ExpiresAt.Equal(c.t.Add(24*time.Hour)) {
		t.Fatalf("approved %s, expires %s; want %s and a day later", a.ApprovedAt, a.ExpiresAt, c.t)
	}
}

func TestApprovalWithoutSignerOrIdentityIsRefusedAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	t.Run("no signer", func(t *testing.T) {
		s, _ := newService(t, Policy{Approvers: []string{"U0BOSS"}})
		s.WithSigner(nil)
		r := submit(t, s, "U0REQ", "web-01")
		if _, won, err := s.Approve(ctx, r.ID, "U0BOSS"); !errors.Is(err, ErrNoSigner) || won {
			t.Fatalf("won=%v err=%v, want ErrNoSigner", won, err)
		}
		if got, _ := s.Get(ctx, r.ID); got.State != StatePending || len(got.Approvals) != 0 {
			t.Fatalf("record changed: %s %+v", got.State, got.Approvals)
		}
	})
	t.Run("no VM identity", func(t *testing.T) {
		s, _ := newService(t, Policy{Approvers: []string{"U0BOSS"}})
		r := &Request{Direction: Migrate, VMs: []string{"web-01"}, SourceVC: "vc-east", TargetVC: "vc-west", Requester: "U0REQ"}
		if err := s.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Approve(ctx, r.ID, "U0BOSS"); !errors.Is(err, ErrNoIdentity) {
			t.Fatalf("err = %v, want ErrNoIdentity", err)
		}
		if got, _ := s.Get(ctx, r.ID); got.State != StatePending {
			t.Fatalf("state %s", got.State)
		}
	})
}

// Whoever can write the request store can set a record's state, approvers and even copy
// another request's signed approval into it: none of it opens.
func TestEditedRecordDoesNotOpen(t *testing.T) {
	signer := testSigner(t, 1)
	keys := keyringOf(signer)
	s, _, other := approved(t, signer, "db-01")
	pending := submit(t, s, "U0REQ", "web-01")
	tests := []struct {
		name string
		edit func(r *Request)
		want RefusalReason
	}{
		{"state set to approved", func(r *Request) { r.State = StateApproved }, ReasonUnsigned},
		{"another request's approval copied in", func(r *Request) { r.State, r.Approval = StateApproved, other.Approval }, ReasonMismatch},
		{"signed by a key nobody trusts", func(r *Request) {
			r.State = StateApproved
			if err := testSigner(t, 9).SealApproval(r, time.Hour, time.Now()); err != nil {
				t.Fatal(err)
			}
		}, ReasonUntrustedKey},
		{"a signed approval with one byte changed", func(r *Request) {
			a := *other.Approval
			a.Payload = append([]byte(nil), a.Payload...)
			a.Payload[len(a.Payload)-3] ^= 1
			r.ID, r.State, r.Approval = other.ID, StateApproved, &a
		}, ReasonBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pending.Clone()
			identified(r)
			tt.edit(r)
			_, err := keys.OpenApproval(r)
			if got := ReasonOf(err); got != tt.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	old, next := testSigner(t, 1), testSigner(t, 2)
	_, _, r := approved(t, old, "web-01")
	if _, err := keyringOf(old, next).OpenApproval(r); err != nil {
		t.Fatalf("an approval by the old key while both are trusted: %v", err)
	}
	if _, err := keyringOf(next).OpenApproval(r); ReasonOf(err) != ReasonUntrustedKey {
		t.Fatalf("after the old key is dropped: %v", err)
	}
}

// grantOf signs the grant of r's i-th job as the bot does when it queues the jobs.
func grantOf(t *testing.T, signer *Signer, keys *Keyring, r *Request, i int) *Grant {
	t.Helper()
	a, err := keys.OpenApproval(r)
	if err != nil {
		t.Fatal(err)
	}
	seals, err := signer.Grants(a)
	if err != nil {
		t.Fatal(err)
	}
	g, err := keys.OpenGrant(seals[i])
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestAdmit(t *testing.T) {
	signer := testSigner(t, 1)
	keys := keyringOf(signer)
	_, c, r := approved(t, signer, "web-01", "web-02")
	g := grantOf(t, signer, keys, r, 1)
	if g.VM.Name != "web-02" || g.VM.Job != r.Jobs[1].ID || g.RequestID != r.ID {
		t.Fatalf("grant %+v", g)
	}
	tests := []struct {
		name  string
		edit  func(r *Request, g *Grant) (*Request, time.Time)
		want  RefusalReason
		admit bool
	}{
		{"as approved", func(r *Request, g *Grant) (*Request, time.Time) { return r, c.t }, "", true},
		{"queued and running", func(r *Request, g *Grant) (*Request, time.Time) { r.State = StateRunning; return r, c.t }, "", true},
		{"no such request", func(r *Request, g *Grant) (*Request, time.Time) { return nil, c.t }, ReasonNoRequest, false},
		{"cancelled", func(r *Request, g *Grant) (*Request, time.Time) { r.State = StateCancelled; return r, c.t }, ReasonRequestState, false},
		{"still pending", func(r *Request, g *Grant) (*Request, time.Time) { r.State = StatePending; return r, c.t }, ReasonRequestState, false},
		{"after its time to start", func(r *Request, g *Grant) (*Request, time.Time) { return r, c.t.Add(24 * time.Hour) }, ReasonExpired, false},
		{"the job already ended", func(r *Request, g *Grant) (*Request, time.Time) {
			r.Jobs[1].State = StateSucceeded
			return r, c.t
		}, ReasonRequestState, false},
		{"record's approval removed", func(r *Request, g *Grant) (*Request, time.Time) { r.Approval = nil; return r, c.t }, ReasonUnsigned, false},
		{"grant for another VM than the approval lists", func(r *Request, g *Grant) (*Request, time.Time) {
			g.VM.Ref = "vm-99"
			return r, c.t
		}, ReasonNotListed, false},
		{"grant with other terms", func(r *Request, g *Grant) (*Request, time.Time) {
			g.Placement.Datastore = "ds-bronze"
			return r, c.t
		}, ReasonNotListed, false},
		{"record lists the job for another VM", func(r *Request, g *Grant) (*Request, time.Time) {
			r.Jobs[1].VM = "web-09"
			return r, c.t
		}, ReasonNotListed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gc := *g
			rec, now := tt.edit(r.Clone(), &gc)
			err := keys.Admit(&gc, rec, now)
			if tt.admit {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if got := ReasonOf(err); got != tt.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestCheckObjects(t *testing.T) {
	signer := testSigner(t, 1)
	keys := keyringOf(signer)
	_, _, r := approved(t, signer, "web-01")
	g := grantOf(t, signer, keys, r, 0)
	if err := g.CheckObjects("vm-40", "UUID-EAST", "uuid-west"); err != nil {
		t.Fatalf("the approved objects (UUID case aside): %v", err)
	}
	for name, args := range map[string][3]string{
		"VM replaced by another of its name":    {"vm-77", "uuid-east", "uuid-west"},
		"source name points at another vCenter": {"vm-40", "uuid-other", "uuid-west"},
		"target name points at another vCenter": {"vm-40", "uuid-east", "uuid-other"},
	} {
		if err := g.CheckObjects(args[0], args[1], args[2]); ReasonOf(err) != ReasonVMIdentity {
			t.Errorf("%s: %v", name, err)
		}
	}
}
