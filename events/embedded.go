package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofrs/flock"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults for the embedded server's JetStream limits. The server's own defaults are 75%
// of RAM and of free disk, far more than a job bus needs and enough to starve vCenter
// tooling that shares the machine.
const (
	DefaultMaxStore  int64 = 1 << 30  // 1 GiB of file storage
	DefaultMaxMemory int64 = 64 << 20 // 64 MiB; xvmbot keeps only its concurrency slots (a few KB) in memory storage

	lockFileName    = "xvmbot.lock"
	readyTimeout    = 10 * time.Second
	shutdownTimeout = 10 * time.Second
)

// ErrDataDirLocked is returned by StartEmbedded when another process (or another
// Embedded in this process) already serves the same data directory.
var ErrDataDirLocked = errors.New("nats data dir is in use by another xvmbot process")

// EmbeddedConfig configures the NATS server xvmbot runs in its own process for
// one-machine installs.
type EmbeddedConfig struct {
	// DataDir holds the JetStream store and the lock file; created if missing.
	DataDir string
	// Listen is "" for an in-process server that opens no port (only Embedded.Connect
	// reaches it), or host:port to let other processes (nats CLI, a separate worker) in.
	// Port 0 or -1 picks a free port. A listening server always requires credentials:
	// the nkey seeds in SeedFile(DataDir, role), created on first start; there is no way
	// to turn that off, on loopback or beyond.
	Listen string
	// MaxStore and MaxMemory cap JetStream storage; zero means DefaultMaxStore and
	// DefaultMaxMemory.
	MaxStore  int64
	MaxMemory int64
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv     *server.Server
	lock    *flock.Flock
	logger  *slog.Logger
	inProc  bool
	dataDir string
	auth    *embeddedAuth // nil for an in-process-only server: nothing outside can reach it
}

// StartEmbedded starts a JetStream-enabled NATS server on cfg.DataDir and waits until it
// accepts connections. It locks the data directory first: nats-server itself does not,
// and two servers writing one store corrupt it silently.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, logger *slog.Logger) (*Embedded, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "events")
	if cfg.DataDir == "" {
		return nil, errors.New("start embedded nats: data dir is required")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: data dir %q: %w", cfg.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("start embedded nats: create data dir %s: %w", dir, err)
	}

	lockPath := filepath.Join(dir, lockFileName)
	lock := flock.New(lockPath)
	locked, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: lock %s: %w", lockPath, err)
	}
	if !locked {
		return nil, fmt.Errorf("start embedded nats: %w: %s is locked; stop the other process or give this one its own nats.data_dir", ErrDataDirLocked, dir)
	}

	var auth *embeddedAuth
	if cfg.Listen != "" {
		if auth, err = newEmbeddedAuth(dir); err != nil {
			_ = lock.Unlock()
			return nil, fmt.Errorf("start embedded nats: %w", err)
		}
	}
	opts, err := serverOptions(cfg, dir, auth)
	if err != nil {
		_ = lock.Unlock()
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		_ = lock.Unlock()
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	srv.SetLoggerV2(serverLogger{logger.With("subsystem", "nats-server")}, false, false, false)
	srv.Start() // does not block; the accept loop runs on the server's own goroutines

	if err := waitReady(ctx, srv); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		_ = lock.Unlock()
		return nil, fmt.Errorf("start embedded nats on %s: %w", dir, err)
	}
	e := &Embedded{srv: srv, lock: lock, logger: logger, inProc: opts.DontListen, dataDir: dir, auth: auth}
	logger.Info("embedded nats started", "data_dir", dir, "client_url", e.ClientURL(),
		"max_store", opts.JetStreamMaxStore, "max_memory", opts.JetStreamMaxMemory)
	if auth != nil {
		logger.Info("embedded nats requires credentials; other processes connect with these nkey seeds",
			"bot_nkey_file", SeedFile(dir, RoleBot), "worker_nkey_file", SeedFile(dir, RoleWorker))
		if !isLoopback(opts.Host) {
			logger.Warn("embedded nats listens beyond this machine without TLS: credentials are checked (nkeys never cross the wire), but jobs and records travel in clear; prefer loopback, or an external NATS with TLS",
				"listen", cfg.Listen)
		}
	}
	return e, nil
}

func serverOptions(cfg EmbeddedConfig, dir string, auth *embeddedAuth) (*server.Options, error) {
	opts := &server.Options{
		ServerName:         "xvmbot",
		JetStream:          true,
		StoreDir:           dir,
		NoSigs:             true, // signals belong to main, not to a library
		SyncAlways:         true, // an approved job must survive a power cut; default fsync is every 2 min
		JetStreamMaxStore:  cfg.MaxStore,
		JetStreamMaxMemory: cfg.MaxMemory,
	}
	if opts.JetStreamMaxStore <= 0 {
		opts.JetStreamMaxStore = DefaultMaxStore
	}
	if opts.JetStreamMaxMemory <= 0 {
		opts.JetStreamMaxMemory = DefaultMaxMemory
	}
	if cfg.Listen == "" {
		opts.DontListen = true
		return opts, nil
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("listen address %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT // for nats-server 0 means 4222, for everyone else "any"
	}
	if host == "" {
		host = "127.0.0.1" // never open the bus to the network by accident
	}
	if auth == nil {
		// Unreachable through StartEmbedded; kept so no caller can open a port without auth.
		return nil, fmt.Errorf("listen address %q: a listening server requires credentials", cfg.Listen)
	}
	opts.Host, opts.Port = host, port
	opts.Nkeys = auth.serverUsers()
	return opts, nil
}

// isLoopback reports whether a listen host reaches only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func waitReady(ctx context.Context, srv *server.Server) error {
	deadline := time.Now().Add(readyTimeout)
	for !srv.ReadyForConnections(100 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", readyTimeout)
		}
	}
	if !srv.JetStreamEnabled() {
		return errors.New("jetstream did not start (see nats-server log lines)")
	}
	return nil
}

// Connect opens an in-process client connection (no socket) with no limits on what it
// may do: for tooling and tests inside the server's own process. xvmbot's own bot and
// worker use ConnectAs.
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if e.auth != nil {
		opts = append(opts, nkeyOption(e.auth.admin))
	}
	return e.connect(opts)
}

// ConnectAs opens an in-process client connection with role r's permissions and inbox
// prefix (RoleServe for a process that runs bot and worker together). On a server that
// does not listen nothing is checked, as nothing outside the process can connect.
func (e *Embedded) ConnectAs(r Role, opts ...nats.Option) (*nats.Conn, error) {
	opts = append(opts, ClientOptions(r)...)
	if e.auth != nil {
		kp, ok := e.auth.users[r]
		if !ok {
			return nil, fmt.Errorf("connect to embedded nats: unknown role %q", r)
		}
		opts = append(opts, nkeyOption(kp))
	}
	return e.connect(opts)
}

func (e *Embedded) connect(opts []nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.Name("xvmbot")}, opts...)
	opts = append(opts, nats.InProcessServer(e.srv))
	return nats.Connect("", opts...)
}

// ClientURL is the URL other processes use to reach the server, or "" when it only
// serves in-process connections.
func (e *Embedded) ClientURL() string {
	if e.inProc {
		return ""
	}
	return e.srv.ClientURL()
}

// Shutdown stops the server, waiting at most shutdownTimeout, and releases the data-dir
// lock. Safe to call more than once.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	done := make(chan struct{})
	go func() { // owned here: it ends when the server does, and we wait for it below
		e.srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		e.logger.Warn("embedded nats did not stop in time", "timeout", shutdownTimeout)
	}
	if err := e.lock.Unlock(); err != nil {
		e.logger.Warn("release nats data dir lock", "data_dir", e.dataDir, "err", err)
	}
	e.logger.Info("embedded nats stopped", "data_dir", e.dataDir)
}

// serverLogger routes nats-server's printf-style logging into slog.
type serverLogger struct{ l *slog.Logger }

// Noticef goes to Debug: the server's startup banner is twenty lines nobody needs in
// the bot's log; StartEmbedded logs the one line that matters.
func (s serverLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }

// Fatalf must not exit: a library never ends the process; main decides.
func (s serverLogger) Fatalf(format string, v ...any) {
	s.l.Error(fmt.Sprintf(format, v...), "fatal", true)
}
