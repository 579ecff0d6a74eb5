package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeygenWritesAKeyOnlyItsOwnerReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.nk")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"keygen", "--out", path}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, mode %v; want 0600", err, st.Mode())
	}
	s, err := readSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), s.KeyID()) {
		t.Fatalf("keygen printed %q, not the public key %s", out.String(), s.KeyID())
	}
	seed, _ := os.ReadFile(path)
	if strings.Contains(out.String(), strings.TrimSpace(string(seed))) {
		t.Fatal("keygen printed the secret seed")
	}
	if err := run(t.Context(), []string{"keygen", "--out", path}, io.Discard, io.Discard); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	if again, _ := readSigningKey(path); again.KeyID() != s.KeyID() {
		t.Fatal("the key changed")
	}
}

func TestSigningKeyByRole(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	cfg := &Config{NATS: NATSConfig{DataDir: filepath.Join(dir, "data")}}

	// serve makes its own key once and keeps it across restarts.
	first, err := signingKey(cfg, roleAll, logger)
	if err != nil {
		t.Fatal(err)
	}
	second, err := signingKey(cfg, roleAll, logger)
	if err != nil || second.KeyID() != first.KeyID() {
		t.Fatalf("serve's key after a restart: %v %v, want %s", second, err, first.KeyID())
	}
	keys, err := trustedKeys(cfg, roleAll, first)
	if err != nil || len(keys.IDs()) != 1 || keys.IDs()[0] != first.KeyID() {
		t.Fatalf("serve trusts %v (%v), want its own key", keys.IDs(), err)
	}

	// A bot apart from its workers must be given a key; a worker must be told which to trust.
	if _, err := signingKey(cfg, roleBot, logger); err == nil || !strings.Contains(err.Error(), "xvmbot keygen") {
		t.Fatalf("bot without signing_key_file: %v", err)
	}
	if _, err := trustedKeys(cfg, roleWorker, nil); err == nil || !strings.Contains(err.Error(), "trusted_keys") {
		t.Fatalf("worker without trusted_keys: %v", err)
	}
	cfg.Approvals.TrustedKeys = []string{first.KeyID()}
	if keys, err := trustedKeys(cfg, roleWorker, nil); err != nil || keys.IDs()[0] != first.KeyID() {
		t.Fatalf("worker trusting serve's key: %v %v", keys, err)
	}

	// A file that is not a seed is refused without quoting it (it might be a secret).
	notKey := filepath.Join(dir, "not-a-key")
	if err := os.WriteFile(notKey, []byte("xoxb-some-token-pasted-here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Approvals.SigningKeyFile = notKey
	_, err = signingKey(cfg, roleBot, logger)
	if err == nil || strings.Contains(err.Error(), "xoxb-some") || !strings.Contains(err.Error(), "nkey seed") {
		t.Fatalf("a file that is not a key: %v", err)
	}
}

// `xvmbot check` says which key the bot signs with and warns when the workers of the
// same config would not trust it.
func TestCheckReportsTheApprovalKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bot.nk")
	pub, err := writeSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := writeSigningKey(filepath.Join(dir, "other.nk"))
	if err != nil {
		t.Fatal(err)
	}
	report := func(cfg *Config) string {
		var got string
		checkKeys(cfg, func(what string, err error, detail string) { got = fmt.Sprintf("%s %v %s", what, err, detail) })
		return got
	}
	cfg := &Config{Approvals: ApprovalsConfig{SigningKeyFile: path, TrustedKeys: []string{pub}}}
	if got := report(cfg); !strings.Contains(got, "signs with "+pub) || strings.Contains(got, "⚠") {
		t.Fatalf("matching keys: %s", got)
	}
	cfg.Approvals.TrustedKeys = []string{other}
	if got := report(cfg); !strings.Contains(got, "not the bot's key") {
		t.Fatalf("mismatched keys: %s", got)
	}
}
