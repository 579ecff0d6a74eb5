package xvmsim

import "time"

// Option tunes a Lab started by Start.
type Option func(*options)

type options struct {
	taskDuration time.Duration
	extraVMs     int
	versions     map[string]string
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
