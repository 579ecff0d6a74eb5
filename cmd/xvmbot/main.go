// Command xvmbot moves virtual machines between vCenters from Slack, safely: Advanced
// Cross vCenter vMotion behind a slash command, an approval and a durable job queue.
//
//	xvmbot demo                      a whole conversation on simulated vCenters, no setup
//	xvmbot serve  --config FILE      bot + worker (+ embedded NATS) in one process
//	xvmbot bot    --config FILE      the Slack side only (external NATS)
//	xvmbot worker --config FILE      the relocation side only (external NATS)
//	xvmbot sim                       two simulated vCenters on loopback, with a config block
//	xvmbot check  --config FILE      validate the config and every connection
//	xvmbot keygen --out FILE         a new approval signing key, and its public key
//	xvmbot health [--url URL]        GET an ops endpoint; exit 0 only on 200 (container health checks)
//	xvmbot version                   build information
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/system"
)

const usage = `xvmbot moves VMs between vCenters from Slack (Advanced Cross vCenter vMotion).

Usage:
  xvmbot demo [--verbose]           run a whole conversation on simulated vCenters (needs nothing)
  xvmbot serve  --config FILE       bot + worker (+ embedded NATS unless nats.url is set)
  xvmbot bot    --config FILE       the Slack side only, on an external NATS
  xvmbot worker --config FILE       the relocation side only, on an external NATS
  xvmbot sim [--dir DIR] [--port N] serve two simulated vCenters on loopback, print a config block
  xvmbot check  --config FILE [--only PART]
                                    validate the config, log in to every vCenter, NATS and Slack
  xvmbot keygen --out FILE          write a new approval signing key for the bot; print its public key
  xvmbot health [--url URL]         GET /healthz (or --url, e.g. …/readyz); exit 0 only on 200 OK
  xvmbot version                    print build information (version, commit, date, dirty)

Each command's flags: xvmbot COMMAND --help
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "xvmbot:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, args := args[0], args[1:]
	if cmd == "help" && len(args) == 1 { // xvmbot help check
		cmd, args = args[0], []string{"--help"}
	}
	f, help, err := parseFlags(cmd, args, stdout, stderr)
	if help || err != nil {
		return err
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, buildInfo())
		return nil
	case "demo":
		return runDemo(ctx, stdout, f.verbose)
	case "sim":
		return runSim(ctx, stdout, f.dir, f.port)
	case "keygen":
		return runKeygen(f.out, stdout)
	case "health":
		return runHealth(ctx, f.url, f.timeout, stdout)
	case "check":
		return runCheckCommand(ctx, f.config, f.only, stdout, stderr)
	case "serve", "bot", "worker":
		var opts []config.LoadOption
		if system.RoleOf(cmd) == system.RoleWorker {
			// A worker never talks to Slack: it starts without the Slack tokens.
			opts = append(opts, config.WithoutSlack())
		}
		cfg, err := config.Load(f.config, opts...)
		if err != nil {
			return err
		}
		logger := cfg.Log.NewLogger(stderr)
		return system.Serve(ctx, cfg, system.RoleOf(cmd), logger, system.WithStamp(stamp()))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
