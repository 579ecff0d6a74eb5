package bot

import "testing"

func TestOnceSetSaysEachThingOnce(t *testing.T) {
	t.Parallel()
	o := newOnceSet()
	if !o.first("xvm-a") || o.first("xvm-a") || !o.first("refused|xvm-a|web-01|expired") {
		t.Fatal("each key must be first exactly once")
	}
}
