package bot

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/vcenter"
)

// askedPlanner counts how often each vCenter is asked what it is; once down is set,
// vc-west answers only when its caller gives up.
type askedPlanner struct {
	fakePlanner
	mu    sync.Mutex
	asked map[string]int
	down  bool // vc-west stops answering
}

func (p *askedPlanner) Info(ctx context.Context, name string) (vcenter.Endpoint, error) {
	p.mu.Lock()
	p.asked[name]++
	down := p.down && name == "vc-west"
	p.mu.Unlock()
	if down {
		<-ctx.Done()
		return vcenter.Endpoint{}, ctx.Err()
	}
	return vcenter.Endpoint{Name: name, Version: "8.0.3", Reachable: true}, nil
}

func (p *askedPlanner) times(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[name]
}

func TestVCInfoCacheAsksEachVCenterOnlyWhenStale(t *testing.T) {
	t.Parallel()
	now := time.Unix(1764000000, 0)
	p := &askedPlanner{asked: map[string]int{}}
	c := newVCInfoCache(p, func() time.Time { return now })
	ctx := t.Context()

	if got := c.get(ctx, false); len(got) != 2 || got[0].ep.Name != "vc-east" || got[1].ep.Version != "8.0.3" {
		t.Fatalf("infos %+v", got)
	}
	c.get(ctx, false)
	if p.times("vc-east") != 1 {
		t.Fatalf("vc-east asked %d times within %s, want once", p.times("vc-east"), vcInfoFor)
	}
	c.get(ctx, true)
	now = now.Add(vcInfoFor)
	c.get(ctx, false)
	if p.times("vc-east") != 3 {
		t.Fatalf("vc-east asked %d times, want again when asked fresh and when stale", p.times("vc-east"))
	}

	// A vCenter that does not answer in time is shown as it was last known.
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	got := c.get(cctx, true)
	if got[1].err != nil || got[1].ep.Version != "8.0.3" {
		t.Fatalf("vc-west timed out and shows %+v, want what was last known", got[1])
	}
	never := newVCInfoCache(p, func() time.Time { return now })
	if got := never.get(cctx, false); !errors.Is(got[1].err, context.Canceled) {
		t.Fatalf("a vCenter never known and not answering: %+v", got[1])
	}
}
