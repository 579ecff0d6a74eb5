package system

import (
	"context"
	"math"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/config"
)

// TestMemoryLimit: serve runs under a soft memory limit unless told otherwise, so that
// its heap does not grow to twice what is live (a 5,000-VM request took serve to 200 MB
// without one); the file's limit wins, and a GOMEMLIMIT from the environment (a
// container sized from its own limit) wins over the default.
func TestMemoryLimit(t *testing.T) {
	current := debug.SetMemoryLimit(-1) // what Go applied from this process's GOMEMLIMIT
	tests := []struct {
		name       string
		configured int64
		env        string
		want       int64
		from       string
	}{
		{"default", 0, "", config.DefaultMemoryLimit, "default"},
		{"from the file", 64 << 20, "", 64 << 20, "limits.memory_limit"},
		{"the file over GOMEMLIMIT", 64 << 20, "200MiB", 64 << 20, "limits.memory_limit"},
		{"none", -1, "", math.MaxInt64, "limits.memory_limit"},
		{"GOMEMLIMIT as Go applied it", 0, "200MiB", current, "GOMEMLIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, from := memoryLimit(tt.configured, tt.env)
			if got != tt.want || from != tt.from {
				t.Errorf("memoryLimit(%d, %q) = %d from %s, want %d from %s", tt.configured, tt.env, got, from, tt.want, tt.from)
			}
		})
	}
}

// TestDefaultLimitFollowsTheLiveHeap: the default limit is a floor. A process whose live
// heap outgrows it (a large inventory mirror) gets half again above its live heap, and
// the floor again once the heap is small: held at 100 MiB, a 200 MiB live heap would have
// Go collect without pause.
func TestDefaultLimitFollowsTheLiveHeap(t *testing.T) {
	const mib = 1 << 20
	lives := []uint64{40 * mib, 60 * mib, 200 * mib, 200 * mib, 300 * mib, 30 * mib}
	want := []int64{300 * mib, 450 * mib, config.DefaultMemoryLimit}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var set []int64
	n := 0
	read := func() uint64 {
		if n == len(lives) {
			cancel()
			return lives[n-1]
		}
		n++
		return lives[n-1]
	}
	followLiveHeap(ctx, time.Millisecond, read, func(limit int64) { set = append(set, limit) })
	if !slices.Equal(set, want) {
		t.Errorf("limits set %v for live heaps %v, want %v (only changes, the default as the floor)", set, lives, want)
	}
	if got := defaultLimitFor(0); got != config.DefaultMemoryLimit {
		t.Errorf("limit for an empty heap = %d, want the default %d", got, config.DefaultMemoryLimit)
	}
}
