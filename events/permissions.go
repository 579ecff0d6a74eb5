package events

import (
	"slices"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Role is who holds a NATS credential. Each role may publish and subscribe to exactly
// what its half of xvmbot does (Permissions), so a stolen or misused credential of one
// role cannot do the other's work: a worker's cannot queue a job or change a request
// record, a bot's cannot report a job's outcome.
type Role string

// The roles of xvmbot's NATS credentials.
const (
	// RoleBot is `xvmbot bot`: it publishes jobs, reads job events, keeps the request
	// records and creates every stream, consumer and bucket (NewBus).
	RoleBot Role = "bot"
	// RoleWorker is `xvmbot worker`: it takes jobs, reports their events and keeps the job
	// records, leases and slots; it only reads request records and creates nothing.
	RoleWorker Role = "worker"
	// RoleServe is `xvmbot serve`, bot and worker in one process: both lists together.
	RoleServe Role = "serve"
)

// bucketDeliveries is the bot's own record of what it has shown in Slack. Only the bot
// reads and writes it.
const bucketDeliveries = "xvm-deliveries"

// Permissions is what one credential may publish and subscribe to. Both are allow
// lists: everything else is denied.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// InboxPrefix is the prefix of the reply subjects a role's connection uses. Each role
// has its own, so that one role's credential cannot subscribe to the replies another
// receives (request records, job records read by the bot).
func InboxPrefix(r Role) string {
	if r == RoleWorker {
		return "_INBOX.xvm-worker"
	}
	return "_INBOX.xvm-bot" // serve answers as the bot: its list includes the bot's
}

// ClientOptions are the connection options a role's process must use for its
// permissions to fit (its own inbox prefix).
func ClientOptions(r Role) []nats.Option {
	return []nats.Option{nats.CustomInboxPrefix(InboxPrefix(r))}
}

const jsAPI = "$JS.API."

// bucketAccess is what a role does with one KV bucket.
type bucketAccess int

const (
	bucketRead  bucketAccess = iota // get keys (direct get)
	bucketWrite                     // get, create, update, delete keys
	bucketList                      // all of write, and list keys (an ordered consumer)
)

// RolePermissions returns the subjects a role may publish and subscribe to: the
// JetStream API calls, stream subjects and acknowledgements its code makes, nothing
// more. docs/nats-permissions.md explains each line.
func RolePermissions(r Role) Permissions {
	switch r {
	case RoleBot:
		return botPermissions()
	case RoleWorker:
		return workerPermissions()
	case RoleServe:
		b, w := botPermissions(), workerPermissions()
		return Permissions{Publish: union(b.Publish, w.Publish), Subscribe: union(b.Subscribe, w.Subscribe)}
	}
	return Permissions{}
}

func botPermissions() Permissions {
	pub := []string{
		SubjectJobs,
		// Provisioning: the bot creates and updates every stream and bucket (NewBus).
		// Creating a KV bucket asks for the account's JetStream limits first.
		jsAPI + "INFO",
	}
	// CreateOrUpdate tries an update first and creates on "not found".
	for _, s := range []string{StreamJobs, StreamEvents, kvStream(BucketRequests), kvStream(BucketJobs),
		kvStream(BucketLeases), kvStream(BucketSlots), kvStream(bucketDeliveries), kvStream(BucketDigests)} {
		pub = append(pub, jsAPI+"STREAM.CREATE."+s, jsAPI+"STREAM.UPDATE."+s)
	}
	pub = append(pub,
		// Both durable consumers; the bot reads the workers' one for the queue depth.
		jsAPI+"CONSUMER.CREATE."+StreamJobs+"."+ConsumerWorkers,
		jsAPI+"CONSUMER.INFO."+StreamJobs+"."+ConsumerWorkers,
		jsAPI+"CONSUMER.CREATE."+StreamEvents+"."+ConsumerBot+".>", // filtered: the filter is in the subject
		jsAPI+"CONSUMER.MSG.NEXT."+StreamEvents+"."+ConsumerBot,
		"$JS.ACK."+StreamEvents+"."+ConsumerBot+".>",
		// The slots bucket is kept in memory: the bot looks it up to make it again after
		// a restart of every NATS server lost it (Bus.keepMemoryBuckets).
		jsAPI+"STREAM.INFO."+kvStream(BucketSlots),
	)
	pub = append(pub, bucketSubjects(BucketRequests, bucketList)...)
	pub = append(pub, bucketSubjects(BucketJobs, bucketWrite)...) // cancel marks the job record
	pub = append(pub, bucketSubjects(bucketDeliveries, bucketWrite)...)
	pub = append(pub, bucketSubjects(BucketDigests, bucketWrite)...)
	return Permissions{Publish: pub, Subscribe: []string{InboxPrefix(RoleBot) + ".>"}}
}

func workerPermissions() Permissions {
	pub := []string{
		SubjectEvents + ".>",
		jsAPI + "CONSUMER.INFO." + StreamJobs + "." + ConsumerWorkers,
		jsAPI + "CONSUMER.MSG.NEXT." + StreamJobs + "." + ConsumerWorkers,
		"$JS.ACK." + StreamJobs + "." + ConsumerWorkers + ".>",
	}
	pub = append(pub, bucketSubjects(BucketJobs, bucketWrite)...)
	// Listed at start-up: the leases a previous run of the same worker left (takeBack).
	pub = append(pub, bucketSubjects(BucketLeases, bucketList)...)
	pub = append(pub, bucketSubjects(BucketSlots, bucketWrite)...)
	// Read only: the worker checks a job against its approved request.
	pub = append(pub, bucketSubjects(BucketRequests, bucketRead)...)
	return Permissions{Publish: pub, Subscribe: []string{InboxPrefix(RoleWorker) + ".>"}}
}

// bucketSubjects are the subjects for one kind of access to one KV bucket. Looking a
// bucket up reads its stream's info; a get is a direct get of the key's last message
// (DIRECT.GET.<stream>.<key subject>); a write is a publish on the key's subject; listing
// keys runs an ordered push consumer (created, flow-controlled and deleted by the client).
func bucketSubjects(bucket string, a bucketAccess) []string {
	s := kvStream(bucket)
	out := []string{
		jsAPI + "STREAM.INFO." + s,
		jsAPI + "DIRECT.GET." + s + ".$KV." + bucket + ".>",
	}
	if a >= bucketWrite {
		out = append(out, "$KV."+bucket+".>")
	}
	if a >= bucketList {
		out = append(out,
			jsAPI+"CONSUMER.CREATE."+s+".>",
			jsAPI+"CONSUMER.DELETE."+s+".*",
			"$JS.FC."+s+".>",
		)
	}
	return out
}

func kvStream(bucket string) string { return "KV_" + bucket }

// union returns the subjects of a and b, each once, in order.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// serverPermissions turns p into nats-server's form; nil p means no limit.
func serverPermissions(p *Permissions) *server.Permissions {
	if p == nil {
		return nil
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Clone(p.Publish)},
		Subscribe: &server.SubjectPermission{Allow: slices.Clone(p.Subscribe)},
	}
}
