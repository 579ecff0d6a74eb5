package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"
)

// chaosProc is one operating-system process of the chaos run — a nats-server node, a bot
// or a worker — that can be SIGKILLed and started again with the same command line, config,
// ports and (for a NATS node) store directory.
type chaosProc struct {
	name, kind string
	args       []string
	dir        string
	httpAddr   string // a bot's Slack endpoints
	readyURL   string // answers 200 once the process is up

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	killed  bool // the current run ended by our SIGKILL
	stopped bool // the fleet is shutting down: do not restart
	runs    int
	logs    []string
}

// start runs the process again (or for the first time); it does not wait for it to be ready.
func (p *chaosProc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errors.New("the fleet is stopping")
	}
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is running", p.name)
		}
	}
	p.runs++
	logPath := filepath.Join(p.dir, fmt.Sprintf("%s.%d.log", p.name, p.runs))
	out, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err, p.killed, p.logs = cmd, done, nil, false, append(p.logs, logPath)
	go func() {
		err := cmd.Wait()
		out.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *chaosProc) kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.killed = true
	p.mu.Unlock()
	if cmd == nil {
		return errors.New("never started")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still running 10s after SIGKILL", p.name)
	}
}

// stop ends the process for good: SIGTERM, then SIGKILL after a grace period.
func (p *chaosProc) stop() {
	p.mu.Lock()
	p.stopped, p.killed = true, true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (p *chaosProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// crashed says whether the process has ended without being killed or stopped by us.
func (p *chaosProc) crashed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil || p.killed || p.stopped {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *chaosProc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// logText is the output of the process's current run.
func (p *chaosProc) logText() string {
	p.mu.Lock()
	var last string
	if len(p.logs) > 0 {
		last = p.logs[len(p.logs)-1]
	}
	p.mu.Unlock()
	b, _ := os.ReadFile(last)
	return string(b)
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// awaitReady waits until readyURL answers 200, or the process exits, or timeout passes.
func (p *chaosProc) awaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("%s exited during start-up (%v):\n%s", p.name, p.exitErr(), lastLinesOf(p.logText(), 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if ok, _ := httpOK(client, p.readyURL); ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v:\n%s", p.name, timeout, lastLinesOf(p.logText(), 20))
}

func httpOK(client *http.Client, url string) (bool, error) {
	resp, err := client.Get(url)
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// chaosFleet owns the processes of a chaos run.
type chaosFleet struct {
	dir string

	mu    sync.Mutex
	procs []*chaosProc
	nats  []*chaosProc
}

func (fl *chaosFleet) add(p *chaosProc) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.procs = append(fl.procs, p)
}

func (fl *chaosFleet) all() []*chaosProc {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return append([]*chaosProc(nil), fl.procs...)
}

// stopAll stops the bots and workers first, then the NATS nodes.
func (fl *chaosFleet) stopAll() {
	procs := fl.all()
	var wg sync.WaitGroup
	for _, p := range procs {
		if p.kind != kindNATS {
			wg.Go(p.stop)
		}
	}
	wg.Wait()
	for _, p := range procs {
		if p.kind == kindNATS {
			wg.Go(p.stop)
		}
	}
	wg.Wait()
}

// supervise starts again, at once, any process that ended without being killed, until stop
// is closed, and tells crashed about it.
func (fl *chaosFleet) supervise(stop <-chan struct{}, crashed func(*chaosProc)) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		for _, p := range fl.all() {
			if p.crashed() {
				crashed(p)
				_ = p.start()
			}
		}
	}
}

// startCluster starts n nats-server processes routed to each other on loopback, with
// JetStream on their own store directories, and returns their client URLs once the
// cluster has a JetStream meta leader.
func (fl *chaosFleet) startCluster(ctx context.Context, bin string, n int) ([]string, error) {
	type ports struct{ client, route, monitor string }
	ps := make([]ports, n)
	var routes []string
	for i := range ps {
		ps[i] = ports{freeAddr(), freeAddr(), freeAddr()}
		routes = append(routes, fmt.Sprintf("nats-route://%s", ps[i].route))
	}
	var urls []string
	for i, pt := range ps {
		cluster := fmt.Sprintf("cluster {\n  name: xvm-chaos\n  listen: %s\n  routes: [%s]\n}\n", pt.route, strings.Join(routes, ", "))
		_, url, err := fl.startNATSNode(fmt.Sprintf("n%d", i+1), bin, pt.client, pt.monitor, cluster)
		if err != nil {
			return nil, err
		}
		urls = append(urls, url)
	}
	for _, p := range fl.nats {
		if err := p.awaitReady(ctx, time.Minute); err != nil {
			return nil, err
		}
	}
	return urls, awaitPlacement(ctx, urls, n)
}

// startNATSNode starts nats-server node name on its own store directory, syncing every
// write, listening for clients on client and for monitoring on monitor, with the config
// lines extra (a cluster block), and returns its process and client URL; it is ready once
// its monitor's /healthz answers (awaitReady).
func (fl *chaosFleet) startNATSNode(name, bin, client, monitor, extra string) (*chaosProc, string, error) {
	host, port := splitAddr(client)
	_, mport := splitAddr(monitor)
	conf := fmt.Sprintf(`server_name: %s
host: %s
port: %s
http_port: %s
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 4GB
  sync_interval: always
}
%s`, name, host, port, mport, filepath.Join(fl.dir, name), extra)
	path := filepath.Join(fl.dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, "", err
	}
	p := &chaosProc{name: name, kind: kindNATS, args: []string{bin, "-c", path}, dir: fl.dir,
		readyURL: "http://" + monitor + "/healthz"}
	if err := p.start(); err != nil {
		return nil, "", err
	}
	fl.add(p)
	fl.mu.Lock()
	fl.nats = append(fl.nats, p)
	fl.mu.Unlock()
	return p, "nats://" + client, nil
}

// awaitPlacement waits until the cluster can place a stream on all n nodes: each is
// ready on its own well before the JetStream meta group knows every peer, and the bot
// creates its streams and buckets with n replicas at once.
func awaitPlacement(ctx context.Context, urls []string, n int) error {
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Name("xvmload-chaos"), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = js.CreateStream(cctx, jetstream.StreamConfig{Name: "XVMLOAD_PROBE", Subjects: []string{"xvmload.probe"},
			Replicas: n, Storage: jetstream.MemoryStorage})
		if err == nil {
			err = js.DeleteStream(cctx, "XVMLOAD_PROBE")
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the NATS cluster cannot place a stream on %d nodes after a minute: %w", n, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// clusterHealthy waits (up to timeout) until every NATS node runs and says on /healthz
// that its JetStream is current.
func (fl *chaosFleet) clusterHealthy(ctx context.Context, timeout time.Duration, stop <-chan struct{}) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		healthy := true
		for _, p := range fl.nats {
			if ok, _ := httpOK(client, p.readyURL); !ok || !p.running() {
				healthy = false
				break
			}
		}
		if healthy {
			return true
		}
		select {
		case <-stop:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
	return false
}

// startXVMBot writes the config of one bot or worker and starts it, waiting until its
// /readyz answers.
func (fl *chaosFleet) startXVMBot(ctx context.Context, bin, role, name string, common map[string]any) (*chaosProc, error) {
	cfg := map[string]any{}
	for k, v := range common {
		cfg[k] = v
	}
	httpAddr, opsAddr := freeAddr(), freeAddr()
	cfg["http"] = map[string]any{"listen": httpAddr, "ops_listen": opsAddr}
	// A stable, unique name: a worker started again takes back at once what its
	// previous run left (docs/reliability.md, item 4).
	cfg["worker"] = map[string]any{"name": name}
	if role == kindWorker {
		// Only what runs the bot holds the approval signing key.
		ap := map[string]any{}
		for k, v := range common["approvals"].(map[string]any) {
			if k != "signing_key_file" {
				ap[k] = v
			}
		}
		cfg["approvals"] = ap
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(fl.dir, name+".yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	p := &chaosProc{name: name, kind: role, args: []string{bin, role, "--config", path}, dir: fl.dir,
		httpAddr: httpAddr, readyURL: "http://" + opsAddr + "/readyz"}
	if err := p.start(); err != nil {
		return nil, err
	}
	fl.add(p)
	if err := p.awaitReady(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	return p, nil
}

func splitAddr(addr string) (host, port string) {
	i := strings.LastIndex(addr, ":")
	return addr[:i], addr[i+1:]
}

// chaosBinaries returns the xvmbot and nats-server binaries: the ones given, or built from
// this module (nats-server from the version go.mod pins) into dir.
func chaosBinaries(ctx context.Context, dir string, o chaosOpts) (xvmbotBin, natsBin string, err error) {
	xvmbotBin, natsBin = o.xvmbot, o.natsServer
	if xvmbotBin == "" {
		xvmbotBin = filepath.Join(dir, "xvmbot")
		if err := goBuild(ctx, xvmbotBin, "./cmd/xvmbot"); err != nil {
			return "", "", err
		}
	}
	if natsBin == "" {
		natsBin = filepath.Join(dir, "nats-server")
		if err := goBuild(ctx, natsBin, "github.com/nats-io/nats-server/v2"); err != nil {
			return "", "", err
		}
	}
	return xvmbotBin, natsBin, nil
}

// goBuild builds package pkg of this module (or one it requires) into out, statically, as
// the release does, with the build tags given.
func goBuild(ctx context.Context, out, pkg string, tags ...string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// moduleRoot is the directory of this module's go.mod, wherever the tool is run from
// inside the repository.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run xvmload from inside the xvmbot repository (no go.mod here)")
	}
	return filepath.Dir(mod), nil
}
