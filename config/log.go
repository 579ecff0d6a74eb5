package config

import (
	"io"
	"log/slog"
	"strings"
)

// LogConfig sets the logger.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// DefaultLogConfig is the log section's default: info, as text.
var DefaultLogConfig = LogConfig{Level: "info", Format: "text"}

// UnmarshalYAML starts from DefaultLogConfig.
func (l *LogConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*l = DefaultLogConfig
	type plain LogConfig
	return unmarshal((*plain)(l))
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func (l LogConfig) validate() error {
	var p problems
	if _, ok := logLevels[strings.ToLower(l.Level)]; !ok {
		p.add("log.level must be debug, info, warn or error, not %q", l.Level)
	}
	if l.Format != "text" && l.Format != "json" {
		p.add("log.format must be text or json, not %q", l.Format)
	}
	return p.err()
}

// NewLogger returns the logger these settings ask for, writing to w.
func (l LogConfig) NewLogger(w io.Writer) *slog.Logger {
	level, ok := logLevels[strings.ToLower(l.Level)]
	if !ok {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
