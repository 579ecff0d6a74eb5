package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// parseSizes reads -vms: one size, or a comma list of sizes run one after another.
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.Atoi(strings.ReplaceAll(part, "_", ""))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a number of VMs (at least 1); e.g. -vms 200 or -vms 50,200,1000", part)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// waveResult is what one wave measured.
type waveResult struct {
	vms       int
	preflight time.Duration // migrate command → approval message
	wave      time.Duration // approve → last VM's final event
	ideal     time.Duration // ceil(VMs / bound of the limits) × task delay
	idle      time.Duration // idle slot time per move; 0 when no task was read back
}

func (r waveResult) ratio() float64 { return r.wave.Seconds() / r.ideal.Seconds() }

// curveTable prints the waves of several sizes as one table; each size's idle slot time
// per move is set against the first size's, which is what "a flat cost per move" compares.
func curveTable(rs []waveResult) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "VMs\tpre-flight\tapprove → last VM\tideal\tvs ideal\tidle slot/move\tidle vs first\t")
	for _, r := range rs {
		rel := "?"
		if r.idle > 0 && rs[0].idle > 0 {
			rel = fmt.Sprintf("%.2f×", float64(r.idle)/float64(rs[0].idle))
		}
		idle := "?"
		if r.idle != 0 {
			idle = r.idle.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%v\t%v\t%v\t%.3f×\t%s\t%s\t\n", r.vms, r.preflight.Round(time.Millisecond),
			r.wave.Round(time.Millisecond), r.ideal, r.ratio(), idle, rel)
	}
	_ = tw.Flush()
	return b.String()
}

// runWave runs one wave per size of -vms, each on a fresh stack with the same task delay
// and limits; with more than one size it ends with the curve.
func runWave(ctx context.Context, f flags) error {
	sizes := f.sizes
	if len(sizes) == 0 {
		sizes = []int{f.vms}
	}
	var rs []waveResult
	for i, n := range sizes {
		if len(sizes) > 1 {
			fmt.Printf("\n-- wave %d of %d: %d VMs\n", i+1, len(sizes), n)
		}
		g := f
		g.vms = n
		r, err := runWaveOnce(ctx, g)
		if err != nil {
			return fmt.Errorf("%d VMs: %w", n, err)
		}
		rs = append(rs, r)
	}
	if len(rs) > 1 {
		fmt.Printf("\nthe curve (task %v, max_concurrent %d, per_host %d, per_datastore %d):\n%s",
			f.taskDuration, f.slots, f.perHost, f.perDatastore, curveTable(rs))
	}
	return nil
}
