package xvmsim

import "time"

// Option tunes a Lab started by Start.
type Option func(*options)

type options struct {
	taskDuration time.Duration
	minStep      time.Duration
	extraVMs     int
	versions     map[string]string
	port         int    // WithPort
	stateDir     string // WithStateDir
}

func defaultOptions() options {
	return options{taskDuration: 300 * time.Millisecond}
}

// WithTaskDuration sets how long an emulated cross-vCenter relocation takes;
// its progress moves from 0 to 100 over that time. The default is 300ms.
func WithTaskDuration(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.taskDuration = d
		}
	}
}

// WithMinStep makes every progress step of an emulated relocation last at least d
// after its percentage is reported, even when the emulation's own work (logins, the
// create in the target, the switch-over) ran past the step's planned end. With the
// default of 0 a task keeps its set duration, and on a loaded machine a late task
// reports its remaining percentages at once; a test that must observe a percentage
// between 0 and 100 with a polling watcher sets d above the watcher's polling interval.
func WithMinStep(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.minStep = d
		}
	}
}

// WithExtraVMs adds n small powered-off VMs named "bulk-0001", "bulk-0002", …
// to the home vCenter, for scale tests. The default is 0.
func WithExtraVMs(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.extraVMs = n
		}
	}
}

// WithVersion makes the vCenter named vc report version (e.g. "6.0.0") in
// its About information, for tests of the version pre-flight check; cross
// vCenter vMotion needs 6.5 or later on both sides. The default is the
// simulator's "6.5.0".
func WithVersion(vc, version string) Option {
	return func(o *options) {
		if o.versions == nil {
			o.versions = map[string]string{}
		}
		o.versions[vc] = version
	}
}
