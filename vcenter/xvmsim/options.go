package xvmsim

import "time"

// Option tunes a Lab started by Start.
type Option func(*options)

type options struct {
	taskDuration time.Duration
	extraVMs     int
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
