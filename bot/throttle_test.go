package bot

import (
	"testing"
	"time"
)

func TestEditThrottleSpacesEditsOfEachMessage(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764000000, 0)
	th := newEditThrottle(3*time.Second, func() time.Time { return now })
	if th.due("") {
		t.Fatal("no message is due for an edit")
	}
	if !th.due("m1") || th.due("m1") {
		t.Fatal("a message's first edit must be due, and a second one at once not")
	}
	if !th.due("m2") {
		t.Fatal("another message waits for m1's interval")
	}
	now = now.Add(3 * time.Second)
	if !th.due("m1") {
		t.Fatal("m1 not due once its interval passed")
	}
	th.forget("m1")
	if !th.due("m1") {
		t.Fatal("a forgotten message is held back")
	}
}

// A progress event changes nothing people see while neither the job's message nor the
// request's is due: the bot then need not store it.
func TestEditThrottleKnowsWhenAProgressEventIsIdle(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764000000, 0)
	th := newEditThrottle(3*time.Second, func() time.Time { return now })
	if th.idle("j1") {
		t.Fatal("a job not known to run is idle")
	}
	th.started("j1", runningJob{threadTS: "m1", parentTS: "p1"})
	th.markEdited("m1")
	if th.idle("j1") {
		t.Fatal("idle while the request's message was never edited")
	}
	th.markEdited("p1")
	if !th.idle("j1") {
		t.Fatal("not idle right after both messages were edited")
	}
	now = now.Add(3 * time.Second)
	if th.idle("j1") {
		t.Fatal("idle once the messages are due again")
	}
	th.markEdited("m1")
	th.markEdited("p1")
	th.ended("j1")
	if th.idle("j1") {
		t.Fatal("a job that ended is idle")
	}

	off := newEditThrottle(-1, func() time.Time { return now })
	off.started("j1", runningJob{threadTS: "m1", parentTS: "p1"})
	first, second := off.due("m1"), off.due("m1")
	if !first || !second || off.idle("j1") {
		t.Fatal("without throttling every edit is due and no event idle")
	}
}
