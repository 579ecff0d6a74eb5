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
	"github.com/slack-go/slack"

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

// runCheck validates everything a deployment depends on and prints one line per check.
// It exits non-zero (returns an error) naming every failure.
func runCheck(ctx context.Context, cfg *config.Config, out io.Writer, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var failed []string
	report := func(what string, err error, detail string) {
		if err != nil {
			failed = append(failed, what)
			fmt.Fprintf(out, "FAIL  %-22s %v\n", what, err)
			return
		}
		fmt.Fprintf(out, "ok    %-22s %s\n", what, detail)
	}
	fmt.Fprintln(out, "ok    config                 parsed and valid")
	checkKeys(cfg, report)

	mgr, err := vcenter.NewManager(system.VCenters(cfg), logger, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer mgr.Close(context.WithoutCancel(ctx))
	for _, v := range cfg.VCenters {
		ep, err := mgr.Info(ctx, v.Name)
		detail := fmt.Sprintf("vCenter %s, instance %s, thumbprint %s", ep.Version, ep.InstanceUUID, ep.Thumbprint)
		vcfg := vcenter.Config{Thumbprint: v.Thumbprint, Insecure: v.Insecure}
		switch check := vcfg.CertCheck(); check {
		case vcenter.CertUnverified:
			detail += "  ⚠ " + check.String()
		case vcenter.CertPinnedInsecureIgnored:
			detail += "  note: " + check.String()
		}
		if v.Home {
			detail += "  (home)"
		}
		report("vcenter "+v.Name, err, detail)
	}

	if cfg.NATS.URL != "" {
		detail, err := checkNATS(ctx, cfg)
		report("nats", err, cfg.NATS.RedactedURL()+": "+detail)
		if w := cfg.NATS.Unprotected(); w != "" {
			fmt.Fprintf(out, "WARN  %-22s %s\n", "nats security", w)
		} else if cfg.NATS.PasswordInClear() {
			fmt.Fprintf(out, "note  %-22s the NATS password crosses the network in clear (nats:// without TLS): fine between containers on one host; elsewhere use tls:// or an nkey\n", "nats security")
		}
	} else if cfg.NATS.Listen != "" {
		fmt.Fprintf(out, "ok    %-22s embedded server, store in %s, listening on %s; other processes connect with the nkey seeds in %s\n",
			"nats", cfg.NATS.DataDir, cfg.NATS.Listen, filepath.Dir(events.SeedFile(cfg.NATS.DataDir, events.RoleBot)))
	} else {
		fmt.Fprintf(out, "ok    %-22s embedded server, store in %s\n", "nats", cfg.NATS.DataDir)
	}

	opts := []slack.Option{}
	if cfg.Slack.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.Slack.APIURL))
	}
	auth, err := slack.New(cfg.Slack.BotToken.Reveal(), opts...).AuthTestContext(ctx)
	detail := ""
	if err == nil {
		detail = fmt.Sprintf("workspace %s as @%s (%s mode)", auth.Team, auth.User, cfg.Slack.Mode)
	}
	report("slack auth.test", err, detail)

	if len(failed) > 0 {
		return fmt.Errorf("check failed: %v", failed)
	}
	fmt.Fprintln(out, "all checks passed")
	return nil
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
