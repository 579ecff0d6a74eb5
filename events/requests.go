package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/approvals"
)

// RequestStore keeps request records in the KV bucket BucketRequests. It is the durable
// approvals.Store (and approvals.JobStore): approvals survive restarts, and concurrent
// clicks are settled by KV compare-and-swap.
//
// A request is kept in parts, so that no value grows with the size of the request (a
// stock nats-server refuses a message over 1 MB, docs/nats-facts.md N3) and a job's
// report reads and writes only its job and the request's head:
//
//	<id>               the head: the request without its VMs, review VMs, findings and
//	                   jobs, with a Tally of its jobs and "parts" (how many of each chunk)
//	<id>.vms.<k>       the name and object id of the VMs of jobs k*500 to k*500+499
//	<id>.review.<k>    review VMs k*500 to k*500+499
//	<id>.findings.<k>  findings k*500 to k*500+499
//	<id>.job.<n>       job n (as its id ends, "-NN"), once anything of its own was
//	                   recorded; before that it is approvals.Request.UnreportedJob
//
// The head decides: its revision is the request's, which Update compares and swaps; parts
// are written before the head that names them. A record stored whole by an earlier
// version (a head without "parts") is read as it is and kept whole.
//
// A head or a record stored whole is decoded once per revision: the store keeps the last
// revision it read or wrote of a few requests, decoded, and hands out copies of it while
// the bucket still holds that revision.
type RequestStore struct {
	kv jetstream.KeyValue

	mu     sync.Mutex
	cached map[string]cachedRequest
	// parts are the chunk counts of heads read or written (they change only with a
	// whole Update), so that a head can be written without reading it first.
	parts map[string]partCounts
	// vms are chunks of VMs read, by key: they never change once written.
	vms map[string][]approvals.ApprovedVM
	// read are the revisions of the parts (jobs and chunks, by key) of the last whole
	// read of a few requests, with a hash of each, so that Update writes only the jobs
	// its caller changed and checks the chunks without reading them again.
	read map[string]map[string]partRead
}

// headRecord is the value of a request's head key.
type headRecord struct {
	*approvals.Request
	// Parts is absent in a record stored whole.
	Parts *partCounts `json:"parts,omitempty"`
}

// partCounts says how many of each list a request kept in parts holds (and so how many
// chunks of it there are).
type partCounts struct {
	VMs      int `json:"vms"`
	Review   int `json:"review"`
	Findings int `json:"findings"`
}

type partRead struct {
	rev uint64
	sum uint64
}

type cachedRequest struct {
	rev   uint64
	r     *approvals.Request
	parts *partCounts
}

// requestCacheSize bounds the decoded records kept: the requests in flight at once.
const requestCacheSize = 32

// chunkCacheSize bounds the chunks of VMs kept (about 20 KB each).
const chunkCacheSize = 64

// readCacheSize bounds the requests whose last whole read is remembered.
const readCacheSize = 8

// requestID is what a request id may be: a KV key of one token, no wildcard.
var requestID = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)

func (s *RequestStore) remember(r *approvals.Request, rev uint64, parts *partCounts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached == nil {
		s.cached = map[string]cachedRequest{}
	}
	if _, ok := s.cached[r.ID]; !ok && len(s.cached) >= requestCacheSize {
		for id := range s.cached { // any one: the cache only saves decoding
			delete(s.cached, id)
			break
		}
	}
	s.cached[r.ID] = cachedRequest{rev: rev, r: r.Clone(), parts: parts}
	if parts != nil {
		evictOne(&s.parts, r.ID, requestCacheSize)
		s.parts[r.ID] = *parts
	}
}

func (s *RequestStore) recall(id string, rev uint64) (*approvals.Request, *partCounts, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cached[id]; ok && c.rev == rev {
		return c.r.Clone(), c.parts, true
	}
	return nil, nil, false
}

// evictOne makes room for key in *m (made if nil) when it holds max entries.
func evictOne[V any](m *map[string]V, key string, max int) {
	if *m == nil {
		*m = map[string]V{}
	}
	if _, ok := (*m)[key]; !ok && len(*m) >= max {
		for k := range *m {
			delete(*m, k)
			break
		}
	}
}

var (
	_ approvals.Store    = (*RequestStore)(nil)
	_ approvals.JobStore = (*RequestStore)(nil)
)

func chunkKey(id, kind string, k int) string { return id + "." + kind + "." + strconv.Itoa(k) }

func jobKey(id string, i int) string { return id + ".job." + strconv.Itoa(i+1) }

func chunks(n int) int { return (n + approvals.VMsPerChunk - 1) / approvals.VMsPerChunk }

func chunkOf[T any](list []T, k int) []T {
	return list[k*approvals.VMsPerChunk : min((k+1)*approvals.VMsPerChunk, len(list))]
}

// The values of chunk keys.
type (
	vmsChunk      struct{ VMs []approvals.ApprovedVM }
	reviewChunk   struct{ VMs []approvals.ReviewVM }
	findingsChunk struct{ Findings []approvals.Finding }
)

// split returns the head of r (r without what its parts hold, with a tally of its jobs)
// and the values of its chunk keys.
func split(r *approvals.Request) (headRecord, map[string]any) {
	h := r.Clone()
	h.VMs, h.Jobs, h.Review.VMs, h.Review.Findings = nil, nil, nil, nil
	h.Tally = approvals.TallyOf(r.Jobs)
	parts := &partCounts{VMs: len(r.VMs), Review: len(r.Review.VMs), Findings: len(r.Review.Findings)}
	values := map[string]any{}
	vms := r.JobVMs()
	for k := range chunks(len(vms)) {
		values[chunkKey(r.ID, "vms", k)] = vmsChunk{VMs: chunkOf(vms, k)}
	}
	for k := range chunks(len(r.Review.VMs)) {
		values[chunkKey(r.ID, "review", k)] = reviewChunk{VMs: chunkOf(r.Review.VMs, k)}
	}
	for k := range chunks(len(r.Review.Findings)) {
		values[chunkKey(r.ID, "findings", k)] = findingsChunk{Findings: chunkOf(r.Review.Findings, k)}
	}
	return headRecord{Request: h, Parts: parts}, values
}

// Create stores a new request, in parts; approvals.ErrExists if the id is taken.
func (s *RequestStore) Create(ctx context.Context, r *approvals.Request) (uint64, error) {
	if !requestID.MatchString(r.ID) {
		return 0, fmt.Errorf("create request %q: not a usable id", r.ID)
	}
	if !partable(r) {
		// Not a request as approvals.Service submits one: kept whole, as it is.
		return s.createWhole(ctx, r)
	}
	head, values := split(r)
	// Parts first, each created only if new: a taken id fails here before anything of
	// the request that holds it is replaced.
	for _, key := range sortedKeys(values) {
		if _, err := kvCreate(ctx, s.kv, key, values[key]); errors.Is(err, errKVExists) {
			return 0, fmt.Errorf("create request %s: %w", r.ID, approvals.ErrExists)
		} else if err != nil {
			return 0, fmt.Errorf("create request %s: %w", r.ID, err)
		}
	}
	for i := range r.Jobs {
		if j := r.Jobs[i]; j != head.UnreportedJob(i, j.VM) {
			if _, err := kvCreate(ctx, s.kv, jobKey(r.ID, i), j); err != nil {
				return 0, fmt.Errorf("create request %s: job %s: %w", r.ID, j.ID, err)
			}
		}
	}
	rev, err := kvCreate(ctx, s.kv, r.ID, head)
	switch {
	case errors.Is(err, errKVExists):
		return 0, fmt.Errorf("create request %s: %w", r.ID, approvals.ErrExists)
	case err != nil:
		return 0, fmt.Errorf("create request %s: %w", r.ID, err)
	}
	s.remember(head.Request, rev, head.Parts)
	return rev, nil
}

// partable reports whether r can be kept in parts: one job per VM, in order, each named
// as approvals.JobID names it (which is how a job's key is found from its id).
func partable(r *approvals.Request) bool {
	if len(r.Jobs) != len(r.VMs) {
		return false
	}
	for i, j := range r.Jobs {
		if j.ID != approvals.JobID(r.ID, i) || j.VM != r.VMs[i] {
			return false
		}
	}
	return true
}

func (s *RequestStore) createWhole(ctx context.Context, r *approvals.Request) (uint64, error) {
	rev, err := kvCreate(ctx, s.kv, r.ID, r)
	switch {
	case errors.Is(err, errKVExists):
		return 0, fmt.Errorf("create request %s: %w", r.ID, approvals.ErrExists)
	case err != nil:
		return 0, fmt.Errorf("create request %s: %w", r.ID, err)
	}
	s.remember(r, rev, nil)
	return rev, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Head returns request id without its jobs, VMs, review VMs and findings (Tally set), as
// approvals.JobStore says; a record stored whole is returned whole, without Tally.
func (s *RequestStore) Head(ctx context.Context, id string) (*approvals.Request, uint64, error) {
	h, _, rev, err := s.head(ctx, id)
	return h, rev, err
}

func (s *RequestStore) head(ctx context.Context, id string) (*approvals.Request, *partCounts, uint64, error) {
	if !requestID.MatchString(id) {
		// A string that cannot be a key (someone typed "/xvm status foo bar") is simply
		// not a request.
		return nil, nil, 0, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	}
	e, err := kvEntry(ctx, s.kv, id)
	switch {
	case errors.Is(err, errKVNotFound) || errors.Is(err, jetstream.ErrInvalidKey):
		return nil, nil, 0, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	case err != nil:
		return nil, nil, 0, fmt.Errorf("get request %s: %w", id, err)
	}
	if r, parts, ok := s.recall(id, e.Revision()); ok {
		return r, parts, e.Revision(), nil
	}
	h := headRecord{Request: &approvals.Request{}}
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		return nil, nil, 0, fmt.Errorf("get request %s: decode: %w", id, err)
	}
	if h.Parts != nil && h.Tally == nil {
		h.Tally = &approvals.Tally{Jobs: h.Parts.VMs}
	}
	s.remember(h.Request, e.Revision(), h.Parts)
	return h.Request, h.Parts, e.Revision(), nil
}

// Get returns the whole request and its revision (its head's); approvals.ErrNotFound if
// there is none. A request kept in parts is read with one watch of its keys, not a read
// per key; one of a few keys (a request of a few VMs: the approval of such a request reads
// it so) is read key by key, side by side, which takes one round trip where setting up a
// watch takes several.
func (s *RequestStore) Get(ctx context.Context, id string) (*approvals.Request, uint64, error) {
	h, parts, rev, err := s.head(ctx, id)
	if err != nil || parts == nil {
		return h, rev, err // a record stored whole (or none)
	}
	if keys := chunkKeys(id, parts); len(keys)+parts.VMs <= directReadMax {
		// Every job's key, as a watch brings a job written before the head noted it.
		for i := range parts.VMs {
			keys = append(keys, jobKey(id, i))
		}
		return s.readParts(ctx, h, parts, rev, keys)
	}
	r, headRev, err := s.assemble(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return r, headRev, nil
}

// directReadMax is the most keys of a request's parts that Get reads one by one.
const directReadMax = 8

// chunkKeys are the keys of the chunks of request id, as many as p counts.
func chunkKeys(id string, p *partCounts) []string {
	var keys []string
	for _, c := range []struct {
		kind string
		n    int
	}{{"vms", p.VMs}, {"review", p.Review}, {"findings", p.Findings}} {
		for k := range chunks(c.n) {
			keys = append(keys, chunkKey(id, c.kind, k))
		}
	}
	return keys
}

// readParts puts the request whose head h was read at revision rev together from its
// parts, read side by side. A part written after the head (a job that started) may be
// newer than the head: so it is in a watch's read too, and an update of such a read
// meets a conflict and reads again.
func (s *RequestStore) readParts(ctx context.Context, h *approvals.Request, parts *partCounts, rev uint64, keys []string) (*approvals.Request, uint64, error) {
	entries := make([]jetstream.KeyValueEntry, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Go(func() {
			entries[i], errs[i] = kvEntry(ctx, s.kv, key)
			if errors.Is(errs[i], errKVNotFound) {
				errs[i] = nil // as a watch, that does not bring it
			}
		})
	}
	wg.Wait()
	rp := newRequestParts(h.ID)
	rp.head, rp.headRev = headRecord{Request: h, Parts: parts}, rev
	for i, key := range keys {
		if errs[i] != nil {
			return nil, 0, fmt.Errorf("get request %s: %s: %w", h.ID, key, errs[i])
		}
		if entries[i] == nil {
			continue
		}
		if err := rp.take(key, entries[i].Value(), entries[i].Revision()); err != nil {
			return nil, 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return s.whole(rp)
}

// requestParts collects the keys of one request as they are read.
type requestParts struct {
	id      string
	head    headRecord
	headRev uint64
	vms     map[int][]approvals.ApprovedVM
	review  map[int][]approvals.ReviewVM
	finds   map[int][]approvals.Finding
	jobs    map[int]approvals.Job
	revs    map[string]partRead
}

func newRequestParts(id string) *requestParts {
	return &requestParts{id: id, vms: map[int][]approvals.ApprovedVM{}, review: map[int][]approvals.ReviewVM{},
		finds: map[int][]approvals.Finding{}, jobs: map[int]approvals.Job{}, revs: map[string]partRead{}}
}

// take keeps the value of key, read at revision rev.
func (rp *requestParts) take(key string, value []byte, rev uint64) error {
	id := rp.id
	if key == id {
		rp.head = headRecord{Request: &approvals.Request{}}
		if err := json.Unmarshal(value, &rp.head); err != nil {
			return fmt.Errorf("get request %s: decode: %w", id, err)
		}
		rp.headRev = rev
		return nil
	}
	kind, k, ok := partOf(id, key)
	if !ok {
		return nil
	}
	var err error
	switch kind {
	case "vms":
		var c vmsChunk
		err = json.Unmarshal(value, &c)
		rp.vms[k] = c.VMs
	case "review":
		var c reviewChunk
		err = json.Unmarshal(value, &c)
		rp.review[k] = c.VMs
	case "findings":
		var c findingsChunk
		err = json.Unmarshal(value, &c)
		rp.finds[k] = c.Findings
	case "job":
		var j approvals.Job
		err = json.Unmarshal(value, &j)
		j.Rev = rev
		rp.jobs[k-1] = j
	}
	if err != nil {
		return fmt.Errorf("get request %s: decode %s: %w", id, key, err)
	}
	rp.revs[key] = partRead{rev: rev, sum: sum(value)}
	return nil
}

// watchWait bounds how long a whole read waits for its watch to deliver the request's keys.
const watchWait = 5 * time.Second

// assemble reads every key of request id with one watch and puts the request together,
// with the revision of its head as the watch found it.
func (s *RequestStore) assemble(ctx context.Context, id string) (*approvals.Request, uint64, error) {
	// The watch is bounded (watchWait): while a NATS server restarts, creating its consumer
	// can wait for ever, and so would whoever holds the request's lock meanwhile. What it
	// did not bring in time is read directly below.
	wctx, cancel := context.WithTimeout(ctx, watchWait)
	defer cancel()
	var updates <-chan jetstream.KeyValueEntry
	if w, err := s.kv.WatchFiltered(wctx, []string{id, id + ".>"}, jetstream.IgnoreDeletes()); err == nil {
		defer func() { _ = w.Stop() }()
		updates = w.Updates()
	} else if ctx.Err() != nil {
		return nil, 0, fmt.Errorf("get request %s: %w", id, err)
	}
	rp := newRequestParts(id)
	// A watch whose consumer was lost (a NATS server restarted under it) delivers nothing
	// more and never ends: after watchWait what it did not bring is read directly.
read:
	for updates != nil {
		select {
		case e, open := <-updates:
			if !open || e == nil {
				break read // every key's latest value has been delivered, as the watch counts
			}
			if err := rp.take(e.Key(), e.Value(), e.Revision()); err != nil {
				return nil, 0, err
			}
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
			break read
		}
	}
	// The watch counts the values it must deliver when it starts; keys written meanwhile
	// (a running request's head and jobs are, all the time) are delivered again and count
	// twice, so its end can come before some key was delivered at all. What the head says
	// must be there is read directly when the watch did not bring it.
	fill := func(key string) error {
		if _, ok := rp.revs[key]; ok || key == id && rp.head.Request != nil {
			return nil
		}
		e, err := kvEntry(ctx, s.kv, key)
		if errors.Is(err, errKVNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get request %s: %s: %w", id, key, err)
		}
		return rp.take(key, e.Value(), e.Revision())
	}
	if err := fill(id); err != nil {
		return nil, 0, err
	}
	if p := rp.head.Parts; p != nil {
		keys := chunkKeys(id, p)
		if t := rp.head.Tally; t != nil {
			for i := range t.Jobs {
				if t.Started.Has(i) {
					keys = append(keys, jobKey(id, i))
				}
			}
		}
		for _, key := range keys {
			if err := fill(key); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return s.whole(rp)
}

// whole is the request rp read, and the revision of its head; what it read of the parts
// is remembered for the request's next update.
func (s *RequestStore) whole(rp *requestParts) (*approvals.Request, uint64, error) {
	id := rp.id
	if rp.head.Request == nil {
		return nil, 0, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	}
	r, parts := rp.head.Request, rp.head.Parts
	if parts == nil { // stored whole after all (never, unless rewritten by hand)
		return r, rp.headRev, nil
	}
	all := joinChunks(rp.vms, parts.VMs)
	review2 := joinChunks(rp.review, parts.Review)
	finds2 := joinChunks(rp.finds, parts.Findings)
	if len(all) != parts.VMs || len(review2) != parts.Review || len(finds2) != parts.Findings {
		return nil, 0, fmt.Errorf("get request %s: parts missing (%d of %d VMs, %d of %d review VMs, %d of %d findings)",
			id, len(all), parts.VMs, len(review2), parts.Review, len(finds2), parts.Findings)
	}
	r.Review.VMs, r.Review.Findings = review2, finds2
	r.VMs = make([]string, len(all))
	r.Jobs = make([]approvals.Job, len(all))
	for i, vm := range all {
		r.VMs[i] = vm.Name
		if j, ok := rp.jobs[i]; ok {
			r.Jobs[i] = j
		} else {
			r.Jobs[i] = r.UnreportedJob(i, vm.Name)
		}
	}
	if r.Tally == nil {
		r.Tally = &approvals.Tally{Jobs: len(all)}
	}
	s.mu.Lock()
	evictOne(&s.read, id, readCacheSize)
	s.read[id] = rp.revs
	s.mu.Unlock()
	return r, rp.headRev, nil
}

func joinChunks[T any](m map[int][]T, n int) []T {
	out := make([]T, 0, n)
	for k := range chunks(n) {
		out = append(out, m[k]...)
	}
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// partOf parses a part's key: its kind and number.
func partOf(id, key string) (kind string, k int, ok bool) {
	if len(key) <= len(id)+1 || key[:len(id)+1] != id+"." {
		return "", 0, false
	}
	rest := key[len(id)+1:]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			n, err := strconv.Atoi(rest[i+1:])
			return rest[:i], n, err == nil
		}
	}
	return "", 0, false
}

func sum(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// Job returns job number i of the request whose head is h (approvals.JobStore).
func (s *RequestStore) Job(ctx context.Context, h *approvals.Request, i int) (*approvals.Job, error) {
	var j approvals.Job
	rev, err := kvGet(ctx, s.kv, jobKey(h.ID, i), &j)
	if err == nil {
		j.Rev = rev
		return &j, nil
	}
	if !errors.Is(err, errKVNotFound) {
		return nil, fmt.Errorf("get job %d of request %s: %w", i+1, h.ID, err)
	}
	vms, err := s.VMChunk(ctx, h.ID, i/approvals.VMsPerChunk)
	if err != nil {
		return nil, err
	}
	if i%approvals.VMsPerChunk >= len(vms) {
		return nil, fmt.Errorf("request %s has no job %s", h.ID, approvals.JobID(h.ID, i))
	}
	u := h.UnreportedJob(i, vms[i%approvals.VMsPerChunk].Name)
	return &u, nil
}

// VMChunk returns chunk k of the VMs of a request kept in parts: the VMs of its jobs
// k*VMsPerChunk onwards, by name and object id (approvals.Request.JobVMs), as stored.
func (s *RequestStore) VMChunk(ctx context.Context, id string, k int) ([]approvals.ApprovedVM, error) {
	key := chunkKey(id, "vms", k)
	s.mu.Lock()
	c, ok := s.vms[key]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	var v vmsChunk
	if _, err := kvGet(ctx, s.kv, key, &v); err != nil {
		return nil, fmt.Errorf("get VMs %d of request %s: %w", k+1, id, err)
	}
	s.mu.Lock()
	evictOne(&s.vms, key, chunkCacheSize)
	s.vms[key] = v.VMs
	s.mu.Unlock()
	return v.VMs, nil
}

// UpdateJob writes job number i of request id if it is still at revision j.Rev
// (approvals.JobStore).
func (s *RequestStore) UpdateJob(ctx context.Context, id string, i int, j *approvals.Job) (uint64, error) {
	var (
		rev uint64
		err error
	)
	if j.Rev == 0 {
		rev, err = kvCreate(ctx, s.kv, jobKey(id, i), j)
	} else {
		rev, err = kvUpdate(ctx, s.kv, jobKey(id, i), j, j.Rev)
	}
	switch {
	case errors.Is(err, errKVExists) || errors.Is(err, errKVConflict) || errors.Is(err, errKVNotFound):
		return 0, fmt.Errorf("update job %s at revision %d: %w", j.ID, j.Rev, approvals.ErrConflict)
	case err != nil:
		return 0, fmt.Errorf("update job %s: %w", j.ID, err)
	}
	return rev, nil
}

// UpdateHead replaces the head of request h.ID if it is still at revision rev
// (approvals.JobStore): h's jobs, VMs, review VMs and findings are not written.
func (s *RequestStore) UpdateHead(ctx context.Context, h *approvals.Request, rev uint64) (uint64, error) {
	s.mu.Lock()
	parts, ok := s.parts[h.ID]
	s.mu.Unlock()
	if !ok {
		_, p, cur, err := s.head(ctx, h.ID)
		if err != nil {
			return 0, err
		}
		if cur != rev {
			return 0, fmt.Errorf("update request %s at revision %d: %w", h.ID, rev, approvals.ErrConflict)
		}
		if p == nil {
			return 0, fmt.Errorf("update request %s: it is stored whole", h.ID)
		}
		parts = *p
	}
	head := h.Clone()
	head.VMs, head.Jobs, head.Review.VMs, head.Review.Findings = nil, nil, nil, nil
	return s.writeHead(ctx, headRecord{Request: head, Parts: &parts}, rev)
}

func (s *RequestStore) writeHead(ctx context.Context, head headRecord, rev uint64) (uint64, error) {
	id := head.Request.ID
	newRev, err := kvUpdate(ctx, s.kv, id, head, rev)
	switch {
	case errors.Is(err, errKVConflict):
		return 0, fmt.Errorf("update request %s at revision %d: %w", id, rev, approvals.ErrConflict)
	case errors.Is(err, errKVNotFound):
		return 0, fmt.Errorf("update request %s: %w", id, approvals.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("update request %s: %w", id, err)
	}
	s.remember(head.Request, newRev, head.Parts)
	return newRev, nil
}

// Update writes request r if its head is still at revision rev: approvals.ErrConflict if
// someone else wrote it since (or one of the jobs r changed), approvals.ErrNotFound if it
// does not exist. Of a request kept in parts it writes the jobs and chunks that differ
// from what was read, then the head; a record stored whole is written whole.
func (s *RequestStore) Update(ctx context.Context, r *approvals.Request, rev uint64) (uint64, error) {
	if newRev, ok, err := s.updateHeadOnly(ctx, r, rev); ok {
		return newRev, err
	}
	_, parts, curRev, err := s.head(ctx, r.ID)
	if err != nil {
		return 0, fmt.Errorf("update request %s: %w", r.ID, err)
	}
	if curRev != rev {
		return 0, fmt.Errorf("update request %s at revision %d: %w", r.ID, rev, approvals.ErrConflict)
	}
	if parts == nil {
		return s.writeWhole(ctx, r, rev)
	}
	if r.Jobs == nil && r.Tally != nil {
		return s.UpdateHead(ctx, r, rev) // a head, changed as a head
	}
	if !partable(r) || len(r.VMs) != parts.VMs || len(r.Review.VMs) != parts.Review || len(r.Review.Findings) != parts.Findings {
		return 0, fmt.Errorf("update request %s: %d jobs, %d VMs, %d review VMs and %d findings, stored with %d, %d and %d: %w",
			r.ID, len(r.Jobs), len(r.VMs), len(r.Review.VMs), len(r.Review.Findings), parts.VMs, parts.Review, parts.Findings, ErrPartsFixed)
	}
	head, values := split(r)
	s.mu.Lock()
	read := s.read[r.ID]
	s.mu.Unlock()
	for _, key := range sortedKeys(values) {
		if err := s.checkUnchanged(ctx, key, values[key], read); err != nil {
			return 0, fmt.Errorf("update request %s: %w", r.ID, err)
		}
	}
	for i := range r.Jobs {
		j := &r.Jobs[i]
		if err := s.writeJobIfChanged(ctx, head.Request, i, j, read); err != nil {
			return 0, fmt.Errorf("update request %s: %w", r.ID, err)
		}
	}
	return s.writeHead(ctx, head, rev)
}

// asRead reports whether data is the value of key as the last whole read found it (read,
// by key), at revision rev (0: at any revision).
func asRead(read map[string]partRead, key string, data []byte, rev uint64) bool {
	was, ok := read[key]
	return ok && was.sum == sum(data) && (rev == 0 || was.rev == rev)
}

// updateHeadOnly writes the head of r, and nothing else, when every chunk and job of r is
// as the last whole read of it found them (a decision, a message's timestamp, a state):
// the head's compare-and-swap then decides, with no read of the head before it. ok is
// false when that cannot be told without reading the store; Update then reads.
func (s *RequestStore) updateHeadOnly(ctx context.Context, r *approvals.Request, rev uint64) (newRev uint64, ok bool, err error) {
	s.mu.Lock()
	parts, known := s.parts[r.ID]
	read := s.read[r.ID]
	s.mu.Unlock()
	if !known || read == nil || r.Jobs == nil || !partable(r) ||
		parts != (partCounts{VMs: len(r.VMs), Review: len(r.Review.VMs), Findings: len(r.Review.Findings)}) {
		return 0, false, nil
	}
	head, values := split(r)
	marshalledAsRead := func(key string, v any, rev uint64) bool {
		data, err := json.Marshal(v)
		return err == nil && asRead(read, key, data, rev)
	}
	for key, v := range values {
		if !marshalledAsRead(key, v, 0) {
			return 0, false, nil
		}
	}
	for i, j := range r.Jobs {
		if j.Rev == 0 && j != head.Request.UnreportedJob(i, j.VM) || j.Rev != 0 && !marshalledAsRead(jobKey(r.ID, i), j, j.Rev) {
			return 0, false, nil
		}
	}
	newRev, err = s.writeHead(ctx, head, rev)
	return newRev, true, err
}

// writeJobIfChanged writes job i as the caller of Update left it, unless it is as read:
// as at its revision j.Rev, or, never written on its own, as the request's new state
// implies.
func (s *RequestStore) writeJobIfChanged(ctx context.Context, h *approvals.Request, i int, j *approvals.Job, read map[string]partRead) error {
	if j.Rev == 0 {
		if *j == h.UnreportedJob(i, j.VM) {
			return nil
		}
		rev, err := s.UpdateJob(ctx, h.ID, i, j)
		j.Rev = rev
		return err
	}
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if was, ok := read[jobKey(h.ID, i)]; ok && was.rev == j.Rev {
		if asRead(read, jobKey(h.ID, i), data, j.Rev) {
			return nil
		}
	} else if e, err := s.kv.GetRevision(ctx, jobKey(h.ID, i), j.Rev); err == nil && sum(e.Value()) == sum(data) {
		return nil
	}
	rev, err := s.UpdateJob(ctx, h.ID, i, j)
	j.Rev = rev
	return err
}

// ErrPartsFixed refuses a change of what a request kept in parts holds in its chunks.
var ErrPartsFixed = errors.New("the VMs, review and findings of a request are written once, with the request")

// checkUnchanged makes sure a chunk is as stored. Chunks are written once, with the
// request (its VMs, review and findings do not change once it is asked: what changes with
// time is shown, not stored), so that a whole write never has to replace one that a
// concurrent write may have replaced too.
func (s *RequestStore) checkUnchanged(ctx context.Context, key string, v any, read map[string]partRead) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if asRead(read, key, data, 0) {
		return nil
	}
	e, err := kvEntry(ctx, s.kv, key)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if string(e.Value()) != string(data) {
		return fmt.Errorf("%s differs from the stored: %w", key, ErrPartsFixed)
	}
	return nil
}

// writeWhole replaces a record stored whole, as earlier versions kept every request.
func (s *RequestStore) writeWhole(ctx context.Context, r *approvals.Request, rev uint64) (uint64, error) {
	whole := r.Clone()
	whole.Tally = nil
	newRev, err := kvUpdate(ctx, s.kv, r.ID, whole, rev)
	switch {
	case errors.Is(err, errKVConflict):
		return 0, fmt.Errorf("update request %s at revision %d: %w", r.ID, rev, approvals.ErrConflict)
	case errors.Is(err, errKVNotFound):
		return 0, fmt.Errorf("update request %s: %w", r.ID, approvals.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("update request %s: %w", r.ID, err)
	}
	s.remember(whole, newRev, nil)
	return newRev, nil
}

// List returns every request, whole, oldest first. It reads every record, so it is meant
// for "/xvm list" and start-up recovery, not for hot paths.
func (s *RequestStore) List(ctx context.Context) ([]*approvals.Request, error) {
	keys, err := kvKeys(ctx, s.kv, "*") // heads only: a part's key has dots (N3)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	out := make([]*approvals.Request, 0, len(keys))
	for _, k := range keys {
		r, _, err := s.Get(ctx, k)
		if errors.Is(err, approvals.ErrNotFound) {
			continue // deleted between listing and reading
		}
		if err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// ListHeads returns every request without its jobs, VMs, review VMs and findings (as Head
// does), oldest first: one read of a few kilobytes per request, whatever its size, for
// the sweeps that run every few seconds (approvals.HeadLister).
func (s *RequestStore) ListHeads(ctx context.Context) ([]*approvals.Request, error) {
	keys, err := kvKeys(ctx, s.kv, "*")
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	out := make([]*approvals.Request, 0, len(keys))
	for _, k := range keys {
		r, _, err := s.Head(ctx, k)
		if errors.Is(err, approvals.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

var _ approvals.HeadLister = (*RequestStore)(nil)

// OpenRequestStore reads the requests bucket another process created, for tools and
// tests that look at what the bot stored (the next bot, /xvm status, an operator).
func OpenRequestStore(ctx context.Context, js jetstream.JetStream) (*RequestStore, error) {
	kv, err := js.KeyValue(ctx, BucketRequests)
	if err != nil {
		return nil, fmt.Errorf("open request store: %w", err)
	}
	return &RequestStore{kv: kv}, nil
}
