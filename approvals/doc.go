// Package approvals owns move requests: the record of what was asked, by whom, who decided
// and what happened to every VM, the state machine those records follow, the approval
// policy (who may approve, quorum, self-approval, expiry), and the Service that applies
// decisions to stored records with compare-and-swap so that however many clicks arrive at
// once, exactly one of them moves a request to approved.
//
// Request and job rules live here as methods: how a worker's Report changes a request
// (ApplyReport), which messages show it, and who holds a move's way back (UndoRef,
// ReserveUndo). Every change of a stored request goes through a named Service method.
//
// It knows nothing of Slack, NATS or vSphere: transports and stores plug in through the
// small Store and GroupMembers interfaces. A store that keeps each job apart from its
// request (JobStore) lets a job's report read and write that job and the request's head
// only, whose Tally stands for the jobs: the cost of a report does not grow with the
// request. A request does carry where a transport shows
// it (Request.Channel, Request.MessageTS, Job.ThreadTS), as opaque strings the transport
// sets and reads back: this package stores them and never interprets them. People are
// named by Slack user and group IDs (the policy checks their shape): that is who decides.
package approvals
