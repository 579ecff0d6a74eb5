package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xvmbot/xvmbot/config"
	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/system"
	"github.com/xvmbot/xvmbot/vcenter"
)

// checkNATS connects to the external NATS and opens the bus, first as the bot (which
// creates the streams and buckets), then, if that credential may not, as a worker
// (which only looks them up): a config is checked whichever process it is for.
func checkNATS(ctx context.Context, cfg *config.Config) (string, error) {
	quiet := slog.New(slog.DiscardHandler)
	var botErr error
	for _, r := range []system.Role{system.RoleBot, system.RoleWorker} {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		var denied atomic.Bool
		nc, err := system.DialNATS(cfg.NATS, r, quiet, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				denied.Store(true)
				cancel() // the refused request would otherwise wait for its timeout
			}
		}))
		if err != nil {
			cancel()
			return "", err // not a matter of role: the credential or the address is wrong
		}
		_, err = events.NewBus(actx, nc, events.BusConfig{Role: r.NATSRole(), Replicas: cfg.NATS.Replicas}, quiet, prometheus.NewRegistry())
		nc.Close()
		cancel()
		switch {
		case err == nil && r == system.RoleBot:
			return "bot permissions; streams and buckets ready", nil
		case err == nil:
			return "worker permissions; streams and buckets found", nil
		case errors.Is(err, events.ErrNotProvisioned):
			return "worker permissions; the streams and buckets do not exist yet (the bot creates them when it starts)", nil
		case !denied.Load():
			return "", err
		case r == system.RoleBot:
			botErr = err
		}
	}
	return "", fmt.Errorf("connected, but this credential may neither set up the streams and buckets as the bot nor use them as a worker (see docs/nats-permissions.md): %w", botErr)
}

// checkParts are what `xvmbot check --only` can name, in the order they are checked.
var checkParts = []string{"vcenters", "nats", "slack", "approvals", "data", "keys"}

// partSections are the config sections each part of the check depends on.
var partSections = map[string][]string{
	"vcenters":  {"vcenters"},
	"nats":      {"nats"},
	"slack":     {"slack", "http"},
	"approvals": {"approvals"},
	"data":      {"nats"},
	"keys":      {"approvals"},
}

// runCheckCommand is `xvmbot check`: it loads the config without validating it whole, so
// that `--only vcenters` works before a Slack app exists and before any thumbprint is pinned.
func runCheckCommand(ctx context.Context, path, only string, out, stderr io.Writer) error {
	parts := checkParts
	if only != "" {
		parts = nil
		for p := range strings.SplitSeq(only, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(checkParts, p) {
				return fmt.Errorf("check --only: %q is not a part to check; choose from %s", p, strings.Join(checkParts, ", "))
			}
			parts = append(parts, p)
		}
	}
	cfg, err := config.LoadUnvalidated(path)
	if err != nil {
		return err
	}
	return runCheckParts(ctx, cfg, parts, out, cfg.Log.NewLogger(stderr))
}

// runCheck checks everything a deployment depends on.
func runCheck(ctx context.Context, cfg *config.Config, out io.Writer, logger *slog.Logger) error {
	return runCheckParts(ctx, cfg, checkParts, out, logger)
}

// checkReport prints one line per check. Only what was tried and worked says ok; what
// was not tried says skip and why.
type checkReport struct {
	out    io.Writer
	failed []string
}

func (r *checkReport) line(tag, what, detail string) {
	fmt.Fprintf(r.out, "%-5s %-22s %s\n", tag, what, detail)
}

func (r *checkReport) report(what string, err error, detail string) {
	if err != nil {
		r.failed = append(r.failed, what)
		r.line("FAIL", what, err.Error())
		return
	}
	r.line("ok", what, detail)
}

// runCheckParts checks the named parts and prints one line per check. It returns an error
// naming every failure.
func runCheckParts(ctx context.Context, cfg *config.Config, parts []string, out io.Writer, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	r := &checkReport{out: out}
	all := len(parts) == len(checkParts)

	// Pins are reported per vCenter below, with the thumbprint to pin.
	sections := slices.DeleteFunc(slices.Clone(config.Sections), func(s string) bool { return s == "pins" })
	scope := "parsed and valid"
	if !all {
		sections = nil
		for _, p := range parts {
			for _, s := range partSections[p] {
				if !slices.Contains(sections, s) {
					sections = append(sections, s)
				}
			}
		}
		scope = "parsed; " + strings.Join(sections, ", ") + " valid (other sections not checked: --only)"
	}
	if err := cfg.ValidateSections(sections...); err != nil {
		r.report("config", errors.New(strings.ReplaceAll(err.Error(), "\n", "\n"+strings.Repeat(" ", 29))), "")
	} else {
		r.report("config", nil, scope)
	}

	for _, p := range parts {
		switch p {
		case "vcenters":
			checkVCenters(ctx, cfg, r, logger)
		case "nats":
			checkNATSPart(ctx, cfg, r)
		case "slack":
			checkSlack(ctx, cfg, r)
		case "approvals":
			checkApprovers(ctx, cfg, r)
		case "data":
			checkDataDir(cfg, r)
		case "keys":
			report := r.report
			if cfg.Approvals.SigningKeyFile == "" { // nothing to read: what the config means, not a check
				report = func(what string, _ error, detail string) { r.line("note", what, detail) }
			}
			checkKeys(cfg, report)
		}
	}

	if len(r.failed) > 0 {
		return fmt.Errorf("check failed: %s", strings.Join(r.failed, "; "))
	}
	if all {
		fmt.Fprintln(out, "all checks passed")
	} else {
		fmt.Fprintf(out, "checks passed: %s (the rest was not checked: --only)\n", strings.Join(parts, ", "))
	}
	return nil
}

// checkVCenters logs in to every pinned (or insecure) vCenter. A vCenter with neither a
// thumbprint nor insecure: true is not logged in to: its password would go to a server
// nobody has vouched for. Its certificate is read and shown, to be checked out of band
// and pinned (trust on first use, done by a person).
func checkVCenters(ctx context.Context, cfg *config.Config, r *checkReport, logger *slog.Logger) {
	for _, vcfg := range system.VCenters(cfg) {
		what := "vcenter " + vcfg.Name
		home := ""
		if vcfg.Home {
			home = "  (home)"
		}
		if vcfg.Thumbprint == "" && !vcfg.Insecure {
			sha1, sha256, err := vcenter.PresentedThumbprints(ctx, vcfg.URL)
			if err != nil {
				r.report(what, fmt.Errorf("not pinned, and its certificate could not be read: %w", err), "")
				continue
			}
			r.failed = append(r.failed, what+" not pinned")
			r.line("PIN", what, fmt.Sprintf("not pinned: add thumbprint: %q after checking it out of band (SHA-256 %s); "+
				"login not tried, so the password is not sent to an unverified server%s", sha1, sha256, home))
			continue
		}
		vcfg.Home = true // each is checked on its own
		mgr, err := vcenter.NewManager([]vcenter.Config{vcfg}, logger, prometheus.NewRegistry())
		if err != nil {
			r.report(what, err, "")
			continue
		}
		ep, err := mgr.Info(ctx, vcfg.Name)
		mgr.Close(context.WithoutCancel(ctx))
		detail := fmt.Sprintf("vCenter %s, instance %s, thumbprint %s", ep.Version, ep.InstanceUUID, ep.Thumbprint)
		switch check := vcfg.CertCheck(); check {
		case vcenter.CertUnverified:
			detail += "  ⚠ " + check.String()
		case vcenter.CertPinnedInsecureIgnored:
			detail += "  note: " + check.String()
		}
		r.report(what, err, detail+home)
	}
}

func checkNATSPart(ctx context.Context, cfg *config.Config, r *checkReport) {
	if cfg.NATS.URL != "" {
		detail, err := checkNATS(ctx, cfg)
		r.report("nats", err, cfg.NATS.RedactedURL()+": "+detail)
		if w := cfg.NATS.Unprotected(); w != "" {
			r.line("WARN", "nats security", w)
		} else if cfg.NATS.PasswordInClear() {
			r.line("note", "nats security", "the NATS password crosses the network in clear (nats:// without TLS): fine between containers on one host; elsewhere use tls:// or an nkey")
		}
		return
	}
	detail := "embedded server (started by serve), store in " + cfg.NATS.DataDir
	if cfg.NATS.Listen != "" {
		detail += fmt.Sprintf(", listening on %s; other processes connect with the nkey seeds in %s",
			cfg.NATS.Listen, filepath.Dir(events.SeedFile(cfg.NATS.DataDir, events.RoleBot)))
	}
	r.line("skip", "nats", detail+": nothing to connect to before serve starts (see data below)")
}

// checkKeys reports the approval signing key and the keys workers trust.
func checkKeys(cfg *config.Config, report func(what string, err error, detail string)) {
	trusted := "workers trust no key yet (approvals.trusted_keys): `xvmbot worker` refuses to start"
	if n := len(cfg.Approvals.TrustedKeys); n > 0 {
		trusted = fmt.Sprintf("workers trust %d key(s): %s", n, strings.Join(cfg.Approvals.TrustedKeys, ", "))
	}
	if cfg.Approvals.SigningKeyFile == "" {
		report("approval keys", nil, fmt.Sprintf("no signing_key_file: `serve` makes one in %s, `bot` refuses to start; %s",
			filepath.Join(cfg.NATS.DataDir, system.DefaultSigningKeyName), trusted))
		return
	}
	s, err := system.ReadSigningKey(cfg.Approvals.SigningKeyFile)
	if err != nil {
		report("approval keys", err, "")
		return
	}
	detail := "the bot signs with " + s.KeyID() + "; " + trusted
	if len(cfg.Approvals.TrustedKeys) > 0 && !slices.Contains(cfg.Approvals.TrustedKeys, s.KeyID()) {
		detail += "  ⚠ not the bot's key: workers with this config refuse its jobs"
	}
	report("approval keys", nil, detail)
}
