package approvals

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"
)

// The fixtures under testdata were written by the types as they were before the move's
// placement, networks and disks became one type: a request record as the store keeps it
// (with a signed approval) and one job's signed grant. Records written then are read now.

// sameDocument reports whether two JSON texts hold the same document: the same names and
// values, whatever the order of an object's names.
func sameDocument(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

func TestStoredRequestReadsAndWritesAsBefore(t *testing.T) {
	t.Parallel()
	old := readFixture(t, "request.json")
	var r Request
	if err := json.Unmarshal(old, &r); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	if !sameDocument(t, old, again) {
		t.Errorf("a stored request is written back otherwise:\n old %s\n new %s", old, again)
	}
	// The placement the approvers signed is written name for name as before: it is part
	// of what Terms encodes.
	var oldDoc, newDoc struct {
		Placement json.RawMessage `json:"placement"`
	}
	_ = json.Unmarshal(old, &oldDoc)
	_ = json.Unmarshal(again, &newDoc)
	if !bytes.Equal(oldDoc.Placement, newDoc.Placement) {
		t.Errorf("the placement's JSON changed:\n old %s\n new %s", oldDoc.Placement, newDoc.Placement)
	}
	if o := r.Jobs[0].Origin; o == nil || o.VCenter != "vc-east" || o.Disks[0].Datastore != "ds-east-2" || len(o.Networks) != 1 {
		t.Errorf("the first job's origin was not read: %+v", o)
	}
}

// fixtureKeys trusts the key the fixtures were signed with (seed of 32 zero bytes).
func fixtureKeys() (*Signer, *Keyring) {
	s := NewSigner("UFIXTUREKEY", ed25519.NewKeyFromSeed(make([]byte, 32)))
	return s, NewKeyring(map[string]ed25519.PublicKey{s.KeyID(): s.Public()})
}

// An approval signed before, and the grant of one of its jobs, still verify and admit
// their job; and signing the same approval now writes the very same bytes, so the
// canonical form of what is signed did not change.
func TestApprovalSignedBeforeStillHolds(t *testing.T) {
	t.Parallel()
	signer, keys := fixtureKeys()
	var r Request
	if err := json.Unmarshal(readFixture(t, "request.json"), &r); err != nil {
		t.Fatal(err)
	}
	var seal Seal
	if err := json.Unmarshal(readFixture(t, "grant.json"), &seal); err != nil {
		t.Fatal(err)
	}
	a, err := keys.OpenApproval(&r)
	if err != nil {
		t.Fatalf("the stored approval no longer verifies: %v", err)
	}
	g, err := keys.OpenGrant(&seal)
	if err != nil {
		t.Fatalf("the stored grant no longer verifies: %v", err)
	}
	if err := keys.Admit(g, &r, a.ApprovedAt.Add(time.Hour)); err != nil {
		t.Fatalf("the stored grant no longer admits its job: %v", err)
	}
	if g.Placement.Disks[0].DiskFormat != "eager" || g.Placement.Networks[1].Target != "all-pg" || g.Placement.Priority != "high" {
		t.Errorf("the grant's placement was not read whole: %+v", g.Placement)
	}

	resealed := r.Clone()
	if err := signer.SealApproval(resealed, a.ExpiresAt.Sub(a.ApprovedAt), a.ApprovedAt); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resealed.Approval.Payload, r.Approval.Payload) || !bytes.Equal(resealed.Approval.Sig, r.Approval.Sig) {
		t.Errorf("the same approval is signed otherwise now:\n old %s\n new %s", r.Approval.Payload, resealed.Approval.Payload)
	}
	grants, err := signer.Grants(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(grants[1].Payload, seal.Payload) {
		t.Errorf("the same grant is signed otherwise now:\n old %s\n new %s", seal.Payload, grants[1].Payload)
	}
}
