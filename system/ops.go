package system

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// opsHandler serves exactly /metrics, /healthz and /readyz, on http.ops_listen. /readyz
// answers from what the readiness refresher last saw: a probe reaches no dependency.
func opsHandler(reg *prometheus.Registry, ready *readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rep := ready.report()
		w.Header().Set("Content-Type", "application/json")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
	if debugHandlers != nil {
		debugHandlers(mux)
	}
	return mux
}

// debugHandlers adds Go's profiling endpoints to the ops listener in a binary built with
// -tags pprof (pprof.go); nil in the shipped binary.
var debugHandlers func(*http.ServeMux)
