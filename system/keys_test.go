package system

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/config"
)

// serve makes and keeps its own key; a bot apart from its workers must be given one, and
// a worker told which to trust.
func TestSigningKeyByRole(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	cfg := &config.Config{NATS: config.NATSConfig{DataDir: filepath.Join(dir, "data")}}

	// serve makes its own key once and keeps it across restarts.
	first, err := signingKey(cfg, RoleServe, logger)
	if err != nil {
		t.Fatal(err)
	}
	second, err := signingKey(cfg, RoleServe, logger)
	if err != nil || second.KeyID() != first.KeyID() {
		t.Fatalf("serve's key after a restart: %v %v, want %s", second, err, first.KeyID())
	}
	keys, err := trustedKeys(cfg, RoleServe, first)
	if err != nil || len(keys.IDs()) != 1 || keys.IDs()[0] != first.KeyID() {
		t.Fatalf("serve trusts %v (%v), want its own key", keys.IDs(), err)
	}

	// A bot apart from its workers must be given a key; a worker must be told which to trust.
	if _, err := signingKey(cfg, RoleBot, logger); err == nil || !strings.Contains(err.Error(), "xvmbot keygen") {
		t.Fatalf("bot without signing_key_file: %v", err)
	}
	if _, err := trustedKeys(cfg, RoleWorker, nil); err == nil || !strings.Contains(err.Error(), "trusted_keys") {
		t.Fatalf("worker without trusted_keys: %v", err)
	}
	cfg.Approvals.TrustedKeys = []string{first.KeyID()}
	if keys, err := trustedKeys(cfg, RoleWorker, nil); err != nil || keys.IDs()[0] != first.KeyID() {
		t.Fatalf("worker trusting serve's key: %v %v", keys, err)
	}

	// A file that is not a seed is refused without quoting it (it might be a secret).
	notKey := filepath.Join(dir, "not-a-key")
	if err := os.WriteFile(notKey, []byte("xoxb-some-token-pasted-here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Approvals.SigningKeyFile = notKey
	_, err = signingKey(cfg, RoleBot, logger)
	if err == nil || strings.Contains(err.Error(), "xoxb-some") || !strings.Contains(err.Error(), "nkey seed") {
		t.Fatalf("a file that is not a key: %v", err)
	}
}
