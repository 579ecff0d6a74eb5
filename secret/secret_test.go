package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const clear = "hunter2-very-secret"
	s := Secret(clear)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("login", "password", s)
	js, err := json.Marshal(struct{ P Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	y, _ := s.MarshalYAML()
	for name, out := range map[string]string{
		//lint:ignore S1025 the test is about what fmt's %s verb prints, not String
		"%s": fmt.Sprintf("%s", s), "%v": fmt.Sprintf("%v", s), "%#v": fmt.Sprintf("%#v", s),
		"%+v struct": fmt.Sprintf("%+v", struct{ P Secret }{s}),
		"slog":       logs.String(), "json": string(js), "yaml": fmt.Sprint(y),
	} {
		if strings.Contains(out, clear) {
			t.Errorf("%s leaks the secret: %q", name, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s does not say it redacted: %q", name, out)
		}
	}
	if s.Reveal() != clear {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
	if Secret("").String() != "" || !Secret("").IsZero() {
		t.Fatal("empty secret should print empty")
	}
}
