// Package approvals owns move requests: the record of what was asked, by whom, who decided
// and what happened to every VM, the state machine those records follow, the approval
// policy (who may approve, quorum, self-approval, expiry), and the Service that applies
// decisions to stored records with compare-and-swap so that however many clicks arrive at
// once, exactly one of them moves a request to approved.
//
// It knows nothing of Slack, NATS or vSphere: transports and stores plug in through the
// small Store and GroupMembers interfaces.
package approvals
