package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xvmbot/xvmbot/vcenter/xvmsim"
)

// runSim serves two simulated vCenters on loopback until interrupted and prints the
// vcenters block of a config that points at them, so a person with a Slack workspace but
// no vCenter can try xvmbot. Passwords and certificates are kept in dir, never printed:
// a restart serves the same thumbprints and passwords, and with port the same URLs, so
// the config stays valid. The block is also written to dir/vcenters.yaml.
func runSim(ctx context.Context, out io.Writer, dir string, port int) error {
	if port < 0 || port > 65534 {
		return fmt.Errorf("sim: --port %d is not a port (the second vCenter takes the next one)", port)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	lab, err := xvmsim.Start(ctx, xvmsim.WithTaskDuration(8*time.Second), xvmsim.WithPort(port), xvmsim.WithStateDir(abs))
	if err != nil {
		if port > 0 {
			return fmt.Errorf("start simulated vCenters on ports %d and %d: %w", port, port+1, err)
		}
		return fmt.Errorf("start simulated vCenters: %w", err)
	}
	defer lab.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "vcenters:\n")
	for i, vc := range lab.VCs() {
		fmt.Fprintf(&b, "  - name: %s\n    url: %s\n    username: %s\n    password_file: %s\n    thumbprint: %q\n",
			vc.Name, vc.URL, vc.Username, filepath.Join(abs, vc.Name+".password"), vc.Thumbprint)
		if i == 0 {
			fmt.Fprintf(&b, "    home: true\n")
		}
	}
	block := filepath.Join(abs, "vcenters.yaml")
	if err := os.WriteFile(block, []byte(b.String()), 0o600); err != nil {
		return err
	}
	stable := "certificates and passwords are kept in " + abs + ", so a restart keeps the thumbprints"
	if port > 0 {
		stable += fmt.Sprintf(" and, on ports %d-%d, the URLs: this block stays valid", port, port+1)
	} else {
		stable += "; start with --port N to keep the URLs too"
	}
	fmt.Fprintf(out, "# Two simulated vCenters are running (Ctrl-C stops them); %s.\n# Paste this into your config (also in %s):\n%s", stable, block, b.String())
	fmt.Fprintf(out, "# Try: /xvm migrate web-01 to vc-west cluster=west-prod datastore=ds-gold folder=migrated/web network=app-pg disk=thin\n")
	<-ctx.Done()
	return nil
}
