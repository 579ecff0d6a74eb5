package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// PublishJob queues one job. The job id is the Nats-Msg-Id, so publishing the same job
// again (a retried approval, a bot restarted half-way through a request) is a no-op
// within the jobs stream's duplicate window. V and, if unset, QueuedAt are filled in.
func (b *Bus) PublishJob(ctx context.Context, j Job) error {
	if j.ID == "" {
		return errors.New("publish job: empty job id")
	}
	j.V = SchemaVersion
	if j.QueuedAt.IsZero() {
		j.QueuedAt = time.Now().UTC()
	}
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("publish job %s: %w", j.ID, err)
	}
	dup, err := b.publish(ctx, kindJob, SubjectJobs, j.ID, data)
	if err != nil {
		return fmt.Errorf("publish job %s for vm %s: %w", j.ID, j.VM, err)
	}
	b.logger.DebugContext(ctx, "job published", "job_id", j.ID, "request_id", j.RequestID,
		"vm", j.VM, "duplicate", dup)
	return nil
}

// PublishEvent records one event on SubjectEvents.<request>.<type>. An empty ID is
// filled with a unique one; a set ID is the Nats-Msg-Id, so a re-sent event is stored
// once. V and, if unset, At are filled in.
func (b *Bus) PublishEvent(ctx context.Context, e Event) error {
	if e.Type == "" {
		return errors.New("publish event: empty event type")
	}
	if e.ID == "" {
		e.ID = nuid.Next()
	}
	e.V = SchemaVersion
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("publish %s event for job %s: %w", e.Type, e.JobID, err)
	}
	if _, err := b.publish(ctx, kindEvent, EventSubject(e.RequestID, e.Type), e.ID, data); err != nil {
		return fmt.Errorf("publish %s event for job %s: %w", e.Type, e.JobID, err)
	}
	return nil
}

// publish sends one message with a Nats-Msg-Id and waits for the stream's ack. It
// reports whether the stream recognised the message as a duplicate.
func (b *Bus) publish(ctx context.Context, kind, subject, msgID string, data []byte) (bool, error) {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	switch {
	case err != nil:
		b.metrics.publish.WithLabelValues(kind, outcomeError).Inc()
		return false, err
	case ack.Duplicate:
		b.metrics.publish.WithLabelValues(kind, outcomeDuplicate).Inc()
		return true, nil
	default:
		b.metrics.publish.WithLabelValues(kind, outcomeOK).Inc()
		return false, nil
	}
}

// EventSubject is the subject an event of type t for request requestID is published
// on. Characters NATS does not allow in a subject token are replaced by '_', so a
// subscriber can filter on SubjectEvents.<request>.> for one request.
func EventSubject(requestID string, t EventType) string {
	return SubjectEvents + "." + subjectToken(requestID) + "." + subjectToken(string(t))
}

func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		default:
			return r
		}
	}, s)
}

// CancelJob stops a job (see JobRecords.RequestCancel).
func (b *Bus) CancelJob(ctx context.Context, jobID, by string) (JobState, error) {
	return b.jobs.RequestCancel(ctx, jobID, by)
}
