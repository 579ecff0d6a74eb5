package bot

import (
	"runtime"
	"testing"
)

func TestKeyLocksSerialiseOneKeyOnly(t *testing.T) {
	t.Parallel()
	k := newKeyLocks()
	unlockA := k.lock("xvm-a")
	got := make(chan struct{})
	go func() {
		unlock := k.lock("xvm-a")
		close(got)
		unlock()
	}()
	for waiting := false; !waiting; runtime.Gosched() {
		k.mu.Lock()
		waiting = k.locks["xvm-a"].refs == 2
		k.mu.Unlock()
	}
	select {
	case <-got:
		t.Fatal("a second holder got the key while the first held it")
	default:
	}
	k.lock("xvm-b")() // another key is free meanwhile
	unlockA()
	<-got
	for held := 1; held != 0; runtime.Gosched() {
		k.mu.Lock()
		held = len(k.locks)
		k.mu.Unlock()
	}
}
