package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Digests records, in the KV bucket BucketDigests, the latest period whose scheduled
// digest was claimed for each digest channel, so that every bot replica posts a period's
// digest once between them, and a bot that starts after a period began without its
// digest (every replica was down at the time) posts it once.
//
// One key per channel holds the newest claimed period, replaced by compare-and-swap: it
// never grows, and needs no TTL, so it remembers a period however long it is (the Slack
// deliveries bucket forgets after minutes, far less than a day's period).
type Digests struct {
	kv jetstream.KeyValue
}

// digestClaim is the value of a digest key.
type digestClaim struct {
	Period    time.Time `json:"period"` // the start of the claimed period
	Holder    string    `json:"holder"`
	ClaimedAt time.Time `json:"claimed_at"`
}

// Claim claims the digest of the period starting at period for channel, on behalf of
// holder, and reports whether holder has it: of any number of concurrent claims of one
// period exactly one gets true (KV Create, then CAS on the key's revision); the same
// holder claiming again (its first answer lost) gets true again; anyone else, and any
// claim of a period older than the newest claimed one, gets false.
func (d *Digests) Claim(ctx context.Context, channel string, period time.Time, holder string) (bool, error) {
	key := "digest." + channel
	want := digestClaim{Period: period.UTC(), Holder: holder, ClaimedAt: time.Now().UTC()}
	for {
		var have digestClaim
		rev, err := kvGet(ctx, d.kv, key, &have)
		switch {
		case errors.Is(err, errKVNotFound):
			_, err = kvCreate(ctx, d.kv, key, want)
		case err != nil:
			return false, fmt.Errorf("claim digest: %w", err)
		case have.Period.Equal(want.Period):
			return have.Holder == holder, nil
		case have.Period.After(want.Period):
			return false, nil
		default:
			_, err = kvUpdate(ctx, d.kv, key, want, rev)
		}
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, errKVExists), errors.Is(err, errKVConflict), errors.Is(err, errKVNotFound):
			// Another replica wrote first: read what it claimed.
			if err := ctx.Err(); err != nil {
				return false, fmt.Errorf("claim digest: %w", err)
			}
		default:
			return false, fmt.Errorf("claim digest: %w", err)
		}
	}
}
