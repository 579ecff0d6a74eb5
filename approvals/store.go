package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
)

// Store errors; implementations wrap or return these so callers can decide.
var (
	ErrNotFound = errors.New("request not found")
	ErrExists   = errors.New("request already exists")
	ErrConflict = errors.New("request changed concurrently")
)

// Store keeps request records. Update is compare-and-swap on the revision returned by
// Get, Create or a previous Update: that is what makes concurrent clicks safe.
type Store interface {
	Create(ctx context.Context, r *Request) (rev uint64, err error)
	Get(ctx context.Context, id string) (*Request, uint64, error)
	Update(ctx context.Context, r *Request, rev uint64) (uint64, error)
	List(ctx context.Context) ([]*Request, error)
}

// MemoryStore is a Store in memory, for tests and for tools that need no durability.
type MemoryStore struct {
	mu   sync.Mutex
	recs map[string]memRec
}

type memRec struct {
	data []byte
	rev  uint64
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{recs: map[string]memRec{}} }

// Create stores a new record.
func (m *MemoryStore) Create(_ context.Context, r *Request) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[r.ID]; ok {
		return 0, ErrExists
	}
	m.recs[r.ID] = memRec{data: b, rev: 1}
	return 1, nil
}

// Get returns a copy of the record and its revision.
func (m *MemoryStore) Get(_ context.Context, id string) (*Request, uint64, error) {
	m.mu.Lock()
	rec, ok := m.recs[id]
	m.mu.Unlock()
	if !ok {
		return nil, 0, ErrNotFound
	}
	var r Request
	if err := json.Unmarshal(rec.data, &r); err != nil {
		return nil, 0, err
	}
	return &r, rec.rev, nil
}

// Update replaces the record if its revision is still rev.
func (m *MemoryStore) Update(_ context.Context, r *Request, rev uint64) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[r.ID]
	if !ok {
		return 0, ErrNotFound
	}
	if rec.rev != rev {
		return 0, ErrConflict
	}
	m.recs[r.ID] = memRec{data: b, rev: rev + 1}
	return rev + 1, nil
}

// List returns every record, oldest first.
func (m *MemoryStore) List(ctx context.Context) ([]*Request, error) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.recs))
	for id := range m.recs {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	out := make([]*Request, 0, len(ids))
	for _, id := range ids {
		r, _, err := m.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// JobStore is a Store that keeps each job of a request apart from the request's head (the
// request without its jobs, whose Tally stands for them), so that a job's report reads and
// writes O(1) bytes whatever the size of its request. Get still returns a whole request,
// and Update writes what changed of it. A request stored before its store kept jobs apart
// may still be whole: Head then returns it with its jobs and no Tally, and callers change
// it whole.
type JobStore interface {
	Store
	// Head returns request id without its jobs (Jobs nil, Tally set) and the revision
	// of the head, which is what Update and UpdateHead compare and swap against.
	Head(ctx context.Context, id string) (*Request, uint64, error)
	// Job returns job number i (0-based) of the request whose head is h; a job that was
	// never written on its own is h.UnreportedJob, with Rev 0.
	Job(ctx context.Context, h *Request, i int) (*Job, error)
	// UpdateJob writes j as job number i of request id if the job is still at revision
	// j.Rev (0: never written on its own), and returns its new revision; ErrConflict
	// if another write came first.
	UpdateJob(ctx context.Context, id string, i int, j *Job) (uint64, error)
	// UpdateHead replaces the head of h.ID (not its jobs) if it is still at revision rev.
	UpdateHead(ctx context.Context, h *Request, rev uint64) (uint64, error)
}

// HeadLister is a store that lists its requests without their jobs (as JobStore.Head
// returns them; a request stored whole comes whole), for sweeps that look only at what is
// about each request: its state, its dates, its messages.
type HeadLister interface {
	ListHeads(ctx context.Context) ([]*Request, error)
}
