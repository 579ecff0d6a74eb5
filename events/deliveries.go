package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Deliveries is the log of Slack deliveries the bot has handled, in the KV bucket
// BucketDeliveries: the first bot replica to claim a delivery handles it, and a retry or
// a replay of the same signed request, to any replica or after a restart, finds it
// claimed. Keys age out with the bucket's TTL.
type Deliveries struct {
	kv jetstream.KeyValue
}

// Claim records key for holder and reports whether holder has it: of any number of
// concurrent first claims of one key exactly one gets true (KV Create); the same holder
// claiming again (its first answer lost on the way) gets true again, anyone else false.
// Any string is a key: it is stored hashed, so it needs no escaping and says nothing of
// the payload.
func (d *Deliveries) Claim(ctx context.Context, key, holder string) (bool, error) {
	sum := sha256.Sum256([]byte(key))
	k := hex.EncodeToString(sum[:])
	_, err := d.kv.Create(ctx, k, []byte(holder))
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		e, err := d.kv.Get(ctx, k)
		if err != nil {
			return false, fmt.Errorf("claim delivery: read the holder: %w", err)
		}
		return string(e.Value()) == holder, nil
	case err != nil:
		return false, fmt.Errorf("claim delivery: %w", err)
	}
	return true, nil
}
