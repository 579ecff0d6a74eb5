// Package approvaltest holds what tests of several packages need of approvals: signing
// keys made without randomness.
package approvaltest

import (
	"crypto/ed25519"
	"fmt"

	"github.com/xvmbot/xvmbot/approvals"
)

// Key returns a signing key derived from n and a keyring trusting it: tests make as many
// distinct keys as they need, the same in every run.
func Key(n byte) (*approvals.Signer, *approvals.Keyring) {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	s := approvals.NewSigner(fmt.Sprintf("UTESTKEY%d", n), ed25519.NewKeyFromSeed(seed))
	return s, approvals.NewKeyring(map[string]ed25519.PublicKey{s.KeyID(): s.Public()})
}
