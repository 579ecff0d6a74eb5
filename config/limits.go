package config

import "github.com/xvmbot/xvmbot/bot"

// LimitsConfig bounds concurrent relocations.
type LimitsConfig struct {
	MaxConcurrent int `yaml:"max_concurrent"`
	PerHost       int `yaml:"per_host"`
	PerDatastore  int `yaml:"per_datastore"`
	PerVCenter    int `yaml:"per_vcenter"`
	// MaxVMsPerRequest caps the VMs of one request, typed, chosen in the wizard or matched
	// by a pattern (0 = 5000); a larger request is refused with an answer that says to
	// split it.
	MaxVMsPerRequest int `yaml:"max_vms_per_request"`
	// MemoryLimit is the soft limit, in bytes, on the memory Go manages for the process
	// (runtime/debug.SetMemoryLimit), set by serve, bot and worker: 0 = the GOMEMLIMIT
	// environment variable when it is set, else DefaultMemoryLimit, raised to half again
	// above the live heap when that is more; -1 = none (Go collects when the heap has
	// doubled, however large that is).
	MemoryLimit int64 `yaml:"memory_limit"`
}

// DefaultMemoryLimit is limits.memory_limit when neither the file nor GOMEMLIMIT sets
// one. serve holds 40–60 MB of live heap with a 5,000-VM request planned or queued
// (BENCHMARKS.md); without a limit Go lets its heap grow to twice that before it
// collects, and serve's resident memory reached 200 MB.
const DefaultMemoryLimit = 100 << 20

// DefaultLimitsConfig follows vSphere's own cost model: a vMotion without shared storage
// costs 4 of a host's 8 units and 16 of a datastore's 128; about 640 operations per
// vCenter.
var DefaultLimitsConfig = LimitsConfig{MaxConcurrent: 8, PerHost: 2, PerDatastore: 8, PerVCenter: 128,
	MaxVMsPerRequest: bot.DefaultMaxVMsPerRequest}

// UnmarshalYAML starts from DefaultLimitsConfig.
func (l *LimitsConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*l = DefaultLimitsConfig
	type plain LimitsConfig
	return unmarshal((*plain)(l))
}

func (l LimitsConfig) validate() error {
	var p problems
	if l.MaxConcurrent < 1 || l.PerHost < 1 || l.PerDatastore < 1 || l.PerVCenter < 1 {
		p.add("limits: max_concurrent, per_host, per_datastore and per_vcenter must be at least 1")
	}
	if l.MemoryLimit < -1 {
		p.add("limits.memory_limit must be a number of bytes, 0 for the default (GOMEMLIMIT, else %d) or -1 for none", DefaultMemoryLimit)
	}
	if l.MaxVMsPerRequest < 0 {
		p.add("limits.max_vms_per_request must be at least 1 (0 = the default, %d)", bot.DefaultMaxVMsPerRequest)
	}
	return p.err()
}
