package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
	"github.com/mfcheck/mfcheck/pkg/smtpprobe"
)

// tlsFlags are the SMTP/TLS and policy flags of check and tls.
type tlsFlags struct {
	noSMTP        bool
	smtpPort      int
	smartHosts    []string
	caFile        string
	ehloName      string
	dkimSelectors []string
	mtaSTSPort    int
	role          string

	// extraRoots are trusted besides the system roots and --ca-file: the
	// demo lab's own CA.
	extraRoots *x509.CertPool
}

// addSMTPFlags registers the flags check takes (the tls command takes the
// ones that apply to one host).
func (a *app) addSMTPFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&a.tls.noSMTP, "no-smtp", false, "make no SMTP connection (for networks where port 25 is blocked); TLS, certificates and DANE are then not checked")
	f.IntVar(&a.tls.smtpPort, "smtp-port", 25, "port to probe MX hosts and the profile's smart hosts on (only labs change it)")
	f.StringArrayVar(&a.tls.smartHosts, "smart-host", nil, "smart host to probe besides the profile's, host[:port] (repeatable), e.g. the on-premises relay")
	a.addTLSTrustFlags(cmd)
	f.StringArrayVar(&a.tls.dkimSelectors, "dkim-selector", nil, "DKIM selector to check besides the profiles' ones (repeatable), e.g. s1 for s1._domainkey.DOMAIN")
	f.IntVar(&a.tls.mtaSTSPort, "mta-sts-port", 443, "port of the MTA-STS policy host (only labs change it)")
	_ = f.MarkHidden("mta-sts-port")
}

func (a *app) addTLSTrustFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.tls.caFile, "ca-file", "", "PEM file of CA certificates to trust besides the system roots (a private CA, a lab)")
	f.StringVar(&a.tls.ehloName, "ehlo-name", "", "name to send in EHLO (default "+smtpprobe.DefaultHeloName+")")
}

// smtpConfig validates the SMTP flags.
func (a *app) smtpConfig() (check.SMTPConfig, check.PolicyConfig, error) {
	var c check.SMTPConfig
	var p check.PolicyConfig
	// 0 is "not set" (commands that do not register the flags, the demo).
	if a.tls.smtpPort < 0 || a.tls.smtpPort > 65535 {
		return c, p, fmt.Errorf("--smtp-port %d is not a port", a.tls.smtpPort)
	}
	if a.tls.mtaSTSPort < 0 || a.tls.mtaSTSPort > 65535 {
		return c, p, fmt.Errorf("--mta-sts-port %d is not a port", a.tls.mtaSTSPort)
	}
	c.Skip, c.HeloName = a.tls.noSMTP, a.tls.ehloName
	if a.tls.smtpPort != 25 {
		c.Port = a.tls.smtpPort
	}
	if err := validEHLOName(a.tls.ehloName); err != nil {
		return c, p, err
	}
	for _, s := range a.tls.smartHosts {
		hp, err := parseHostPort(s, "--smart-host")
		if err != nil {
			return c, p, err
		}
		c.SmartHosts = append(c.SmartHosts, hp)
	}
	for _, s := range a.tls.dkimSelectors {
		sel := strings.TrimSpace(s)
		// RFC 6376 §3.1: a selector is one or more DNS labels; check them as
		// the left part of a name (the "_domainkey" label is ours to add).
		if _, err := resolver.ValidateHostname(sel + ".example"); err != nil || strings.Contains(sel, "_domainkey") {
			return c, p, fmt.Errorf("--dkim-selector %q is not a selector (a DNS label such as selector1)", s)
		}
		p.Selectors = append(p.Selectors, sel)
	}
	if a.tls.mtaSTSPort != 443 {
		p.HTTPSPort = a.tls.mtaSTSPort
	}
	return c, p, nil
}

// validEHLOName accepts a domain name or an address literal such as
// [192.0.2.1] (RFC 5321 §4.1.1.1).
func validEHLOName(s string) error {
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if net.ParseIP(strings.TrimPrefix(strings.TrimPrefix(s[1:len(s)-1], "IPv6:"), "ipv6:")) != nil {
			return nil
		}
	} else if _, err := resolver.ValidateHostname(s); err == nil {
		return nil
	}
	return fmt.Errorf("--ehlo-name %q is not a domain name or an address literal such as [192.0.2.1]", s)
}

// roots returns the system roots plus --ca-file (and the lab's CA). A
// --ca-file without a single certificate is an error, not silently empty.
func (a *app) roots() (*x509.CertPool, error) {
	if a.tls.caFile == "" && a.tls.extraRoots == nil {
		return nil, nil // smtpprobe and policy use the system roots
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if a.tls.extraRoots != nil {
		// The lab's pool holds only its own root; trust it alone, so the
		// demo's verdicts do not depend on the machine's roots.
		pool = a.tls.extraRoots.Clone()
	}
	if a.tls.caFile == "" {
		return pool, nil
	}
	data, err := os.ReadFile(a.tls.caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--ca-file %s: certificate %d: %v", a.tls.caFile, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", a.tls.caFile)
	}
	return pool, nil
}

// parseHostPort reads host, host:port, [v6]:port or a bare address.
func parseHostPort(s, flag string) (check.HostPort, error) {
	s = strings.TrimSpace(s)
	host, portStr := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, portStr = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	hp := check.HostPort{Host: host}
	if portStr != "" {
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 1 || port > 65535 {
			return hp, fmt.Errorf("%s %q: %q is not a port", flag, s, portStr)
		}
		hp.Port = port
	}
	if ip := net.ParseIP(host); ip != nil {
		return hp, nil
	}
	name, err := resolver.ValidateHostname(host)
	if err != nil {
		return hp, fmt.Errorf("%s %q is not a host name, host:port or address", flag, s)
	}
	hp.Host = trimDot(name)
	return hp, nil
}

func (a *app) tlsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls HOST[:PORT]",
		Short: "Probe one SMTP host: banner, EHLO, STARTTLS, certificate chain, name, expiry, TLS version, DANE",
		Long: `tls connects to every address of HOST (port 25 unless given; 465 means implicit TLS), reads the
banner, sends EHLO, starts TLS when offered and completes the handshake whatever the certificate,
then judges the certificate on its own: chain to the system roots plus --ca-file, name, dates, key,
TLS version and cipher. "No STARTTLS" and "STARTTLS with a bad certificate" are different findings.
With --role mx (the default) the TLSA records of the host are checked too (DANE, RFC 7672): only a
DNSSEC-validated (AD) answer counts, so point --resolver at a validating resolver for that.`,
		Example: `  mfcheck tls eu-smtp-o365-outbound-1.mimecast.com --role smart-host
  mfcheck tls mx.contoso.com:465 --ca-file private-ca.pem --output json
  mfcheck tls 198.51.100.25 --resolver 127.0.0.1:5353`,
		Args: exactArgs(1, "a host, host:port or address"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runTLS(cmd, args[0]) },
	}
	a.addTLSTrustFlags(cmd)
	cmd.Flags().StringVar(&a.tls.role, "role", string(smtpprobe.RoleMX), "what the host is: mx (a missing STARTTLS warns; DANE is checked) or smart-host (a connector that requires TLS: a missing STARTTLS fails)")
	return cmd
}

func (a *app) runTLS(cmd *cobra.Command, arg string) error {
	opts, err := a.parseOptions()
	if err != nil {
		return err
	}
	hp, err := parseHostPort(arg, "tls")
	if err != nil {
		return err
	}
	role := smtpprobe.Role(a.tls.role)
	if role != smtpprobe.RoleMX && role != smtpprobe.RoleSmartHost {
		return fmt.Errorf("--role %q: want mx or smart-host", a.tls.role)
	}
	if err := validEHLOName(a.tls.ehloName); err != nil {
		return err
	}
	client, roots, ctx, cancel, err := a.netSession(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	rep := check.RunTLS(ctx, check.TLSConfig{
		Host: hp, Role: role, SMTP: check.SMTPConfig{HeloName: a.tls.ehloName}, Roots: roots,
		Mode: a.mode, Trace: a.trace, Version: versionString(),
	}, check.Deps{DNS: client})
	return a.render(rep, opts)
}

// netSession is what a command that goes on the network needs: the
// resolver, the trusted roots (nil = the system's) and the run's deadline.
func (a *app) netSession(cmd *cobra.Command) (*resolver.Client, *x509.CertPool, context.Context, context.CancelFunc, error) {
	roots, err := a.roots()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	client, err := resolver.New(resolver.Config{Servers: a.resolvers, ResolvConf: a.resolvConf})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	return client, roots, ctx, cancel, nil
}

// render writes the report and sets the exit code from it.
func (a *app) render(rep *report.Report, opts *options) error {
	if err := report.Render(a.stdout, opts.format, report.Options{
		Color: opts.format == report.FormatTable && report.ColorFor(os.Stdout), Trace: a.trace, FailOn: opts.failOn,
	}, rep); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	a.exitCode = report.ExitCode(opts.failOn, rep)
	return nil
}
