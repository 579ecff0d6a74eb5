package system

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/xvmbot/xvmbot/config"
)

// memoryLimit is the soft memory limit the process runs under, from limits.memory_limit
// and the GOMEMLIMIT environment variable (goMemLimit, "" when unset), and where it
// comes from. A limit in the file wins over GOMEMLIMIT; GOMEMLIMIT (which Go has already
// applied) wins over the default, so a container can size it from its own limit.
func memoryLimit(configured int64, goMemLimit string) (limit int64, from string) {
	switch {
	case configured > 0:
		return configured, "limits.memory_limit"
	case configured < 0:
		return math.MaxInt64, "limits.memory_limit"
	case goMemLimit != "":
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	}
	return config.DefaultMemoryLimit, "default"
}

// applyMemoryLimit sets the process's soft memory limit (runtime/debug.SetMemoryLimit):
// Go then collects more often as its memory nears the limit, instead of letting the heap
// grow to twice what is live. It is soft: a live heap above it is not an error, Go
// collects as often as its CPU cap for the collector allows. Only Serve calls it, once a
// process: it is the process's, not one System's.
func applyMemoryLimit(cfg *config.Config, logger *slog.Logger) {
	limit, from := memoryLimit(cfg.Limits.MemoryLimit, os.Getenv("GOMEMLIMIT"))
	debug.SetMemoryLimit(limit)
	if limit == math.MaxInt64 {
		logger.Info("no soft memory limit", "from", from)
		return
	}
	logger.Info("soft memory limit", "bytes", limit, "from", from)
}
