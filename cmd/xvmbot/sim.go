package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// runSim serves two simulated vCenters on loopback until interrupted and prints the
// vcenters block of a config that points at them, so a person with a Slack workspace but
// no vCenter can try xvmbot. Passwords go to files next to the printed config, never to
// the terminal.
func runSim(ctx context.Context, out io.Writer, dir string) error {
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(8*time.Second))
	if err != nil {
		return fmt.Errorf("start simulated vCenters: %w", err)
	}
	defer lab.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "# Two simulated vCenters are running (Ctrl-C stops them). Paste this into your config:\nvcenters:\n")
	for i, vc := range lab.VCs() {
		pw := filepath.Join(abs, vc.Name+".password")
		if err := os.WriteFile(pw, []byte(vc.Password+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "  - name: %s\n    url: %s\n    username: %s\n    password_file: %s\n    thumbprint: %q\n",
			vc.Name, vc.URL, vc.Username, pw, vc.Thumbprint)
		if i == 0 {
			fmt.Fprintf(out, "    home: true\n")
		}
	}
	fmt.Fprintf(out, "# Try: /xvm migrate web-01 to vc-west cluster=west-prod datastore=ds-gold folder=migrated/web network=app-pg disk=thin\n")
	<-ctx.Done()
	return nil
}
