package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/config"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// configConcurrency bounds how many of a config file's domains run at once;
// bulk is the tool for thousands.
const configConcurrency = 8

// runConfig runs check for the domains of a config file (only domainArg
// when given) and renders every report. Flags given on the command line win
// over the file's values for the whole run: --mode, --fail-on, --profile.
func (a *app) runConfig(cmd *cobra.Command, path, domainArg string) error {
	opts, err := a.parseOptions()
	if err != nil {
		return err
	}
	// What belongs to one domain is written in the file, per domain.
	for _, name := range []string{"ip", "range", "sender", "helo", "allowlist", "smart-host", "dkim-selector",
		"send", "to", "from", "outbound-server", "outbound-to", "bypass-host", "maildir", "dkim-key", "quit-after", "user", "password-file"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s is a per-domain setting: with -c, write it in %s", name, path)
		}
	}
	f, err := config.Load(path, opts.registry)
	if err != nil {
		return err
	}
	domains := f.Domains
	if domainArg != "" {
		name, err := resolver.ValidateHostname(domainArg)
		if err != nil {
			return fmt.Errorf("invalid domain %q", domainArg)
		}
		domains = nil
		for _, d := range f.Domains {
			if strings.EqualFold(d.Name, trimDot(name)) {
				domains = append(domains, d)
			}
		}
		if len(domains) == 0 {
			return fmt.Errorf("%s: no domain %s in the file", path, trimDot(name))
		}
	}
	roots, err := a.roots()
	if err != nil {
		return err
	}
	if _, _, err := a.smtpConfig(); err != nil {
		return err
	}
	// Every domain's configuration is checked before anything runs, so a
	// typo in the tenth domain does not leave nine reports and an error.
	runs := make([]check.Config, len(domains))
	failOns := make([]report.Status, len(domains))
	for i, d := range domains {
		if runs[i], failOns[i], err = a.domainConfig(cmd, opts, f, d, roots); err != nil {
			return err
		}
	}

	// The resolver configuration is checked once; each domain then gets a
	// resolver of its own, so each report's DNS counts are its own.
	shared, err := resolver.New(resolver.Config{Servers: a.resolvers, ResolvConf: a.resolvConf})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	defer cancel()
	reports := make([]*report.Report, len(runs))
	sem := make(chan struct{}, configConcurrency)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			client, err := resolver.New(resolver.Config{Servers: a.resolvers, ResolvConf: a.resolvConf})
			if err != nil {
				client = shared // cannot happen: the same configuration passed above
			}
			rep := check.Run(ctx, runs[i], check.Deps{DNS: client})
			domains[i].ApplySuppressions(rep, time.Now(), f.Path)
			reports[i] = rep
		})
	}
	wg.Wait()

	if err := report.Render(a.stdout, opts.format, report.Options{
		Color: opts.format == report.FormatTable && report.ColorFor(os.Stdout), Trace: a.trace, FailOn: opts.failOn,
	}, reports...); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	// Each domain is judged against its own fail_on; the worst outcome wins
	// (1 over 3 over 0, as for a single report).
	code := report.ExitOK
	for i, rep := range reports {
		switch c := report.ExitCode(failOns[i], rep); {
		case c == report.ExitFindings:
			code = c
		case c == report.ExitIncomplete && code == report.ExitOK:
			code = c
		}
	}
	a.exitCode = code
	return nil
}

// domainConfig turns one domain of the file into a check configuration.
func (a *app) domainConfig(cmd *cobra.Command, opts *options, f *config.File, d config.Domain, roots *x509.CertPool) (check.Config, report.Status, error) {
	where := fmt.Sprintf("%s:%d: %s", f.Path, d.Line, d.Name)
	cfg := check.Config{Domain: d.Name, Mode: d.Mode, Profiles: opts.registry, NSPort: a.nsPort, Trace: a.trace, Version: versionString()}
	if cfg.Mode == "" || cmd.Flags().Changed("mode") {
		cfg.Mode = a.mode
	}
	cfg.Profile = opts.profile
	if d.Profile != "" && !cmd.Flags().Changed("profile") {
		p, err := opts.registry.Get(d.Profile)
		if err != nil {
			return cfg, "", fmt.Errorf("%s: %w", where, err)
		}
		cfg.Profile = p
	}
	cfg.SPF = check.SPFConfig{IPs: d.SendingIPs, Ranges: d.SendingRanges, Sender: d.Sender, Helo: d.Helo}
	if d.Allowlist != "" {
		if cfg.Profile == nil {
			return cfg, "", fmt.Errorf("%s: allowlist needs a profile: the gateway whose sending ranges must be allow-listed", where)
		}
		list, err := allowlist.ParseFile(d.Allowlist)
		if err != nil {
			return cfg, "", fmt.Errorf("%s: %w", where, err)
		}
		cfg.Allowlist = list
	}
	smtpCfg, policyCfg, err := a.smtpConfig()
	if err != nil {
		return cfg, "", err
	}
	for _, h := range d.SmartHosts {
		hp, err := parseHostPort(h, where+": smart_hosts")
		if err != nil {
			return cfg, "", err
		}
		smtpCfg.SmartHosts = append(smtpCfg.SmartHosts, hp)
	}
	if days := d.Thresholds.CertExpiryWarnDays; days > 0 {
		smtpCfg.ExpiryWarn = time.Duration(days) * 24 * time.Hour
	}
	if s := d.Thresholds.MXTTLMaxSeconds; s > 0 {
		cfg.MXTTLThreshold = uint32(s)
	}
	policyCfg.Selectors = append(policyCfg.Selectors, d.DKIMSelectors...)
	cfg.SMTP, cfg.Policy = smtpCfg, policyCfg
	cfg.Roots = roots
	if s := d.Send; s != nil && !a.tls.noSMTP {
		send := check.SendConfig{Inbound: len(s.To) > 0, Bypass: len(s.To) > 0, To: s.To, From: s.From, OutboundTo: s.OutboundTo, Maildir: s.Maildir}
		if send.From == "" && len(s.To) > 0 {
			send.From = s.To[0]
		}
		if s.OutboundServer != "" {
			hp, err := parseHostPort(s.OutboundServer, where+": send.outbound_server")
			if err != nil {
				return cfg, "", err
			}
			send.OutboundServer = &hp
		}
		if s.BypassHost != "" {
			hp, err := parseHostPort(s.BypassHost, where+": send.bypass_host")
			if err != nil {
				return cfg, "", err
			}
			send.BypassHost = &hp
		}
		if err := send.Validate(d.Name); err != nil {
			return cfg, "", fmt.Errorf("%s: %w", where, err)
		}
		cfg.Send = send
	}
	failOn := opts.failOn
	if d.Thresholds.FailOn != "" && !cmd.Flags().Changed("fail-on") {
		if failOn, err = report.ParseFailOn(d.Thresholds.FailOn); err != nil {
			return cfg, "", fmt.Errorf("%s: %w", where, err)
		}
	}
	return cfg, failOn, nil
}
