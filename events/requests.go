package events

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/approvals"
)

// RequestStore keeps request records in the KV bucket BucketRequests, as JSON keyed by
// request id. It is the durable approvals.Store: approvals survive restarts, and
// concurrent clicks are settled by KV compare-and-swap.
type RequestStore struct {
	kv jetstream.KeyValue
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
	return rev, nil
}

// Get returns the request and its revision; approvals.ErrNotFound if there is none.
func (s *RequestStore) Get(ctx context.Context, id string) (*approvals.Request, uint64, error) {
	var r approvals.Request
	rev, err := kvGet(ctx, s.kv, id, &r)
	switch {
	case errors.Is(err, errKVNotFound) || errors.Is(err, jetstream.ErrInvalidKey):
		// A string that cannot be a key (someone typed "/xvm status foo bar") is simply
		// not a request.
		return nil, 0, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	case err != nil:
		return nil, 0, fmt.Errorf("get request %s: %w", id, err)
	}
	return &r, rev, nil
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
