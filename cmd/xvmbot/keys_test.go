package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/system"
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
	s, err := system.ReadSigningKey(path)
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
	if again, _ := system.ReadSigningKey(path); again.KeyID() != s.KeyID() {
		t.Fatal("the key changed")
	}
}

// `xvmbot check` says which key the bot signs with and warns when the workers of the
// same config would not trust it.
func TestCheckReportsTheApprovalKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bot.nk")
	pub, err := system.WriteSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := system.WriteSigningKey(filepath.Join(dir, "other.nk"))
	if err != nil {
		t.Fatal(err)
	}
	report := func(cfg *config.Config) string {
		var got string
		checkKeys(cfg, func(what string, err error, detail string) { got = fmt.Sprintf("%s %v %s", what, err, detail) })
		return got
	}
	cfg := &config.Config{Approvals: config.ApprovalsConfig{SigningKeyFile: path, TrustedKeys: []string{pub}}}
	if got := report(cfg); !strings.Contains(got, "signs with "+pub) || strings.Contains(got, "⚠") {
		t.Fatalf("matching keys: %s", got)
	}
	cfg.Approvals.TrustedKeys = []string{other}
	if got := report(cfg); !strings.Contains(got, "not the bot's key") {
		t.Fatalf("mismatched keys: %s", got)
	}
}
