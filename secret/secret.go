// Package secret holds the Secret type: a string that never prints itself.
package secret

import (
	"encoding/json"
	"log/slog"
)

// Redacted is what a Secret shows instead of its value.
const Redacted = "[redacted]"

// Secret is a credential (token, password, signing secret). Its String, GoString,
// LogValue, MarshalJSON and MarshalYAML all redact, so it can be logged, formatted or
// serialised by mistake without leaking; Reveal is the one way to read it.
type Secret string

// Reveal returns the clear value; call it only where the value is sent to its owner.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether no value is set.
func (s Secret) IsZero() bool { return s == "" }

// String redacts.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString redacts (%#v).
func (s Secret) GoString() string { return s.String() }

// LogValue redacts in slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
