package config

import (
	"strings"
	"testing"
	"time"
)

// slack.digest.at and slack.digest.timezone: a time of day in a zone, checked at load.
func TestDigestSchedule(t *testing.T) {
	withDigest := func(digest string) string {
		return strings.Replace(minimal, "mode: http", "mode: http\n  digest: {channel: C0OPS"+digest+"}", 1)
	}
	for _, tt := range []struct {
		name, digest string
		want         string // the error; "" loads
		at           time.Duration
		daily        bool
		zone         string
	}{
		{"no schedule: multiples of every", "", "", 0, false, "UTC"},
		{"at 08:00 UTC", ", at: \"08:00\"", "", 8 * time.Hour, true, "UTC"},
		{"at 07:30 Paris, weekly", ", at: \"07:30\", timezone: Europe/Paris, every: 168h", "", 7*time.Hour + 30*time.Minute, true, "Europe/Paris"},
		{"zone alone: its midnight", ", timezone: America/New_York", "", 0, true, "America/New_York"},
		{"not a time of day", ", at: 8am", `slack.digest.at must be a time of day such as 08:00, not "8am"`, 0, false, ""},
		{"no such zone", ", at: \"08:00\", timezone: Mars/Olympus", "slack.digest.timezone: unknown time zone Mars/Olympus", 0, false, ""},
		{"at with an hourly digest", ", at: \"08:00\", every: 1h", "slack.digest.at and slack.digest.timezone need slack.digest.every to be a whole number of days (24h, 168h), not 1h0m0s", 0, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseText(t, withDigest(tt.digest), nil)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want it to say %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := cfg.Slack.Digest.Schedule()
			if err != nil {
				t.Fatal(err)
			}
			if d.Channel != "C0OPS" || d.At != tt.at || d.Daily != tt.daily || d.Location.String() != tt.zone {
				t.Errorf("schedule = %+v, want at %v daily %v in %s", d, tt.at, tt.daily, tt.zone)
			}
		})
	}
}
