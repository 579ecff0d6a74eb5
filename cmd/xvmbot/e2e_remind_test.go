package main

import (
	"strings"
	"testing"
	"time"

	"github.com/xvmbot/xvmbot/approvals"
	"github.com/xvmbot/xvmbot/bot/slacksim"
	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/system"
)

// A request nobody decides reminds its approvers once, before it expires: in its thread
// and, when they were asked by DM, in each DM; it then expires, its buttons gone, and the
// reminder is not repeated by the sweeps that follow.
func TestPendingRequestRemindsThenExpires(t *testing.T) {
	for _, mode := range transports {
		t.Run(mode.name, func(t *testing.T) { remindThenExpire(t, mode.opts) })
	}
}

func remindThenExpire(t *testing.T, opts []harnessOpt) {
	short := func(c *config.Config) {
		c.Approvals.Notify = approvals.NotifyDM
		c.Approvals.ExpireAfter = 6 * time.Second
		c.Approvals.RemindBefore = []time.Duration{4 * time.Second}
	}
	h := newHarnessWith(t, system.RoleServe, []system.Option{system.WithSweepEvery(100 * time.Millisecond)}, append(opts, short)...)
	msg := h.request(uReq, "migrate web-01 to vc-west cluster=west-prod datastore=ds-gold network=app-pg")
	id := h.requestID(msg)
	reminders := func(ts string) (n int, text string) {
		for _, m := range h.ws.Thread(ts) {
			if p := h.ws.Plain(m); strings.Contains(p, "⏰") {
				n, text = n+1, p
			}
		}
		return n, text
	}
	var dm slacksim.Message
	h.await("a DM to bob", func() bool {
		ch := h.ws.Channel(slacksim.DMChannel(uBoss))
		if len(ch) == 1 {
			dm = ch[0]
		}
		return len(ch) == 1
	})
	h.await("the reminder in the request's thread", func() bool { n, _ := reminders(msg.TS); return n > 0 })
	_, text := reminders(msg.TS)
	for _, want := range []string{id, "1 more approval", "expires"} {
		if !strings.Contains(text, want) {
			t.Errorf("the reminder does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "@bob") {
		t.Errorf("the reminder mentions an approver who was reminded by DM:\n%s", text)
	}
	h.await("the reminder in bob's DM", func() bool { n, _ := reminders(dm.TS); return n > 0 })

	h.await("the request to expire", func() bool {
		r, err := h.stored(id)
		return err == nil && r.State == approvals.StateExpired
	})
	h.await("the request message without buttons", func() bool { return len(h.parent(msg.TS).ActionIDs()) == 0 })
	time.Sleep(500 * time.Millisecond) // five more sweeps: none may remind again
	if n, _ := reminders(msg.TS); n != 1 {
		t.Errorf("the thread holds %d reminders, want 1", n)
	}
	if n, _ := reminders(dm.TS); n != 1 {
		t.Errorf("bob's DM holds %d reminders, want 1", n)
	}
}
