// Package check plans and runs mfcheck's checks for one domain and collects
// their findings into a report.Report. It starts every independent check at
// once; all of them share one resolver, so each DNS question is asked once per
// run however many checks need it.
package check

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
	"github.com/mfcheck/mfcheck/pkg/spf"
)

// Areas a run can be limited to.
const (
	AreaMX  = "mx"
	AreaSPF = "spf"
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
	now := time.Now
	if deps.Now != nil {
		now = deps.Now
	}
	start := now()
	rep := report.New(cfg.Domain, cfg.Mode)
	rep.StartedAt = start.UTC()
	rep.Tool = report.Tool{Name: "mfcheck", Version: cfg.Version}
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
	if wants(cfg, AreaMX) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := mx.Analyze(ctx, deps.DNS, cfg.Domain, mx.Options{
				Mode: cfg.Mode, Profile: cfg.Profile, Profiles: cfg.Profiles, NSPort: cfg.NSPort,
			})
			add(res.Findings)
		}()
	}
	if wants(cfg, AreaSPF) {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
			if a.FlattenErr != nil {
				// Asked for, not produced: say so rather than print nothing.
				rep.Notes = append(rep.Notes, "--flatten: "+a.FlattenErr.Error())
			}
			mu.Unlock()
		}()
	}
	wg.Wait()

	rep.DurationMS = float64(now().Sub(start).Microseconds()) / 1000
	rep.DNS = dnsStats(deps.DNS, cfg.Trace)
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
