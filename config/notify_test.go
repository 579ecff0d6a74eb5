package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/xvmbot/xvmbot/approvals"
)

// Approvers are named in the message and reminded an hour before expiry unless the
// file says otherwise; what it says reaches the approval policy.
func TestApprovalsNotifyAndReminders(t *testing.T) {
	cfg, err := parseText(t, minimal, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Approvals.Policy(); p.Notify != approvals.NotifyMention || !slices.Equal(p.RemindBefore, []time.Duration{time.Hour}) {
		t.Errorf("defaults: notify %q, remind_before %v; want mention, [1h]", p.Notify, p.RemindBefore)
	}
	cfg, err = parseText(t, strings.Replace(minimal, "approvers: [U012ABC]", "approvers: [U012ABC]\n  notify: dm\n  remind_before: [2h, 30m]", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Approvals.Policy(); p.Notify != approvals.NotifyDM || !slices.Equal(p.RemindBefore, []time.Duration{2 * time.Hour, 30 * time.Minute}) {
		t.Errorf("as set: notify %q, remind_before %v; want dm, [2h 30m]", p.Notify, p.RemindBefore)
	}
	if _, err := parseText(t, strings.Replace(minimal, "approvers: [U012ABC]", "approvers: [U012ABC]\n  remind_before: []", 1), nil); err != nil {
		t.Errorf("remind_before: [] (never) refused: %v", err)
	}
	if DefaultApprovalsConfig.RemindBefore[0] != time.Hour {
		t.Fatal("a load changed the package default")
	}
	for text, want := range map[string]string{
		"notify: email":        `approvals.notify: "email" is not one of mention, dm, none`,
		"remind_before: [5h]":  "approvals.remind_before: 5h0m0s must be more than 0 and less than approvals.expire_after (4h0m0s)",
		"remind_before: [-1m]": "approvals.remind_before: -1m0s must be more than 0",
	} {
		_, err := parseText(t, strings.Replace(minimal, "approvers: [U012ABC]", "approvers: [U012ABC]\n  "+text, 1), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", text, err, want)
		}
	}
}

// Left out, remind_before never makes a valid expire_after refused: with requests that
// expire within the default reminder's hour, the reminder comes halfway instead. Given,
// it is checked against expire_after as written.
func TestDefaultReminderFitsAShortExpiry(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []time.Duration
		err  string
	}{
		{yaml: "expire_after: 1h", want: []time.Duration{30 * time.Minute}},
		{yaml: "expire_after: 20m", want: []time.Duration{10 * time.Minute}},
		{yaml: "expire_after: 4h", want: []time.Duration{time.Hour}},
		{yaml: "expire_after: 1h\nremind_before: []", want: nil},
		{yaml: "expire_after: 1h\nremind_before: [1h]", err: "must be more than 0 and less than approvals.expire_after"},
	} {
		var a ApprovalsConfig
		if err := yaml.Unmarshal([]byte(tc.yaml), &a); err != nil {
			t.Fatal(err)
		}
		a.Approvers = []string{"U012ABC"}
		err := a.validate()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(a.RemindBefore, tc.want) {
			t.Errorf("%q: remind_before %v (%v), want %v", tc.yaml, a.RemindBefore, err, tc.want)
		}
	}
}
