package deploy

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	runbooksFile = "../docs/runbooks.md"
	runbookBase  = "https://github.com/xvmbot/xvmbot/blob/main/docs/runbooks.md#"
)

// Every alert links its own section of docs/runbooks.md, which has one section per alert
// and none for an alert that does not exist: whoever is paged lands on what to do.
func TestEveryAlertHasARunbook(t *testing.T) {
	rules, _ := ruleExprs(t)
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)\s*$`).FindAllStringSubmatch(string(readFile(t, runbooksFile)), -1) {
		sections[m[1]] = true
	}
	alerts := map[string]bool{}
	for _, r := range rules {
		alerts[r.Alert] = true
		// GitHub's anchor of "## XvmbotDown" is #xvmbotdown.
		if want := runbookBase + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !sections[r.Alert] {
			t.Errorf("%s: no section \"## %s\" in docs/runbooks.md", r.Alert, r.Alert)
		}
	}
	for s := range sections {
		if !alerts[s] {
			t.Errorf("docs/runbooks.md has a section for %s, which is no alert", s)
		}
	}
}

// Every alert has promtool unit tests in rules-test/ (run by .ci/run): at least one case
// where it fires and one where it stays silent. promtool itself checks that the cases
// pass; this checks that none is missing.
func TestEveryAlertHasRuleTests(t *testing.T) {
	type testFile struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	files, err := filepath.Glob("rules-test/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests in rules-test/: %v", err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		var tf testFile
		if err := yaml.Unmarshal(readFile(t, f), &tf); err != nil { // promtool checks the rest of the format
			t.Fatalf("%s: %v", f, err)
		}
		if !slices.Contains(tf.RuleFiles, "../"+rulesFile) {
			t.Errorf("%s tests %v, not %s", f, tf.RuleFiles, rulesFile)
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	rules, _ := ruleExprs(t)
	for _, r := range rules {
		if !fires[r.Alert] {
			t.Errorf("%s: no promtool test case in rules-test/ where it fires", r.Alert)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no promtool test case in rules-test/ where it stays silent", r.Alert)
		}
	}
}
