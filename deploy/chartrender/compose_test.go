package chartrender

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeDir = "../compose"

// loadCompose loads deploy/compose/docker-compose.yaml with compose's own loader, as
// `docker compose config` does: the Compose Specification's schema, interpolation of
// ${VAR}, ${VAR:-default} and ${VAR:?error} from envFile, and consistency checks
// (services, networks and volumes referred to exist, depends_on has no cycle).
func loadCompose(t *testing.T, envFile string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(composeDir, "docker-compose.yaml")},
		cli.WithWorkingDirectory(composeDir), cli.WithName("xvmbot"), cli.WithEnvFiles(envFile),
		cli.WithDotEnv, cli.WithInterpolation(true), cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// The compose file as an operator would use it: copied from .env.example without filling
// in the secrets, compose refuses to start and says which to set; filled in, it loads,
// and every long-running service has a health check.
func TestComposeLoads(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(composeDir, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("env as in .env.example", func(t *testing.T) {
		env := filepath.Join(t.TempDir(), ".env")
		if err := os.WriteFile(env, example, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadCompose(t, env)
		if err == nil || !strings.Contains(err.Error(), "set XVM_NATS_BOT_PASSWORD in .env") {
			t.Fatalf("err = %v, want compose to ask for XVM_NATS_BOT_PASSWORD", err)
		}
	})
	t.Run("env filled in", func(t *testing.T) {
		filled := strings.NewReplacer(
			"XVM_NATS_BOT_PASSWORD=\n", "XVM_NATS_BOT_PASSWORD=bot-pw\n",
			"XVM_NATS_WORKER_PASSWORD=\n", "XVM_NATS_WORKER_PASSWORD=worker-pw\n",
			"XVM_APPROVAL_PUBLIC_KEY=\n", "XVM_APPROVAL_PUBLIC_KEY=ed25519:test\n",
		).Replace(string(example))
		env := filepath.Join(t.TempDir(), ".env")
		if err := os.WriteFile(env, []byte(filled), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := loadCompose(t, env)
		if err != nil {
			t.Fatalf("compose's loader refuses docker-compose.yaml: %v", err)
		}
		names := p.ServiceNames()
		for _, want := range []string{"nats", "bot", "worker", "prometheus", "alertmanager", "grafana"} {
			if !slices.Contains(names, want) {
				t.Errorf("service %s missing; services: %v", want, names)
			}
		}
		for _, name := range []string{"nats", "bot", "worker"} {
			s, err := p.GetService(name)
			if err != nil {
				continue
			}
			if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
				t.Errorf("service %s has no health check", name)
			}
		}
		// A recreated bot or worker keeps its name (its host's), and so takes back at once
		// what its predecessor left; a fixed container name keeps --scale from running two
		// processes under one name.
		hosts := map[string]string{}
		for _, name := range []string{"bot", "worker"} {
			s, err := p.GetService(name)
			if err != nil {
				continue
			}
			if s.Hostname == "" || s.ContainerName == "" {
				t.Errorf("service %s: hostname %q, container_name %q; want both fixed", name, s.Hostname, s.ContainerName)
			}
			if other, ok := hosts[s.Hostname]; ok {
				t.Errorf("services %s and %s share the host name %s", other, name, s.Hostname)
			}
			hosts[s.Hostname] = name
		}
		if bot, err := p.GetService("bot"); err == nil && bot.Environment["XVM_NATS_PASSWORD"] == nil {
			t.Errorf("the bot's XVM_NATS_PASSWORD is not set from .env: %v", bot.Environment)
		}
	})
}
