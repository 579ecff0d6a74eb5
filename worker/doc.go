// Package worker runs approved jobs: it takes one job at a time per slot from the bus,
// makes sure no other worker moves the same VM, resolves the move again against the live
// inventories, runs the cross-vCenter relocation, and reports every step back as events.
//
// It is the glue between events (where jobs come from) and vcenter (what runs them), and
// deliberately holds no state of its own: the job record and the lease live in NATS, the
// task lives in vCenter, so any worker can pick up after any other.
package worker
