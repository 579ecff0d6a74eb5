package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied by NewBus to a zero BusConfig.
const (
	DefaultAckWait = 30 * time.Second
	// DefaultEventAckWait is BusConfig.EventAckWait's default.
	DefaultEventAckWait = 6 * time.Second
	DefaultLeaseTTL     = 60 * time.Second
	// DefaultMaxDeliver is unlimited: a job waiting for a free host or datastore is
	// handed back many times, and a job past MaxDeliver would sit in the stream, never
	// delivered: approved work lost. Retries of real faults are bounded by the worker.
	DefaultMaxDeliver    = -1
	DefaultRetryDelay    = 5 * time.Second
	DefaultEventsMaxAge  = 30 * 24 * time.Hour
	DefaultShutdownGrace = 10 * time.Second

	// jobsDuplicates is how long a job id is remembered by the jobs stream. A day covers
	// any retry loop of the bot; past that (and after a server restart, docs/nats-facts.md N1) the
	// KV job record is the guard against running a job twice.
	jobsDuplicates = 24 * time.Hour
	// eventsDuplicates covers publish retries of the same event.
	eventsDuplicates = time.Hour
	// workersMaxAckPending bounds jobs in flight across all workers together (it is a
	// consumer-wide limit, not per worker): far above any sane slot count, so it never
	// becomes the hidden concurrency limit.
	workersMaxAckPending = 4096
	// botMaxAckPending = 1 makes the server hand the bot one event at a time and
	// redeliver a nak'ed event before any later one: events arrive in order.
	botMaxAckPending = 1
	// botMaxDeliver stops one event the bot cannot handle from blocking the rest forever.
	botMaxDeliver = 20

	requestsHistory = 5
	jobsHistory     = 5

	// deliveriesTTL is how long a handled Slack delivery is remembered: longer than the
	// five minutes within which Slack's signature timestamp lets a request be replayed,
	// and than Slack's retries.
	deliveriesTTL = 10 * time.Minute
)

// BusConfig tunes the streams, consumers and buckets. Zero values take the defaults.
type BusConfig struct {
	// Role is who opens the bus. RoleWorker only looks up the streams, consumer and
	// buckets a worker uses, and takes AckWait, MaxDeliver and LeaseTTL from them: a
	// worker's credential may create or change nothing (see RolePermissions), so a worker
	// can never redefine where jobs come from. Any other role (the zero value included)
	// creates or updates the whole layout.
	Role Role
	// Replicas of every stream and bucket; 1 for the embedded server, 3 on a cluster.
	Replicas int
	// AckWait is how long a worker may stay silent before its job is given to another
	// worker. Running handlers heartbeat every AckWait/3, so it bounds how fast a crashed
	// worker's job moves on, not how long a relocation may take.
	AckWait time.Duration
	// EventAckWait is how long a bot may hold a job event without a word before another
	// bot (or the same one, restarted) gets it. Events are handed out one at a time, so a
	// bot killed while it holds one holds every request's progress up that long. A bot
	// handling an event says it is still at it every EventAckWait/3 (for at most
	// eventHeartbeatMost), so it bounds how fast a dead bot's event moves on, not how
	// long Slack may take.
	EventAckWait time.Duration
	// LeaseTTL is how long a per-VM lease outlives its last renewal.
	LeaseTTL time.Duration
	// MaxDeliver caps deliveries of one job (crash loops, repeated retries).
	MaxDeliver int
	// RetryDelay is the first delay before a job that asked for a retry is delivered
	// again; it doubles with each attempt, up to maxRetryDelay.
	RetryDelay time.Duration
	// EventsMaxAge is how long events are kept in the events stream.
	EventsMaxAge time.Duration
	// ShutdownGrace is how long RunWorker waits, once its ctx is done, for handlers to
	// return before it gives up on them.
	ShutdownGrace time.Duration
}

func (c BusConfig) withDefaults() BusConfig {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.EventAckWait <= 0 {
		c.EventAckWait = DefaultEventAckWait
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.MaxDeliver == 0 || c.MaxDeliver < -1 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.EventsMaxAge <= 0 {
		c.EventsMaxAge = DefaultEventsMaxAge
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	return c
}

// Bus is everything the bot and the workers do on NATS. It does not own the connection:
// whoever opened it closes it after the Run methods have returned.
type Bus struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	cfg     BusConfig
	logger  *slog.Logger
	metrics *metrics

	workers  jetstream.Consumer
	bot      jetstream.Consumer
	requests *RequestStore
	jobs     *JobRecords
	leases   *Leases
	slots    *Slots
	handled  *Deliveries
	digests  *Digests
	retries  retryCounts // plain retries of each job in a row, for their delay
}

// ErrNotProvisioned is returned by NewBus for RoleWorker when a stream, consumer or
// bucket does not exist yet: the bot creates them when it starts.
var ErrNotProvisioned = errors.New("the nats streams and buckets do not exist yet; the bot creates them when it starts")

// NewBus opens xvmbot's streams, consumers and buckets. For the bot (and serve, and any
// role but RoleWorker) it creates or updates them, so every such process can call it at
// start-up: it is idempotent, and a changed BusConfig is applied in place where NATS
// allows it. For RoleWorker it only looks up what a worker uses (ErrNotProvisioned if
// the bot has not created it yet).
func NewBus(ctx context.Context, nc *nats.Conn, cfg BusConfig, logger *slog.Logger, reg prometheus.Registerer) (*Bus, error) {
	if nc == nil {
		return nil, errors.New("new bus: nil nats connection")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("new bus: %w", err)
	}
	b := &Bus{nc: nc, js: js, cfg: cfg, logger: logger.With("component", "events")}
	var kvs map[string]jetstream.KeyValue
	if cfg.Role == RoleWorker {
		kvs, err = b.attachWorker(ctx)
	} else {
		kvs, err = b.provision(ctx)
	}
	if err != nil {
		return nil, err
	}
	b.requests = &RequestStore{kv: kvs[BucketRequests]}
	b.jobs = &JobRecords{kv: kvs[BucketJobs]}
	b.leases = &Leases{kv: kvs[BucketLeases], ttl: b.cfg.LeaseTTL}
	b.slots = &Slots{kv: kvs[BucketSlots], ttl: b.cfg.LeaseTTL}
	b.handled = &Deliveries{kv: kvs[BucketDeliveries]} // the bot's; a worker has none
	b.digests = &Digests{kv: kvs[BucketDigests]}       // the bot's too
	b.metrics = newMetrics(reg, b.QueuedJobs)

	b.logger.Info("nats bus ready", "role", string(cfg.Role), "replicas", b.cfg.Replicas, "ack_wait", b.cfg.AckWait,
		"lease_ttl", b.cfg.LeaseTTL, "max_deliver", b.cfg.MaxDeliver)
	return b, nil
}

// provision creates or updates every stream, consumer and bucket.
func (b *Bus) provision(ctx context.Context) (map[string]jetstream.KeyValue, error) {
	js, cfg := b.js, b.cfg
	var err error
	if _, err := js.CreateOrUpdateStream(ctx, jobsStreamConfig(cfg)); err != nil {
		return nil, fmt.Errorf("new bus: stream %s: %w", StreamJobs, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, eventsStreamConfig(cfg)); err != nil {
		return nil, fmt.Errorf("new bus: stream %s: %w", StreamEvents, err)
	}
	if b.workers, err = js.CreateOrUpdateConsumer(ctx, StreamJobs, workersConsumerConfig(cfg)); err != nil {
		return nil, fmt.Errorf("new bus: consumer %s: %w", ConsumerWorkers, err)
	}
	if b.bot, err = js.CreateOrUpdateConsumer(ctx, StreamEvents, botConsumerConfig(cfg)); err != nil {
		return nil, fmt.Errorf("new bus: consumer %s: %w", ConsumerBot, err)
	}
	kvs := make(map[string]jetstream.KeyValue, 6)
	for _, kc := range bucketConfigs(cfg) {
		kv, err := b.provisionBucket(ctx, js, kc)
		if err != nil {
			return nil, fmt.Errorf("new bus: bucket %s: %w", kc.Bucket, err)
		}
		kvs[kc.Bucket] = kv
	}
	return kvs, nil
}

// provisionBucket creates or updates a bucket. A bucket that cannot be had in memory is
// kept on file: one an earlier version made there (NATS cannot change a stream's storage
// in place; an operator may delete the slots bucket while no job runs), or an account
// without memory storage.
func (b *Bus) provisionBucket(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, kc)
	if err != nil && kc.Storage == jetstream.MemoryStorage {
		b.logger.Info("bucket kept on file storage", "bucket", kc.Bucket, "reason", err)
		kc.Storage = jetstream.FileStorage
		kv, err = js.CreateOrUpdateKeyValue(ctx, kc)
	}
	return kv, err
}

// memoryBucketCheckEvery is how often the bot looks for its buckets kept in memory.
const memoryBucketCheckEvery = 2 * time.Second

// keepMemoryBuckets creates again, until ctx is done, every bucket kept in memory that has
// gone: NATS keeps a memory stream only while a server holding it runs, so a restart of
// every NATS server (the embedded one, or a whole cluster) loses the slots bucket, and
// workers, which may not create buckets, could claim no slot until it is back. The holders
// of running moves take their slots again at their next renewal (Claim.Renew). Only the
// bot (and serve) does this: it is the role that provisions.
func (b *Bus) keepMemoryBuckets(ctx context.Context, every time.Duration) {
	var inMemory []jetstream.KeyValueConfig
	for _, kc := range bucketConfigs(b.cfg) {
		if kc.Storage == jetstream.MemoryStorage {
			inMemory = append(inMemory, kc)
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, kc := range inMemory {
			_, err := b.js.KeyValue(ctx, kc.Bucket)
			if !errors.Is(err, jetstream.ErrBucketNotFound) {
				continue // there, or NATS is away: look again later
			}
			if _, err := b.provisionBucket(ctx, b.js, kc); err != nil {
				b.logger.Warn("bucket kept in memory is gone and could not be created again; trying again", "bucket", kc.Bucket, "err", err)
				continue
			}
			b.logger.Warn("bucket kept in memory was gone (every NATS server restarted) and is created again; running moves take their slots again at their next renewal", "bucket", kc.Bucket)
		}
	}
}

// attachWorker looks up what a worker uses, and adopts the timings the bot gave them:
// a worker heartbeating on its own, longer, AckWait would lose its jobs to others.
func (b *Bus) attachWorker(ctx context.Context) (map[string]jetstream.KeyValue, error) {
	missing := func(what string, err error) error {
		if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
			errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("new bus: %s: %w", what, ErrNotProvisioned)
		}
		return fmt.Errorf("new bus: %s: %w", what, err)
	}
	var err error
	if b.workers, err = b.js.Consumer(ctx, StreamJobs, ConsumerWorkers); err != nil {
		return nil, missing("consumer "+ConsumerWorkers, err)
	}
	cc := b.workers.CachedInfo().Config
	b.adopt("ack_wait", &b.cfg.AckWait, cc.AckWait)
	if cc.MaxDeliver != b.cfg.MaxDeliver {
		b.logger.Info("max deliver taken from the workers' consumer", "configured", b.cfg.MaxDeliver, "consumer", cc.MaxDeliver)
		b.cfg.MaxDeliver = cc.MaxDeliver
	}
	kvs := make(map[string]jetstream.KeyValue, 4)
	for _, bucket := range []string{BucketRequests, BucketJobs, BucketLeases, BucketSlots} {
		kv, err := b.js.KeyValue(ctx, bucket)
		if err != nil {
			return nil, missing("bucket "+bucket, err)
		}
		kvs[bucket] = kv
	}
	st, err := kvs[BucketLeases].Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("new bus: bucket %s: %w", BucketLeases, err)
	}
	b.adopt("lease_ttl", &b.cfg.LeaseTTL, st.TTL())
	return kvs, nil
}

// adopt takes a timing from the layout the bot created, saying so when it differs from
// this process's own config.
func (b *Bus) adopt(key string, dst *time.Duration, have time.Duration) {
	if have <= 0 || have == *dst {
		return
	}
	b.logger.Warn("a nats timing differs from what the bot configured; using the bot's", "key", "nats."+key,
		"configured", *dst, "in_use", have)
	*dst = have
}

func jobsStreamConfig(cfg BusConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamJobs,
		Description: "xvmbot jobs: one message per VM to relocate, consumed once by a worker",
		Subjects:    []string{SubjectJobs},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  jobsDuplicates,
		// Refuse new jobs when full rather than silently dropping approved ones.
		Discard: jetstream.DiscardNew,
	}
}

func eventsStreamConfig(cfg BusConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamEvents,
		Description: "xvmbot job events (queued, started, progress, succeeded, failed, cancelled)",
		Subjects:    []string{SubjectEvents + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.EventsMaxAge,
		Duplicates:  eventsDuplicates,
		Discard:     jetstream.DiscardOld,
	}
}

func workersConsumerConfig(cfg BusConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerWorkers,
		Description:   "shared by all xvmbot workers",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		// No BackOff: it overrides AckWait and would defeat the heartbeats.
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: workersMaxAckPending,
		Replicas:      cfg.Replicas,
	}
}

func botConsumerConfig(cfg BusConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerBot,
		Description:   "the xvmbot bot: job events to Slack threads",
		FilterSubject: SubjectEvents + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.EventAckWait,
		MaxDeliver:    botMaxDeliver,
		MaxAckPending: botMaxAckPending,
		Replicas:      cfg.Replicas,
	}
}

func bucketConfigs(cfg BusConfig) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{
			Bucket:      BucketRequests,
			Description: "xvmbot request records, CAS-updated",
			History:     requestsHistory, // a few revisions help when auditing a disputed approval
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		},
		{
			Bucket:      BucketJobs,
			Description: "xvmbot job execution records: who runs a job, which vCenter task",
			History:     jobsHistory,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		},
		{
			Bucket:      BucketLeases,
			Description: "xvmbot per-VM leases; expire LeaseTTL after the last renewal",
			// Bucket-wide TTL, History 1: a renewal (Update) writes a fresh message and the
			// old one ages out. Per-key TTLs would be lost on Update (docs/nats-facts.md N2).
			History:  1,
			TTL:      cfg.LeaseTTL,
			Storage:  jetstream.FileStorage,
			Replicas: cfg.Replicas,
		},
		{
			Bucket:      BucketSlots,
			Description: "xvmbot concurrency slots: holders per host, datastore and vCenter",
			// Holders carry their own expiry inside the value (a key is shared by many
			// holders, so a bucket TTL would drop live ones with the dead).
			History: 1,
			// In memory: a claim writes one key per host, datastore and vCenter, one after
			// another, before its move may start, and a file-stored write waits for the
			// disk (the embedded server syncs every write). Nothing is lost that matters:
			// a restart of every NATS server loses the bucket, the bot makes it again
			// (keepMemoryBuckets), and the holders of running moves take their slots
			// again at their next renewal (Claim.Renew).
			Storage:  jetstream.MemoryStorage,
			Replicas: cfg.Replicas,
		},
		{
			Bucket:      BucketDeliveries,
			Description: "xvmbot Slack deliveries already handled: retries and replays are handled once, by any bot replica, across restarts",
			// A key is written once (Create) and ages out with the bucket TTL.
			History:  1,
			TTL:      deliveriesTTL,
			Storage:  jetstream.FileStorage,
			Replicas: cfg.Replicas,
		},
		{
			Bucket:      BucketDigests,
			Description: "xvmbot scheduled digests: the newest period claimed per channel, so one replica posts each",
			// One key per digest channel, replaced by CAS; no TTL: a period may last days.
			History:  1,
			Storage:  jetstream.FileStorage,
			Replicas: cfg.Replicas,
		},
	}
}

// Deliveries returns the log of Slack deliveries already handled.
func (b *Bus) Deliveries() *Deliveries { return b.handled }

// Digests returns the claims of scheduled digests.
func (b *Bus) Digests() *Digests { return b.digests }

// Slots returns the cluster-wide concurrency slots.
func (b *Bus) Slots() *Slots { return b.slots }

// Requests returns the request records store (approvals.Store on KV).
func (b *Bus) Requests() *RequestStore { return b.requests }

// Jobs returns the per-job execution records.
func (b *Bus) Jobs() *JobRecords { return b.jobs }

// Leases returns the per-VM leases.
func (b *Bus) Leases() *Leases { return b.leases }

// Config returns the configuration in effect, defaults filled in.
func (b *Bus) Config() BusConfig { return b.cfg }

// QueuedJobs returns how many jobs wait in the queue that no worker has taken yet
// (jobs being worked on or waiting for a delayed retry are not counted).
func (b *Bus) QueuedJobs(ctx context.Context) (uint64, error) {
	info, err := b.workers.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("queued jobs: %w", err)
	}
	return info.NumPending, nil
}
