package system

import (
	"math"
	"runtime/debug"
	"testing"

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
