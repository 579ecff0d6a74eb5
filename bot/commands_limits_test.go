package bot

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xvmbot/xvmbot/approvals"
)

// pastedVMs is n VM names of about size characters each, comma separated as pasted.
func pastedVMs(n, size int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("app-%0*d", size-4, i)
	}
	return strings.Join(names, ", ")
}

// The channel is checked before the text is read: a long command from the wrong channel
// is refused as from the wrong channel, not parsed (nor answered as malformed).
func TestChannelIsCheckedBeforeTheCommandIsRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.Channels = []string{testChannel} })
	text := "migrate " + pastedVMs(3000, 20) + " to vc-west dsk=thin" // about 70 KB, and malformed
	got := ackText(t, e.commandIn("C0ELSE", requester, text))
	if !strings.Contains(got, "does not take requests in this channel") || strings.Contains(got, "dsk") {
		t.Fatalf("a long malformed command from the wrong channel was answered:\n%s", got)
	}
	if v := counterValue(e.bot.m.commands.WithLabelValues(VerbMigrate, outcomeRefused)); v != 1 {
		t.Fatalf("xvm_commands_total{migrate,refused} = %v", v)
	}
	// Help is answered anywhere.
	if got := ackText(t, e.commandIn("C0ELSE", requester, "help")); !strings.Contains(got, "/xvm migrate") {
		t.Fatalf("help outside the allowed channels:\n%s", got)
	}
}

func TestOversizedCommandsAreRefusedNamingTheLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		matches map[string][]string
		want    []string
		answer  string // "ack" or "ephemeral"
	}{
		{name: "text over slack.max_command_bytes", text: "migrate " + pastedVMs(300, 20) + " to vc-west",
			want: []string{"slack.max_command_bytes", "4096", "Split the VMs"}, answer: "ack"},
		{name: "more VMs typed than limits.max_vms_per_request", text: "migrate " + pastedVMs(11, 8) + " to vc-west",
			want: []string{"names 11 VMs", "limits.max_vms_per_request", "at most 10", "Split the VMs"}, answer: "ack"},
		{name: "check too", text: "check migrate " + pastedVMs(11, 8) + " to vc-west",
			want: []string{"limits.max_vms_per_request"}, answer: "ack"},
		{name: "a pattern matching more", text: "migrate app-* to vc-west", matches: map[string][]string{"app-*": strings.Split(pastedVMs(12, 8), ", ")},
			want: []string{"matches 12 VMs", "limits.max_vms_per_request"}, answer: "ephemeral"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.MaxCommandBytes, c.MaxVMsPerRequest = 4096, 10 })
			e.planner.matches = tt.matches
			d := e.command(requester, tt.text)
			e.settle()
			var got string
			if tt.answer == "ack" {
				got = ackText(t, d)
				if len(e.planner.specs) != 0 {
					t.Fatal("the oversized command was planned")
				}
			} else if eph := e.ephemeralsTo(requester); len(eph) == 1 {
				got = eph[0].Words()
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("answer lacks %q:\n%s", w, got)
				}
			}
			if n := len(e.requests()); n != 0 {
				t.Fatalf("%d requests stored", n)
			}
			if n := len(e.slack.Public()); n != 0 {
				t.Fatalf("%d messages posted in the channel", n)
			}
		})
	}
}

// 5,000 VMs of typical names fit the default caps: a wave that size is one request.
func TestFiveThousandVMsFitTheDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	text := "migrate " + pastedVMs(5000, 24) + " to vc-west"
	if len(text) > DefaultMaxCommandBytes {
		t.Fatalf("5,000 names of 24 characters are %d bytes: over the default cap of %d", len(text), DefaultMaxCommandBytes)
	}
	if got := ackText(t, e.command(requester, text)); !strings.Contains(got, "Checking app-") {
		t.Fatalf("answer:\n%s", got)
	}
	e.settle()
	if all := e.requests(); len(all) != 1 || len(all[0].VMs) != 5000 {
		t.Fatalf("stored %d requests (want 1 of 5000 VMs)", len(all))
	}
}

// The wizard's multi-select is bounded by the same cap.
func TestWizardRefusesMoreVMsThanTheCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *approvals.Policy) { c.MaxVMsPerRequest = 2 })
	ws := wizardState{Direction: approvals.Migrate, Channel: testChannel, Source: "vc-east", Target: "vc-west",
		VMs: []string{"web-01", "web-02", "web-03"}, Compute: "cluster:cl-west", Datastore: "ds-west-1"}
	if _, errs := e.bot.wizardCommand(ws); !strings.Contains(errs[wizVMs], "at most 2") || !strings.Contains(errs[wizVMs], "limits.max_vms_per_request") {
		t.Fatalf("wizard errors %v", errs)
	}
}
