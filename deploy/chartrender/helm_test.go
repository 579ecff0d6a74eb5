package chartrender

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"
)

const defaultValues = "ci/default-values.yaml"

// values reads a values file of the chart (defaultValues when file is "") and sets set
// on top of it, as `helm template -f file --set …` would.
func values(t *testing.T, file string, set map[string]any) map[string]any {
	t.Helper()
	if file == "" {
		file = defaultValues
	}
	vals, err := chartutil.ReadValuesFile(filepath.Join(chartPath, file))
	if err != nil {
		t.Fatal(err)
	}
	return merge(vals.AsMap(), set)
}

// merge lays b over a, map by map (helm's own rule for -f and --set).
func merge(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = merge(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// helmTemplate is `helm template <release> deploy/helm/xvmbot`: helm's dependency check
// (what failed while the chart named a NATS chart it did not ship), values.schema.json, then
// the install action in client-only mode. It returns the manifest.
func helmTemplate(release string, vals map[string]any) (string, error) {
	ch, err := loader.Load(chartPath)
	if err != nil {
		return "", err
	}
	if req := ch.Metadata.Dependencies; req != nil {
		if err := action.CheckDependencies(ch, req); err != nil {
			return "", fmt.Errorf("checking the chart's dependencies: %w", err)
		}
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.DryRunOption, inst.ClientOnly, inst.Replace = true, "true", true, true
	inst.ReleaseName, inst.Namespace = release, "vm-ops"
	rel, err := inst.Run(ch, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// helmLint is `helm lint --strict deploy/helm/xvmbot -f file`: any warning is an error.
func helmLint(vals map[string]any) []error {
	l := action.NewLint()
	l.Strict, l.Namespace = true, "vm-ops"
	return l.Run([]string{chartPath}, vals).Errors
}

// manifestDocs splits a rendered manifest into its YAML documents.
func manifestDocs(manifest string) []string {
	var docs []string
	for _, doc := range strings.Split("\n"+manifest, "\n---") {
		if body := strings.TrimSpace(stripComments(doc)); body != "" {
			docs = append(docs, doc)
		}
	}
	return docs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// kubeDecoder decodes the kinds the chart renders against the Kubernetes API types, strictly:
// an unknown or duplicated field is an error, as the API server's field validation makes it.
var kubeDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// crdKinds are the Prometheus Operator's kinds, which k8s.io/api does not define.
var crdKinds = map[string]bool{"monitoring.coreos.com/v1 ServiceMonitor": true, "monitoring.coreos.com/v1 PrometheusRule": true}

// decodeStrict decodes one rendered object against its Kubernetes API type.
func decodeStrict(doc string) error {
	var head object
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return err
	}
	if crdKinds[head.APIVersion+" "+head.Kind] {
		return nil
	}
	if _, _, err := kubeDecoder.Decode([]byte(doc), nil, nil); err != nil {
		return fmt.Errorf("%s %s does not decode as the Kubernetes API type: %w", head.Kind, head.name(), err)
	}
	return nil
}
