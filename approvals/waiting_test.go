package approvals

import (
	"testing"
	"time"
)

// A request waits for a user's decision only while that user could approve it now.
func TestAwaitsDecisionOf(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	p := Policy{Approvers: []string{"U0BOSS", "U0ALICE", "S0ADMINS"}, Quorum: 2}
	members := map[string][]string{"S0ADMINS": {"U0CAROL"}}
	pending := func() *Request {
		return &Request{ID: "xvm-w1", State: StatePending, Requester: "U0ALICE", Quorum: 2, ExpiresAt: now.Add(time.Hour)}
	}
	for _, tc := range []struct {
		name string
		r    func() *Request
		user string
		want bool
	}{
		{"an approver", pending, "U0BOSS", true},
		{"a member of an approver group", pending, "U0CAROL", true},
		{"not an approver", pending, "U0DAVE", false},
		{"the requester", pending, "U0ALICE", false},
		{"already approved by the user", func() *Request {
			r := pending()
			r.Approvals = []Decision{{User: "U0BOSS", At: now}}
			return r
		}, "U0BOSS", false},
		{"the approval that would complete the quorum", func() *Request {
			r := pending()
			r.Approvals = []Decision{{User: "U0CAROL", At: now}}
			r.Jobs = []Job{{ID: "xvm-w1-01", VM: "web-01", State: StatePending}}
			return r
		}, "U0BOSS", true},
		{"expired", func() *Request { r := pending(); r.ExpiresAt = now; return r }, "U0BOSS", false},
		{"decided", func() *Request { r := pending(); r.State = StateRejected; return r }, "U0BOSS", false},
	} {
		r := tc.r()
		before := len(r.Approvals)
		if got := r.AwaitsDecisionOf(p, tc.user, members, now); got != tc.want {
			t.Errorf("%s: AwaitsDecisionOf = %v, want %v", tc.name, got, tc.want)
		}
		if len(r.Approvals) != before || r.State != tc.r().State || len(r.Jobs) > 0 && r.Jobs[0].State != StatePending {
			t.Errorf("%s: asking changed the request", tc.name)
		}
	}
}
