package chartrender

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"
)

// XvmbotDown watches the job label the chart's ServiceMonitor gives its targets, which
// is the name of each Service it scrapes (port ops): for any release name and with
// fullnameOverride, the rendered rule's matcher selects every one of them and no other
// job. (The rule file itself matches docker-compose's job, tested by promtool in
// deploy/rules-test/.)
func TestRenderedXvmbotDownMatchesTheServices(t *testing.T) {
	for _, tc := range []struct {
		release  string
		override map[string]any
	}{
		{release: "xvm"},
		{release: "xvmbot"},
		{release: "xvmbot-prod"},
		{release: "mover", override: map[string]any{"fullnameOverride": "vm-mover"}},
	} {
		t.Run(tc.release, func(t *testing.T) {
			files := renderRelease(t, tc.release, tc.override)
			var services []string
			var expr string
			for name, doc := range files {
				for _, d := range strings.Split(doc, "\n---") {
					var o struct {
						Kind     string `json:"kind"`
						Metadata struct {
							Name string `json:"name"`
						} `json:"metadata"`
						Spec struct {
							Ports []struct {
								Name string `json:"name"`
							} `json:"ports"`
							Groups []struct {
								Rules []struct {
									Alert string `json:"alert"`
									Expr  string `json:"expr"`
								} `json:"rules"`
							} `json:"groups"`
						} `json:"spec"`
					}
					if err := yaml.Unmarshal([]byte(d), &o); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					switch o.Kind {
					case "Service":
						for _, p := range o.Spec.Ports {
							if p.Name == "ops" { // the port the ServiceMonitor scrapes
								services = append(services, o.Metadata.Name)
							}
						}
					case "PrometheusRule":
						for _, g := range o.Spec.Groups {
							for _, r := range g.Rules {
								if r.Alert == "XvmbotDown" {
									expr = r.Expr
								}
							}
						}
					}
				}
			}
			m := regexp.MustCompile(`up\{job=~"([^"]+)"\}`).FindStringSubmatch(expr)
			if m == nil {
				t.Fatalf("rendered XvmbotDown expr %q has no up{job=~...} matcher", expr)
			}
			job := regexp.MustCompile("^(?:" + m[1] + ")$") // Prometheus anchors label regexes
			if len(services) < 2 {
				t.Fatalf("rendered Services %v, want the bot's and the worker's", services)
			}
			for _, s := range services {
				if !job.MatchString(s) {
					t.Errorf("XvmbotDown's job=~%q does not match Service %s, the job label of its targets", m[1], s)
				}
			}
			for _, other := range []string{"nats", "node-exporter", "kube-state-metrics"} {
				if job.MatchString(other) {
					t.Errorf("XvmbotDown's job=~%q matches job %q", m[1], other)
				}
			}
		})
	}
}

// renderRelease renders the chart with the scale-out values (ServiceMonitor and
// PrometheusRule on) under the release name, with top-level overrides.
func renderRelease(t *testing.T, release string, override map[string]any) map[string]string {
	t.Helper()
	ch, err := loader.Load(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ReadValuesFile(filepath.Join(chartPath, "ci/scaleout-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range override {
		vals[k] = v
	}
	vals["metrics"] = map[string]any{"serviceMonitor": map[string]any{"enabled": true}, "prometheusRule": map[string]any{"enabled": true}}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: release, Namespace: "vm-ops", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		t.Fatal(err)
	}
	return files
}
