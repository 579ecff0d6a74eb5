package approvals

import (
	"slices"
	"testing"
	"time"
)

// A copy of a large request kept in memory learns from a head read since which of its
// jobs started or ended elsewhere (Behind), and takes the head's account of the request
// without losing its jobs, VMs, review or findings (Refresh): what a bot replica shows of
// a request that other replicas also apply events to.
func TestCopyCatchesUpWithAHead(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	copyOf := func() *Request {
		r := &Request{ID: "xvm-copy", State: StateRunning, VMs: []string{"a", "b", "c", "d", "e"},
			Review: Review{VMs: []ReviewVM{{}}, Findings: []Finding{{Message: "ok"}}}}
		for i, vm := range r.VMs {
			r.Jobs = append(r.Jobs, Job{ID: JobID(r.ID, i), VM: vm, State: StateQueued})
		}
		r.Jobs[0].State, r.Jobs[0].Progress = StateRunning, 40
		r.Jobs[1].State = StateSucceeded
		return r
	}
	tests := []struct {
		name   string
		change func(jobs []Job) // what other replicas applied since the copy was read
		behind []int
	}{
		{"nothing", func([]Job) {}, nil},
		{"a running job's progress is not in the tally", func(jobs []Job) { jobs[0].Progress = 90 }, nil},
		{"started", func(jobs []Job) { jobs[2].State = StateRunning }, []int{2}},
		{"ended", func(jobs []Job) { jobs[0].State = StateFailed; jobs[3].State = StateSucceeded }, []int{0, 3}},
		{"cancelled before it started", func(jobs []Job) { jobs[4].State = StateCancelled }, []int{4}},
		{"ended otherwise than the copy says", func(jobs []Job) { jobs[1].State = StateFailed }, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := copyOf()
			stored := copyOf()
			tt.change(stored.Jobs)
			head := stored.Clone()
			head.VMs, head.Jobs, head.Review.VMs, head.Review.Findings = nil, nil, nil, nil
			head.Tally = TallyOf(stored.Jobs)
			head.TableTS, head.FinalReplyDue, head.EndedAt = "1700000000.000200", true, now

			if got := r.Behind(head.Tally); !slices.Equal(got, tt.behind) {
				t.Fatalf("behind %v, want %v", got, tt.behind)
			}
			r.Refresh(head)
			if r.TableTS != head.TableTS || !r.FinalReplyDue || !r.EndedAt.Equal(now) || r.Tally == nil {
				t.Errorf("the copy did not take the head's account of the request: %+v", r)
			}
			if len(r.Jobs) != 5 || len(r.VMs) != 5 || len(r.Review.VMs) != 1 || len(r.Review.Findings) != 1 {
				t.Errorf("the copy lost what the head does not hold: %d jobs, %d VMs, %d review VMs, %d findings",
					len(r.Jobs), len(r.VMs), len(r.Review.VMs), len(r.Review.Findings))
			}
			for _, i := range tt.behind {
				if !r.PutJob(stored.Jobs[i]) {
					t.Fatalf("the copy has no job %s", stored.Jobs[i].ID)
				}
			}
			if got := r.Behind(head.Tally); got != nil {
				t.Errorf("after putting the jobs behind, still behind %v", got)
			}
		})
	}
}
