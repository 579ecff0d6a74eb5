// Package events is xvmbot's bus on NATS JetStream: an embedded server for one-machine
// installs, the jobs work queue (one message per VM, deduplicated by job id), the events
// stream the bot reads through a durable consumer, and the KV buckets for request records,
// job records and per-VM leases. Message types are versioned JSON.
//
// Guarantees, and where they come from:
//
//   - A job is delivered at least once. A worker pulls one job per free slot, heartbeats
//     it (InProgress every AckWait/3) while the handler runs, and acks only when the
//     handler is done; a worker that dies or shuts down stops heartbeating and the job
//     goes to another worker after AckWait.
//   - At-least-once means a job can run twice (a stale worker's late ack is accepted by
//     the server; Nats-Msg-Id dedupe is forgotten after a restart). The guards are in KV:
//     JobRecords.Create lets exactly one worker claim a job, and a Lease per VM keeps two
//     workers off the same VM. A redelivered job re-attaches to the recorded vCenter task.
//   - Request records change only by compare-and-swap (RequestStore.Update), so of many
//     concurrent approval clicks exactly one is applied. A request is kept in parts (its
//     head, chunks of 500 VMs, a key per job) so that no value grows with it; a job's
//     report swaps its job's key and, when the job starts or ends, the head.
//   - Events reach the bot at least once and in publish order (its consumer hands out one
//     event at a time); the bot dedupes by event id.
//   - Only the bot can queue a job or change a request record, and only a worker can
//     report a job's events, when each connects with its role's credential
//     (RolePermissions): the lists allow what each role's code does and nothing else. An
//     embedded server that listens beyond its process always requires those credentials.
package events
