package system

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/xvmbot/xvmbot/events"
)

// nameRenewEvery is how often a worker renews the claim on its name: a restarted worker
// whose previous run was killed waits about three of these before it takes the name over.
const nameRenewEvery = 2 * time.Second

// claimName takes the worker's name for this process on an external NATS: two running
// workers under one name would each take the other's jobs for their own (worker.takeBack),
// so a second one is refused at start, saying who holds it. With the embedded NATS the
// data directory's lock already allows one process.
func (s *System) claimName(ctx context.Context, name string) error {
	lease, err := s.bus.Leases().ClaimName(ctx, name, bootID(), nameRenewEvery)
	if errors.Is(err, events.ErrNameInUse) {
		return fmt.Errorf("another worker is running under the name %q: %w. Each running worker needs a name of its own: "+
			"set a different worker.name for this one, or leave it unset to use the host's name and ops port", name, err)
	}
	if err != nil {
		return fmt.Errorf("claim the worker name %q: %w", name, err)
	}
	s.name = lease
	s.nameOf = name
	return nil
}

// keepName renews the claim on the worker's name until ctx ends. A claim that lapsed
// (NATS was away for longer than the lease TTL) is made again; one another process took
// over (it saw no renewal for three periods) ends this process with an error rather than
// let two workers run under one name.
func (s *System) keepName(ctx context.Context) error {
	t := time.NewTicker(nameRenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := s.name.Renew(ctx)
		if !errors.Is(err, events.ErrLeaseLost) {
			if err != nil && ctx.Err() == nil {
				s.log.Warn("renew the claim on the worker's name", "name", s.nameOf, "err", err)
			}
			continue
		}
		holder, herr := s.bus.Leases().Holder(ctx, "instance/"+s.nameOf)
		if herr == nil && holder != "" {
			return fmt.Errorf("another process took over the worker name %q (held by %s): stopping, so that two workers do not run under one name", s.nameOf, holder)
		}
		if err := s.claimName(ctx, s.nameOf); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// releaseName gives the name up at a clean stop: the next run takes it at once.
func (s *System) releaseName() {
	if s.name == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.name.Release(ctx); err != nil {
		s.log.Warn("release the claim on the worker's name", "name", s.nameOf, "err", err)
	}
}

// bootID tells this run of the process from any other: host, process id and a random part.
func bootID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}
