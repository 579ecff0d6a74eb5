package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readiness is one named dependency /readyz reports on.
type readiness struct {
	name  string
	check func(ctx context.Context) error
	// critical dependencies make /readyz fail; the others only show as degraded.
	critical bool
}

// opsHandler serves /metrics, /healthz and /readyz next to whatever app serves.
func opsHandler(reg *prometheus.Registry, app http.Handler, checks []readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		status := map[string]string{}
		ready := true
		for _, c := range checks {
			if err := c.check(ctx); err != nil {
				if c.critical {
					ready = false
					status[c.name] = "down: " + err.Error()
				} else {
					status[c.name] = "degraded: " + err.Error()
				}
				continue
			}
			status[c.name] = "ok"
		}
		body := struct {
			Ready  bool              `json:"ready"`
			Checks map[string]string `json:"checks"`
		}{ready, status}
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	})
	if app != nil {
		mux.Handle("/slack/", app)
	}
	return mux
}
