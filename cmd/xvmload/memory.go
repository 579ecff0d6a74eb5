package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/move"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
	"github.com/xvmbot/xvmbot/worker/workertest"
)

// runMemory starts a real `xvmbot serve` process (built from this tree) against
// simulated vCenters and a local Slack served by this process, and reads its resident
// memory from /proc idle and after f.jobs jobs are queued on its embedded NATS. The one
// worker slot is kept busy by a relocation that takes ten minutes, so the rest stay queued.
// With f.requestVMs the jobs are those of one request asked and approved through Slack
// (memory_request.go) instead.
func runMemory(ctx context.Context, f flags) error {
	dir, err := os.MkdirTemp("", "xvmload-mem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := f.xvmbot
	if bin == "" {
		bin = filepath.Join(dir, "xvmbot")
		var tags []string
		if f.heapProfiles != "" {
			tags = append(tags, "pprof")
		}
		if err := goBuild(ctx, bin, "./cmd/xvmbot", tags...); err != nil {
			return err
		}
	}
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(10*time.Minute), xvmsim.WithExtraVMs(f.requestVMs))
	if err != nil {
		return err
	}
	defer lab.Close()
	ws := slacksim.New()
	defer ws.Close()

	// The approval signing key is this tool's to make: it signs the one job that must run.
	keyPath := filepath.Join(dir, "approval-signing.nk")
	if _, err := system.WriteSigningKey(keyPath); err != nil {
		return err
	}
	signer, err := system.ReadSigningKey(keyPath)
	if err != nil {
		return err
	}
	httpAddr, opsAddr, natsAddr := freeAddr(), freeAddr(), freeAddr()
	var vcs strings.Builder
	for i, v := range lab.VCs() {
		fmt.Fprintf(&vcs, "  - {name: %s, url: %q, username: %q, password: %q, thumbprint: %q, home: %v}\n",
			v.Name, v.URL.String(), v.Username, v.Password, v.Thumbprint, i == 0)
	}
	cfg := fmt.Sprintf(`slack:
  mode: http
  bot_token: xoxb-load
  signing_secret: %s
  api_url: %q
  channels: [%s]
http:
  listen: %s
  ops_listen: %s
nats:
  data_dir: %s
  listen: %s
vcenters:
%sapprovals:
  approvers: [%s]
  signing_key_file: %s
limits:
  max_concurrent: 1
log:
  level: warn
`, signing, ws.APIURL(), channel, httpAddr, opsAddr, filepath.Join(dir, "nats"), natsAddr, vcs.String(), bob, keyPath)
	cfgPath := filepath.Join(dir, "xvmbot.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if err := waitHTTP(ctx, "http://"+opsAddr+"/healthz"); err != nil {
		return err
	}
	if st, err := os.Stat(bin); err == nil {
		fmt.Printf("xvmbot binary %.1f MB (%s)\n", float64(st.Size())/(1<<20), bin)
	}
	time.Sleep(5 * time.Second) // let start-up garbage be collected
	idle, err := rss(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("serve idle (embedded NATS, 2 vCenter sessions, HTTP mode): VmRSS %.1f MB\n", idle)
	fmt.Printf("goal idle < 80 MB: %s\n", verdict(idle < 80))
	if f.requestVMs > 0 {
		return memoryRequest(ctx, f, ws, httpAddr, opsAddr, cmd.Process.Pid)
	}

	// As a bot would: serve's listening NATS admits only the credentials it keeps in its
	// data dir, and only the bot's may queue jobs.
	seed, err := nats.NkeyOptionFromSeed(events.SeedFile(filepath.Join(dir, "nats"), events.RoleBot))
	if err != nil {
		return err
	}
	opts := append(events.ClientOptions(events.RoleBot), nats.Name("xvmload"), seed)
	nc, err := nats.Connect("nats://"+natsAddr, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	bus, err := events.NewBus(ctx, nc, events.BusConfig{Role: events.RoleBot, Replicas: 1}, nil, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	// The first job is approved as the bot would approve it, so that it runs and holds the
	// worker's one slot; the others are never taken while it runs.
	approver := &workertest.Approver{Store: bus.Requests(), Signer: signer, Lab: lab}
	start := time.Now()
	for i := range f.jobs {
		vm := fmt.Sprintf("queued-%05d", i)
		if i == 0 {
			vm = "web-01" // the job that holds the one worker slot for ten minutes
		}
		j := events.Job{V: events.SchemaVersion, ID: fmt.Sprintf("xvm-load%04d-%05d", i/10000, i), RequestID: "xvm-loadmem0",
			Direction: "migrate", VM: vm, SourceVC: "vc-east", TargetVC: "vc-west",
			Placement: move.Placement{Cluster: "west-prod", Datastore: "ds-gold", Folder: "migrated/web",
				Networks: []move.Network{{Target: "app-pg"}}, DiskFormat: move.Thin},
			RequestedBy: alice, ApprovedBy: []string{bob}, QueuedAt: time.Now()}
		if i == 0 {
			signed, err := approver.Approve(ctx, j)
			if err != nil {
				return fmt.Errorf("approve the first job: %w", err)
			}
			j = signed[0]
		}
		if err := bus.PublishJob(ctx, j); err != nil {
			return fmt.Errorf("publish job %d: %w", i, err)
		}
	}
	fmt.Printf("published %d jobs in %v\n", f.jobs, time.Since(start).Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	queued := scrape(ctx, "http://"+opsAddr+"/metrics", "xvm_jobs_queued")
	loaded, err := rss(cmd.Process.Pid)
	if err != nil {
		return err
	}
	peak, _ := procStatus(cmd.Process.Pid, "VmHWM")
	fmt.Printf("serve with %s jobs queued (xvm_jobs_queued): VmRSS %.1f MB, peak VmHWM %.1f MB\n", queued, loaded, peak)
	return nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within 60s", url)
}

func scrape(ctx context.Context, url, metric string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), metric+" "); ok {
			return v
		}
	}
	return "?"
}

// heapProfile writes serve's heap profile, taken just after a collection (so its
// in-use figures are the live heap), to file in f.heapProfiles; nothing without it.
func heapProfile(ctx context.Context, f flags, opsAddr, file string) {
	if f.heapProfiles == "" {
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+opsAddr+"/debug/pprof/heap?gc=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Printf("heap profile %s: %v\n", file, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Printf("heap profile %s: %s (is serve built with -tags pprof?)\n", file, resp.Status)
		return
	}
	out, err := os.Create(filepath.Join(f.heapProfiles, file))
	if err == nil {
		_, err = io.Copy(out, resp.Body)
		err = errors.Join(err, out.Close())
	}
	if err != nil {
		fmt.Printf("heap profile %s: %v\n", file, err)
	}
}

func rss(pid int) (float64, error) { return procStatus(pid, "VmRSS") }

// procStatus reads a kB field of /proc/<pid>/status, in MB.
func procStatus(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
