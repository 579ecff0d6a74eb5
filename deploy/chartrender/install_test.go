package chartrender

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestHelmLintStrict is `helm lint --strict` with the default and the scale-out values: no
// error and no warning. The bare defaults fail, by the schema, naming what is missing.
func TestHelmLintStrict(t *testing.T) {
	t.Parallel()
	for _, file := range []string{defaultValues, "ci/scaleout-values.yaml"} {
		if errs := helmLint(values(t, file, nil)); len(errs) > 0 {
			t.Errorf("helm lint --strict -f %s: %v", file, errors.Join(errs...))
		}
	}
	errs := helmLint(nil)
	if msg := fmt.Sprint(errs); !strings.Contains(msg, "vcenters") || !strings.Contains(msg, "secrets") {
		t.Errorf("helm lint --strict with no values: %v, want the schema naming config.vcenters and secrets", errs)
	}
}

// TestSchemaRefusesAnIncompleteInstall: what used to crash-loop fails at install, with a
// message naming the value to set.
func TestSchemaRefusesAnIncompleteInstall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  map[string]any
		want string
	}{
		{"no vCenters", map[string]any{"config": map[string]any{"vcenters": []any{}}}, "vcenters"},
		{"no approvers", map[string]any{"config": map[string]any{"approvals": map[string]any{"approvers": []any{}}}}, "approvers"},
		{"no Slack Secret", map[string]any{"secrets": map[string]any{"slack": ""}}, "slack"},
		{"no vCenter passwords Secret", map[string]any{"secrets": map[string]any{"vcenters": ""}}, "vcenters"},
		{"a misspelt top-level value", map[string]any{"workers": map[string]any{"replicas": 3}}, "workers"},
		{"an even NATS cluster", map[string]any{"nats": map[string]any{"replicas": 2}}, "replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helmTemplate("xvm", values(t, "", tc.set))
			if err == nil || !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("install: err = %v, want a schema error naming %s", err, tc.want)
			}
		})
	}
	// With a config Secret of one's own, the chart's config values are not needed.
	own := map[string]any{"existingConfigSecret": "mine", "config": map[string]any{"vcenters": []any{}}, "secrets": map[string]any{"slack": "", "vcenters": ""}}
	if _, err := helmTemplate("xvm", values(t, "", own)); err != nil {
		t.Errorf("install with existingConfigSecret: %v", err)
	}
}

// TestNATSAddressFollowsTheChart: whatever the release is called, and with a
// fullnameOverride, the config's nats.url names the client Service the chart renders, and
// that Service selects the NATS pods.
func TestNATSAddressFollowsTheChart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		release string
		set     map[string]any
		service string
	}{
		{"nats-prod", nil, "nats-prod-xvmbot-nats"},
		{"mynats", nil, "mynats-xvmbot-nats"},
		{"xvmbot-prod", nil, "xvmbot-prod-nats"},
		{"prod", map[string]any{"fullnameOverride": "vmotion"}, "vmotion-nats"},
	} {
		t.Run(tc.release, func(t *testing.T) {
			objs := renderValues(t, tc.release, "", tc.set)
			var cfg map[string]any
			for k, o := range objs {
				if strings.HasPrefix(k, "Secret/") && strings.HasSuffix(k, "-config") {
					cfg = configOf(t, o)
				}
			}
			if got, want := dig(cfg, "nats", "url"), "nats://"+tc.service+":4222"; got != want {
				t.Errorf("nats.url %v, want %s", got, want)
			}
			svc, ok := objs["Service/"+tc.service]
			if !ok {
				t.Fatalf("no Service %s (have %v)", tc.service, keys(objs))
			}
			sts, ok := objs["StatefulSet/"+tc.service]
			if !ok {
				t.Fatalf("no StatefulSet %s", tc.service)
			}
			podLabels, _ := dig(sts.Spec, "template", "metadata", "labels").(map[string]any)
			sel, _ := dig(svc.Spec, "selector").(map[string]any)
			for k, v := range sel {
				if podLabels[k] != v {
					t.Errorf("Service %s selects %s=%v; the NATS pods have %v", tc.service, k, v, podLabels)
				}
			}
			if find(dig(svc.Spec, "ports"), "port", float64(4222)) == nil {
				t.Errorf("Service %s has no port 4222", tc.service)
			}
		})
	}
}

// TestNATSCluster: with three NATS replicas each server routes to every pod by its stable
// name under the headless Service, and a drain takes one at a time.
func TestNATSCluster(t *testing.T) {
	t.Parallel()
	objs := renderValues(t, "xvm", "", map[string]any{"nats": map[string]any{"replicas": 3}})
	sts := objs["StatefulSet/xvm-xvmbot-nats"]
	if dig(sts.Spec, "replicas") != float64(3) || dig(sts.Spec, "serviceName") != "xvm-xvmbot-nats-headless" {
		t.Errorf("StatefulSet replicas %v serviceName %v", dig(sts.Spec, "replicas"), dig(sts.Spec, "serviceName"))
	}
	conf, _ := objs["ConfigMap/xvm-xvmbot-nats-config"].Data["nats.conf"].(string)
	for i := range 3 {
		route := fmt.Sprintf("nats://xvm-xvmbot-nats-%d.xvm-xvmbot-nats-headless.vm-ops.svc.cluster.local:6222", i)
		if !strings.Contains(conf, route) {
			t.Errorf("nats.conf has no route %s:\n%s", route, conf)
		}
	}
	if !strings.Contains(conf, "store_dir: /data") || !strings.Contains(conf, "server_name: $SERVER_NAME") {
		t.Errorf("nats.conf: want JetStream on the volume and a name per pod:\n%s", conf)
	}
	if find(dig(objs["Service/xvm-xvmbot-nats-headless"].Spec, "ports"), "port", float64(6222)) == nil {
		t.Error("the headless Service has no route port 6222")
	}
	if pdb, ok := objs["PodDisruptionBudget/xvm-xvmbot-nats"]; !ok || dig(pdb.Spec, "maxUnavailable") != float64(1) {
		t.Errorf("NATS cluster PodDisruptionBudget %v", pdb.Spec)
	}
	if cfg := renderedConfig(t, objs); dig(cfg, "nats", "replicas") != float64(3) {
		t.Errorf("xvmbot's streams have %v replicas on a 3-node cluster", dig(cfg, "nats", "replicas"))
	}
	// A single server has no routes and needs no budget; xvmbot's streams one copy.
	one := render(t, "")
	if cfg := renderedConfig(t, one); dig(cfg, "nats", "replicas") != float64(1) {
		t.Errorf("xvmbot's streams have %v replicas on a single server", dig(cfg, "nats", "replicas"))
	}
	if conf, _ := one["ConfigMap/xvm-xvmbot-nats-config"].Data["nats.conf"].(string); strings.Contains(conf, "routes") {
		t.Errorf("a single NATS server has routes:\n%s", conf)
	}
	if _, ok := one["PodDisruptionBudget/xvm-xvmbot-nats"]; ok {
		t.Error("a single NATS server has a PodDisruptionBudget, which would block every drain")
	}
	claims, _ := dig(one["StatefulSet/xvm-xvmbot-nats"].Spec, "volumeClaimTemplates").([]any)
	if len(claims) != 1 || dig(claims[0], "spec", "resources", "requests", "storage") != "2Gi" {
		t.Errorf("JetStream's volume claim %v, want 2Gi", claims)
	}
}

// TestPerRoleSecrets: the Slack tokens reach bot pods only; the vCenter passwords reach both
// roles, and a vCenter without a password of its own reads its file from there.
func TestPerRoleSecrets(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"", "ci/scaleout-values.yaml"} {
		objs := render(t, file)
		for _, role := range []string{"bot", "worker"} {
			pod := dig(objs["StatefulSet/xvm-xvmbot-"+role].Spec, "template", "spec")
			c := dig(pod, "containers", 0)
			hasSlack := false
			for _, e := range asList(dig(c, "envFrom")) {
				if dig(e, "secretRef", "name") == "xvmbot-slack" {
					hasSlack = true
				}
			}
			if hasSlack != (role == "bot") {
				t.Errorf("%s: %s pods hold the Slack tokens: %v", file, role, hasSlack)
			}
			if v := find(dig(pod, "volumes"), "name", "vcenter-passwords"); dig(v, "secret", "secretName") != "xvmbot-vcenters" {
				t.Errorf("%s: %s pods do not mount the vCenter passwords: %v", file, role, v)
			}
		}
		// The bot's Secret holds the tokens of its mode only: a ${VAR} it lacks stops the bot.
		slack := dig(renderedConfig(t, objs), "slack")
		want := map[string]string{"socket": "${SLACK_APP_TOKEN}", "http": "${SLACK_SIGNING_SECRET}"}
		for mode, ref := range want {
			key := map[string]string{"socket": "app_token", "http": "signing_secret"}[mode]
			if got := dig(slack, key); (got == ref) != (dig(slack, "mode") == mode) {
				t.Errorf("%s: slack.mode %v with slack.%s = %v", file, dig(slack, "mode"), key, got)
			}
		}
		for _, vc := range asList(dig(renderedConfig(t, objs), "vcenters")) {
			if got, want := dig(vc, "password_file"), "/run/secrets/xvmbot-vcenters/"+dig(vc, "name").(string); got != want {
				t.Errorf("%s: vCenter %v password_file %v, want %s", file, dig(vc, "name"), got, want)
			}
		}
	}
}

// TestDisruptionAndSpread: a budget per role, pods spread over nodes, and a startup probe
// that holds the others off during a slow first start.
func TestDisruptionAndSpread(t *testing.T) {
	t.Parallel()
	objs := render(t, "ci/scaleout-values.yaml")
	for _, role := range []string{"bot", "worker"} {
		d := objs["StatefulSet/xvm-xvmbot-"+role]
		podLabels, _ := dig(d.Spec, "template", "metadata", "labels").(map[string]any)
		pdb, ok := objs["PodDisruptionBudget/xvm-xvmbot-"+role]
		if !ok || dig(pdb.Spec, "maxUnavailable") != float64(1) {
			t.Fatalf("%s PodDisruptionBudget %v", role, pdb.Spec)
		}
		for k, v := range dig(pdb.Spec, "selector", "matchLabels").(map[string]any) {
			if podLabels[k] != v {
				t.Errorf("%s budget selects %s=%v, the pods have %v", role, k, v, podLabels)
			}
		}
		spread := dig(d.Spec, "template", "spec", "topologySpreadConstraints", 0)
		if dig(spread, "topologyKey") != "kubernetes.io/hostname" || dig(spread, "labelSelector", "matchLabels", "app.kubernetes.io/component") != role {
			t.Errorf("%s pods are not spread over nodes: %v", role, spread)
		}
		c := dig(d.Spec, "template", "spec", "containers", 0)
		if dig(c, "startupProbe", "httpGet", "path") != "/healthz" || dig(c, "startupProbe", "failureThreshold") != float64(30) {
			t.Errorf("%s startup probe %v", role, dig(c, "startupProbe"))
		}
		if to, _ := dig(c, "readinessProbe", "timeoutSeconds").(float64); to < 3 {
			t.Errorf("%s readiness probe times out after %vs, shorter than a vCenter check", role, to)
		}
	}
	if _, ok := objs["PodDisruptionBudget/xvm-xvmbot-nats"]; ok {
		t.Error("a budget for a NATS the chart does not run")
	}
}

// TestStrictDecodingCatchesUnknownFields keeps the strict decoding honest: a field the
// Kubernetes API does not have fails, as a misplaced key in a template would.
func TestStrictDecodingCatchesUnknownFields(t *testing.T) {
	t.Parallel()
	good := "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec:\n  maxUnavailable: 1\n"
	if err := decodeStrict(good); err != nil {
		t.Fatalf("a valid object: %v", err)
	}
	for _, bad := range []string{
		"apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec:\n  maxUnavailabel: 1\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i, startupprobe: {}}]\n",
		"apiVersion: v1\nkind: Widget\nmetadata: {name: x}\n",
	} {
		if err := decodeStrict(bad); err == nil {
			t.Errorf("decoded without error:\n%s", bad)
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// natsConfGolden is the bundled NATS's config for a three-node cluster, as the chart renders
// it: deploy/deploy_test.go (the root module, which has nats-server) parses it with
// nats-server's own config parser. TestNATSConfGolden keeps it equal to the chart's output.
const natsConfGolden = "testdata/nats-cluster.conf"

func TestNATSConfGolden(t *testing.T) {
	t.Parallel()
	objs := renderValues(t, "xvm", "", map[string]any{"nats": map[string]any{"replicas": 3}})
	conf, _ := objs["ConfigMap/xvm-xvmbot-nats-config"].Data["nats.conf"].(string)
	if *update {
		if err := os.WriteFile(natsConfGolden, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(natsConfGolden)
	if err != nil {
		t.Fatal(err)
	}
	if conf != string(want) {
		t.Errorf("the chart's nats.conf differs from %s (go test -run TestNATSConfGolden -update):\n%s", natsConfGolden, conf)
	}
}
