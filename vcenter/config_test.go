package vcenter

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/secret"
)

func TestNewManagerValidates(t *testing.T) {
	const tp = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	ok := func(name string, home bool) Config {
		return Config{Name: name, URL: "https://" + name + ".example.com/sdk", Username: "svc", Password: secret.Secret("pw"),
			Thumbprint: tp, Home: home}
	}
	tests := []struct {
		name    string
		cfgs    []Config
		wantErr string
		home    string
	}{
		{"one vcenter is home", []Config{ok("vc-east", false)}, "", "vc-east"},
		{"two with one home", []Config{ok("vc-east", true), ok("vc-west", false)}, "", "vc-east"},
		{"none", nil, "no vcenters", ""},
		{"two without home", []Config{ok("vc-east", false), ok("vc-west", false)}, "none is marked home", ""},
		{"two homes", []Config{ok("vc-east", true), ok("vc-west", true)}, "more than one home", ""},
		{"duplicate", []Config{ok("vc-east", true), ok("vc-east", false)}, "configured twice", ""},
		{"no thumbprint", []Config{func() Config { c := ok("vc-east", true); c.Thumbprint = ""; return c }()}, "thumbprint is required", ""},
		{"insecure without thumbprint", []Config{func() Config { c := ok("vc-east", true); c.Thumbprint = ""; c.Insecure = true; return c }()}, "", "vc-east"},
		{"bad thumbprint", []Config{func() Config { c := ok("vc-east", true); c.Thumbprint = "AB:CD"; return c }()}, "neither SHA-1", ""},
		{"http url", []Config{func() Config { c := ok("vc-east", true); c.URL = "http://vc/sdk"; return c }()}, "must use https", ""},
		{"credentials in url", []Config{func() Config { c := ok("vc-east", true); c.URL = "https://u:p@vc/sdk"; return c }()}, "must not carry credentials", ""},
		{"no password", []Config{func() Config { c := ok("vc-east", true); c.Password = ""; return c }()}, "password is empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewManager(tt.cfgs, nil, prometheus.NewRegistry())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pw") && !strings.Contains(tt.wantErr, "pw") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Home() != tt.home || len(m.Names()) != len(tt.cfgs) {
				t.Errorf("home %q names %v", m.Home(), m.Names())
			}
		})
	}
}

func TestNormalizeThumbprint(t *testing.T) {
	const want = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	for _, in := range []string{want, strings.ToLower(want), strings.ReplaceAll(want, ":", ""), "SHA1 Fingerprint=" + want, " " + want + " "} {
		got, err := NormalizeThumbprint(in)
		if err != nil || got != want {
			t.Errorf("NormalizeThumbprint(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := NormalizeThumbprint("zz:zz"); err == nil {
		t.Error("accepted non-hex")
	}
}

// What xvmbot says at start-up about a vCenter's certificate is what the session does
// (session.go pins a configured thumbprint whatever insecure says): with a thumbprint
// the certificate is pinned and insecure: true has no effect; without one, nothing is
// verified. Info reports the same to /xvm vcenters.
func TestCertCheckWording(t *testing.T) {
	const tp = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	cfg := func(name, thumbprint string, insecure bool) Config {
		// Port 1 on loopback: nobody answers, so Info fails at once, from configuration alone.
		return Config{Name: name, URL: "https://127.0.0.1:1/sdk", Username: "svc", Password: secret.Secret("pw"),
			Thumbprint: thumbprint, Insecure: insecure, Home: name == "vc-pinned"}
	}
	cfgs := []Config{cfg("vc-pinned", tp, false), cfg("vc-both", tp, true), cfg("vc-open", "", true)}
	want := map[string]CertCheck{"vc-pinned": CertPinned, "vc-both": CertPinnedInsecureIgnored, "vc-open": CertUnverified}
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	m, err := NewManager(cfgs, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs {
		if got := c.CertCheck(); got != want[c.Name] {
			t.Errorf("%s: CertCheck = %v, want %v", c.Name, got, want[c.Name])
		}
		if ep, _ := m.Info(context.Background(), c.Name); ep.CertCheck != want[c.Name] {
			t.Errorf("%s: Info reports CertCheck %v to /xvm vcenters, want %v", c.Name, ep.CertCheck, want[c.Name])
		}
	}
	warned := map[string]string{}
	for _, r := range logRecords(t, &logs, &mu) {
		if r["level"] == "WARN" {
			warned[r["vcenter"].(string)], _ = r["msg"].(string)
		}
	}
	if msg, ok := warned["vc-pinned"]; ok {
		t.Errorf("a pinned vCenter is warned about: %q", msg)
	}
	if msg := warned["vc-both"]; !strings.Contains(msg, "certificate pinned to the configured thumbprint") ||
		!strings.Contains(msg, "insecure: true has no effect") || strings.Contains(msg, "NOT verified") {
		t.Errorf("insecure: true with a thumbprint is logged as %q; want: pinned, insecure has no effect", msg)
	}
	if msg := warned["vc-open"]; !strings.Contains(msg, "INSECURE: certificate NOT verified (insecure: true and no thumbprint)") {
		t.Errorf("insecure: true without a thumbprint is logged as %q; want: NOT verified", msg)
	}
}
