package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/events"
)

// A VM that pre-flight blocks, asked about through the signed slash-command endpoint:
// only its requester hears the answer, which names the blocker and what to do about it
// and carries no Approve button; nothing reaches the channel, the request records or the
// job queue. trip-usb has a USB device of its host connected, which vMotion cannot move.
func TestBlockedVMIsAnsweredPrivatelyAndQueuesNothing(t *testing.T) {
	h := newHarness(t)
	const where = "trip-usb to vc-west cluster=west-prod datastore=ds-gold network=app-pg"
	// The blocker, what to do about it, and that nothing went further.
	blocker := []string{"trip-usb", "is a connected USB device", "disconnect it", "nothing was queued"}
	for _, c := range []struct {
		name, text       string
		command, outcome string // the xvm_commands_total labels it ends with
		want             []string
	}{
		{"check", "check migrate " + where, "check", "blocked", blocker},
		{"migrate", "migrate " + where, "migrate", "blocked", blocker},
		// "check" needs the direction; without it the answer says so, and nothing runs.
		{"check without a direction", "check " + where, "check", "usage_error", []string{`"migrate" or "import"`}},
	} {
		n := len(h.ws.Ephemerals(uReq))
		rep, err := h.ws.Command(h.ctx, uReq, chan1, c.text)
		if err != nil || rep.Status != http.StatusOK {
			t.Fatalf("%s: command %q: %v %+v", c.name, c.text, err, rep)
		}
		if rep.Latency > 3*time.Second {
			t.Errorf("%s: acknowledged after %s; Slack gives up after 3s", c.name, rep.Latency)
		}
		answer := h.awaitAnswer(uReq, n, c.want...)
		plain := h.ws.Plain(answer)
		if answer.To != uReq || (answer.Via != "chat.postEphemeral" && answer.Via != "response_url" && answer.Via != "ack") {
			t.Errorf("%s: the answer went to %q via %s, want only %s privately", c.name, answer.To, answer.Via, uReq)
		}
		for _, w := range c.want {
			if !strings.Contains(plain, w) {
				t.Errorf("%s: the answer does not say %q:\n%s", c.name, w, plain)
			}
		}
		if strings.Contains(string(answer.Blocks), `"xvm_approve"`) || strings.Contains(string(answer.Blocks), `"xvm_reject"`) {
			t.Errorf("%s: the answer offers Approve/Reject buttons:\n%s", c.name, answer.Blocks)
		}
		// The work behind the command has returned once its outcome is counted: whatever
		// it was going to store or publish, it has by now.
		line := fmt.Sprintf(`xvm_commands_total{command=%q,outcome=%q} 1`, c.command, c.outcome)
		h.await(line, func() bool { return h.metric(h.sys, line) })
		h.nothingShared(c.name)
	}
}

// awaitAnswer waits for a private answer to user, after the first `after` ones, that
// holds every part, and returns it.
func (h *harness) awaitAnswer(user string, after int, parts ...string) slacksim.Message {
	h.t.Helper()
	var got slacksim.Message
	h.await(fmt.Sprintf("a private answer to %s saying %q", user, parts), func() bool {
		e := h.ws.Ephemerals(user)
		for _, m := range e[min(after, len(e)):] {
			p := h.ws.Plain(m)
			ok := true
			for _, part := range parts {
				ok = ok && strings.Contains(p, part)
			}
			if ok {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// nothingShared fails the test if anything left the requester's private view: a message
// in the channel or a thread, a stored request (even one since deleted), a published job.
func (h *harness) nothingShared(what string) {
	h.t.Helper()
	for _, m := range h.ws.Messages() {
		if m.To == "" {
			h.t.Errorf("%s: a message everyone sees (via %s):\n%s", what, m.Via, h.ws.Plain(m))
		}
	}
	if n := h.ws.Calls("chat.postMessage"); n != 0 {
		h.t.Errorf("%s: %d chat.postMessage calls", what, n)
	}
	if recs, err := h.sys.Approvals().Store().List(h.ctx); err != nil || len(recs) != 0 {
		h.t.Errorf("%s: %d requests stored (%v)", what, len(recs), err)
	}
	js, err := jetstream.New(h.sys.Conn())
	if err != nil {
		h.t.Fatal(err)
	}
	kv, err := js.KeyValue(h.ctx, events.BucketRequests)
	if err != nil {
		h.t.Fatal(err)
	}
	// Values counts every revision the bucket holds, deletions included: a request
	// stored and then withdrawn would still show.
	if st, err := kv.Status(h.ctx); err != nil || st.Values() != 0 {
		h.t.Errorf("%s: the %s bucket holds %d values (%v)", what, events.BucketRequests, valuesOf(st), err)
	}
	s, err := js.Stream(h.ctx, events.StreamJobs)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	// LastSeq, not the messages left: a job published and taken at once leaves none.
	if info.State.LastSeq != 0 {
		h.t.Errorf("%s: %d jobs published on %s", what, info.State.LastSeq, events.StreamJobs)
	}
}

func valuesOf(st jetstream.KeyValueStatus) uint64 {
	if st == nil {
		return 0
	}
	return st.Values()
}
