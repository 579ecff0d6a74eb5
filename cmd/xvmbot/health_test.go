package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// `xvmbot health` is what a container runtime runs to know whether xvmbot is healthy: it
// must succeed only on 200 OK and fail, saying why, on anything else or no answer.
func TestHealthCommand(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			_, _ = w.Write([]byte("ok\n"))
		case "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("nats: not connected\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	for _, tc := range []struct {
		name, url string
		ok        bool
		say       string
	}{
		{"healthy", srv.URL + "/healthz", true, "ok"},
		{"not ready", srv.URL + "/readyz", false, "503 Service Unavailable: nats: not connected"},
		{"nobody listening", closed, false, "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"health", "--url", tc.url, "--timeout", "5s"}, &out, &errOut)
			if (err == nil) != tc.ok {
				t.Fatalf("xvmbot health --url %s: err = %v, want success %v", tc.url, err, tc.ok)
			}
			said := out.String()
			if err != nil {
				said = err.Error()
			}
			if !strings.Contains(said, tc.say) {
				t.Errorf("xvmbot health says %q, want it to say %q", said, tc.say)
			}
		})
	}
}

// `xvmbot version` prints the version, the commit, the build date and whether the tree was
// dirty, as the linker stamped them.
func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"xvmbot ", "revision ", "built "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("xvmbot version printed %q, want %q in it", out.String(), want)
		}
	}
}
