package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `xvmbot COMMAND --help` shows that command's flags only, on stdout, and succeeds; a
// mistake shows the same help on stderr and fails; a flag another command reads is still
// accepted (scripts written before keep working) with a note.
func TestCommandHelp(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		wantErr        bool
		stdout, stderr []string // each must appear
		notStdout      []string
	}{
		{args: []string{"check", "--help"}, stdout: []string{"Usage: xvmbot check --config FILE", "--config", "--only", "--only vcenters needs no Slack"}, notStdout: []string{"--verbose", "--out", "--port"}},
		{args: []string{"sim", "-h"}, stdout: []string{"Usage: xvmbot sim", "--port", "--dir"}, notStdout: []string{"--config"}},
		{args: []string{"demo", "--help"}, stdout: []string{"--verbose"}, notStdout: []string{"--config"}},
		{args: []string{"version", "--help"}, stdout: []string{"Usage: xvmbot version"}, notStdout: []string{"Flags:"}},
		{args: []string{"help", "keygen"}, stdout: []string{"Usage: xvmbot keygen --out FILE", "--out"}, notStdout: []string{"--config"}},
		{args: []string{"--help"}, stdout: []string{"Usage:", "xvmbot COMMAND --help"}},
		{args: []string{"check", "--nope"}, wantErr: true, stderr: []string{"flag provided but not defined: -nope", "Usage: xvmbot check"}},
		{args: []string{"check", "extra"}, wantErr: true, stderr: []string{"Usage: xvmbot check"}},
		{args: []string{"version", "--config", "x.yaml"}, stdout: []string{"xvmbot"}, stderr: []string{"note: --config has no effect on version"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v\nstdout:\n%s\nstderr:\n%s", err, tt.wantErr, stdout.String(), stderr.String())
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			for _, w := range tt.notStdout {
				if strings.Contains(stdout.String(), w) {
					t.Errorf("stdout shows %q, a flag this command does not read:\n%s", w, stdout.String())
				}
			}
		})
	}
}

// A restarted `xvmbot sim --port N` serves the same URLs, thumbprints and passwords: the
// config a person pasted once keeps working.
func TestSimKeepsPortAndCertificate(t *testing.T) {
	dir := t.TempDir()
	port := freePortPair(t)
	start := func() (block, pw string) {
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- runSim(ctx, &out, dir, port) }()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "# Try:") && time.Now().Before(deadline) {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("sim ended: %v\n%s", err, out.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		text := out.String()
		b, _ := os.ReadFile(filepath.Join(dir, "vc-west.password"))
		return text[strings.Index(text, "vcenters:"):strings.Index(text, "# Try:")], string(b)
	}
	first, pw1 := start()
	for _, want := range []string{fmt.Sprintf("https://127.0.0.1:%d/sdk", port), fmt.Sprintf("https://127.0.0.1:%d/sdk", port+1), "thumbprint: \""} {
		if !strings.Contains(first, want) {
			t.Fatalf("sim --port %d printed no %q:\n%s", port, want, first)
		}
	}
	second, pw2 := start()
	if first != second || pw1 != pw2 || pw1 == "" {
		t.Fatalf("a restarted sim changed its config:\nfirst:\n%s\nsecond:\n%s\n(password kept: %v)", first, second, pw1 == pw2)
	}
	if saved, _ := os.ReadFile(filepath.Join(dir, "vcenters.yaml")); string(saved) != first {
		t.Errorf("vcenters.yaml = %q, want the printed block", saved)
	}
}

// freePortPair finds a loopback port p with p+1 free too.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 20 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.Addr().(*net.TCPAddr).Port
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		_ = a.Close()
		if err == nil {
			_ = b.Close()
			return p
		}
	}
	t.Fatal("no two free loopback ports in a row")
	return 0
}
