package events

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

func TestNewBusCreatesStreamsConsumersBuckets(t *testing.T) {
	t.Parallel()
	cfg := BusConfig{AckWait: 7 * time.Second, LeaseTTL: 11 * time.Second, MaxDeliver: 4, EventsMaxAge: 48 * time.Hour}
	tb := newTestBus(t, cfg)
	ctx := testCtx(t, 10*time.Second)
	js, err := jetstream.New(tb.nc)
	if err != nil {
		t.Fatal(err)
	}

	streams := []struct {
		name       string
		subject    string
		retention  jetstream.RetentionPolicy
		maxAge     time.Duration
		duplicates time.Duration
	}{
		{StreamJobs, SubjectJobs, jetstream.WorkQueuePolicy, 0, 24 * time.Hour},
		{StreamEvents, SubjectEvents + ".>", jetstream.LimitsPolicy, 48 * time.Hour, time.Hour},
	}
	for _, want := range streams {
		t.Run("stream "+want.name, func(t *testing.T) {
			s, err := js.Stream(ctx, want.name)
			if err != nil {
				t.Fatalf("stream %s: %v", want.name, err)
			}
			c := s.CachedInfo().Config
			if len(c.Subjects) != 1 || c.Subjects[0] != want.subject {
				t.Errorf("subjects = %v, want [%s]", c.Subjects, want.subject)
			}
			if c.Retention != want.retention || c.Storage != jetstream.FileStorage {
				t.Errorf("retention/storage = %v/%v, want %v/file", c.Retention, c.Storage, want.retention)
			}
			if c.MaxAge != want.maxAge || c.Duplicates != want.duplicates {
				t.Errorf("max age/duplicates = %v/%v, want %v/%v", c.MaxAge, c.Duplicates, want.maxAge, want.duplicates)
			}
		})
	}

	consumers := []struct {
		stream, name  string
		ackWait       time.Duration
		maxDeliver    int
		minAckPending int
	}{
		{StreamJobs, ConsumerWorkers, 7 * time.Second, 4, 1000},
		{StreamEvents, ConsumerBot, DefaultEventAckWait, botMaxDeliver, 1},
	}
	for _, want := range consumers {
		t.Run("consumer "+want.name, func(t *testing.T) {
			c, err := js.Consumer(ctx, want.stream, want.name)
			if err != nil {
				t.Fatalf("consumer %s: %v", want.name, err)
			}
			cc := c.CachedInfo().Config
			if cc.Durable != want.name || cc.AckPolicy != jetstream.AckExplicitPolicy {
				t.Errorf("durable/ack policy = %q/%v, want %q/explicit", cc.Durable, cc.AckPolicy, want.name)
			}
			if cc.AckWait != want.ackWait || cc.MaxDeliver != want.maxDeliver {
				t.Errorf("ack wait/max deliver = %v/%d, want %v/%d", cc.AckWait, cc.MaxDeliver, want.ackWait, want.maxDeliver)
			}
			if cc.MaxAckPending < want.minAckPending || len(cc.BackOff) != 0 {
				t.Errorf("max ack pending = %d (want ≥ %d), backoff = %v (want none)", cc.MaxAckPending, want.minAckPending, cc.BackOff)
			}
		})
	}

	buckets := []struct {
		name    string
		history int64
		ttl     time.Duration
	}{
		{BucketRequests, 5, 0},
		{BucketJobs, 5, 0},
		{BucketLeases, 1, 11 * time.Second},
		{BucketDeliveries, 1, deliveriesTTL},
		{BucketDigests, 1, 0},
	}
	for _, want := range buckets {
		t.Run("bucket "+want.name, func(t *testing.T) {
			kv, err := js.KeyValue(ctx, want.name)
			if err != nil {
				t.Fatalf("bucket %s: %v", want.name, err)
			}
			st, err := kv.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.History() != want.history || st.TTL() != want.ttl {
				t.Errorf("history/ttl = %d/%v, want %d/%v", st.History(), st.TTL(), want.history, want.ttl)
			}
		})
	}

	t.Run("idempotent", func(t *testing.T) {
		if err := tb.PublishJob(ctx, Job{ID: "j-keep", VM: "web-01"}); err != nil {
			t.Fatal(err)
		}
		cfg.AckWait = 9 * time.Second
		for range 2 {
			if _, err := NewBus(ctx, tb.nc, cfg, testLogger(t), prometheus.NewRegistry()); err != nil {
				t.Fatalf("NewBus again: %v", err)
			}
		}
		c, err := js.Consumer(ctx, StreamJobs, ConsumerWorkers)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.CachedInfo().Config.AckWait; got != 9*time.Second {
			t.Errorf("ack wait after reconfigure = %v, want 9s", got)
		}
		eventually(ctx, t, "the queued job to still be there", func() bool {
			n, err := tb.QueuedJobs(ctx)
			return err == nil && n == 1
		})
	})
}

func TestPublishJobDeduplicates(t *testing.T) {
	t.Parallel()
	tb := newTestBus(t, BusConfig{AckWait: time.Second})
	ctx := testCtx(t, 15*time.Second)

	j := Job{ID: "job-1", RequestID: "xvm-abc", VM: "web-01", SourceVC: "vc-east", TargetVC: "vc-west"}
	for range 2 {
		if err := tb.PublishJob(ctx, j); err != nil {
			t.Fatalf("PublishJob: %v", err)
		}
	}
	if err := tb.PublishJob(ctx, Job{ID: "job-2", VM: "web-02"}); err != nil {
		t.Fatal(err)
	}
	// The consumer's pending count follows the stream asynchronously: await it.
	eventually(ctx, t, "2 queued jobs", func() bool {
		n, err := tb.QueuedJobs(ctx)
		return err == nil && n == 2
	})
	if got := metricValue(t, tb.reg, "xvm_jobs_queued", nil); got != 2 {
		t.Errorf("xvm_jobs_queued = %v, want 2", got)
	}
	if got := metricValue(t, tb.reg, "xvm_nats_publish_total", map[string]string{"kind": "job", "outcome": "duplicate"}); got != 1 {
		t.Errorf("duplicate publishes counted = %v, want 1", got)
	}

	// Every job consumed exactly once.
	wctx, stop := context.WithCancel(ctx)
	seen := make(chan Job, 10)
	done := make(chan error, 1)
	go func() {
		done <- tb.RunWorker(wctx, 2, func(_ context.Context, j Job, _ Delivery) error {
			seen <- j
			return nil
		})
	}()
	got := map[string]int{}
	for range 2 {
		select {
		case j := <-seen:
			got[j.ID]++
			if j.V != SchemaVersion || j.QueuedAt.IsZero() {
				t.Errorf("job %s: v=%d queued_at=%v, want v=%d and a time", j.ID, j.V, j.QueuedAt, SchemaVersion)
			}
		case <-ctx.Done():
			t.Fatal("jobs not consumed")
		}
	}
	eventually(ctx, t, "queue drained", func() bool {
		n, err := tb.QueuedJobs(ctx)
		return err == nil && n == 0 && metricValue(t, tb.reg, "xvm_nats_deliveries_total", map[string]string{"kind": "job", "outcome": "ack"}) == 2
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("RunWorker: %v", err)
	}
	if len(seen) != 0 || got["job-1"] != 1 || got["job-2"] != 1 {
		t.Fatalf("consumed %v (+%d more), want job-1 and job-2 once each", got, len(seen))
	}
}
