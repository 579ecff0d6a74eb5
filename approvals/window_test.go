package approvals

import (
	"strings"
	"testing"
	"time"
)

func TestWindows(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	// Wednesday 2026-11-25 10:30 in Paris.
	wed := time.Date(2026, 11, 25, 10, 30, 0, 0, paris)
	tests := []struct {
		name  string
		specs []string
		at    time.Time
		want  time.Time
	}{
		{"none means always", nil, wed, wed},
		{"inside daily", []string{"daily 09:00-12:00"}, wed, wed},
		{"before daily", []string{"daily 22:00-04:00"}, wed, time.Date(2026, 11, 25, 22, 0, 0, 0, paris)},
		{"daily across midnight, after midnight", []string{"daily 22:00-04:00"}, time.Date(2026, 11, 26, 3, 0, 0, 0, paris), time.Date(2026, 11, 26, 3, 0, 0, 0, paris)},
		{"weekly weekend", []string{"sat 22:00-sun 04:00"}, wed, time.Date(2026, 11, 28, 22, 0, 0, 0, paris)},
		{"weekly wrapping the week", []string{"sat 22:00-mon 06:00"}, time.Date(2026, 11, 30, 5, 0, 0, 0, paris), time.Date(2026, 11, 30, 5, 0, 0, 0, paris)},
		{"earliest of two", []string{"sat 22:00-sun 04:00", "thursday 20:00-23:00"}, wed, time.Date(2026, 11, 26, 20, 0, 0, 0, paris)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ws []Window
			for _, s := range tt.specs {
				w, err := ParseWindow(s, paris)
				if err != nil {
					t.Fatal(err)
				}
				ws = append(ws, w)
			}
			if got := NextStart(ws, tt.at); !got.Equal(tt.want) {
				t.Fatalf("NextStart(%s) = %s, want %s", tt.at, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"22:00-04:00", "someday 10:00-11:00", "daily 25:00-26:00", "daily 10:00-sun 11:00"} {
		if _, err := ParseWindow(bad, nil); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseWindow(%q) = %v, want an error quoting it", bad, err)
		}
	}
}
