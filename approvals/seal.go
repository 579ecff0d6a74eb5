package approvals

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Seal is a statement signed by the bot: the exact bytes that were signed, the id of the
// key that signed them and the signature. The bytes are kept as signed (not re-encoded),
// so a reader verifies what the signer wrote, whatever version of the types each has.
type Seal struct {
	Key     string `json:"key"`     // the signer's public key, as configured (an nkey, "U…")
	Payload []byte `json:"payload"` // the statement, JSON
	Sig     []byte `json:"sig"`     // ed25519 signature of Payload
}

// Signer signs statements with the bot's private key. Only the bot holds one: whoever can
// write to the bus or the request store cannot make an approval without it.
type Signer struct {
	id  string
	key ed25519.PrivateKey
}

// NewSigner returns a Signer; id names the key's public half, as workers list it.
func NewSigner(id string, key ed25519.PrivateKey) *Signer { return &Signer{id: id, key: key} }

// KeyID is the id of the public half of the signing key.
func (s *Signer) KeyID() string { return s.id }

// Public returns the public half of the signing key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// seal signs the JSON encoding of v.
func (s *Signer) seal(v any) (*Seal, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode statement: %w", err)
	}
	return &Seal{Key: s.id, Payload: payload, Sig: ed25519.Sign(s.key, payload)}, nil
}

// Keyring holds the public keys whose seals are trusted. More than one may be: during a
// key rotation workers trust the old and the new key until every approval made with the
// old one has ended.
type Keyring struct {
	keys map[string]ed25519.PublicKey
}

// NewKeyring returns a Keyring trusting keys (key id → public key).
func NewKeyring(keys map[string]ed25519.PublicKey) *Keyring {
	k := &Keyring{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for id, pub := range keys {
		k.keys[id] = pub
	}
	return k
}

// IDs lists the trusted key ids, sorted. A nil Keyring trusts nothing.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	out := make([]string, 0, len(k.keys))
	for id := range k.keys {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// open verifies s and decodes its statement into v.
func (k *Keyring) open(s *Seal, v any) error {
	if s == nil || len(s.Payload) == 0 || len(s.Sig) == 0 {
		return refuse(ReasonUnsigned, "it carries no signed approval")
	}
	var pub ed25519.PublicKey
	ok := false
	if k != nil {
		pub, ok = k.keys[s.Key]
	}
	if !ok {
		return refuse(ReasonUntrustedKey, fmt.Sprintf("it is signed with key %s, which is not among the trusted keys (%s)",
			short(s.Key), strings.Join(shortAll(k.IDs()), ", ")))
	}
	if !ed25519.Verify(pub, s.Payload, s.Sig) {
		return refuse(ReasonBadSignature, "its signature does not match its content (it was altered after signing, or forged)")
	}
	if err := json.Unmarshal(s.Payload, v); err != nil {
		return refuse(ReasonBadSignature, "its signed statement cannot be read: "+err.Error())
	}
	return nil
}

// short is a key id cut to what a person compares: its first 8 characters.
func short(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

func shortAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = short(id)
	}
	return out
}

// RefusalReason says why a job or an approval was not accepted. The values are metric
// label values: a short, fixed set.
type RefusalReason string

// The reasons a job is refused.
const (
	ReasonUnsigned     RefusalReason = "unsigned"      // no signed approval at all
	ReasonUntrustedKey RefusalReason = "untrusted_key" // signed, by a key nobody trusts
	ReasonBadSignature RefusalReason = "bad_signature" // the signature does not verify
	ReasonMismatch     RefusalReason = "mismatch"      // the job says other than its approval
	ReasonExpired      RefusalReason = "expired"       // the approval's time to start is over
	ReasonNoRequest    RefusalReason = "unknown_request"
	ReasonRequestState RefusalReason = "request_state" // the request is not approved, or ended
	ReasonNotListed    RefusalReason = "not_listed"    // the request does not list this job as approved
	ReasonVMIdentity   RefusalReason = "vm_identity"   // the VM (or a vCenter) is not the approved object
)

// Reasons lists every RefusalReason, for initialising metrics.
func Reasons() []RefusalReason {
	return []RefusalReason{ReasonUnsigned, ReasonUntrustedKey, ReasonBadSignature, ReasonMismatch, ReasonExpired,
		ReasonNoRequest, ReasonRequestState, ReasonNotListed, ReasonVMIdentity}
}

// Authentic reports whether a job refused for this reason may still be the real job of its
// request (its approval expired, its VM was replaced…), as opposed to one nobody approved.
func (r RefusalReason) Authentic() bool {
	return r == ReasonExpired || r == ReasonVMIdentity || r == ReasonRequestState
}

// ErrRefused is wrapped by every Refusal.
var ErrRefused = errors.New("refused")

// Refusal says why a job may not run (or an approval could not be verified).
type Refusal struct {
	Reason RefusalReason
	Detail string // in words, for the log and the request's thread
}

func refuse(reason RefusalReason, detail string) *Refusal {
	return &Refusal{Reason: reason, Detail: detail}
}

// Refuse returns a Refusal for a check made outside this package (a job's fields against
// its grant).
func Refuse(reason RefusalReason, detail string) *Refusal { return refuse(reason, detail) }

func (e *Refusal) Error() string { return "refused (" + string(e.Reason) + "): " + e.Detail }

// Unwrap makes errors.Is(err, ErrRefused) hold.
func (e *Refusal) Unwrap() error { return ErrRefused }

// ReasonOf returns the reason of a Refusal in err's chain, or "".
func ReasonOf(err error) RefusalReason {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}
