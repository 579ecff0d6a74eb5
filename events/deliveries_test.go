package events

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Of many bots claiming one delivery at once, exactly one handles it; the log holds for a
// bus opened anew on the same server (a restart) and is shared with another one (a
// replica). A holder repeating its claim, its first answer lost, still has it.
func TestDeliveryIsClaimedOnce(t *testing.T) {
	tb := newTestBus(t, BusConfig{})
	ctx := testCtx(t, 20*time.Second)
	const key = "t:12345.67890.abcdef"
	var wins atomic.Int32
	winner := make(chan string, 1)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			holder := fmt.Sprintf("bot-%d", i)
			first, err := tb.Deliveries().Claim(ctx, key, holder)
			if err != nil {
				t.Errorf("claim: %v", err)
			}
			if first {
				wins.Add(1)
				winner <- holder
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d claims of one delivery won, want 1", n)
	}
	holder := <-winner

	again, err := NewBus(ctx, tb.nc, BusConfig{}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if first, err := again.Deliveries().Claim(ctx, key, "bot-restarted"); err != nil || first {
		t.Fatalf("claim through a new bus: first=%v err=%v", first, err)
	}
	if first, err := again.Deliveries().Claim(ctx, key, holder); err != nil || !first {
		t.Fatalf("the winner claiming again: first=%v err=%v", first, err)
	}
	// Keys are hashed: any string is one, however long and whatever it holds.
	for _, key := range []string{"t:another", "h:" + string(make([]byte, 4096)), "t:with spaces/and.dots*>"} {
		if first, err := again.Deliveries().Claim(ctx, key, "bot-restarted"); err != nil || !first {
			t.Fatalf("claim of a new key %.20q: first=%v err=%v", key, first, err)
		}
	}
}
