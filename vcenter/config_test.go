package vcenter

import (
	"strings"
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
		got, err := normalizeThumbprint(in)
		if err != nil || got != want {
			t.Errorf("normalizeThumbprint(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := normalizeThumbprint("zz:zz"); err == nil {
		t.Error("accepted non-hex")
	}
}
