package system

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

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
// process: it is the process's, not one System's. The default limit is a floor, not a
// ceiling: it returns a function to run until the process ends that keeps the limit at
// least half again above the live heap (followLiveHeap), so a process whose live heap
// outgrows the default (an inventory mirror of tens of thousands of VMs) does not collect
// without pause; it returns nil when the limit came from the file or GOMEMLIMIT.
func applyMemoryLimit(cfg *config.Config, logger *slog.Logger) (follow func(context.Context)) {
	limit, from := memoryLimit(cfg.Limits.MemoryLimit, os.Getenv("GOMEMLIMIT"))
	debug.SetMemoryLimit(limit)
	if limit == math.MaxInt64 {
		logger.Info("no soft memory limit", "from", from)
		return nil
	}
	logger.Info("soft memory limit", "bytes", limit, "from", from)
	if from != "default" {
		return nil
	}
	return func(ctx context.Context) {
		followLiveHeap(ctx, 10*time.Second, liveHeap, func(limit int64) {
			debug.SetMemoryLimit(limit)
			logger.Debug("soft memory limit follows the live heap", "bytes", limit)
		})
	}
}

// defaultLimitFor is the default soft limit for a live heap of live bytes: the default,
// or half again above the live heap when that is more (below that, Go would collect
// almost without pause to stay under the limit).
func defaultLimitFor(live uint64) int64 {
	return max(config.DefaultMemoryLimit, int64(live/2*3))
}

// followLiveHeap sets the default limit for the live heap (read) every interval until ctx
// ends, calling set only when the limit changes.
func followLiveHeap(ctx context.Context, every time.Duration, read func() uint64, set func(int64)) {
	current := int64(config.DefaultMemoryLimit)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if limit := defaultLimitFor(read()); limit != current {
			current = limit
			set(limit)
		}
	}
}

// liveHeap is the heap the last collection found live, in bytes.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
