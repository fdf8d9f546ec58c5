// Package check plans and runs mfcheck's checks for one domain and collects
// their findings into a report.Report. It starts every independent check at
// once; all of them share one resolver, so each DNS question is asked once per
// run however many checks need it.
package check

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/policy"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
	"github.com/mfcheck/mfcheck/pkg/smtpprobe"
	"github.com/mfcheck/mfcheck/pkg/spf"
)

// Areas a run can be limited to.
const (
	AreaMX     = "mx"
	AreaSPF    = "spf"
	AreaTLS    = "tls"    // SMTP/STARTTLS/certificate/DANE probes of MX hosts and smart hosts
	AreaPolicy = "policy" // DMARC, MTA-STS, TLS-RPT, DKIM selectors
)

// Config says what to check.
type Config struct {
	// Domain is a validated, canonical domain name (see resolver.ValidateHostname).
	Domain string
	// Mode is mx.ModeReadiness, mx.ModeSmoke or mx.ModeHealth.
	Mode string
	// Profile is the gateway the domain is moving behind, or nil.
	Profile *profile.Profile
	// Profiles names known platforms in findings; nil is fine.
	Profiles *profile.Registry
	// Areas limits the run (e.g. only AreaMX for `mfcheck mx`); empty = all.
	Areas []string
	// NSPort is the port of authoritative servers (53 outside labs).
	NSPort int
	// Trace copies the DNS query log into the report.
	Trace bool
	// SPF says what the SPF analysis checks besides the record tree.
	SPF SPFConfig
	// Allowlist is the connection-filter allow list to compare with the
	// profile's sending ranges (allowlist.gateway-ranges), or nil.
	Allowlist *allowlist.List
	// SMTP says which SMTP endpoints to probe and how.
	SMTP SMTPConfig
	// Policy is the DMARC/MTA-STS/TLS-RPT/DKIM part.
	Policy PolicyConfig
	// Send says which test messages to send (check --send).
	Send SendConfig
	// MXTTLThreshold is the MX TTL above which readiness warns (0 = the mx
	// package's default); from the config file's thresholds.
	MXTTLThreshold uint32
	// Roots verify every certificate of the run (SMTP endpoints and the
	// MTA-STS policy host): the system roots plus --ca-file; nil = the
	// system roots.
	Roots *x509.CertPool
	// Version is written into the report.
	Version string
}

// SPFConfig is the SPF part of a run.
type SPFConfig struct {
	// IPs must pass check_host() (an on-premises hybrid server, say), as
	// Sender with HELO Helo (defaults: postmaster@domain and the domain).
	IPs          []netip.Addr
	Sender, Helo string
	// Ranges must be authorized as a whole.
	Ranges []netip.Prefix
	// Flatten asks for a flattened record set within FlattenLookups.
	Flatten        bool
	FlattenLookups int
}

// PolicyConfig is the policy-record part of a run.
type PolicyConfig struct {
	// Selectors are DKIM selectors to check besides the profiles' ones
	// (--dkim-selector).
	Selectors []string
	// HTTPSPort is the MTA-STS policy host's port; 0 = 443 (labs only).
	HTTPSPort int
}

// DNS is the resolver a run uses: lookups for the checks, plus the query log
// and counters for the report. *resolver.Client implements it.
type DNS interface {
	mx.Resolver
	Log() []resolver.LogEntry
	Stats() (queries, distinct, failed int)
}

// Deps are the run's connections to the outside world.
type Deps struct {
	DNS DNS
	Now func() time.Time
}

// Run checks cfg.Domain and returns the finalized report. It does not fail:
// what could not be checked appears as findings with status error.
func Run(ctx context.Context, cfg Config, deps Deps) *report.Report {
	now := deps.clock()
	start := now()
	rep := newReport(cfg.Domain, cfg.Mode, cfg.Version, start)
	if cfg.Profile != nil {
		rep.Profile = cfg.Profile.ID
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	add := func(fs []report.Finding) {
		mu.Lock()
		rep.Add(fs...)
		mu.Unlock()
	}

	// The MX result feeds the TLS probes (which addresses) and the policy
	// checks (MTA-STS matching); the SPF result names the mail platform
	// for DKIM. Each later step starts the moment its input is known.
	var mxRes *mx.Result
	mxDone := make(chan struct{})
	if wants(cfg, AreaMX) || wants(cfg, AreaTLS) || wants(cfg, AreaPolicy) {
		wg.Go(func() {
			defer close(mxDone)
			mxRes = mx.Analyze(ctx, deps.DNS, cfg.Domain, mx.Options{
				Mode: cfg.Mode, Profile: cfg.Profile, Profiles: cfg.Profiles, NSPort: cfg.NSPort, TTLThreshold: cfg.MXTTLThreshold,
			})
			if wants(cfg, AreaMX) {
				add(mxRes.Findings)
			}
		})
	} else {
		close(mxDone)
	}
	var spfSection *report.SPF
	spfDone := make(chan struct{})
	if wants(cfg, AreaSPF) {
		wg.Go(func() {
			defer close(spfDone)
			a := spf.Analyze(ctx, deps.DNS, cfg.Domain, spf.Options{
				Mode: cfg.Mode, Profile: cfg.Profile,
				IPs: cfg.SPF.IPs, Sender: cfg.SPF.Sender, Helo: cfg.SPF.Helo, Ranges: cfg.SPF.Ranges,
				Flatten: cfg.SPF.Flatten, FlattenLookups: cfg.SPF.FlattenLookups,
			})
			fs := a.Findings
			if cfg.Allowlist != nil {
				fs = append(fs, allowlistFinding(cfg.Allowlist, a.Gateway))
			}
			add(fs)
			mu.Lock()
			rep.SPF = a.Section
			spfSection = a.Section
			if a.FlattenErr != nil {
				// Asked for, not produced: say so rather than print nothing.
				rep.Notes = append(rep.Notes, "--flatten: "+a.FlattenErr.Error())
			}
			mu.Unlock()
		})
	} else {
		close(spfDone)
	}
	// The mail platform (whose DKIM selectors to check and whose endpoint
	// the bypass test tries) is named by the MX and SPF results; it is
	// worked out once, by whichever part needs it first.
	mailbox := sync.OnceValue(func() *profile.Profile {
		<-mxDone
		<-spfDone
		mu.Lock()
		defer mu.Unlock()
		return detectMailbox(cfg.Profiles, mxRes, spfSection)
	})
	if cfg.Send.any() || modeProbes(cfg) {
		// Test messages go to the MX hosts the analysis found, and the
		// bypass test to the mailbox platform that MX and SPF name; the
		// mode adds its RCPT-only probes (modes.go).
		wg.Go(func() {
			mb := mailbox() // waits for MX and SPF
			add(modeFindings(ctx, deps.DNS, cfg, mxRes, mb, now()))
		})
	}
	var mxProbe, smartProbe probeResult
	if wants(cfg, AreaTLS) {
		smtpCfg := cfg.SMTP
		smtpCfg.Roots = cfg.Roots
		smtpCfg.limiter = smtpprobe.NewLimiter(0)
		// Smart hosts do not depend on the MX: their probes start at once.
		wg.Go(func() {
			targets, fs := resolveEndpoints(ctx, deps.DNS, smartHostPlans(cfg.Profile, smtpCfg.SmartHosts), smtpCfg.Port)
			smartProbe = probeEndpoints(ctx, deps.DNS, smtpCfg, targets)
			smartProbe.findings = append(fs, smartProbe.findings...)
		})
		wg.Go(func() {
			<-mxDone
			mxProbe = probeEndpoints(ctx, deps.DNS, smtpCfg, mxTargets(mxRes, smtpCfg.Port))
		})
	}
	if wants(cfg, AreaPolicy) {
		// DMARC, MTA-STS and TLS-RPT start at once (MTA-STS asks the MX
		// itself; the shared resolver answers it from the MX analysis's
		// lookup); only the DKIM part waits to learn the mail platform.
		wg.Go(func() {
			res := policy.Analyze(ctx, deps.DNS, cfg.Domain, policy.Options{
				Mode: cfg.Mode, Profile: cfg.Profile,
				MailboxFunc: mailbox,
				Selectors:   cfg.Policy.Selectors, Roots: cfg.Roots,
				HTTPSPort: cfg.Policy.HTTPSPort, Now: deps.Now,
			})
			add(res.Findings)
		})
	}
	wg.Wait()
	if wants(cfg, AreaTLS) {
		rep.Add(mxProbe.findings...)
		rep.Add(smartProbe.findings...)
		rep.TLS = append(mxProbe.endpoints, smartProbe.endpoints...)
		if cfg.SMTP.Skip {
			rep.Notes = append(rep.Notes, fmt.Sprintf("No SMTP connection was made (--no-smtp, or bulk without --smtp): the %s listed were not probed, so STARTTLS, certificates and DANE were not checked.", plural(len(rep.TLS), "endpoint", "endpoints")))
		}
	}

	return finish(rep, start, now, deps.DNS, cfg.Trace)
}

// clock is the run's time source.
func (d Deps) clock() func() time.Time {
	if d.Now != nil {
		return d.Now
	}
	return time.Now
}

// newReport starts a report the way every kind of run does.
func newReport(domain, mode, version string, start time.Time) *report.Report {
	rep := report.New(domain, mode)
	rep.StartedAt = start.UTC()
	rep.Tool = report.Tool{Name: "mfcheck", Version: version}
	return rep
}

// finish stamps the run's duration and DNS counts (none without a
// resolver) and finalizes the report.
func finish(rep *report.Report, start time.Time, now func() time.Time, d DNS, trace bool) *report.Report {
	rep.DurationMS = float64(now().Sub(start).Microseconds()) / 1000
	if d != nil {
		rep.DNS = dnsStats(d, trace)
	}
	rep.Finalize()
	return rep
}

// allowlistFinding compares the allow list with the gateway's sending ranges
// as the SPF analysis found them (live, or the stored fallback).
func allowlistFinding(list *allowlist.List, gw *spf.GatewayRanges) report.Finding {
	if gw == nil {
		return allowlist.Check(list, allowlist.Gateway{Source: "no gateway profile was given"})
	}
	return allowlist.Check(list, allowlist.Gateway{Name: gw.Name, Ranges: gw.Ranges, Source: gw.Source, Unverified: gw.Unverified})
}

func wants(cfg Config, area string) bool {
	if len(cfg.Areas) == 0 {
		return true
	}
	for _, a := range cfg.Areas {
		if a == area {
			return true
		}
	}
	return false
}

func dnsStats(d DNS, trace bool) *report.DNSStats {
	q, distinct, failed := d.Stats()
	st := &report.DNSStats{Queries: q, Distinct: distinct, Errors: failed}
	if trace {
		for _, e := range d.Log() {
			st.Log = append(st.Log, report.DNSQuery{
				Name: e.Name, Type: dns.TypeToString[e.Type], Server: e.Server, Proto: e.Proto,
				Rcode: e.Rcode, RTTMS: float64(e.RTT.Microseconds()) / 1000, Answers: e.Answers, Error: e.Err,
			})
		}
	}
	return st
}

// detectMailbox names the mail platform behind the gateway, whose DKIM
// selectors the domain should publish: the mailbox profile an MX host
// matches (before the cutover, or a leftover bypass MX), else the one whose
// SPF include the domain's record reaches.
func detectMailbox(reg *profile.Registry, mxRes *mx.Result, section *report.SPF) *profile.Profile {
	if reg == nil {
		return nil
	}
	isMailbox := func(p *profile.Profile) bool { return p != nil && p.Kind == profile.KindMailbox }
	if mxRes != nil {
		for _, h := range mxRes.Hosts {
			if h.Platform == "" {
				continue
			}
			if p, err := reg.Get(h.Platform); err == nil && isMailbox(p) {
				return p
			}
		}
	}
	if section == nil || section.Tree == nil {
		return nil
	}
	reached := map[string]bool{}
	var walk func(n *report.SPFNode)
	walk = func(n *report.SPFNode) {
		reached[strings.ToLower(strings.TrimSuffix(n.Domain, "."))] = true
		for _, t := range n.Terms {
			if t.Child != nil {
				walk(t.Child)
			}
		}
	}
	walk(section.Tree)
	for _, p := range reg.All() {
		if !isMailbox(p) {
			continue
		}
		for _, inc := range p.SPFIncludes {
			if reached[strings.ToLower(inc)] {
				return p
			}
		}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
