package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// checkShape walks the document along Config's yaml tags before it is decoded, so that
// a key that is not one, or a value of the wrong kind, is reported by its path in the
// file and in plain words ("nats.ack_wait: want a duration like 30s or 72h, got
// \"3 days\"") rather than by a Go type. expanded holds the text as written of each
// scalar whose ${ENV} references were expanded: such a value is shown as written, never
// as expanded, since it may be a secret.
func checkShape(root *yaml.Node, t reflect.Type, expanded map[*yaml.Node]string) error {
	w := shapeWalker{expanded: expanded}
	w.walk("", root, t, 0)
	return errors.Join(w.errs...)
}

type shapeWalker struct {
	expanded map[*yaml.Node]string
	errs     []error
}

var durationType = reflect.TypeFor[time.Duration]()

// maxDepth bounds the walk through aliases; the config is a few levels deep.
const maxDepth = 32

func (w *shapeWalker) walk(path string, n *yaml.Node, t reflect.Type, depth int) {
	if depth > maxDepth {
		w.errs = append(w.errs, fmt.Errorf("%s (line %d): nested too deep", orTop(path), n.Line))
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			w.walk(path, c, t, depth+1)
		}
		return
	case yaml.AliasNode:
		if n.Alias != nil {
			w.walk(path, n.Alias, t, depth+1)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the default
	}
	bad := func(format string, a ...any) {
		w.errs = append(w.errs, fmt.Errorf("%s (line %d): "+format, append([]any{orTop(path), n.Line}, a...)...))
	}
	if t == durationType {
		if n.Kind != yaml.ScalarNode {
			bad("want a duration like 30s, 10m or 72h, got %s", w.describe(n))
		} else if _, err := time.ParseDuration(n.Value); err != nil {
			bad("want a duration like 30s, 10m or 72h, got %s", w.describe(n))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := yamlFields(t)
		if n.Kind != yaml.MappingNode {
			bad("want a mapping with the keys %s, got %s", strings.Join(sortedKeys(fields), ", "), w.describe(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if w.twice(path, k, seen) {
				continue
			}
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				merged := []*yaml.Node{v}
				if v.Kind == yaml.SequenceNode { // <<: [*a, *b]
					merged = v.Content
				}
				for _, m := range merged {
					w.walk(path, m, t, depth+1)
				}
				continue
			}
			p := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				w.errs = append(w.errs, fmt.Errorf("%s (line %d): unknown key; %s has %s", p, k.Line, orTop(path),
					strings.Join(sortedKeys(fields), ", ")))
				continue
			}
			w.walk(p, v, f, depth+1)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad("want a mapping of names to values, got %s", w.describe(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !w.twice(path, n.Content[i], seen) {
				w.walk(join(path, n.Content[i].Value), n.Content[i+1], t.Elem(), depth+1)
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad("want a list, got %s", w.describe(n))
			return
		}
		for i, c := range n.Content {
			w.walk(fmt.Sprintf("%s[%d]", path, i), c, t.Elem(), depth+1)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			bad("want a single value, got %s", w.describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			bad("want true or false, got %s", w.describe(n))
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			bad("want a whole number, got %s", w.describe(n))
		}
	}
}

// twice reports a key written a second time in one mapping: YAML forbids it, and which of
// the two values would win is anybody's guess.
func (w *shapeWalker) twice(path string, k *yaml.Node, seen map[string]int) bool {
	if k.Value == "<<" && k.ShortTag() == "!!merge" {
		return false
	}
	if first, ok := seen[k.Value]; ok {
		w.errs = append(w.errs, fmt.Errorf("%s (line %d): set twice (first on line %d); keep one", join(path, k.Value), k.Line, first))
		return true
	}
	seen[k.Value] = k.Line
	return false
}

// yamlLine is how go-yaml begins a syntax error: "yaml: line 3: …".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError says where a file stops being YAML, with a hint at the usual causes.
func syntaxError(err error) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("the file is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	hint := ""
	switch {
	case strings.Contains(m[2], "cannot start any token"):
		hint = " (a tab? YAML indents with spaces only)"
	case strings.Contains(m[2], "expected key"), strings.Contains(m[2], "expected ':'"),
		strings.Contains(m[2], "mapping values are not allowed"):
		hint = " (check this line's indentation against the line above, and that each key is followed by \": \")"
	}
	return fmt.Errorf("line %s: the file is not valid YAML: %s%s", m[1], m[2], hint)
}

// describe says what a value is: a list, a mapping, or the scalar as written in the file.
func (w *shapeWalker) describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if orig, ok := w.expanded[n]; ok {
		return fmt.Sprintf("%q (its expanded value is not shown)", orig)
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlFields maps each yaml key of struct type t to its field's type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the config"
	}
	return path
}
