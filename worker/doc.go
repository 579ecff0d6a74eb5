// Package worker runs approved jobs: it takes one job at a time per slot from the bus,
// makes sure no other worker moves the same VM, resolves the move again against the live
// inventories, runs the cross-vCenter relocation, and reports every step back as events.
//
// It is the glue between events (where jobs come from) and vcenter (what runs them), and
// deliberately holds no state of its own: the job record and the lease live in NATS, the
// task lives in vCenter, so any worker can pick up after any other.
//
// A job's record moves through the states of events.JobState only along the table in
// state.go. The files follow a delivery's phases: job.go (the record, the lease, the
// claim), approval.go, window.go, plans.go, slots.go, run.go, resume.go, verify.go,
// cancel.go and finish.go; deps.go declares what the worker needs of vCenter and of NATS,
// store.go is the NATS side of it.
package worker
