package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/bot/slacksim"
)

// The chaos run's verdict is only worth its "no violation" if each way of breaking a
// promise is caught: a VM never moved, moved twice, left in the source or missing from the
// target, and a final reply lost or doubled.
func TestChaosVerdictCatchesEveryBrokenPromise(t *testing.T) {
	t.Parallel()
	vms := []string{"bulk-0001", "bulk-0002", "bulk-0003", "bulk-0004"}
	once := func(string) int { return 1 }
	yes := func(string) bool { return true }
	no := func(string) bool { return false }
	only := func(vm string, v int) func(string) int {
		return func(s string) int {
			if s == vm {
				return v
			}
			return 1
		}
	}
	except := func(vm string, v bool) func(string) bool {
		return func(s string) bool { return (s == vm) == v }
	}
	cases := []struct {
		name      string
		relocs    func(string) int
		inTarget  func(string) bool
		inSource  func(string) bool
		finals    int
		queued    int
		violation string // "" : none
	}{
		{"all kept", once, yes, no, 1, 0, ""},
		{"a VM never moved", only("bulk-0002", 0), except("bulk-0002", false), except("bulk-0002", true), 1, 0, "1 VMs never moved"},
		{"a VM moved twice", only("bulk-0003", 2), yes, no, 1, 0, "1 VMs moved more than once"},
		{"a VM not in the target", once, except("bulk-0004", false), no, 1, 0, "1 VMs not in the target"},
		{"a VM still in the source", once, yes, except("bulk-0001", true), 1, 0, "1 VMs still in the source"},
		{"the final reply lost", once, yes, no, 0, 0, "0 final replies in the thread, want 1"},
		{"the final reply doubled", once, yes, no, 2, 0, "2 final replies in the thread, want 1"},
		{"a job left in the queue", once, yes, no, 1, 1, "1 jobs left in the queue, want 0"},
		{"the queue unread", once, yes, no, 1, -1, "the jobs queue could not be read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := judge(vms, c.relocs, c.inTarget, c.inSource, c.finals)
			v.queued = c.queued
			got := v.violations()
			if c.violation == "" {
				if len(got) != 0 || v.movedOnce != len(vms) {
					t.Errorf("violations %q, moved once %d of %d; want none", got, v.movedOnce, len(vms))
				}
				return
			}
			if !slices.Contains(got, c.violation) {
				t.Errorf("violations %q; want %q among them", got, c.violation)
			}
		})
	}
}

// Only the reply that tells the requester how the request ended counts as final: not the
// approval message, the progress table or a per-VM failure reply.
func TestChaosFinalReplyIsTheRequestersAnswer(t *testing.T) {
	t.Parallel()
	msg := func(text string) slacksim.Message {
		b, _ := json.Marshal([]map[string]any{{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text}}})
		return slacksim.Message{Text: text, Blocks: b}
	}
	final := msg("✅ <@" + alice + ">, your migrate request xvm-abcd1234 is done: all 6 VMs moved to vc-west.")
	others := []slacksim.Message{
		msg("Request xvm-abcd1234 by <@" + alice + "> to migrate 6 VMs: waiting for approval"),
		msg("Moving 6 VMs: 3 done, 0 failed, 3 to go"),
		msg("bulk-0003 failed to move: InvalidState"),
	}
	if !isFinalReply(final) {
		t.Errorf("the final reply is not recognised: %q", final.Text)
	}
	for _, m := range others {
		if isFinalReply(m) {
			t.Errorf("taken for the final reply: %q", m.Text)
		}
	}
	if !strings.Contains(final.Text, "<@"+alice+">") {
		t.Fatal("fixture")
	}
}
