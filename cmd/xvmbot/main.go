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
	"time"

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
  xvmbot health [--url URL]         GET /healthz (or --url, e.g. …/readyz); exit 0 only on 200 OK
  xvmbot version                    print build information (version, commit, date, dirty)
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
	healthURL := fs.String("url", defaultHealthURL, "health: the ops endpoint to ask")
	healthTimeout := fs.Duration("timeout", 5*time.Second, "health: how long to wait for the answer")
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
	case "health":
		return runHealth(ctx, *healthURL, *healthTimeout, stdout)
	case "check", "serve", "bot", "worker":
		var opts []config.LoadOption
		if system.RoleOf(cmd) == system.RoleWorker {
			// A worker never talks to Slack: it starts without the Slack tokens.
			opts = append(opts, config.WithoutSlack())
		}
		cfg, err := config.Load(*configPath, opts...)
		if err != nil {
			return err
		}
		logger := cfg.Log.NewLogger(stderr)
		if cmd == "check" {
			return runCheck(ctx, cfg, stdout, logger)
		}
		return system.Serve(ctx, cfg, system.RoleOf(cmd), logger, system.WithStamp(stamp()))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
