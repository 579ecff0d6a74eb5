// Package system is the one constructor of a running xvmbot: from a config.Config and a
// Role it builds NATS (embedded or external), the bus, the vCenter sessions, the approval
// service, the bot and the worker that role needs, the /metrics, /healthz and /readyz
// listener and, for a bot in http mode, Slack's listener. `xvmbot serve`, `bot` and
// `worker`, the demo, the end-to-end tests and the load tool (cmd/xvmload) all start the
// system this way, so what they exercise is what runs in production.
//
// New builds and opens listeners but starts nothing; Run runs every part under one
// errgroup until its context ends and shuts down within a bounded time.
package system
