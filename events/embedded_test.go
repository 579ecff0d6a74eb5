package events

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStartEmbeddedListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		listen     string
		wantURL    bool
		wantPrefix string
	}{
		{name: "in-process only", listen: ""},
		{name: "random port -1", listen: "127.0.0.1:-1", wantURL: true, wantPrefix: "nats://127.0.0.1:"},
		{name: "random port 0", listen: "127.0.0.1:0", wantURL: true, wantPrefix: "nats://127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t, 15*time.Second)
			e, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: t.TempDir(), Listen: tt.listen}, testLogger(t))
			if err != nil {
				t.Fatalf("StartEmbedded: %v", err)
			}
			defer e.Shutdown()
			url := e.ClientURL()
			if tt.wantURL != (url != "") || !strings.HasPrefix(url, tt.wantPrefix) {
				t.Fatalf("ClientURL = %q, want prefix %q (url expected: %v)", url, tt.wantPrefix, tt.wantURL)
			}
			if strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":0") || strings.HasSuffix(url, ":-1") {
				t.Fatalf("ClientURL = %q, want a random port actually bound", url)
			}
			nc, err := e.Connect()
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer nc.Close()
			if _, err := NewBus(ctx, nc, BusConfig{}, testLogger(t), nil); err != nil {
				t.Fatalf("NewBus over %q: %v", tt.listen, err)
			}
		})
	}
}

func TestStartEmbeddedLocksDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testCtx(t, 20*time.Second)
	first, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir}, testLogger(t))
	if err != nil {
		t.Fatalf("first StartEmbedded: %v", err)
	}

	_, err = StartEmbedded(ctx, EmbeddedConfig{DataDir: dir}, testLogger(t))
	if !errors.Is(err, ErrDataDirLocked) {
		first.Shutdown()
		t.Fatalf("second StartEmbedded on the same dir: err = %v, want ErrDataDirLocked", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the data dir %s", err, dir)
	}

	first.Shutdown()
	again, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir}, testLogger(t))
	if err != nil {
		t.Fatalf("StartEmbedded after Shutdown released the lock: %v", err)
	}
	again.Shutdown()
}

func TestStartEmbeddedBadListen(t *testing.T) {
	t.Parallel()
	_, err := StartEmbedded(context.Background(), EmbeddedConfig{DataDir: t.TempDir(), Listen: "localhost"}, testLogger(t))
	if err == nil {
		t.Fatal("StartEmbedded with listen address without port: want error")
	}
}
