// Package bot is xvmbot's Slack side. It receives /xvm slash commands and button clicks
// over Socket Mode or signed HTTP (both through the same handlers), acknowledges them
// within Slack's three seconds and does the work afterwards on a bounded pool of workers
// it owns (pool.go; when every worker is busy and the queue is full, a command or click is
// refused at once with a "busy, try again" answer and nothing of it is stored):
// pre-flight through the vCenters, the approval message, decisions applied by the
// approvals service (the policy is always checked against the stored record, never
// trusted from a payload), one queued job per VM once a request is approved, and the
// progress, failures and final result of those jobs in the request's thread: one message
// per VM, or above Config.TableAbove VMs one progress table (table.go) and a message per
// failure. An ended request with failures offers approvers a retry of its failed VMs
// (retry.go), and /xvm undo takes back a job or a whole request (commands.go), each as a
// new request that needs approval.
//
// The command grammar (grammar.go; its placement options are one table in options.go
// that drives parsing, printing and help; help.go) and Block Kit rendering (render.go)
// are pure functions; the transports, the Slack Web API wrapper (rate limits, metrics) and the
// flows around them live in the other files. Request and job rules (how a job event
// changes a request, who holds a move's way back) are methods of approvals: bot turns
// Slack deliveries and job events into calls of them, and renders what they return.
//
// What the Bot remembers between deliveries is held by small parts, each owning its
// state and lock: afterAck (work.go: the work pools, in-flight work, shutdown),
// deliveryGuard (deliveries.go: each delivery handled once), editThrottle (throttle.go)
// and putOffEdits (deferred.go: when a message is edited), channelPacer (pacer.go: posts
// per channel within Slack's rate), keyLocks (keylock.go),
// wizardViews (wizard.go), vcInfoCache (inventory.go), onceSet (once.go: notices said
// once), requestViews (requestview.go: each large request in flight kept whole in memory
// and caught up with what other replicas applied, so that showing it costs per job event
// what the event changed, not the request's size) and readiness (app.go).
package bot
