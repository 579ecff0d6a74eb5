package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/system"
)

const (
	chartDir      = "helm/xvmbot"
	rulesFile     = chartDir + "/files/xvmbot-rules.yaml"
	dashboardFile = chartDir + "/files/xvmbot-dashboard.json"
)

// TestFilesParse parses every YAML and JSON file under deploy/ except the chart's
// templates, which are Go templates (TestChartTemplatesWellFormed and the chartrender
// module cover those).
func TestFilesParse(t *testing.T) {
	var n int
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == filepath.Join(chartDir, "templates") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			n++
			t.Run(path, func(t *testing.T) {
				docs := decodeYAML(t, path)
				if len(docs) == 0 {
					t.Fatal("no YAML document")
				}
			})
		case ".json":
			n++
			t.Run(path, func(t *testing.T) {
				var v any
				if err := json.Unmarshal(readFile(t, path), &v); err != nil {
					t.Fatal(err)
				}
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("found only %d YAML/JSON files under deploy/; did the layout move?", n)
	}
}

// TestChart checks Chart.yaml, the values files and that every template has balanced
// {{ }} actions and a matching end for every block.
func TestChart(t *testing.T) {
	var chart struct {
		APIVersion   string `yaml:"apiVersion"`
		Name         string `yaml:"name"`
		Version      string `yaml:"version"`
		AppVersion   string `yaml:"appVersion"`
		Dependencies []struct {
			Name, Version, Repository, Condition string
		} `yaml:"dependencies"`
	}
	if err := yaml.Unmarshal(readFile(t, chartDir+"/Chart.yaml"), &chart); err != nil {
		t.Fatal(err)
	}
	if chart.APIVersion != "v2" || chart.Name != "xvmbot" || chart.Version == "" || chart.AppVersion == "" {
		t.Errorf("Chart.yaml: apiVersion v2, name xvmbot, version and appVersion are required: %+v", chart)
	}
	if len(chart.Dependencies) > 0 {
		t.Errorf("Chart.yaml names dependencies %+v: the chart must install with nothing fetched (the bundled NATS is its own templates)", chart.Dependencies)
	}

	values := decodeYAML(t, chartDir+"/values.yaml")[0].(map[string]any)
	for _, key := range []string{"image", "bot", "worker", "config", "service", "probes", "metrics", "nats", "externalNATS", "natsAuth", "networkPolicy"} {
		if _, ok := values[key]; !ok {
			t.Errorf("values.yaml lacks %s", key)
		}
	}
	probes := values["probes"].(map[string]any)
	if p := probes["liveness"].(map[string]any)["path"]; p != "/healthz" {
		t.Errorf("liveness probe path %v, want /healthz", p)
	}
	if p := probes["readiness"].(map[string]any)["path"]; p != "/readyz" {
		t.Errorf("readiness probe path %v, want /readyz", p)
	}

	templates, err := filepath.Glob(chartDir + "/templates/*")
	if err != nil || len(templates) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	for _, path := range templates {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if err := checkTemplate(string(readFile(t, path))); err != nil {
				t.Error(err)
			}
		})
	}
	for _, want := range []string{"statefulset-bot.yaml", "statefulset-worker.yaml", "secret.yaml", "servicemonitor.yaml", "networkpolicy.yaml", "nats-users-secret.yaml",
		"nats-statefulset.yaml", "nats-service.yaml", "nats-config.yaml", "poddisruptionbudget.yaml"} {
		if !slices.Contains(templates, chartDir+"/templates/"+want) {
			t.Errorf("templates/%s is missing", want)
		}
	}
}

var actionRE = regexp.MustCompile(`(?s)\{\{-?\s*(.*?)\s*-?\}\}`)

// checkTemplate finds unbalanced {{ }} and block keywords (if/range/with/define/block)
// without their end. It is not a renderer: the chartrender module renders with Helm.
func checkTemplate(src string) error {
	if o, c := strings.Count(src, "{{"), strings.Count(src, "}}"); o != c {
		return fmt.Errorf("%d {{ but %d }}", o, c)
	}
	depth := 0
	for _, m := range actionRE.FindAllStringSubmatch(src, -1) {
		body := m[1]
		if strings.HasPrefix(body, "/*") {
			continue
		}
		word, _, _ := strings.Cut(body, " ")
		switch word {
		case "if", "range", "with", "define", "block":
			depth++
		case "end":
			depth--
		}
		if depth < 0 {
			return errors.New("{{ end }} without an opening block")
		}
	}
	if depth != 0 {
		return fmt.Errorf("%d block(s) without {{ end }}", depth)
	}
	return nil
}

// metricsRegistered returns the xvm_ metric names the Go code registers (Name: "xvm_…").
func metricsRegistered(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(xvm_[a-z0-9_]+)"`) // opts, or a Collector's Desc
	got := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "deploy", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		for _, m := range re.FindAllSubmatch(readFile(t, path), -1) {
			got[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var metricRE = regexp.MustCompile(`\bxvm_[a-z0-9_]+`)

// metricsUsed extracts xvm_ names from PromQL expressions, mapping a histogram's
// _bucket/_sum/_count series back to the registered name.
func metricsUsed(exprs []string, registered map[string]bool) map[string]bool {
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricRE.FindAllString(e, -1) {
			if !registered[name] {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(name, suffix); ok && registered[base] {
						name = base
					}
				}
			}
			used[name] = true
		}
	}
	return used
}

func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, dashboardFile), &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if err := checkPromQL(tg.Expr); err != nil {
				t.Errorf("dashboard panel %q: %v", p.Title, err)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func ruleExprs(t *testing.T) ([]alertRule, []string) {
	t.Helper()
	var file struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	unmarshalStrict(t, rulesFile, &file)
	var rules []alertRule
	var exprs []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: alert, labels.severity and annotations.summary are required", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for: %v", r.Alert, err)
				}
			}
			if err := checkPromQL(r.Expr); err != nil {
				t.Errorf("rule %s: %v", r.Alert, err)
			}
			rules = append(rules, r)
			exprs = append(exprs, r.Expr)
		}
	}
	return rules, exprs
}

// checkPromQL is a cheap sanity check (no PromQL parser here): non-empty, balanced
// brackets, quotes closed.
func checkPromQL(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return errors.New("empty expression")
	}
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inQuote := false
	for _, r := range expr {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return fmt.Errorf("unbalanced %q in %s", r, expr)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote || len(stack) > 0 {
		return fmt.Errorf("unclosed quote or bracket in %s", expr)
	}
	return nil
}

// TestMetricsMatchCode checks that the dashboard and the alert rules use only metrics the
// code registers, and that the important ones are on the dashboard and alerted on.
func TestMetricsMatchCode(t *testing.T) {
	registered := metricsRegistered(t)
	if len(registered) < 9 {
		t.Fatalf("found only %d registered xvm_ metrics in the Go code: %v", len(registered), keys(registered))
	}
	dash := metricsUsed(dashboardExprs(t), registered)
	_, exprs := ruleExprs(t)
	rules := metricsUsed(exprs, registered)

	for _, c := range []struct {
		what string
		used map[string]bool
	}{{"dashboard", dash}, {"alert rules", rules}} {
		for name := range c.used {
			if !registered[name] {
				t.Errorf("%s use %s, which no Go code registers (registered: %v)", c.what, name, keys(registered))
			}
		}
	}
	important := []string{
		"xvm_jobs_total", "xvm_job_duration_seconds", "xvm_jobs_in_flight", "xvm_jobs_queued",
		"xvm_approvals_total", "xvm_commands_total", "xvm_slack_api_calls_total",
		"xvm_vcenter_task_results_total", "xvm_vcenter_up", "xvm_slack_ack_seconds",
		"xvm_slack_work_refused_total", "xvm_slack_work_queued", "xvm_job_oldest_running_seconds",
	}
	for _, name := range important {
		if !registered[name] {
			t.Errorf("%s is no longer registered by the code: update the dashboard, the rules and this list", name)
		}
		if !dash[name] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
	// The alerts: jobs failing, queue not draining, approvals expiring, Slack or
	// vCenter unreachable.
	for _, name := range []string{"xvm_jobs_total", "xvm_jobs_queued", "xvm_approvals_total", "xvm_slack_api_calls_total", "xvm_vcenter_up"} {
		if !rules[name] {
			t.Errorf("no alert rule uses %s", name)
		}
	}
	for name := range registered {
		if !dash[name] {
			t.Logf("note: %s is registered but not on the dashboard", name)
		}
	}
}

// TestConfigKeys walks every xvmbot config shown under deploy/ — the example, the compose
// one and the chart's config values — against the yaml tags of the config package's types
// (read by reflection from config.Config). An unknown key fails, as it would fail
// xvmbot's strict loader.
func TestConfigKeys(t *testing.T) {
	schema := configSchema(t)
	configs := map[string]any{
		"xvmbot.example.yaml":         decodeYAML(t, "xvmbot.example.yaml")[0],
		"compose/xvmbot.yaml":         decodeYAML(t, "compose/xvmbot.yaml")[0],
		"helm values.yaml config":     decodeYAML(t, chartDir+"/values.yaml")[0].(map[string]any)["config"],
		"helm scaleout values config": decodeYAML(t, chartDir+"/ci/scaleout-values.yaml")[0].(map[string]any)["config"],
	}
	for name, doc := range configs {
		t.Run(name, func(t *testing.T) {
			for _, err := range schema.check("", "Config", doc) {
				t.Error(err)
			}
		})
	}

	// Every key is documented in the example, as a key or in a commented-out line.
	example := string(readFile(t, "xvmbot.example.yaml"))
	for _, path := range schema.paths("", "Config") {
		leaf := path[strings.LastIndex(path, ".")+1:]
		if !regexp.MustCompile(`(?m)^\s*#?\s*(- )?` + regexp.QuoteMeta(leaf) + `:`).MatchString(example) {
			t.Errorf("xvmbot.example.yaml does not document %s", path)
		}
	}
}

// field is one yaml-tagged field of a config struct.
type field struct {
	typ   string // struct name, or a scalar kind: string, int, bool, duration
	slice bool   // a list of typ
	dict  bool   // a mapping of names to typ
}

type schema map[string]map[string]field // struct name → yaml key → field

func configSchema(t *testing.T) schema {
	t.Helper()
	s := schema{}
	s.add(reflect.TypeFor[config.Config]())
	if len(s["Config"]) < 8 {
		t.Fatalf("config.Config: found only %v top-level keys", s["Config"])
	}
	return s
}

// add records struct type t and every struct type under it.
func (s schema) add(t reflect.Type) {
	if _, done := s[t.Name()]; done {
		return
	}
	fields := map[string]field{}
	s[t.Name()] = fields
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fl := fieldOf(f.Type)
		if inner := elemType(f.Type); inner.Kind() == reflect.Struct {
			s.add(inner)
		}
		fields[name] = fl
	}
}

func elemType(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		return t.Elem()
	}
	return t
}

var durationType = reflect.TypeFor[time.Duration]()

func fieldOf(t reflect.Type) field {
	switch {
	case t == durationType:
		return field{typ: "duration"}
	case t.Kind() == reflect.Slice:
		f := fieldOf(t.Elem())
		f.slice = true
		return f
	case t.Kind() == reflect.Map:
		f := fieldOf(t.Elem())
		f.dict = true
		return f
	case t.Kind() == reflect.Struct:
		return field{typ: t.Name()}
	}
	switch t.Kind() {
	case reflect.String: // also secret.Secret
		return field{typ: "string"}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return field{typ: "int"}
	case reflect.Bool:
		return field{typ: "bool"}
	}
	return field{typ: t.String()}
}

func (s schema) check(path, typ string, v any) []error {
	fields, isStruct := s[typ]
	if !isStruct {
		return checkScalar(path, typ, v)
	}
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return []error{fmt.Errorf("%s: want a mapping, have %T", path, v)}
	}
	var errs []error
	for k, val := range m {
		p := strings.TrimPrefix(path+"."+k, ".")
		f, ok := fields[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown key (config.%s has no yaml:%q)", p, typ, k))
			continue
		}
		if f.dict {
			if val == nil {
				continue
			}
			mm, ok := val.(map[string]any)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: want a mapping, have %T", p, val))
				continue
			}
			for mk, mv := range mm {
				errs = append(errs, s.check(p+"."+mk, f.typ, mv)...)
			}
			continue
		}
		if !f.slice {
			errs = append(errs, s.check(p, f.typ, val)...)
			continue
		}
		if val == nil {
			continue
		}
		list, ok := val.([]any)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: want a list, have %T", p, val))
			continue
		}
		for i, item := range list {
			errs = append(errs, s.check(fmt.Sprintf("%s[%d]", p, i), f.typ, item)...)
		}
	}
	return errs
}

var envRefRE = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}$`)

func checkScalar(path, typ string, v any) []error {
	bad := func() []error { return []error{fmt.Errorf("%s: %v is not a %s", path, v, typ)} }
	if s, ok := v.(string); ok && envRefRE.MatchString(s) {
		return nil // expanded at load time
	}
	switch typ {
	case "string":
		if _, ok := v.(string); !ok && v != nil {
			return bad()
		}
	case "int":
		if _, ok := v.(int); !ok {
			return bad()
		}
	case "bool":
		if _, ok := v.(bool); !ok {
			return bad()
		}
	case "duration":
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if _, err := time.ParseDuration(s); err != nil {
			return bad()
		}
	default:
		return []error{fmt.Errorf("%s: unknown field type %s in package config", path, typ)}
	}
	return nil
}

// paths lists every key path of typ (lists shown as the key).
func (s schema) paths(prefix, typ string) []string {
	var out []string
	for k, f := range s[typ] {
		p := strings.TrimPrefix(prefix+"."+k, ".")
		out = append(out, p)
		if _, ok := s[f.typ]; ok {
			out = append(out, s.paths(p, f.typ)...)
		}
	}
	sort.Strings(out)
	return out
}

// TestDockerfile checks what can be checked without an engine: a build stage, a static
// (CGO_ENABLED=0) build, a distroless final stage, a non-root USER and OCI labels.
func TestDockerfile(t *testing.T) {
	src := string(readFile(t, "../Dockerfile"))
	var froms []string
	var user string
	for _, line := range strings.Split(src, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			froms = append(froms, strings.Join(fields[1:], " "))
		case "USER":
			user = fields[1]
		}
	}
	if len(froms) < 2 || !regexp.MustCompile(`(?i)\sAS\s+build$`).MatchString(froms[0]) {
		t.Errorf("want a multi-stage build starting with FROM … AS build, have %q", froms)
	}
	if len(froms) > 0 && !strings.Contains(froms[len(froms)-1], "distroless/static") {
		t.Errorf("final stage %q is not distroless/static", froms[len(froms)-1])
	}
	if uid, _, _ := strings.Cut(user, ":"); user == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if !strings.Contains(src, "CGO_ENABLED=0") {
		t.Error("the binary is not built with CGO_ENABLED=0 (static)")
	}
	for _, label := range []string{"version", "revision", "created", "source", "title"} {
		if !strings.Contains(src, "org.opencontainers.image."+label+"=") {
			t.Errorf("no OCI label org.opencontainers.image.%s", label)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeYAML(t *testing.T, path string) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if v != nil {
			docs = append(docs, v)
		}
	}
}

func unmarshalStrict(t *testing.T, path string, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// natsUsers is who may connect to a NATS server and what each may do, by user name.
type natsUsers map[string]events.Permissions

// wantNATSUsers are the users compose's and the chart's NATS must have: the code's roles.
func wantNATSUsers() natsUsers {
	return natsUsers{"xvm-bot": events.RolePermissions(events.RoleBot), "xvm-worker": events.RolePermissions(events.RoleWorker)}
}

func (u natsUsers) check(t *testing.T, where string) {
	t.Helper()
	want := wantNATSUsers()
	if len(u) != len(want) {
		t.Errorf("%s has users %v, want exactly %v", where, keys(setOf(u)), keys(setOf(want)))
	}
	for name, w := range want {
		g, ok := u[name]
		if !ok {
			t.Errorf("%s has no user %s", where, name)
			continue
		}
		for _, c := range []struct {
			what      string
			got, want []string
		}{{"publish", g.Publish, w.Publish}, {"subscribe", g.Subscribe, w.Subscribe}} {
			missing, extra := diff(c.want, c.got), diff(c.got, c.want)
			if len(missing)+len(extra) > 0 {
				t.Errorf("%s: user %s may %s: missing %q, beyond the code's list %q (events.RolePermissions is the reference)",
					where, name, c.what, missing, extra)
			}
		}
	}
}

func setOf(u natsUsers) map[string]bool {
	out := map[string]bool{}
	for k := range u {
		out[k] = true
	}
	return out
}

// diff returns what a has and b does not.
func diff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// TestNATSUsersMatchCode checks that compose's nats-server.conf (as nats-server itself
// parses it) and the chart's bundled-NATS values give the bot and the worker exactly the
// permissions the code declares, with passwords taken from the environment, never
// written in the files.
func TestNATSUsersMatchCode(t *testing.T) {
	t.Run("compose nats-server.conf", func(t *testing.T) {
		conf := readFile(t, "compose/nats/nats-server.conf")
		path := filepath.Join(t.TempDir(), "nats-server.conf")
		vars := "XVM_NATS_BOT_PASSWORD: \"pw-from-env-bot\"\nXVM_NATS_WORKER_PASSWORD: \"pw-from-env-worker\"\n"
		if err := os.WriteFile(path, append([]byte(vars), conf...), 0o600); err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !opts.JetStream || len(opts.Nkeys) > 0 || opts.NoAuthUser != "" {
			t.Errorf("jetstream %v, nkeys %d, no_auth_user %q: want JetStream and only the two password users", opts.JetStream, len(opts.Nkeys), opts.NoAuthUser)
		}
		got := natsUsers{}
		for _, u := range opts.Users {
			p := u.Permissions
			if p == nil || p.Publish == nil || p.Subscribe == nil || len(p.Publish.Deny)+len(p.Subscribe.Deny) > 0 || p.Response != nil {
				t.Errorf("user %s: want publish and subscribe allow lists and nothing else: %+v", u.Username, p)
				continue
			}
			got[u.Username] = events.Permissions{Publish: p.Publish.Allow, Subscribe: p.Subscribe.Allow}
			if want := "pw-from-env-" + strings.TrimPrefix(u.Username, "xvm-"); u.Password != want {
				t.Errorf("user %s: the password is not $XVM_NATS_%s_PASSWORD", u.Username, strings.ToUpper(strings.TrimPrefix(u.Username, "xvm-")))
			}
		}
		got.check(t, "compose/nats/nats-server.conf")
	})

	t.Run("helm values", func(t *testing.T) {
		values := decodeYAML(t, chartDir+"/values.yaml")[0].(map[string]any)
		got := natsUsers{}
		for role, user := range map[string]string{"bot": "xvm-bot", "worker": "xvm-worker"} {
			p := dig(values, "nats", "permissions", role)
			got[user] = events.Permissions{Publish: strList(dig(p, "publish")), Subscribe: strList(dig(p, "subscribe"))}
		}
		got.check(t, "helm values nats.permissions")
		conf := string(readFile(t, chartDir+"/templates/nats-config.yaml"))
		for _, want := range []string{"password: $XVM_NATS_BOT_PASSWORD, permissions: $XVM_BOT", "password: $XVM_NATS_WORKER_PASSWORD, permissions: $XVM_WORKER"} {
			if !strings.Contains(conf, want) {
				t.Errorf("templates/nats-config.yaml: no user with %q (the password from the NATS container's environment)", want)
			}
		}
		auth := values["natsAuth"].(map[string]any)
		if auth["enabled"] != true || auth["botUser"] != "xvm-bot" || auth["workerUser"] != "xvm-worker" {
			t.Errorf("natsAuth %v: want enabled, with the users xvm-bot and xvm-worker", auth)
		}
	})
}

// TestComposeRoles checks that compose runs the bot and the worker apart, each with only
// its own NATS password, and that Prometheus scrapes their ops listeners.
func TestComposeRoles(t *testing.T) {
	compose := decodeYAML(t, "compose/docker-compose.yaml")[0].(map[string]any)
	services := compose["services"].(map[string]any)
	for role, other := range map[string]string{"bot": "WORKER", "worker": "BOT"} {
		svc, ok := services[role].(map[string]any)
		if !ok {
			t.Errorf("compose has no %s service", role)
			continue
		}
		if cmd := strList(svc["command"]); len(cmd) == 0 || cmd[0] != role {
			t.Errorf("compose %s runs %v, want the %s command", role, cmd, role)
		}
		if _, ok := svc["env_file"]; ok {
			t.Errorf("compose %s reads all of .env, with the other role's NATS password", role)
		}
		env := svc["environment"].(map[string]any)
		if env["XVM_NATS_USER"] != "xvm-"+role {
			t.Errorf("compose %s: XVM_NATS_USER %v", role, env["XVM_NATS_USER"])
		}
		pw, _ := env["XVM_NATS_PASSWORD"].(string)
		if !strings.Contains(pw, "XVM_NATS_"+strings.ToUpper(role)+"_PASSWORD") || strings.Contains(fmt.Sprint(env), "XVM_NATS_"+other+"_PASSWORD") {
			t.Errorf("compose %s: XVM_NATS_PASSWORD %q, want its own and only its own password", role, pw)
		}
	}
	if _, ok := services["xvmbot"]; ok {
		t.Error("compose still runs serve (one process, one NATS user for both roles)")
	}
	nats := services["nats"].(map[string]any)
	if !strings.Contains(fmt.Sprint(nats["command"]), "/etc/nats/nats-server.conf") || !strings.Contains(fmt.Sprint(nats["volumes"]), "./nats/nats-server.conf:") {
		t.Errorf("compose's NATS does not run with nats/nats-server.conf: %v %v", nats["command"], nats["volumes"])
	}

	cfg := decodeYAML(t, "compose/xvmbot.yaml")[0].(map[string]any)
	if u, p := dig(cfg, "nats", "user"), dig(cfg, "nats", "password"); u != "${XVM_NATS_USER}" || p != "${XVM_NATS_PASSWORD}" {
		t.Errorf("compose/xvmbot.yaml nats user %v password %v: want each container's own, from its environment", u, p)
	}
	ops, _ := dig(cfg, "http", "ops_listen").(string)
	_, port, _ := strings.Cut(ops, ":")
	prom := decodeYAML(t, "compose/prometheus.yml")[0].(map[string]any)
	var targets []string
	for _, sc := range prom["scrape_configs"].([]any) {
		for _, st := range dig(sc, "static_configs").([]any) {
			targets = append(targets, strList(dig(st, "targets"))...)
		}
	}
	slices.Sort(targets)
	if want := []string{"bot:" + port, "worker:" + port}; port == "" || !slices.Equal(targets, want) {
		t.Errorf("Prometheus scrapes %v, want %v (http.ops_listen %q)", targets, want, ops)
	}
}

// dig walks nested maps: dig(m, "a", "b").
func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// TestNATSPermissionsDocumented checks that docs/nats-permissions.md explains every subject
// the code allows a role: as written, or through its pattern (<S> for a stream created,
// <B> for a bucket) with that stream or bucket named.
func TestNATSPermissionsDocumented(t *testing.T) {
	doc := string(readFile(t, "../docs/nats-permissions.md"))
	created := regexp.MustCompile(`^(\$JS\.API\.STREAM\.(?:CREATE|UPDATE)\.)(\S+)$`)
	bucket := regexp.MustCompile(`(KV_|\$KV\.)(xvm-[a-z]+)`)
	for _, r := range []events.Role{events.RoleBot, events.RoleWorker} {
		p := events.RolePermissions(r)
		for _, s := range append(p.Publish, p.Subscribe...) {
			generic, names := s, []string{}
			if m := created.FindStringSubmatch(s); m != nil {
				generic, names = m[1]+"<S>", append(names, m[2])
			} else {
				generic = bucket.ReplaceAllStringFunc(s, func(b string) string {
					m := bucket.FindStringSubmatch(b)
					names = append(names, m[2])
					return m[1] + "<B>"
				})
			}
			if !strings.Contains(doc, "`"+s+"`") && !strings.Contains(doc, "`"+generic+"`") {
				t.Errorf("docs/nats-permissions.md does not explain the %s's %s (nor %s)", r, s, generic)
			}
			for _, n := range names {
				if !strings.Contains(doc, "`"+n+"`") {
					t.Errorf("docs/nats-permissions.md does not name %s (in the %s's %s)", n, r, s)
				}
			}
		}
	}
}

// TestReleaseVersionsAgree: the chart runs the release the code says it is, and that release
// is the newest in CHANGELOG.md; the image tag defaults to the chart's appVersion, so a
// chart that named another version would run another binary.
func TestReleaseVersionsAgree(t *testing.T) {
	var chart struct {
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(readFile(t, chartDir+"/Chart.yaml"), &chart); err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion != system.ReleaseVersion {
		t.Errorf("Chart.yaml appVersion %q, the code's system.ReleaseVersion %q: set both to the release", chart.AppVersion, system.ReleaseVersion)
	}
	m := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+[^\]]*)\]`).FindStringSubmatch(string(readFile(t, "../CHANGELOG.md")))
	if m == nil || m[1] != system.ReleaseVersion {
		t.Errorf("the newest release in CHANGELOG.md is %v, the code's system.ReleaseVersion %q", m, system.ReleaseVersion)
	}
}
