package worker

import (
	"context"
	"time"
)

// retry calls f until it succeeds, at most attempts times, waiting pause times the
// attempt number between tries; it gives up early when ctx ends. It returns f's last
// error. The worker's writes that must not be lost (the record of a started task, the
// final event) go through it.
func retry(ctx context.Context, attempts int, pause time.Duration, f func(ctx context.Context, attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := f(ctx, attempt)
		if err == nil || attempt >= attempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * pause):
		}
	}
}
