package chartrender

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

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

// render renders the chart as `helm template xvm deploy/helm/xvmbot -f valuesFile` would
// (valuesFile "" is ci/default-values.yaml: the defaults plus what an install must supply),
// with helm's dependency check and values.schema.json, and decodes every object strictly
// against the Kubernetes API types.
func render(t *testing.T, valuesFile string) map[string]object {
	t.Helper()
	return renderValues(t, "xvm", valuesFile, nil)
}

// renderValues is render with a release name and values set on top of the file's
// (as --set would).
func renderValues(t *testing.T, release, valuesFile string, set map[string]any) map[string]object {
	t.Helper()
	manifest, err := helmTemplate(release, values(t, valuesFile, set))
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]object{}
	for _, doc := range manifestDocs(manifest) {
		if err := decodeStrict(doc); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("does not render to YAML: %v\n%s", err, doc)
		}
		if o.Kind == "" || o.APIVersion == "" || o.name() == "" {
			t.Fatalf("an object without kind, apiVersion or name:\n%s", doc)
		}
		key := o.Kind + "/" + o.name()
		if _, dup := objs[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		objs[key] = o
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
	return configOf(t, sec)
}

// configOf is the xvmbot.yaml a config Secret carries.
func configOf(t *testing.T, sec object) map[string]any {
	t.Helper()
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
			name: "defaults", bots: 1, workers: 2, natsURL: "nats://xvm-xvmbot-nats:4222",
			want: []string{"StatefulSet/xvm-xvmbot-nats", "Service/xvm-xvmbot-nats", "Service/xvm-xvmbot-nats-headless", "ConfigMap/xvm-xvmbot-nats-config",
				"PodDisruptionBudget/xvm-xvmbot-bot", "PodDisruptionBudget/xvm-xvmbot-worker", "StatefulSet/xvm-xvmbot-bot", "StatefulSet/xvm-xvmbot-worker", "Secret/xvm-xvmbot-config", "Service/xvm-xvmbot-bot", "Service/xvm-xvmbot-worker", "ServiceAccount/xvm-xvmbot"},
			wantMissing: []string{"ServiceMonitor/xvm-xvmbot", "PrometheusRule/xvm-xvmbot", "Ingress/xvm-xvmbot", "ConfigMap/xvm-xvmbot-dashboard"},
		},
		{
			name: "scale-out on an existing NATS", values: "ci/scaleout-values.yaml", bots: 2, workers: 5, natsURL: "nats://nats.messaging.svc:4222",
			want: []string{"StatefulSet/xvm-xvmbot-bot", "StatefulSet/xvm-xvmbot-worker", "Secret/xvm-xvmbot-config", "ServiceMonitor/xvm-xvmbot",
				"PrometheusRule/xvm-xvmbot", "Ingress/xvm-xvmbot", "ConfigMap/xvm-xvmbot-dashboard"},
			wantMissing: []string{"StatefulSet/xvm-xvmbot-nats", "Service/xvm-xvmbot-nats", "ConfigMap/xvm-xvmbot-nats-config"},
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
				d := objs["StatefulSet/xvm-xvmbot-"+role]
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
				t.Errorf("config http.listen %v, want 0.0.0.0:8080 (the Slack port)", got)
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
	if err := renderWith(t, map[string]any{"nats": map[string]any{"enabled": false}}); err == nil || !strings.Contains(err.Error(), "externalNATS.url") {
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

// renderWith renders the chart with values given inline on top of
// ci/default-values.yaml; it returns the error, if any.
func renderWith(t *testing.T, vals map[string]any) error {
	t.Helper()
	_, err := helmTemplate("xvm", values(t, "", vals))
	return err
}

// find returns the element of a list of maps whose key has the value.
func find(list any, key string, value any) map[string]any {
	l, _ := list.([]any)
	for _, e := range l {
		if m, ok := e.(map[string]any); ok && m[key] == value {
			return m
		}
	}
	return nil
}

// TestRenderNATSAuth checks that each role's pods connect to NATS as their own user with
// only their own password, that probes and metrics use the ops port, and that the bundled
// NATS reads its users' passwords from the very Secret the chart creates.
func TestRenderNATSAuth(t *testing.T) {
	for _, tc := range []struct{ name, values, secret string }{
		{"defaults", "", "xvm-xvmbot-nats-users"},
		{"scale-out on an existing NATS", "ci/scaleout-values.yaml", "xvmbot-nats-users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.values)
			cfg := renderedConfig(t, objs)
			if got := dig(cfg, "http", "ops_listen"); got != "0.0.0.0:9090" {
				t.Errorf("config http.ops_listen %v, want 0.0.0.0:9090 (the probes' and Prometheus' port)", got)
			}
			if u, p := dig(cfg, "nats", "user"), dig(cfg, "nats", "password_file"); u != "${XVM_NATS_USER}" || p != "/run/secrets/xvmbot-nats/password" {
				t.Errorf("config nats.user %v, password_file %v: want each pod's own user and mounted password", u, p)
			}
			_, chartSecret := objs["Secret/"+tc.secret]
			if chartSecret != (tc.values == "") {
				t.Errorf("Secret %s rendered: %v; the chart creates it only for the bundled NATS", tc.secret, chartSecret)
			}
			if chartSecret {
				for _, k := range []string{"bot-password", "worker-password"} {
					if v, _ := objs["Secret/"+tc.secret].Data[k].(string); len(v) < 40 {
						t.Errorf("NATS users Secret key %s = %q, want a random password", k, v)
					}
				}
			}
			for _, role := range []string{"bot", "worker"} {
				pod := dig(objs["StatefulSet/xvm-xvmbot-"+role].Spec, "template", "spec")
				c := dig(pod, "containers", 0)
				if env := find(dig(c, "env"), "name", "XVM_NATS_USER"); env == nil || env["value"] != "xvm-"+role {
					t.Errorf("%s pods connect to NATS as %v, want xvm-%s", role, env, role)
				}
				vol := find(dig(pod, "volumes"), "name", "nats-auth")
				items, _ := dig(vol, "secret", "items").([]any)
				if dig(vol, "secret", "secretName") != tc.secret || len(items) != 1 ||
					dig(items[0], "key") != role+"-password" || dig(items[0], "path") != "password" {
					t.Errorf("%s pods mount %v, want only the key %s-password of %s", role, vol, role, tc.secret)
				}
				if m := find(dig(c, "volumeMounts"), "name", "nats-auth"); m == nil || m["mountPath"] != "/run/secrets/xvmbot-nats" {
					t.Errorf("%s pods mount the NATS password at %v", role, m)
				}
				for _, probe := range []string{"livenessProbe", "readinessProbe"} {
					if p := dig(c, probe, "httpGet", "port"); p != "ops" {
						t.Errorf("%s %s on port %v, want ops", role, probe, p)
					}
				}
				if ops := find(dig(c, "ports"), "name", "ops"); ops == nil || ops["containerPort"] != float64(9090) {
					t.Errorf("%s container has no ops port 9090: %v", role, dig(c, "ports"))
				}
				if http := find(dig(c, "ports"), "name", "http"); (http != nil) != (role == "bot") {
					t.Errorf("%s container http port %v: only the bot serves Slack", role, http)
				}
			}
			if sm, ok := objs["ServiceMonitor/xvm-xvmbot"]; ok {
				if p := dig(sm.Spec, "endpoints", 0, "port"); p != "ops" {
					t.Errorf("ServiceMonitor scrapes port %v, want ops", p)
				}
			}
		})
	}

	// The bundled NATS reads each user's password from the very Secret the pods mount.
	objs := render(t, "")
	env := dig(objs["StatefulSet/xvm-xvmbot-nats"].Spec, "template", "spec", "containers", 0, "env")
	for _, role := range []string{"bot", "worker"} {
		e := find(env, "name", "XVM_NATS_"+strings.ToUpper(role)+"_PASSWORD")
		if ref := dig(e, "valueFrom", "secretKeyRef"); dig(ref, "name") != "xvm-xvmbot-nats-users" || dig(ref, "key") != role+"-password" {
			t.Errorf("the bundled NATS reads the %s password from %v, want the key %s-password of xvm-xvmbot-nats-users", role, ref, role)
		}
	}

	for _, bad := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"existing NATS without the users' Secret", map[string]any{"nats": map[string]any{"enabled": false}, "externalNATS": map[string]any{"url": "nats://n:4222"}}, "natsAuth.existingSecret"},
		{"bundled NATS with someone else's Secret", map[string]any{"natsAuth": map[string]any{"existingSecret": "mine"}}, "bundled NATS"},
	} {
		if err := renderWith(t, bad.vals); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: render error %v, want one naming %q", bad.name, err, bad.want)
		}
	}
}

// rule is one ingress or egress rule of a NetworkPolicy, as ports and peers.
type rule struct {
	ports []string // "port/protocol"
	peers []any
}

func rules(np object, kind, peersKey string) []rule {
	var out []rule
	list, _ := dig(np.Spec, kind).([]any)
	for _, r := range list {
		var ports []string
		for _, p := range dig(r, "ports").([]any) {
			ports = append(ports, fmt.Sprintf("%v/%v", dig(p, "port"), dig(p, "protocol")))
		}
		peers, _ := dig(r, peersKey).([]any)
		out = append(out, rule{ports: ports, peers: peers})
	}
	return out
}

// egressTo returns the egress rule that opens port, or nil.
func egressTo(np object, port string) *rule {
	for _, r := range rules(np, "egress", "to") {
		if slices.Contains(r.ports, port) {
			return &r
		}
	}
	return nil
}

// TestRenderNetworkPolicy checks who may talk to whom: bot and worker pods out only to
// NATS, DNS, the vCenters and Slack; into them only the monitoring namespace on the ops
// port (and, in http mode, Slack's requests to the bot); into the bundled NATS's client
// port only xvmbot's pods.
func TestRenderNetworkPolicy(t *testing.T) {
	xvmbotPods := map[string]any{"app.kubernetes.io/name": "xvmbot", "app.kubernetes.io/instance": "xvm"}
	natsPods := map[string]any{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "xvm", "app.kubernetes.io/component": "nats"}
	monitoring := map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}
	for _, tc := range []struct {
		name, values string
		httpMode     bool
		natsPeer     any
		vcenterPeers []any
	}{
		{name: "defaults", natsPeer: map[string]any{"podSelector": map[string]any{"matchLabels": natsPods}}},
		{name: "scale-out on an existing NATS", values: "ci/scaleout-values.yaml", httpMode: true,
			natsPeer:     map[string]any{"ipBlock": map[string]any{"cidr": "10.96.40.0/24"}},
			vcenterPeers: []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.20.0.10/32"}}, map[string]any{"ipBlock": map[string]any{"cidr": "10.30.0.10/32"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.values)
			np, ok := objs["NetworkPolicy/xvm-xvmbot"]
			if !ok {
				t.Fatalf("no NetworkPolicy for the xvmbot pods (have %v)", keys(objs))
			}
			if sel := dig(np.Spec, "podSelector", "matchLabels"); !reflect.DeepEqual(sel, xvmbotPods) {
				t.Errorf("the policy selects %v, want every xvmbot pod %v", sel, xvmbotPods)
			}
			if types := fmt.Sprint(dig(np.Spec, "policyTypes")); types != "[Ingress Egress]" {
				t.Errorf("policyTypes %s, want both directions restricted", types)
			}
			in := rules(np, "ingress", "from")
			if len(in) != 1 || !slices.Equal(in[0].ports, []string{"ops/TCP"}) || len(in[0].peers) != 1 || !reflect.DeepEqual(in[0].peers[0], monitoring) {
				t.Errorf("ingress %+v, want only the ops port from the monitoring namespace", in)
			}
			out := rules(np, "egress", "to")
			if len(out) != 4 {
				t.Errorf("%d egress rules, want NATS, DNS, vCenters and Slack: %+v", len(out), out)
			}
			if r := egressTo(np, "4222/TCP"); r == nil || len(r.peers) != 1 || !reflect.DeepEqual(r.peers[0], tc.natsPeer) {
				t.Errorf("egress to NATS %+v, want only %v", r, tc.natsPeer)
			}
			if r := egressTo(np, "53/UDP"); r == nil || !slices.Contains(r.ports, "53/TCP") || len(r.peers) != 1 || dig(r.peers[0], "podSelector", "matchLabels", "k8s-app") != "kube-dns" {
				t.Errorf("egress to DNS %+v, want the cluster DNS on 53", r)
			}
			var vc, slack *rule
			for _, r := range out {
				if slices.Equal(r.ports, []string{"443/TCP"}) && len(r.peers) > 0 && dig(r.peers[0], "ipBlock", "except") != nil {
					slack = &r
				} else if slices.Equal(r.ports, []string{"443/TCP"}) {
					vc = &r
				}
			}
			if vc == nil || !reflect.DeepEqual(vc.peers, tc.vcenterPeers) {
				t.Errorf("egress to the vCenters %+v, want 443 to %v", vc, tc.vcenterPeers)
			}
			if slack == nil || dig(slack.peers[0], "ipBlock", "cidr") != "0.0.0.0/0" ||
				!strings.Contains(fmt.Sprint(dig(slack.peers[0], "ipBlock", "except")), "10.0.0.0/8") {
				t.Errorf("egress to Slack %+v, want 443 to the internet, private ranges excepted", slack)
			}
			for _, r := range out {
				if slices.Contains(r.ports, "902/TCP") {
					t.Errorf("egress opens 902, which is between ESXi hosts: %+v", r)
				}
			}

			sp, ok := objs["NetworkPolicy/xvm-xvmbot-bot-slack"]
			if ok != tc.httpMode {
				t.Errorf("a policy letting Slack's requests in rendered: %v, want it only in http mode", ok)
			}
			if ok {
				if dig(sp.Spec, "podSelector", "matchLabels", "app.kubernetes.io/component") != "bot" {
					t.Errorf("Slack's requests may reach %v, want only the bot pods", dig(sp.Spec, "podSelector"))
				}
				if in := rules(sp, "ingress", "from"); len(in) != 1 || !slices.Equal(in[0].ports, []string{"http/TCP"}) ||
					dig(in[0].peers[0], "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "ingress-nginx" {
					t.Errorf("Slack ingress %+v, want the http port from the ingress controller's namespace", in)
				}
			}

			natsNP, ok := objs["NetworkPolicy/xvm-xvmbot-nats"]
			if ok != (tc.values == "") {
				t.Errorf("a policy for the bundled NATS rendered: %v", ok)
			}
			if ok {
				if sel := dig(natsNP.Spec, "podSelector", "matchLabels"); !reflect.DeepEqual(sel, natsPods) {
					t.Errorf("the NATS policy selects %v, want the bundled NATS pods", sel)
				}
				for _, r := range rules(natsNP, "ingress", "from") {
					if slices.Contains(r.ports, "4222/TCP") && (len(r.peers) != 1 || !reflect.DeepEqual(dig(r.peers[0], "podSelector", "matchLabels"), xvmbotPods) ||
						dig(r.peers[0], "namespaceSelector") != nil) {
						t.Errorf("NATS 4222 is open to %v, want only the xvmbot pods", r.peers)
					}
				}
			}
		})
	}
}

// The approval signing key is mounted in bot pods only, and the config tells the bot where
// it is and the workers which public keys to trust.
func TestRenderApprovalKey(t *testing.T) {
	objs := render(t, "ci/scaleout-values.yaml")
	cfg := renderedConfig(t, objs)
	if got := dig(cfg, "approvals", "signing_key_file"); got != "/run/secrets/xvm-approval-key/seed" {
		t.Errorf("approvals.signing_key_file %v", got)
	}
	if got := dig(cfg, "approvals", "trusted_keys", 0); got != "UCMQNESHKKP2V4A2GFNFAL53JRBKMPWLFTSKUZXPDLQG4XX2PFXRPVU4" {
		t.Errorf("approvals.trusted_keys %v", dig(cfg, "approvals", "trusted_keys"))
	}
	if got := dig(cfg, "approvals", "approvers", 0); got != "U012ABC" {
		t.Errorf("the rest of approvals was lost: approvers %v", got)
	}
	mounts := func(role string) (secret, path any) {
		spec := dig(objs["StatefulSet/xvm-xvmbot-"+role].Spec, "template", "spec")
		vols, _ := dig(spec, "volumes").([]any)
		for _, v := range vols {
			if dig(v, "name") == "approval-key" {
				secret = dig(v, "secret", "secretName")
			}
		}
		ms, _ := dig(spec, "containers", 0, "volumeMounts").([]any)
		for _, m := range ms {
			if dig(m, "name") == "approval-key" {
				path = dig(m, "mountPath")
			}
		}
		return secret, path
	}
	if s, p := mounts("bot"); s != "xvmbot-approval-key" || p != "/run/secrets/xvm-approval-key" {
		t.Errorf("bot pods mount the key from %v at %v", s, p)
	}
	if s, p := mounts("worker"); s != nil || p != nil {
		t.Errorf("worker pods mount the signing key (%v at %v): it is the bot's alone", s, p)
	}
}

// TestPodsKeepTheirNames: bot and worker pods keep their names across restarts (a
// StatefulSet's), and the config leaves worker.name to its default, the pod's name: a
// restarted worker takes its running jobs back at once and a restarted bot posts what its
// queue held, instead of waiting out a dead pod's leases and post queue.
func TestPodsKeepTheirNames(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"", "ci/scaleout-values.yaml"} {
		objs := render(t, file)
		for _, role := range []string{"bot", "worker"} {
			sts, ok := objs["StatefulSet/xvm-xvmbot-"+role]
			if !ok {
				t.Fatalf("%s: the %s pods are not a StatefulSet's (have %v)", file, role, keys(objs))
			}
			svc, _ := dig(sts.Spec, "serviceName").(string)
			if _, ok := objs["Service/"+svc]; !ok {
				t.Errorf("%s: %s StatefulSet's serviceName %q is not a rendered Service", file, role, svc)
			}
			if p := dig(sts.Spec, "podManagementPolicy"); p != "Parallel" {
				t.Errorf("%s: %s podManagementPolicy %v, want Parallel (no pod waits on another)", file, role, p)
			}
			if _, ok := objs["Deployment/xvm-xvmbot-"+role]; ok {
				t.Errorf("%s: a Deployment of %s pods is rendered too", file, role)
			}
		}
		if name := dig(renderedConfig(t, objs), "worker", "name"); name != nil && name != "" {
			t.Errorf("%s: worker.name is %v for every pod; want it left to each pod's own name", file, name)
		}
	}
}
