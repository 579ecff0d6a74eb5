package approvals

import (
	"math/bits"

	"github.com/xvmbot/xvmbot/move"
)

// Tally is what a request knows of its jobs without reading them: which have started and
// which ended, and how. A store that keeps each job apart from its request (JobStore)
// keeps the tally in the request itself, so that a job's report reads and writes that job
// and the request's head, never the other jobs, and still knows when the last job ends.
// Each job is one bit in each set (625 bytes per set at 5,000 jobs), set from the job's
// state: noting a job's state twice is harmless, so a report redelivered after a crash
// between the job's write and the request's still ends the request.
type Tally struct {
	Jobs      int  `json:"jobs"`
	Started   Bits `json:"started,omitempty"` // running or ended
	Ended     Bits `json:"ended,omitempty"`
	Failed    Bits `json:"failed,omitempty"`
	Succeeded Bits `json:"succeeded,omitempty"`
}

// Bits is a set of job numbers (0-based), one bit each; JSON carries it as base64.
type Bits []byte

// Has reports whether i is in the set.
func (b Bits) Has(i int) bool { return i >= 0 && i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

// set puts i in the set or takes it out, and reports whether that changed the set.
func (b *Bits) set(i int, on bool) bool {
	if b.Has(i) == on {
		return false
	}
	for len(*b) <= i/8 {
		*b = append(*b, 0)
	}
	(*b)[i/8] ^= 1 << (i % 8)
	return true
}

// Len is how many numbers are in the set.
func (b Bits) Len() int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// Note records the state of job i and reports whether the tally changed.
func (t *Tally) Note(i int, s State) bool {
	m := marksOf(s)
	c := t.Started.set(i, m.started)
	c = t.Ended.set(i, m.ended) || c
	c = t.Failed.set(i, m.failed) || c
	return t.Succeeded.set(i, m.succeeded) || c
}

// marks are what a tally holds of one job.
type marks struct{ started, ended, failed, succeeded bool }

func marksOf(s State) marks {
	return marks{started: s == StateRunning || s.Final(), ended: s.Final(), failed: s == StateFailed, succeeded: s == StateSucceeded}
}

// of is what the tally holds of job i.
func (t *Tally) of(i int) marks {
	return marks{started: t.Started.Has(i), ended: t.Ended.Has(i), failed: t.Failed.Has(i), succeeded: t.Succeeded.Has(i)}
}

// Behind returns the numbers of the jobs of r, read whole, whose state is not what tally
// t says of them: the jobs that started or ended since r was read (in whatever process
// applied their reports). A job's progress and notes while it runs are not in a tally.
func (r *Request) Behind(t *Tally) []int {
	var out []int
	for i := range min(len(r.Jobs), t.Jobs) {
		if marksOf(r.Jobs[i].State) != t.of(i) {
			out = append(out, i)
		}
	}
	return out
}

// Refresh brings r, a request read whole, up to h, its head as read since: everything r
// says about the request itself (its state, its messages, its tally) becomes what h says,
// and r keeps its jobs, VMs, review VMs and findings, which a head does not hold (see
// Behind for the jobs the head's tally says changed). A whole h replaces r.
func (r *Request) Refresh(h *Request) {
	c := h.Clone()
	if h.Jobs == nil && h.Tally != nil {
		c.VMs, c.Jobs, c.Review.VMs, c.Review.Findings = r.VMs, r.Jobs, r.Review.VMs, r.Review.Findings
	}
	*r = *c
}

// PutJob replaces the job of r that j is (by its id) with j, as stored since r was read,
// and reports whether r has that job.
func (r *Request) PutJob(j Job) bool {
	i, ok := JobIndex(r.ID, j.ID)
	if !ok || i >= len(r.Jobs) || r.Jobs[i].ID != j.ID {
		if p := r.Job(j.ID); p != nil { // a request whose jobs are not numbered in order
			*p = j
			return true
		}
		return false
	}
	r.Jobs[i] = j
	return true
}

// counts are the jobs in each state the tally tells apart.
func (t *Tally) counts() jobCounts {
	ended := t.Ended.Len()
	return jobCounts{total: t.Jobs, ended: ended, failed: t.Failed.Len(), succeeded: t.Succeeded.Len(),
		running: t.Started.Len() - ended}
}

// TallyOf returns the tally of jobs.
func TallyOf(jobs []Job) *Tally {
	t := &Tally{Jobs: len(jobs)}
	for i, j := range jobs {
		t.Note(i, j.State)
	}
	return t
}

// NotStarted returns the numbers of the jobs the tally has not seen start.
func (t *Tally) NotStarted() []int {
	var out []int
	for i := range t.Jobs {
		if !t.Started.Has(i) {
			out = append(out, i)
		}
	}
	return out
}

// JobCount is how many jobs r has, whether they were read with it or not.
func (r *Request) JobCount() int {
	if r.Jobs == nil && r.Tally != nil {
		return r.Tally.Jobs
	}
	return len(r.Jobs)
}

// UnreportedJob is job i of r, moving vm, as it stands when nothing was recorded of it but
// the request's state: a store that keeps each job apart need not write a job that no
// report has touched (r's approval queues every job; its cancel cancels every job that
// had not started).
func (r *Request) UnreportedJob(i int, vm string) Job {
	j := Job{ID: JobID(r.ID, i), VM: vm}
	switch r.State {
	case StateApproved, StateQueued, StateRunning, StateSucceeded, StateFailed:
		j.State = StateQueued
	case StateCancelled:
		j.State = StateCancelled
	}
	return j
}

// JobVMs returns, for each VM of r in order, its job and the VM as an approval binds it:
// by name and, as the review resolved it, by object id ("" where the review did not find
// it) and by the objects of its placement (Resolved, nil where the review has none).
func (r *Request) JobVMs() []ApprovedVM {
	review := r.reviewByName()
	out := make([]ApprovedVM, len(r.VMs))
	for i, name := range r.VMs {
		out[i] = approvedVM(JobID(r.ID, i), name, review)
	}
	return out
}

// reviewByName indexes r's review by VM name.
func (r *Request) reviewByName() map[string]*ReviewVM {
	out := make(map[string]*ReviewVM, len(r.Review.VMs))
	for i := range r.Review.VMs {
		out[r.Review.VMs[i].Name] = &r.Review.VMs[i]
	}
	return out
}

// approvedVM is job's VM name as the review resolved it.
func approvedVM(job, name string, review map[string]*ReviewVM) ApprovedVM {
	a := ApprovedVM{Job: job, VM: move.VM{Name: name}}
	if v := review[name]; v != nil {
		a.Ref, a.Resolved = v.Ref, v.Resolved.Clone()
	}
	return a
}
