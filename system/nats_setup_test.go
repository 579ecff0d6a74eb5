package system

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Set-up errors that mean NATS did not answer in time (seen while a three-node cluster
// elected a leader after a node was SIGKILLed) or that its cluster is not whole yet are
// waited out; refusals are not.
func TestSetupWaitsOutANATSThatDoesNotAnswer(t *testing.T) {
	for _, tc := range []struct {
		err   error
		retry bool
	}{
		{fmt.Errorf("new bus: consumer xvm-workers: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("stream XVM_JOBS: %w", nats.ErrTimeout), true},
		{fmt.Errorf("bucket xvm-leases: %w", nats.ErrNoResponders), true},
		{fmt.Errorf("save: %w", jetstream.ErrNoStreamResponse), true},
		// A three-node cluster with a node not yet up, as xvmload's chaos run once met it.
		{fmt.Errorf("new bus: bucket xvm-requests: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005,
			Description: "no suitable peers for placement, peer offline"}), true},
		{fmt.Errorf("stream XVM_JOBS: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008,
			Description: "JetStream system temporarily unavailable"}), true},
		{fmt.Errorf("stream XVM_JOBS: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005,
			Description: "no suitable peers for placement, insufficient storage"}), false},
		{fmt.Errorf("stream XVM_JOBS: %w", jetstream.ErrJetStreamNotEnabled), false},
		{errors.New("nats: permissions violation for subscription to $JS.API.>"), false},
		{fmt.Errorf("stream XVM_JOBS: %w", jetstream.ErrStreamNameAlreadyInUse), false},
	} {
		if got := unansweredSetup(tc.err); got != tc.retry {
			t.Errorf("unansweredSetup(%v) = %v, want %v", tc.err, got, tc.retry)
		}
	}
}
