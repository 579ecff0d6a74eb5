package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSizesReadsOneSizeOrACommaList(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]int{
		"200":                   {200},
		"50,200,1000,2000,5000": {50, 200, 1000, 2000, 5000},
		" 50, 200 ":             {50, 200},
		"1_000,5_000":           {1000, 5000},
	} {
		got, err := parseSizes(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseSizes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "50,", "50,,200", "0", "-5", "fifty", "50;200"} {
		if got, err := parseSizes(in); err == nil {
			t.Errorf("parseSizes(%q) = %v; want an error", in, got)
		}
	}
}

// The curve's two ratios are the proofs: each wave against the ideal for the
// limits, and each size's idle slot time per move against the first size's.
func TestCurveTableRatios(t *testing.T) {
	t.Parallel()
	rs := []waveResult{
		{vms: 50, preflight: 200 * time.Millisecond, wave: 1100 * time.Millisecond, ideal: time.Second, idle: 40 * time.Millisecond},
		{vms: 5000, preflight: 30 * time.Second, wave: 115 * time.Second, ideal: 100 * time.Second, idle: 50 * time.Millisecond},
		{vms: 2000, preflight: 9 * time.Second, wave: 40 * time.Second, ideal: 40 * time.Second}, // no tasks read back
	}
	if got := rs[1].ratio(); got != 1.15 {
		t.Errorf("ratio of 115 s to an ideal of 100 s = %v, want 1.15", got)
	}
	rows := strings.Split(strings.TrimRight(curveTable(rs), "\n"), "\n")
	if len(rows) != 4 {
		t.Fatalf("want a header and 3 rows, got:\n%s", strings.Join(rows, "\n"))
	}
	for i, want := range [][]string{
		{"VMs", "pre-flight", "approve → last VM", "ideal", "vs ideal", "idle slot/move", "idle vs first"},
		{"50", "200ms", "1.1s", "1s", "1.100×", "40ms", "1.00×"},
		{"5000", "30s", "1m55s", "1m40s", "1.150×", "50ms", "1.25×"},
		{"2000", "9s", "40s", "40s", "1.000×", "?", "?"},
	} {
		for _, cell := range want {
			if !strings.Contains(rows[i], cell) {
				t.Errorf("row %d %q lacks %q", i, rows[i], cell)
			}
		}
	}
}
