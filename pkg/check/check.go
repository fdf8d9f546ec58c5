// Package check plans and runs mfcheck's checks for one domain and collects
// their findings into a report.Report. It starts every independent check at
// once; all of them share one resolver, so each DNS question is asked once per
// run however many checks need it.
package check

import (
	"context"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Areas a run can be limited to.
const (
	AreaMX = "mx"
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
	// Version is written into the report.
	Version string
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
	wg.Wait()

	rep.DurationMS = float64(now().Sub(start).Microseconds()) / 1000
	rep.DNS = dnsStats(deps.DNS, cfg.Trace)
	rep.Finalize()
	return rep
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
