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
  xvmbot sim [--dir ./xvm-sim]      serve two simulated vCenters on loopback, print a config block
  xvmbot check  --config FILE       validate the config, log in to every vCenter, NATS and Slack
  xvmbot keygen --out FILE          write a new approval signing key for the bot; print its public key
  xvmbot version                    print build information
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
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "xvmbot.yaml", "path to the YAML config file")
	verbose := fs.Bool("verbose", false, "demo: also print the processes' logs")
	simDir := fs.String("dir", "./xvm-sim", "sim: where to write the simulated vCenters' password files")
	keyOut := fs.String("out", "", "keygen: the file to write the new signing key to (must not exist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, buildInfo())
		return nil
	case "demo":
		return runDemo(ctx, stdout, *verbose)
	case "sim":
		return runSim(ctx, stdout, *simDir)
	case "keygen":
		return runKeygen(*keyOut, stdout)
	case "check", "serve", "bot", "worker":
		cfg, err := config.Load(*configPath)
		if err != nil {
			return err
		}
		logger := cfg.Log.NewLogger(stderr)
		if cmd == "check" {
			return runCheck(ctx, cfg, stdout, logger)
		}
		return system.Serve(ctx, cfg, system.RoleOf(cmd), logger, system.WithVersion(version))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
