package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/xvmbot/xvmbot/events"
	"github.com/xvmbot/xvmbot/vcenter"
)

// runCheck validates everything a deployment depends on and prints one line per check.
// It exits non-zero (returns an error) naming every failure.
func runCheck(ctx context.Context, cfg *Config, out io.Writer, logger *slog.Logger) error {
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

	vcs := make([]vcenter.Config, 0, len(cfg.VCenters))
	for _, v := range cfg.VCenters {
		vcs = append(vcs, vcenter.Config{Name: v.Name, URL: v.URL, Username: v.Username, Password: v.Password,
			Thumbprint: v.Thumbprint, Insecure: v.Insecure, Home: v.Home})
	}
	mgr, err := vcenter.NewManager(vcs, logger, prometheus.NewRegistry())
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
		s := &system{cfg: cfg, log: logger}
		err := s.connectNATS(ctx)
		if err == nil {
			_, err = events.NewBus(ctx, s.nc, events.BusConfig{Replicas: cfg.NATS.Replicas}, logger, prometheus.NewRegistry())
			s.nc.Close()
		}
		report("nats", err, cfg.NATS.URL+": streams and buckets ready")
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
func checkKeys(cfg *Config, report func(what string, err error, detail string)) {
	trusted := "workers trust no key yet (approvals.trusted_keys): `xvmbot worker` refuses to start"
	if n := len(cfg.Approvals.TrustedKeys); n > 0 {
		trusted = fmt.Sprintf("workers trust %d key(s): %s", n, strings.Join(cfg.Approvals.TrustedKeys, ", "))
	}
	if cfg.Approvals.SigningKeyFile == "" {
		report("approval keys", nil, fmt.Sprintf("no signing_key_file: `serve` makes one in %s, `bot` refuses to start; %s",
			filepath.Join(cfg.NATS.DataDir, defaultSigningKeyName), trusted))
		return
	}
	s, err := readSigningKey(cfg.Approvals.SigningKeyFile)
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
