package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// cliFlags are the flags of every command. Each command reads its own; the others are
// still accepted, as they always were, and a note says they have no effect there.
type cliFlags struct {
	config  string
	verbose bool
	dir     string
	port    int
	out     string
	only    string
	url     string        // health
	timeout time.Duration // health
}

// commandUsage is one command's help: how it is called, what it does, and the flags it reads.
type commandUsage struct {
	synopsis string
	about    string
	flags    []string
}

var commandUsages = map[string]commandUsage{
	"demo":   {"demo [--verbose]", "Run a whole conversation on simulated vCenters, embedded NATS and a local Slack; needs nothing.\nExits 0 only if every step did what it should.", []string{"verbose"}},
	"serve":  {"serve --config FILE", "Run the bot and the worker in one process, with embedded NATS unless nats.url is set.", []string{"config"}},
	"bot":    {"bot --config FILE", "Run the Slack side only, on an external NATS.", []string{"config"}},
	"worker": {"worker --config FILE", "Run the relocation side only, on an external NATS.", []string{"config"}},
	"sim": {"sim [--dir DIR] [--port N]", "Serve two simulated vCenters on loopback and print a vcenters: block for them.\n" +
		"Password files and each vCenter's certificate are kept in DIR, so a restart serves the same\n" +
		"thumbprints; with --port the URLs stay the same too, and the printed config stays valid.", []string{"dir", "port"}},
	"check": {"check --config FILE [--only PART,…]", "Validate the config and try everything it depends on: log in to every vCenter, NATS, Slack\n" +
		"(tokens, scopes, approvers), the quorum and the data directory. Exits non-zero naming every failure.\n" +
		"--only vcenters needs no Slack settings: use it to read a new vCenter's thumbprint.", []string{"config", "only"}},
	"keygen": {"keygen --out FILE", "Write a new approval signing key for the bot and print its public key for the workers.", []string{"out"}},
	"health": {"health [--url URL] [--timeout D]", "GET an ops endpoint (default /healthz on the default ops port) and exit 0 only on 200 OK:\n" +
		"the container health check of an image with no shell.", []string{"url", "timeout"}},
	"version": {"version", "Print build information (version, commit, date, dirty).", nil},
}

// parseFlags parses a command's arguments. help is true when --help (or -h) was asked
// for: the command's usage went to stdout and nothing else is to be done.
func parseFlags(cmd string, args []string, stdout, stderr io.Writer) (f cliFlags, help bool, err error) {
	fs := flag.NewFlagSet("xvmbot "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, to stdout for --help and to stderr after a mistake
	fs.StringVar(&f.config, "config", "xvmbot.yaml", "path to the YAML config file")
	fs.BoolVar(&f.verbose, "verbose", false, "also print the processes' logs")
	fs.StringVar(&f.dir, "dir", "./xvm-sim", "where to keep the simulated vCenters' password files and certificates")
	fs.IntVar(&f.port, "port", 0, "serve the first simulated vCenter on this loopback port and the second on the next one (0: any free ports)")
	fs.StringVar(&f.out, "out", "", "the file to write the new signing key to (must not exist)")
	fs.StringVar(&f.only, "only", "", "check only these parts, comma-separated: "+strings.Join(checkParts, ", "))
	fs.StringVar(&f.url, "url", defaultHealthURL, "the ops endpoint to ask")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	cu, known := commandUsages[cmd]
	own := func(name string) bool { return !known || slices.Contains(cu.flags, name) }
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, fs, cmd, cu, own)
		return f, true, nil
	}
	if err != nil {
		printCommandUsage(stderr, fs, cmd, cu, own)
		return f, false, err
	}
	if fs.NArg() > 0 {
		printCommandUsage(stderr, fs, cmd, cu, own)
		return f, false, fmt.Errorf("%s takes no arguments, got %q", cmd, fs.Args())
	}
	fs.Visit(func(fl *flag.Flag) {
		if !own(fl.Name) {
			fmt.Fprintf(stderr, "xvmbot: note: --%s has no effect on %s\n", fl.Name, cmd)
		}
	})
	return f, false, nil
}

func printCommandUsage(w io.Writer, fs *flag.FlagSet, cmd string, cu commandUsage, own func(string) bool) {
	if cu.synopsis == "" {
		fmt.Fprint(w, usage)
	} else {
		fmt.Fprintf(w, "Usage: xvmbot %s\n", cu.synopsis)
	}
	if cu.about != "" {
		fmt.Fprintf(w, "\n%s\n", cu.about)
	}
	var n int
	fs.VisitAll(func(fl *flag.Flag) {
		if !own(fl.Name) {
			return
		}
		if n == 0 {
			fmt.Fprintln(w, "\nFlags:")
		}
		n++
		def := ""
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" {
			def = fmt.Sprintf(" (default %q)", fl.DefValue)
		}
		fmt.Fprintf(w, "  --%-9s %s%s\n", fl.Name, fl.Usage, def)
	})
}
