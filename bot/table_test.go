package bot

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/move"
)

// fxWave is a 40-VM request in flight: 18 moved, 14 running, 5 queued (2 waiting for a
// change window), 3 failed for two causes.
func fxWave() *approvals.Request {
	r := fxApproved()
	r.ID, r.VMs, r.Review.VMs, r.Jobs = "xvm-wave40", nil, nil, nil
	for i := range 40 {
		name := fmt.Sprintf("app-%02d", i+1)
		r.VMs = append(r.VMs, name)
		r.Review.VMs = append(r.Review.VMs, approvals.ReviewVM{VM: move.VM{Name: name}, PowerState: "poweredOn", DiskGB: 40})
		j := approvals.Job{ID: approvals.JobID(r.ID, i), VM: name}
		switch {
		case i < 18:
			j.State, j.Progress = approvals.StateSucceeded, 100
			j.StartedAt, j.EndedAt = fxAt(4*time.Minute), fxAt(time.Duration(5+i/3)*time.Minute)
		case i < 32:
			j.State, j.Progress, j.StartedAt = approvals.StateRunning, 10+i*2, fxAt(8*time.Minute)
		case i < 35:
			j.State = approvals.StateQueued
		case i < 37:
			j.State, j.Note = approvals.StateQueued, "waits for the change window of vc-west (opens at 22:00 UTC)"
		case i < 39:
			j.State, j.StartedAt, j.EndedAt = approvals.StateFailed, fxAt(4*time.Minute), fxAt(7*time.Minute)
			j.Error = "the vMotion network between the hosts went down"
			j.Fault = fmt.Sprintf("relocation task task-%d · NetworkCopyFault", 100+i)
			j.Hint = "check the vMotion vmknics and the links between the two sites"
		default:
			j.State, j.StartedAt, j.EndedAt = approvals.StateFailed, fxAt(4*time.Minute), fxAt(6*time.Minute)
			j.Error = "the target datastore ssd-01 ran out of space"
			j.Fault = "relocation task task-7 · InsufficientDisk"
			j.Hint = "free space on ssd-01 or choose another datastore"
		}
		r.Jobs = append(r.Jobs, j)
	}
	return r
}

// fxWaveEnded is fxWave after every job ended.
func fxWaveEnded() *approvals.Request {
	r := fxWave()
	for i := range r.Jobs {
		if j := &r.Jobs[i]; !j.State.Final() {
			j.State, j.Progress, j.Note = approvals.StateSucceeded, 100, ""
			j.StartedAt, j.EndedAt = fxAt(8*time.Minute), fxAt(12*time.Minute)
		}
	}
	r.State, r.EndedAt = approvals.StateFailed, fxAt(12*time.Minute)
	return r
}

func TestRenderTableReads(t *testing.T) {
	t.Parallel()
	_, blocks := RenderTable(fxWave(), fxAt(10*time.Minute))
	got := plainOf(t, blocks)
	for _, want := range []string{
		"5 queued · 🔄 14 running · ✅ 18 succeeded · ❌ 3 failed",
		"Rate: 3.5 moves/min", // 21 ended in the 6 minutes since the first start
		"ETA: 14:15 UTC",      // 19 left at 3.5 a minute: about 5m 26s after 14:10
		"and 4 more",          // 14 running, 10 named
		"2 VMs: waits for the change window",
		"*2 VMs* · `NetworkCopyFault`: the vMotion network",
		"check the vMotion vmknics",
		"`app-38`, `app-39`",
		"*1 VM* · `InsufficientDisk`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table does not say %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "NetworkCopyFault") > strings.Index(got, "InsufficientDisk") {
		t.Errorf("the larger cause is not listed first:\n%s", got)
	}
	_, blocks = RenderTable(fxWaveEnded(), fxAt(30*time.Minute))
	if got := plainOf(t, blocks); !strings.Contains(got, "took 8m 0s") || strings.Contains(got, "ETA") && !strings.Contains(got, "ETA: —") || strings.Contains(got, "Moving now") {
		t.Errorf("an ended table shows an ETA or running VMs, or not how long it took:\n%s", got)
	}
}

func TestRenderTableStaysWithinSlackLimits(t *testing.T) {
	t.Parallel()
	r := fxLargeRunning() // 300 failed VMs
	for i := range r.Jobs {
		r.Jobs[i].Fault = fmt.Sprintf("relocation task task-%d · Fault%d", i, i%40)
		r.Jobs[i].Hint = strings.Repeat("check the host ", 20)
	}
	text, blocks := RenderTable(r, fxAt(50*time.Minute))
	checkSlackLimits(t, blocks)
	if got := plainOf(t, blocks); !strings.Contains(got, "more causes") || text == "" {
		t.Errorf("40 causes are not capped:\n%s", got)
	}
}

// plainOf is what people read of blocks.
func plainOf(t *testing.T, blocks []slack.Block) string {
	t.Helper()
	return slacksim.PlainText(mustMarshal(t, blocks), "", nil)
}
