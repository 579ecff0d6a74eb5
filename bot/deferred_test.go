package bot

import (
	"slices"
	"testing"
	"time"
)

// Put-off edits go out requests whose state changed first, then the oldest; each message
// waits once, however often its edit is put off.
func TestPutOffEditsOrder(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764000000, 0)
	p := newPutOffEdits(func() time.Time { return now })
	if !p.add("old", "o1", false) || p.add("old", "o1", false) {
		t.Fatal("a message put off twice waits twice")
	}
	now = now.Add(time.Second)
	p.add("new", "n1", false)
	p.add("new", "n2", false)
	now = now.Add(time.Second)
	p.add("changed", "c1", true)
	if got, want := p.requests(), []string{"changed", "old", "new"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if p.count() != 4 {
		t.Fatalf("%d waiting, want 4", p.count())
	}
	tss, urgent := p.of("changed")
	if !urgent || !slices.Equal(tss, []string{"c1"}) {
		t.Fatalf("changed: %v urgent=%v", tss, urgent)
	}
	p.calm("changed")
	if got := p.requests(); got[0] != "old" {
		t.Fatalf("after its change was shown, order %v: want the oldest first", got)
	}
	p.remove("new", "n1")
	p.remove("new", "n2")
	p.remove("new", "n2")
	if got := p.requests(); slices.Contains(got, "new") || p.count() != 2 {
		t.Fatalf("shown messages still wait: %v (%d)", got, p.count())
	}
	// A request put off again starts a new wait: it does not jump the queue.
	now = now.Add(time.Second)
	p.add("new", "n3", false)
	if got := p.requests(); got[len(got)-1] != "new" {
		t.Fatalf("order %v: want the request put off last at the end", got)
	}
}
