package move

import (
	"fmt"
	"slices"
	"strings"
)

// DiskFormat is the wizard's "Select virtual disk format".
type DiskFormat string

// The disk formats. "" means Same wherever a DiskFormat is optional.
const (
	Same  DiskFormat = "same"  // the format each disk has in the source
	Thin  DiskFormat = "thin"  // thin provisioned
	Thick DiskFormat = "thick" // thick provisioned, lazily zeroed
	Eager DiskFormat = "eager" // thick provisioned, eagerly zeroed
)

// DiskFormats are the disk formats, in the order people are offered them.
var DiskFormats = []DiskFormat{Same, Thin, Thick, Eager}

// ParseDiskFormat reads a disk format as typed, in any case; anything else is an error
// that lists the formats.
func ParseDiskFormat(s string) (DiskFormat, error) {
	f := DiskFormat(strings.ToLower(s))
	if !f.Valid() {
		return "", fmt.Errorf("%q is not a disk format: use %s", s, words(DiskFormats))
	}
	return f, nil
}

// Valid reports whether f is one of DiskFormats ("" is not).
func (f DiskFormat) Valid() bool { return slices.Contains(DiskFormats, f) }

// Priority is the vMotion priority of a move.
type Priority string

// The priorities. "" means PriorityDefault wherever a Priority is optional.
const (
	PriorityDefault Priority = "default"
	PriorityHigh    Priority = "high"
)

// Priorities are the priorities, in the order people are offered them.
var Priorities = []Priority{PriorityDefault, PriorityHigh}

// ParsePriority reads a priority as typed, in any case; anything else is an error that
// lists the priorities.
func ParsePriority(s string) (Priority, error) {
	p := Priority(strings.ToLower(s))
	if !p.Valid() {
		return "", fmt.Errorf("%q is not a priority: use %s", s, words(Priorities))
	}
	return p, nil
}

// Valid reports whether p is one of Priorities ("" is not).
func (p Priority) Valid() bool { return slices.Contains(Priorities, p) }

// words lists values as a sentence does: "a, b or c".
func words[T ~string](vs []T) string {
	var b strings.Builder
	for i, v := range vs {
		switch {
		case i == 0:
		case i == len(vs)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(string(v))
	}
	return b.String()
}
