package main

import (
	"crypto/ed25519"
	"fmt"
	"os"

	"github.com/nats-io/nkeys"

	"github.com/xvmbot/xvmbot/approvals"
)

// ephemeralKey is an approval signing key for one run of the in-process stack, and the
// keyring its worker checks jobs with.
func ephemeralKey() (*approvals.Signer, *approvals.Keyring, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, err
	}
	s := approvals.NewSigner("xvmload", priv)
	return s, approvals.NewKeyring(map[string]ed25519.PublicKey{"xvmload": pub}), nil
}

// newSigningKeyFile writes a new approval signing key (an nkey seed, as `xvmbot keygen`
// writes it) for an xvmbot process this tool starts, and returns it as a Signer.
func newSigningKeyFile(path string) (*approvals.Signer, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	_, raw, err := nkeys.DecodeSeed(seed)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	return approvals.NewSigner(pub, ed25519.NewKeyFromSeed(raw)), nil
}
