// Package events is xvmbot's bus on NATS JetStream: an embedded server for one-machine
// installs, the jobs work queue (one message per VM, deduplicated by job id), the events
// stream the bot reads through a durable consumer, and the KV buckets for request records,
// job records and per-VM leases. Message types are versioned JSON.
package events
