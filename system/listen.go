package system

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// listening is one HTTP server and the listener it serves.
type listening struct {
	ln  net.Listener
	srv *http.Server
}

// listen opens addr for h; key names the config key, for the error.
func listen(key, addr string, h http.Handler) (*listening, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s: %w", key, addr, err)
	}
	return &listening{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// serve runs the server in g until ctx ends, then shuts it down within a bounded time.
func (l *listening) serve(ctx context.Context, g *errgroup.Group, name string) {
	g.Go(func() error {
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s http server: %w", name, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return l.srv.Shutdown(sctx)
	})
}
