package chartrender

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"
)

const chartPath = "../helm/xvmbot"

// object is the part of a rendered Kubernetes object the tests look at.
type object struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       map[string]any `json:"spec"`
	StringData map[string]any `json:"stringData"`
	Data       map[string]any `json:"data"`
}

func (o object) name() string { s, _ := o.Metadata["name"].(string); return s }

// render renders the chart as `helm template xvm deploy/helm/xvmbot -f valuesFile` would,
// and parses every document of the output.
func render(t *testing.T, valuesFile string) map[string]object {
	t.Helper()
	ch, err := loader.Load(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if valuesFile != "" {
		vals, err = chartutil.ReadValuesFile(filepath.Join(chartPath, valuesFile))
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "xvm", Namespace: "vm-ops", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]object{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, "NOTES.txt") || strings.HasPrefix(filepath.Base(n), "_") {
			continue
		}
		for _, doc := range strings.Split(files[n], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var o object
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s does not render to YAML: %v\n%s", n, err, doc)
			}
			if o.Kind == "" || o.APIVersion == "" || o.name() == "" {
				t.Fatalf("%s: an object without kind, apiVersion or name:\n%s", n, doc)
			}
			key := o.Kind + "/" + o.name()
			if _, dup := objs[key]; dup {
				t.Fatalf("%s rendered twice", key)
			}
			objs[key] = o
		}
	}
	return objs
}

// dig walks nested maps and lists: dig(m, "template", "spec", "containers", 0, "image").
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// renderedConfig is the xvmbot.yaml the chart's Secret carries.
func renderedConfig(t *testing.T, objs map[string]object) map[string]any {
	t.Helper()
	sec, ok := objs["Secret/xvm-xvmbot-config"]
	if !ok {
		t.Fatal("no config Secret rendered")
	}
	raw, _ := sec.StringData["xvmbot.yaml"].(string)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("the config in the Secret is not YAML: %v\n%s", err, raw)
	}
	return cfg
}

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name, values      string
		bots, workers     float64
		natsURL           string
		want, wantMissing []string
	}{
		{
			name: "defaults", bots: 1, workers: 2, natsURL: "nats://xvm-nats:4222",
			want:        []string{"Deployment/xvm-xvmbot-bot", "Deployment/xvm-xvmbot-worker", "Secret/xvm-xvmbot-config", "Service/xvm-xvmbot-bot", "Service/xvm-xvmbot-worker", "ServiceAccount/xvm-xvmbot"},
			wantMissing: []string{"ServiceMonitor/xvm-xvmbot", "PrometheusRule/xvm-xvmbot", "Ingress/xvm-xvmbot", "ConfigMap/xvm-xvmbot-dashboard"},
		},
		{
			name: "scale-out on an existing NATS", values: "ci/scaleout-values.yaml", bots: 2, workers: 5, natsURL: "nats://nats.messaging.svc:4222",
			want: []string{"Deployment/xvm-xvmbot-bot", "Deployment/xvm-xvmbot-worker", "Secret/xvm-xvmbot-config", "ServiceMonitor/xvm-xvmbot",
				"PrometheusRule/xvm-xvmbot", "Ingress/xvm-xvmbot", "ConfigMap/xvm-xvmbot-dashboard"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.values)
			for _, k := range tc.want {
				if _, ok := objs[k]; !ok {
					t.Errorf("%s not rendered (have %v)", k, keys(objs))
				}
			}
			for _, k := range tc.wantMissing {
				if _, ok := objs[k]; ok {
					t.Errorf("%s rendered, but it is off by default", k)
				}
			}
			for role, replicas := range map[string]float64{"bot": tc.bots, "worker": tc.workers} {
				d := objs["Deployment/xvm-xvmbot-"+role]
				if got := dig(d.Spec, "replicas"); got != replicas {
					t.Errorf("%s replicas %v, want %v", role, got, replicas)
				}
				c := dig(d.Spec, "template", "spec", "containers", 0)
				if args := dig(c, "args", 0); args != role {
					t.Errorf("%s container runs %v, want the %s command", role, args, role)
				}
				if p := dig(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
					t.Errorf("%s liveness probe %v", role, p)
				}
				if p := dig(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
					t.Errorf("%s readiness probe %v", role, p)
				}
				if dig(d.Spec, "template", "spec", "securityContext", "runAsNonRoot") != true ||
					dig(c, "securityContext", "readOnlyRootFilesystem") != true {
					t.Errorf("%s does not run as non-root on a read-only root filesystem", role)
				}
				if dig(d.Spec, "template", "metadata", "annotations", "checksum/config") == nil {
					t.Errorf("%s pods are not rolled when the config changes", role)
				}
			}
			cfg := renderedConfig(t, objs)
			if got := dig(cfg, "nats", "url"); got != tc.natsURL {
				t.Errorf("config nats.url %v, want %s", got, tc.natsURL)
			}
			if got := dig(cfg, "http", "listen"); got != "0.0.0.0:8080" {
				t.Errorf("config http.listen %v, want 0.0.0.0:8080 (the probes' port)", got)
			}
			if rule, ok := objs["PrometheusRule/xvm-xvmbot"]; ok {
				if groups, _ := dig(rule.Spec, "groups").([]any); len(groups) == 0 {
					t.Error("the PrometheusRule has no rule groups")
				}
			}
			if cm, ok := objs["ConfigMap/xvm-xvmbot-dashboard"]; ok {
				if s, _ := cm.Data["xvmbot.json"].(string); !strings.Contains(s, "xvm_jobs_total") {
					t.Error("the dashboard ConfigMap does not carry the dashboard")
				}
			}
		})
	}
}

func TestRenderRefusesNoNATS(t *testing.T) {
	ch, err := loader.Load(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{"nats": map[string]any{"enabled": false}}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "xvm", Namespace: "vm-ops"}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Render(ch, top); err == nil || !strings.Contains(err.Error(), "externalNATS.url") {
		t.Fatalf("rendering without any NATS: err = %v, want one naming externalNATS.url", err)
	}
}

func keys(m map[string]object) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
