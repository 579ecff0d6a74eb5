package system

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/config"
)

// The approval signing key is an nkey (an ed25519 key in NATS's text encoding): the seed
// ("SU…") is the bot's secret, the public key ("U…") is what workers trust. Only the bot
// holds the seed; a worker, or anyone who can write to NATS, cannot make an approval.

// DefaultSigningKeyName is where `serve` keeps a signing key it generated, in nats.data_dir.
const DefaultSigningKeyName = "approval-signing.nk"

// signingKey returns the bot's approval signing key: from approvals.signing_key_file, or
// for `serve` (bot and worker in one process) one generated on first start in
// nats.data_dir. A bot that runs apart from its workers must be given one: its workers
// must be told its public key, which a key made on the spot cannot be.
func signingKey(cfg *config.Config, r Role, logger *slog.Logger) (*approvals.Signer, error) {
	path := cfg.Approvals.SigningKeyFile
	if path == "" {
		if r != RoleServe {
			return nil, errors.New("approvals.signing_key_file is required for `xvmbot bot`: create a key with " +
				"`xvmbot keygen --out FILE`, give the bot the file, and list the public key it prints in every worker's approvals.trusted_keys")
		}
		path = filepath.Join(cfg.NATS.DataDir, DefaultSigningKeyName)
		created, err := ensureSigningKey(path)
		if err != nil {
			return nil, fmt.Errorf("approval signing key: %w", err)
		}
		if created {
			logger.Info("generated an approval signing key", "path", path)
		}
	}
	s, err := ReadSigningKey(path)
	if err != nil {
		return nil, err
	}
	logger.Info("approvals are signed with key", "public_key", s.KeyID(),
		"hint", "workers in other processes must list it in approvals.trusted_keys")
	return s, nil
}

// ReadSigningKey reads an approval signing key: an nkey seed file as `xvmbot keygen` writes it.
func ReadSigningKey(path string) (*approvals.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("approvals.signing_key_file: %w", err)
	}
	seed := []byte(strings.TrimSpace(string(b)))
	prefix, raw, err := nkeys.DecodeSeed(seed)
	if err != nil || prefix != nkeys.PrefixByteUser {
		// (Never the content in the error: it is a secret.)
		return nil, fmt.Errorf("approvals.signing_key_file %s does not hold a user nkey seed (SU…); create one with `xvmbot keygen --out FILE`", path)
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("approvals.signing_key_file %s: %w", path, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("approvals.signing_key_file %s: %w", path, err)
	}
	return approvals.NewSigner(pub, ed25519.NewKeyFromSeed(raw)), nil
}

// ensureSigningKey writes a new key to path unless one is there; it reports whether it did.
func ensureSigningKey(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return false, err
	}
	if _, err := WriteSigningKey(path); err != nil {
		return false, err
	}
	return true, nil
}

// WriteSigningKey creates a new key in a new file (never over an existing one), readable by
// its owner only, and returns its public key.
func WriteSigningKey(path string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return pub, nil
}

// trustedKeys is the keyring a process checks approvals with: the keys in
// approvals.trusted_keys, and the process's own signing key if it signs. A worker apart
// from the bot must be given at least one.
func trustedKeys(cfg *config.Config, r Role, own *approvals.Signer) (*approvals.Keyring, error) {
	keys := map[string]ed25519.PublicKey{}
	for _, k := range cfg.Approvals.TrustedKeys {
		raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(k))
		if err != nil {
			return nil, fmt.Errorf("approvals.trusted_keys: %q is not a user nkey public key (U…)", k)
		}
		keys[k] = ed25519.PublicKey(raw)
	}
	if own != nil {
		keys[own.KeyID()] = own.Public()
	}
	if len(keys) == 0 && r == RoleWorker {
		return nil, errors.New("approvals.trusted_keys is required for `xvmbot worker`: list the public key of the bot's " +
			"approval signing key (the bot logs it at start; `xvmbot keygen` printed it). Without it every job is refused")
	}
	return approvals.NewKeyring(keys), nil
}
