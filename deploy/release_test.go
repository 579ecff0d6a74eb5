package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/xvmbot/xvmbot/events"
)

// TestDockerfileBuildsBothArchitectures checks, without an engine, what a multi-platform
// build (docker buildx --platform linux/amd64,linux/arm64) needs: the build stage runs on
// the builder's platform and cross-compiles for TARGETARCH, the stamps reach the binary, and
// the image checks its own health with the binary (it has no shell). The release image is
// built without Docker by cmd/xvmrelease, whose tests check the same of it.
func TestDockerfileBuildsBothArchitectures(t *testing.T) {
	src := string(readFile(t, "../Dockerfile"))
	build, final, ok := strings.Cut(src, "\nFROM gcr.io/distroless")
	if !ok {
		t.Fatal("no distroless final stage")
	}
	for _, want := range []string{"FROM --platform=$BUILDPLATFORM ", "ARG TARGETARCH", "GOARCH=${TARGETARCH}", "GOOS=${TARGETOS}",
		"-X main.version=${VERSION}", "-X main.commit=${REVISION}", "-X main.date=${CREATED}", "-X main.treeState=${TREE_STATE}"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build stage lacks %q", want)
		}
	}
	// An ARG is seen only by the stage that declares it, after the declaration.
	if strings.Index(build, "ARG TARGETARCH") > strings.Index(build, "GOARCH=${TARGETARCH}") {
		t.Error("ARG TARGETARCH comes after the build that uses it")
	}
	if !regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["/usr/local/bin/xvmbot", "health"\]`).MatchString(final) {
		t.Error("an image without a HEALTHCHECK that runs xvmbot health")
	}
}

// TestDockerignore: secrets and local state never reach the image build context.
func TestDockerignore(t *testing.T) {
	lines := strings.Split(string(readFile(t, "../.dockerignore")), "\n")
	for _, want := range []string{".git", "**/.env", "**/*.nk", "**/xvm-sim", "**/xvm-data"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	gitignore := strings.Split(string(readFile(t, "../.gitignore")), "\n")
	for _, want := range []string{".env", "xvm-sim/", "*.nk"} {
		if !slices.Contains(gitignore, want) {
			t.Errorf(".gitignore does not ignore %s", want)
		}
	}
}

// TestComposeHealthAndAlerts: each xvmbot container is health-checked by the binary
// itself on the port its config listens on, the worker holds no Slack token, Prometheus
// sends its alerts to an Alertmanager compose runs, and the container config listens on
// the addresses the container exposes.
func TestComposeHealthAndAlerts(t *testing.T) {
	compose := decodeYAML(t, "compose/docker-compose.yaml")[0].(map[string]any)
	services := compose["services"].(map[string]any)
	cfg := decodeYAML(t, "compose/xvmbot.yaml")[0].(map[string]any)
	ops, _ := dig(cfg, "http", "ops_listen").(string)
	listen, _ := dig(cfg, "http", "listen").(string)
	for _, addr := range []string{ops, listen} {
		if !strings.HasPrefix(addr, "0.0.0.0:") {
			t.Errorf("compose/xvmbot.yaml listens on %q: unreachable from outside the container", addr)
		}
	}
	_, opsPort, _ := strings.Cut(ops, ":")
	for _, role := range []string{"bot", "worker"} {
		svc := services[role].(map[string]any)
		test := strList(dig(svc, "healthcheck", "test"))
		if len(test) < 3 || test[0] != "CMD" || test[1] != "/usr/local/bin/xvmbot" || test[2] != "health" {
			t.Errorf("compose %s health check %v, want the binary's health command", role, test)
		}
		if i := slices.Index(test, "--url"); i < 0 || i+1 >= len(test) || !strings.HasPrefix(test[i+1], "http://127.0.0.1:"+opsPort+"/") {
			t.Errorf("compose %s health check %v does not ask the ops listener on port %s", role, test, opsPort)
		}
		hasSlack := strings.Contains(fmt.Sprint(svc["environment"]), "SLACK_")
		if hasSlack != (role == "bot") {
			t.Errorf("compose %s has the Slack tokens: %v", role, hasSlack)
		}
	}
	if ports := fmt.Sprint(services["bot"].(map[string]any)["ports"]); !strings.Contains(ports, ":"+strings.SplitN(listen, ":", 2)[1]) {
		t.Errorf("compose publishes %s, the config listens on %s", ports, listen)
	}

	am, ok := services["alertmanager"].(map[string]any)
	if !ok {
		t.Fatal("compose runs no Alertmanager: the rules' alerts go nowhere")
	}
	if !strings.Contains(fmt.Sprint(am["volumes"]), "./alertmanager.yml:") {
		t.Errorf("compose's Alertmanager does not read alertmanager.yml: %v", am["volumes"])
	}
	prom := decodeYAML(t, "compose/prometheus.yml")[0].(map[string]any)
	var targets []string
	for _, a := range asList(dig(prom, "alerting", "alertmanagers")) {
		for _, sc := range asList(dig(a, "static_configs")) {
			targets = append(targets, strList(dig(sc, "targets"))...)
		}
	}
	if !slices.Contains(targets, "alertmanager:9093") {
		t.Errorf("Prometheus sends alerts to %v, want alertmanager:9093", targets)
	}
	amc := decodeYAML(t, "compose/alertmanager.yml")[0].(map[string]any)
	names := map[string]bool{}
	for _, r := range asList(amc["receivers"]) {
		names[fmt.Sprint(dig(r, "name"))] = true
	}
	if r := fmt.Sprint(dig(amc, "route", "receiver")); !names[r] {
		t.Errorf("alertmanager.yml routes to %q, not one of its receivers %v", r, names)
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// TestChartNATSConfParses parses the chart's bundled-NATS config for a three-node cluster
// (as the chart renders it: deploy/chartrender keeps chartrender/testdata/nats-cluster.conf
// equal to its output) with nats-server's own parser: JetStream on the volume, bounded, a
// route to each pod, and the two users with exactly the code's permissions and passwords
// from the environment.
func TestChartNATSConfParses(t *testing.T) {
	conf := readFile(t, "chartrender/testdata/nats-cluster.conf")
	path := filepath.Join(t.TempDir(), "nats.conf")
	vars := "SERVER_NAME: \"xvm-xvmbot-nats-0\"\nXVM_NATS_BOT_PASSWORD: \"pw-from-env-bot\"\nXVM_NATS_WORKER_PASSWORD: \"pw-from-env-worker\"\n"
	if err := os.WriteFile(path, append([]byte(vars), conf...), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || opts.StoreDir != "/data" || opts.JetStreamMaxStore <= 0 || opts.JetStreamMaxMemory <= 0 {
		t.Errorf("jetstream %v store %q max store %d memory %d: want JetStream on /data, bounded", opts.JetStream, opts.StoreDir, opts.JetStreamMaxStore, opts.JetStreamMaxMemory)
	}
	if opts.ServerName != "xvm-xvmbot-nats-0" || opts.Cluster.Name != "xvm-xvmbot-nats" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 {
		t.Errorf("server %q cluster %q port %d routes %v: want a name per pod and a route to each of 3", opts.ServerName, opts.Cluster.Name, opts.Cluster.Port, opts.Routes)
	}
	got := natsUsers{}
	for _, u := range opts.Users {
		p := u.Permissions
		if p == nil || p.Publish == nil || p.Subscribe == nil {
			t.Fatalf("user %s without permissions", u.Username)
		}
		got[u.Username] = events.Permissions{Publish: p.Publish.Allow, Subscribe: p.Subscribe.Allow}
		if want := "pw-from-env-" + strings.TrimPrefix(u.Username, "xvm-"); u.Password != want {
			t.Errorf("user %s: the password is not read from the environment", u.Username)
		}
	}
	got.check(t, "the chart's nats.conf")
}
