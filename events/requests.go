package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/approvals"
)

// RequestStore keeps request records in the KV bucket BucketRequests, as JSON keyed by
// request id. It is the durable approvals.Store: approvals survive restarts, and
// concurrent clicks are settled by KV compare-and-swap.
//
// A record is decoded once per revision: the store keeps the last revision it read or
// wrote of a few requests, decoded, and hands out copies of it while the bucket still
// holds that revision. A 200-VM request is about 125 KB of JSON, and every job event
// reads it; decoding it on every read was most of the bot's CPU in a wave.
type RequestStore struct {
	kv jetstream.KeyValue

	mu     sync.Mutex
	cached map[string]cachedRequest
}

type cachedRequest struct {
	rev uint64
	r   *approvals.Request
}

// requestCacheSize bounds the decoded records kept: the requests in flight at once.
const requestCacheSize = 32

func (s *RequestStore) remember(r *approvals.Request, rev uint64) {
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
	s.cached[r.ID] = cachedRequest{rev: rev, r: r.Clone()}
}

func (s *RequestStore) recall(id string, rev uint64) *approvals.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cached[id]; ok && c.rev == rev {
		return c.r.Clone()
	}
	return nil
}

var _ approvals.Store = (*RequestStore)(nil)

// Create stores a new request; approvals.ErrExists if the id is taken.
func (s *RequestStore) Create(ctx context.Context, r *approvals.Request) (uint64, error) {
	rev, err := kvCreate(ctx, s.kv, r.ID, r)
	switch {
	case errors.Is(err, errKVExists):
		return 0, fmt.Errorf("create request %s: %w", r.ID, approvals.ErrExists)
	case err != nil:
		return 0, fmt.Errorf("create request %s: %w", r.ID, err)
	}
	s.remember(r, rev)
	return rev, nil
}

// Get returns the request and its revision; approvals.ErrNotFound if there is none.
func (s *RequestStore) Get(ctx context.Context, id string) (*approvals.Request, uint64, error) {
	e, err := kvEntry(ctx, s.kv, id)
	switch {
	case errors.Is(err, errKVNotFound) || errors.Is(err, jetstream.ErrInvalidKey):
		// A string that cannot be a key (someone typed "/xvm status foo bar") is simply
		// not a request.
		return nil, 0, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	case err != nil:
		return nil, 0, fmt.Errorf("get request %s: %w", id, err)
	}
	if r := s.recall(id, e.Revision()); r != nil {
		return r, e.Revision(), nil
	}
	var r approvals.Request
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("get request %s: decode: %w", id, err)
	}
	s.remember(&r, e.Revision())
	return &r, e.Revision(), nil
}

// Update replaces the request if it is still at revision rev: approvals.ErrConflict if
// someone else wrote it since, approvals.ErrNotFound if it does not exist.
func (s *RequestStore) Update(ctx context.Context, r *approvals.Request, rev uint64) (uint64, error) {
	newRev, err := kvUpdate(ctx, s.kv, r.ID, r, rev)
	switch {
	case errors.Is(err, errKVConflict):
		return 0, fmt.Errorf("update request %s at revision %d: %w", r.ID, rev, approvals.ErrConflict)
	case errors.Is(err, errKVNotFound):
		return 0, fmt.Errorf("update request %s: %w", r.ID, approvals.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("update request %s: %w", r.ID, err)
	}
	s.remember(r, newRev)
	return newRev, nil
}

// List returns every request, oldest first. It reads each record, so it is meant for
// "/xvm list" and start-up recovery, not for hot paths.
func (s *RequestStore) List(ctx context.Context) ([]*approvals.Request, error) {
	keys, err := kvKeys(ctx, s.kv)
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

// OpenRequestStore reads the requests bucket another process created, for tools and
// tests that look at what the bot stored (the next bot, /xvm status, an operator).
func OpenRequestStore(ctx context.Context, js jetstream.JetStream) (*RequestStore, error) {
	kv, err := js.KeyValue(ctx, BucketRequests)
	if err != nil {
		return nil, fmt.Errorf("open request store: %w", err)
	}
	return &RequestStore{kv: kv}, nil
}
