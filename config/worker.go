package config

import "time"

// WorkerConfig names this worker process.
type WorkerConfig struct {
	Name        string `yaml:"name"`
	MaxAttempts int    `yaml:"max_attempts"`
	// PlanReuse is how old a pre-flight may be when a job starts on it (shared by the jobs
	// of a request, kept by a job waiting for a slot); HoldFor is how long a job whose
	// host or datastore is full waits in the worker before going back to the queue.
	PlanReuse time.Duration `yaml:"plan_reuse"`
	HoldFor   time.Duration `yaml:"hold_for"`
}

// DefaultWorkerConfig is the worker section's default: every field's zero means the
// worker's own default (the host name and process id, its attempts, reuse and hold).
var DefaultWorkerConfig = WorkerConfig{}

// UnmarshalYAML starts from DefaultWorkerConfig.
func (w *WorkerConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*w = DefaultWorkerConfig
	type plain WorkerConfig
	return unmarshal((*plain)(w))
}

func (w WorkerConfig) validate() error {
	var p problems
	if w.PlanReuse < 0 || w.HoldFor < 0 {
		p.add("worker.plan_reuse and worker.hold_for must not be negative (0 = default)")
	}
	return p.err()
}
