package bot

import "sync"

// onceSet remembers what was said, so that a notice is posted once per process however
// many times its cause comes back: a record marked approved without a valid approval, a
// worker's refusal of a job for one reason.
type onceSet struct {
	mu   sync.Mutex
	said map[string]bool
}

func newOnceSet() *onceSet { return &onceSet{said: map[string]bool{}} }

// first reports whether key is new, and remembers it.
func (o *onceSet) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.said[key] {
		return false
	}
	o.said[key] = true
	return true
}
