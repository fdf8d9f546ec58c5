package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// app holds the parsed global flags and the outcome of the command.
type app struct {
	stdout, stderr io.Writer

	resolvers   []string
	resolvConf  string
	timeout     time.Duration
	output      string
	failOn      string
	profileID   string
	profileFile string
	mode        string
	trace       bool
	nsPort      int
	spf         spfFlags
	tls         tlsFlags
	send        sendFlags
	configFile  string

	exitCode int
}

func newApp(stdout, stderr io.Writer) *app { return &app{stdout: stdout, stderr: stderr} }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "mfcheck",
		Short: "Verify and diagnose a domain's mail flow (MX, SPF, TLS, gateways)",
		Long: `mfcheck checks, with evidence, whether a domain's mail flow is correct: before an MX
cutover to an email security gateway (readiness), right after it (smoke), and nightly (health).

Exit codes: 0 nothing at or above --fail-on; 1 a finding at or above it;
2 usage or configuration error; 3 no failure, but some check could not run.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringArrayVar(&a.resolvers, "resolver", nil, "DNS server to ask, host[:port] (repeatable; default: the nameservers of /etc/resolv.conf)")
	pf.StringVar(&a.resolvConf, "resolv-conf", "/etc/resolv.conf", "resolv.conf to read when no --resolver is given")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "deadline for the whole run")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json, junit, markdown")
	pf.StringVar(&a.failOn, "fail-on", "fail", "lowest status that makes the exit code 1: info, warn or fail")
	pf.StringVarP(&a.profileID, "profile", "p", "", "gateway profile the domain is (or will be) behind, e.g. mimecast-eu (see 'mfcheck profiles')")
	pf.StringVar(&a.profileFile, "profiles-file", "", "YAML file with additional gateway profiles")
	pf.StringVar(&a.mode, "mode", mx.ModeHealth, "what the run is for: readiness (before the MX cutover), smoke (right after it) or health")
	pf.BoolVar(&a.trace, "trace", false, "show every DNS query (name, type, server, rcode, rtt, answers)")
	pf.IntVar(&a.nsPort, "ns-port", 53, "port of the authoritative name servers (only labs change it)")
	_ = pf.MarkHidden("ns-port")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })

	root.AddCommand(a.checkCommand(), a.mxCommand(), a.spfCommand(), a.tlsCommand(), a.sendCommand(), a.traceCommand(), a.diffCommand(), a.profilesCommand(), a.initCommand(), a.versionCommand(), a.demoCommand(), a.bulkCommand())
	return root
}

// options are the validated global flags.
type options struct {
	format   report.Format
	failOn   report.Status
	profile  *profile.Profile
	registry *profile.Registry
}

func (a *app) parseOptions() (*options, error) {
	o := &options{}
	var err error
	if o.format, err = report.ParseFormat(a.output); err != nil {
		return nil, err
	}
	if o.failOn, err = report.ParseFailOn(a.failOn); err != nil {
		return nil, err
	}
	switch a.mode {
	case mx.ModeReadiness, mx.ModeSmoke, mx.ModeHealth:
	default:
		return nil, fmt.Errorf("--mode %q: want readiness, smoke or health", a.mode)
	}
	if a.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, got %v", a.timeout)
	}
	if a.nsPort < 1 || a.nsPort > 65535 {
		return nil, fmt.Errorf("--ns-port %d is not a port", a.nsPort)
	}
	o.registry = profile.Builtin()
	if a.profileFile != "" {
		extra, err := profile.LoadFile(a.profileFile)
		if err != nil {
			return nil, err
		}
		if o.registry, err = o.registry.With(extra...); err != nil {
			return nil, err
		}
	}
	if a.profileID != "" {
		if o.profile, err = o.registry.Get(a.profileID); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// runCheck validates the domain, runs the checks and renders the report.
func (a *app) runCheck(cmd *cobra.Command, domainArg string, areas []string, servers []string, simulation bool, notes []string) error {
	opts, err := a.parseOptions()
	if err != nil {
		return err
	}
	domain, err := resolver.ValidateHostname(domainArg)
	if err != nil {
		return fmt.Errorf("invalid domain %q: %s", domainArg, strings.TrimPrefix(err.Error(), resolver.ErrBadName.Error()+": "))
	}
	spfCfg, list, err := a.spfConfig(opts)
	if err != nil {
		return err
	}
	smtpCfg, policyCfg, err := a.smtpConfig()
	if err != nil {
		return err
	}
	roots, err := a.roots()
	if err != nil {
		return err
	}
	sendCfg, err := a.checkSendConfig(trimDot(domain))
	if err != nil {
		return err
	}
	if servers == nil {
		servers = a.resolvers
	}
	client, err := resolver.New(resolver.Config{Servers: servers, ResolvConf: a.resolvConf})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	defer cancel()
	rep := check.Run(ctx, check.Config{
		Domain: trimDot(domain), Mode: a.mode, Profile: opts.profile, Profiles: opts.registry,
		Areas: areas, NSPort: a.nsPort, Trace: a.trace, Version: versionString(),
		SPF: spfCfg, Allowlist: list, SMTP: smtpCfg, Policy: policyCfg, Roots: roots, Send: sendCfg,
	}, check.Deps{DNS: client})
	rep.Simulation = simulation
	rep.Notes = append(rep.Notes, notes...)
	return a.render(rep, opts)
}

func (a *app) checkCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check DOMAIN",
		Short: "Run every check for a domain",
		Example: `  mfcheck check contoso.com --profile mimecast-eu --mode readiness
  mfcheck check contoso.com --profile mimecast-eu --mode readiness --ip 198.51.100.25 --allowlist ipallowlist.txt
  mfcheck check contoso.com --profile mimecast-eu --mode smoke --output json
  mfcheck check contoso.com --profile mimecast-eu --smart-host relay.contoso.com:587 --dkim-selector s1
  mfcheck check contoso.com --no-smtp
  mfcheck check -c mfcheck.yaml --output junit
  mfcheck check contoso.com --profile mimecast-eu --mode smoke --send --to postmaster@contoso.com --from probe@fabrikam.example`,
		Args: func(cmd *cobra.Command, args []string) error {
			if a.configFile != "" && len(args) <= 1 {
				return nil // every domain of the file, or the one named
			}
			return exactArgs(1, "a domain (or -c FILE)")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.configFile != "" {
				domain := ""
				if len(args) == 1 {
					domain = args[0]
				}
				return a.runConfig(cmd, a.configFile, domain)
			}
			return a.runCheck(cmd, args[0], nil, nil, false, nil)
		},
	}
	cmd.Flags().StringVarP(&a.configFile, "config", "c", "", "mfcheck.yaml with the domains to check and their expectations (see 'mfcheck init'); flags given here win over the file")
	a.addSPFFlags(cmd, false)
	a.addSMTPFlags(cmd)
	a.addCheckSendFlags(cmd)
	return cmd
}

func (a *app) mxCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "mx DOMAIN",
		Short:   "Analyse the MX records: targets, addresses, null MX, TTL, authoritative servers, gateway",
		Example: `  mfcheck mx contoso.com --resolver 9.9.9.9 --trace`,
		Args:    exactArgs(1, "a domain"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runCheck(cmd, args[0], []string{check.AreaMX}, nil, false, nil)
		},
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(a.stdout, "mfcheck %s\n", versionString())
			return nil
		},
	}
}

// exactArgs is cobra.ExactArgs with a message a person can act on.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		if n == 0 {
			return fmt.Errorf("%s takes no arguments", cmd.Name())
		}
		return fmt.Errorf("%s needs %s (got %d arguments); see 'mfcheck %s --help'", cmd.Name(), what, len(args), cmd.Name())
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func trimDot(s string) string {
	if len(s) > 1 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}
