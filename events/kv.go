package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Outcomes of a KV write or read, mapped by each store onto its own sentinel errors.
var (
	errKVNotFound = errors.New("key not found")
	errKVExists   = errors.New("key exists")
	errKVConflict = errors.New("revision conflict")
)

// kvCreate stores v under key only if the key does not exist (or was deleted). Of many
// concurrent creates exactly one wins: that is what decides races such as two workers
// claiming one job.
func kvCreate(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Create(ctx, key, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, errKVExists
	}
	return rev, err
}

// kvGet reads the latest value of key into v and returns its revision.
func kvGet(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	e, err := kvEntry(ctx, kv, key)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return e.Revision(), nil
}

// kvEntry reads the latest entry of key, undecoded; errKVNotFound if there is none.
func kvEntry(ctx context.Context, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errKVNotFound
	}
	return e, err
}

// kvUpdate replaces key only if its latest revision is still rev (compare-and-swap).
// A key that no longer exists is reported as errKVNotFound, not as a conflict.
func kvUpdate(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	newRev, err := kv.Update(ctx, key, data, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		if _, gerr := kv.Get(ctx, key); errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return 0, errKVNotFound
		}
		return 0, errKVConflict
	}
	return newRev, err
}

// kvKeys lists the bucket's live keys (those that match filters, if any are given); an
// empty bucket is not an error.
func kvKeys(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]string, error) {
	if len(filters) == 0 {
		filters = []string{">"}
	}
	lister, err := kv.ListKeysFiltered(ctx, filters...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lister.Stop() }()
	seen := map[string]bool{}
	var keys []string
	for k := range lister.Keys() {
		if !seen[k] { // the lister may report a key twice while it is being written
			seen[k] = true
			keys = append(keys, k)
		}
	}
	// The lister closes its channel quietly when ctx ends: do not pass off a partial
	// list as the whole.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return keys, nil
}
