//go:build pprof

package system

import (
	"net/http"
	"net/http/pprof"
)

// A binary built with -tags pprof (cmd/xvmload's memory scenario builds one to take heap
// profiles of serve) also serves Go's profiles on http.ops_listen. The shipped binary
// does not: a profile shows the process's memory to whoever can reach the listener.
func init() {
	debugHandlers = func(mux *http.ServeMux) {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	}
}
