package chartrender

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the chart README's values table from values.yaml")

const (
	readmePath  = chartPath + "/README.md"
	valuesBegin = "<!-- values table: generated from values.yaml by `go test -run TestReadmeValues -update` in deploy/chartrender -->"
	valuesEnd   = "<!-- end of values table -->"
)

// TestReadmeValues keeps the chart README's table of values equal to values.yaml: every
// value, its default and the comment written above or beside it. Run with -update after
// changing values.yaml.
func TestReadmeValues(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartPath, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := valuesTable(raw)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(readme), valuesBegin)
	_, after, ok2 := strings.Cut(rest, valuesEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %q … %q", readmePath, valuesBegin, valuesEnd)
	}
	want := before + valuesBegin + "\n" + table + valuesEnd + after
	if want == string(readme) {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's values table is not values.yaml's: run `go test -run TestReadmeValues -update` in deploy/chartrender", readmePath)
}

// valuesTable renders values.yaml as a Markdown table: one row per value (a map's own row
// carries its comment), in the file's order.
func valuesTable(raw []byte) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return "", fmt.Errorf("values.yaml is not a map")
	}
	var b strings.Builder
	b.WriteString("| Value | Default | What it is |\n|---|---|---|\n")
	var walk func(prefix string, m *yaml.Node) error
	walk = func(prefix string, m *yaml.Node) error {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			key := prefix + k.Value
			note := comment(k.HeadComment, k.LineComment, v.LineComment)
			if v.Kind == yaml.MappingNode && len(v.Content) > 0 && key != "nats.permissions" {
				if note != "" {
					fmt.Fprintf(&b, "| `%s` | | %s |\n", key, note)
				}
				if err := walk(key+".", v); err != nil {
					return err
				}
				continue
			}
			def, err := defaultOf(v)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", key, def, note)
		}
		return nil
	}
	if err := walk("", doc.Content[0]); err != nil {
		return "", err
	}
	return b.String(), nil
}

// comment joins YAML comments into one table cell: without the # marks, and without the
// commented-out examples (lines of a comment indented under its text).
func comment(parts ...string) string {
	var words []string
	for _, p := range parts {
		for _, line := range strings.Split(p, "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "#")
			if line == "" || strings.HasPrefix(line, "   ") {
				continue
			}
			words = append(words, strings.TrimSpace(line))
		}
	}
	return strings.ReplaceAll(strings.Join(words, " "), "|", `\|`)
}

// defaultOf is a value's default as compact JSON in a code span; long lists are elided.
func defaultOf(v *yaml.Node) (string, error) {
	var x any
	if err := v.Decode(&x); err != nil {
		return "", err
	}
	if l, ok := x.([]any); ok && len(l) > 4 {
		return fmt.Sprintf("%d entries, see values.yaml", len(l)), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return "", err
	}
	s := strings.TrimSpace(buf.String())
	if len(s) > 80 {
		return "see values.yaml", nil
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`", nil
}
