// Package mx analyses a domain's MX records: the MX set with preferences, the
// addresses of every target, null MX (RFC 7505), the implicit MX fallback
// (RFC 5321 §5.1), targets that are aliases or IP literals or do not resolve,
// the TTL before a cutover, whether every authoritative server publishes the
// same MX set (propagation), and whether the MX hosts belong to a gateway
// profile.
//
// Analyze returns data and findings; it never prints.
package mx

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Finding IDs of this package; docs/checks.md describes each.
const (
	IDPresent        = "mx.present"
	IDNull           = "mx.null"
	IDTargetCNAME    = "mx.target-cname"
	IDTargetIPLit    = "mx.target-ip-literal"
	IDTargetUnresolv = "mx.target-unresolvable"
	IDDuplicate      = "mx.duplicate"
	IDIPv6           = "mx.ipv6"
	IDTTL            = "mx.ttl"
	IDNSConsistency  = "mx.ns-consistency"
	IDAtGateway      = "mx.at-gateway"
	IDBypassMX       = "mx.bypass-mx"
)

// Modes change what counts as a problem: before a cutover (readiness) the MX
// may still point at the old platform but a long TTL is a blocker; after it
// (smoke) anything but the gateway is a failure.
const (
	ModeReadiness = "readiness"
	ModeSmoke     = "smoke"
	ModeHealth    = "health"
)

// DefaultTTLThreshold is the MX TTL above which readiness mode warns: with a
// longer TTL, resolvers keep sending mail to the old MX for more than an hour
// after the change.
const DefaultTTLThreshold = 3600

// Resolver is what this package needs from DNS (resolver.Client satisfies it).
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*resolver.Answer, error)
	QueryServer(ctx context.Context, server, name string, qtype uint16) (*resolver.Answer, error)
}

// Options tune the analysis.
type Options struct {
	Mode string
	// Profile is the gateway the MX should point at; nil skips the gateway checks.
	Profile *profile.Profile
	// Profiles, when set, names the platform of MX hosts outside the gateway
	// ("Microsoft 365") in findings and evidence.
	Profiles *profile.Registry
	// TTLThreshold overrides DefaultTTLThreshold.
	TTLThreshold uint32
	// NSPort is the port of the authoritative servers (53 unless a lab
	// serves them elsewhere).
	NSPort int
	// SkipNSConsistency turns off the direct queries to authoritative servers.
	SkipNSConsistency bool
}

// Host is one MX record and what its target resolves to.
type Host struct {
	Preference uint16   `json:"preference"`
	Name       string   `json:"name"`
	CNAMEs     []string `json:"cnames,omitempty"`
	IPLiteral  bool     `json:"ip_literal,omitempty"`
	IPv4       []string `json:"ipv4,omitempty"`
	IPv6       []string `json:"ipv6,omitempty"`
	// Missing is true when the target name does not exist or has no address.
	Missing bool `json:"missing,omitempty"`
	// Err is set when the target could not be resolved (timeout, SERVFAIL).
	Err string `json:"error,omitempty"`
	// Platform is the ID of a known profile whose MX patterns match.
	Platform string `json:"platform,omitempty"`
}

// Result is the outcome of Analyze.
type Result struct {
	Domain   string           `json:"domain"`
	Hosts    []Host           `json:"hosts"`
	TTL      uint32           `json:"ttl"`
	Null     bool             `json:"null_mx"`
	Implicit bool             `json:"implicit_mx"`
	Servers  []ServerView     `json:"authoritative,omitempty"`
	Findings []report.Finding `json:"-"`
}

// Analyze resolves and judges the MX set of domain (an already validated,
// canonical or user-typed domain name).
func Analyze(ctx context.Context, r Resolver, domain string, opt Options) *Result {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	res := &Result{Domain: domain}
	if opt.TTLThreshold == 0 {
		opt.TTLThreshold = DefaultTTLThreshold
	}
	if opt.NSPort == 0 {
		opt.NSPort = 53
	}

	// The propagation check depends only on the domain, so it runs beside
	// the MX lookup instead of after it: the critical path is then the
	// longer of the two chains, not their sum.
	var wg sync.WaitGroup
	var nsFindings []report.Finding
	if !opt.SkipNSConsistency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Servers, nsFindings = checkAuthoritative(ctx, r, domain, opt.NSPort)
		}()
	}

	res.Findings = append(res.Findings, analyzeMX(ctx, r, domain, opt, res)...)
	wg.Wait()
	res.Findings = append(res.Findings, nsFindings...)
	return res
}

func analyzeMX(ctx context.Context, r Resolver, domain string, opt Options, res *Result) []report.Finding {
	var out []report.Finding
	ans, err := r.Lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return []report.Finding{{ID: IDPresent, Status: report.StatusError, Subject: domain,
			Message:  fmt.Sprintf("Could not look up the MX records: %v", err),
			Evidence: answerEvidence(ans)}}
	}
	switch ans.Outcome {
	case resolver.OutcomeNXDomain:
		return []report.Finding{{ID: IDPresent, Status: report.StatusFail, Subject: domain,
			Message:     "The domain does not exist (NXDOMAIN): it cannot receive mail",
			Remediation: "Check the spelling, or publish the zone before pointing mail at it",
			Evidence:    answerEvidence(ans)}}
	case resolver.OutcomeNoData:
		return append(out, implicitMX(ctx, r, domain, res, ans))
	}

	for _, rr := range ans.Records {
		mx, ok := rr.(*dns.MX)
		if !ok {
			continue
		}
		name := strings.ToLower(dns.Fqdn(mx.Mx)) // an empty target is the root, "."
		res.Hosts = append(res.Hosts, Host{Preference: mx.Preference, Name: name})
	}
	sort.SliceStable(res.Hosts, func(i, j int) bool {
		if res.Hosts[i].Preference != res.Hosts[j].Preference {
			return res.Hosts[i].Preference < res.Hosts[j].Preference
		}
		return res.Hosts[i].Name < res.Hosts[j].Name
	})
	res.TTL = ans.TTL
	out = append(out, report.Finding{ID: IDPresent, Status: report.StatusPass, Subject: domain,
		Message:  fmt.Sprintf("%s published: %s", plural(len(res.Hosts), "MX record"), hostList(res.Hosts)),
		Evidence: map[string]any{"mx": mxStrings(res.Hosts), "ttl": ans.TTL, "server": ans.Server}})
	out = append(out, ttlFinding(domain, ans.TTL, opt))

	if f, onlyNull := nullMX(domain, res); f != nil {
		out = append(out, *f)
		if onlyNull {
			res.Null = true
			// A null-MX domain receives no mail; a gateway profile makes
			// that a failure of the cutover, not a style point.
			if opt.Profile != nil {
				out = append(out, report.Finding{ID: IDAtGateway, Status: report.StatusFail, Subject: domain,
					Message:     fmt.Sprintf("The domain publishes a null MX, so no mail reaches %s", opt.Profile.Name),
					Remediation: fmt.Sprintf("Replace the null MX with the gateway's MX hosts: %s", strings.Join(opt.Profile.MXHosts, ", "))})
			}
			return out
		}
	}
	out = append(out, duplicates(domain, res.Hosts)...)
	out = append(out, resolveTargets(ctx, r, domain, res, opt)...)
	if opt.Profile != nil {
		out = append(out, gatewayFindings(domain, res.Hosts, opt)...)
	}
	return out
}

// implicitMX handles a domain without MX records. RFC 5321 §5.1: the domain
// itself is then the mail exchanger ("implicit MX") if it has an address.
func implicitMX(ctx context.Context, r Resolver, domain string, res *Result, mxAns *resolver.Answer) report.Finding {
	res.Implicit = true
	h := Host{Name: domain + "."}
	lookupAddrs(ctx, r, &h)
	res.Hosts = []Host{h}
	ev := map[string]any{"mx": []string{}, "ipv4": h.IPv4, "ipv6": h.IPv6}
	if mxAns != nil {
		ev["server"] = mxAns.Server
	}
	switch {
	case h.Err != "":
		return report.Finding{ID: IDPresent, Status: report.StatusError, Subject: domain,
			Message:  "The domain has no MX records, and its addresses (the implicit MX) could not be looked up: " + h.Err,
			Evidence: ev}
	case h.Missing:
		return report.Finding{ID: IDPresent, Status: report.StatusFail, Subject: domain,
			Message:     "The domain has no MX records and no A/AAAA address: it cannot receive mail",
			Remediation: "Publish MX records for the mail platform, or a null MX (\"0 .\", RFC 7505) if the domain sends but never receives mail",
			Evidence:    ev}
	}
	return report.Finding{ID: IDPresent, Status: report.StatusWarn, Subject: domain,
		Message: fmt.Sprintf("The domain has no MX records; senders fall back to its own address (implicit MX, RFC 5321 §5.1): %s",
			strings.Join(append(append([]string{}, h.IPv4...), h.IPv6...), ", ")),
		Remediation: "Publish explicit MX records pointing at the mail platform or gateway",
		Evidence:    ev}
}

func ttlFinding(domain string, ttl uint32, opt Options) report.Finding {
	f := report.Finding{ID: IDTTL, Status: report.StatusInfo, Subject: domain,
		Message:  fmt.Sprintf("The MX records have a TTL of %d s (%s)", ttl, humanDuration(ttl)),
		Evidence: map[string]any{"ttl": ttl, "threshold": opt.TTLThreshold}}
	if opt.Mode == ModeReadiness && ttl > opt.TTLThreshold {
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("The MX TTL is %d s (%s), above %d s: after the cutover, resolvers may keep using the old MX for that long",
			ttl, humanDuration(ttl), opt.TTLThreshold)
		f.Remediation = fmt.Sprintf("Lower the MX TTL to 300 s at least %s before the change, and raise it again afterwards", humanDuration(ttl))
	}
	return f
}

// nullMX reports RFC 7505 null MX use. It returns the finding (nil without a
// null MX) and whether the null MX is the only record.
func nullMX(domain string, res *Result) (*report.Finding, bool) {
	var nulls, others []Host
	for _, h := range res.Hosts {
		if h.Name == "." {
			nulls = append(nulls, h)
		} else {
			others = append(others, h)
		}
	}
	if len(nulls) == 0 {
		return nil, false
	}
	ev := map[string]any{"mx": mxStrings(res.Hosts)}
	if len(others) > 0 {
		// RFC 7505 §3: a domain that advertises a null MX MUST NOT
		// advertise any other MX RR.
		return &report.Finding{ID: IDNull, Status: report.StatusFail, Subject: domain,
			Message:     fmt.Sprintf("A null MX (\"0 .\") is published next to %s; RFC 7505 §3 forbids mixing them and senders may bounce mail", plural(len(others), "other MX record")),
			Remediation: "Remove the null MX if the domain receives mail, or remove the other MX records if it does not",
			Evidence:    ev}, false
	}
	f := &report.Finding{ID: IDNull, Status: report.StatusInfo, Subject: domain,
		Message:  "The domain publishes a null MX (RFC 7505): it declares that it accepts no mail",
		Evidence: ev}
	if nulls[0].Preference != 0 || len(nulls) > 1 {
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("The domain publishes a null MX in a non-standard form (%s); RFC 7505 §3 specifies exactly one record \"0 .\"", strings.Join(mxStrings(nulls), ", "))
		f.Remediation = "Publish exactly one MX record: 0 ."
	}
	return f, true
}

func duplicates(domain string, hosts []Host) []report.Finding {
	seen := map[string][]string{}
	var order []string
	for _, h := range hosts {
		if _, ok := seen[h.Name]; !ok {
			order = append(order, h.Name)
		}
		seen[h.Name] = append(seen[h.Name], fmt.Sprintf("%d %s", h.Preference, h.Name))
	}
	var out []report.Finding
	for _, name := range order {
		if recs := seen[name]; len(recs) > 1 {
			out = append(out, report.Finding{ID: IDDuplicate, Status: report.StatusWarn, Subject: trimDot(name),
				Message:     fmt.Sprintf("%s is listed %d times (%s); the extra records add nothing and confuse preference ordering", trimDot(name), len(recs), strings.Join(recs, ", ")),
				Remediation: "Keep one MX record per host, with the intended preference",
				Evidence:    map[string]any{"records": recs}})
		}
	}
	return out
}

// resolveTargets looks up A and AAAA of every distinct target in parallel
// and judges them.
func resolveTargets(ctx context.Context, r Resolver, domain string, res *Result, opt Options) []report.Finding {
	var wg sync.WaitGroup
	for i := range res.Hosts {
		h := &res.Hosts[i]
		if isIPLiteral(h.Name) {
			h.IPLiteral = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lookupAddrs(ctx, r, h)
		}()
	}
	wg.Wait()

	var out []report.Finding
	resolvable, withV6, checked := 0, 0, 0
	for i := range res.Hosts {
		h := &res.Hosts[i]
		if opt.Profiles != nil {
			if ps := opt.Profiles.DetectMX(h.Name); len(ps) > 0 {
				h.Platform = ps[0].ID
			}
		}
		subject := trimDot(h.Name)
		switch {
		case h.IPLiteral:
			out = append(out, report.Finding{ID: IDTargetIPLit, Status: report.StatusFail, Subject: subject,
				Message:     fmt.Sprintf("MX target %s is an IP address; an MX must name a host (RFC 5321 §5.1), and senders look it up as a name and fail", subject),
				Remediation: fmt.Sprintf("Publish an A record for a host name (e.g. mx.%s) with this address and point the MX at that name", domain),
				Evidence:    map[string]any{"mx": fmt.Sprintf("%d %s", h.Preference, h.Name)}})
			continue
		case h.Err != "":
			out = append(out, report.Finding{ID: IDTargetUnresolv, Status: report.StatusError, Subject: subject,
				Message:  fmt.Sprintf("Could not resolve MX target %s: %s", subject, h.Err),
				Evidence: hostEvidence(h)})
			continue
		}
		checked++
		if len(h.CNAMEs) > 0 {
			out = append(out, report.Finding{ID: IDTargetCNAME, Status: report.StatusWarn, Subject: subject,
				Message: fmt.Sprintf("MX target %s is an alias (CNAME to %s); RFC 2181 §10.3 forbids MX targets that are aliases, and some senders refuse them",
					subject, trimDot(h.CNAMEs[len(h.CNAMEs)-1])),
				Remediation: fmt.Sprintf("Point the MX at the canonical name %s", trimDot(h.CNAMEs[len(h.CNAMEs)-1])),
				Evidence:    hostEvidence(h)})
		}
		if h.Missing {
			continue
		}
		resolvable++
		if len(h.IPv6) > 0 {
			withV6++
		}
	}
	for i := range res.Hosts {
		h := &res.Hosts[i]
		if !h.Missing || h.IPLiteral || h.Err != "" {
			continue
		}
		st := report.StatusFail
		note := "no MX host of the domain resolves, so no mail can be delivered"
		if resolvable > 0 {
			st = report.StatusWarn
			note = "senders waste a connection attempt on it and fall back to the other MX hosts"
		}
		out = append(out, report.Finding{ID: IDTargetUnresolv, Status: st, Subject: trimDot(h.Name),
			Message:     fmt.Sprintf("MX target %s (preference %d) has no A or AAAA record: %s", trimDot(h.Name), h.Preference, note),
			Remediation: fmt.Sprintf("Publish the address of %s, or remove the MX record", trimDot(h.Name)),
			Evidence:    hostEvidence(h)})
	}
	if checked > 0 && resolvable > 0 {
		f := report.Finding{ID: IDIPv6, Status: report.StatusInfo, Subject: domain,
			Message:  fmt.Sprintf("%d of %d resolvable MX hosts have an IPv6 address", withV6, resolvable),
			Evidence: map[string]any{"with_ipv6": withV6, "resolvable": resolvable}}
		if withV6 == 0 {
			f.Message = fmt.Sprintf("No MX host has an IPv6 address (%d resolvable, IPv4 only); IPv6-only senders cannot deliver", resolvable)
		}
		out = append(out, f)
	}
	return out
}

// lookupAddrs fills the addresses of h from parallel A and AAAA lookups.
func lookupAddrs(ctx context.Context, r Resolver, h *Host) {
	var a4, a6 *resolver.Answer
	var e4, e6 error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a4, e4 = r.Lookup(ctx, h.Name, dns.TypeA) }()
	go func() { defer wg.Done(); a6, e6 = r.Lookup(ctx, h.Name, dns.TypeAAAA) }()
	wg.Wait()
	for _, pair := range []struct {
		a   *resolver.Answer
		err error
	}{{a4, e4}, {a6, e6}} {
		if pair.err != nil {
			if errors.Is(pair.err, resolver.ErrBadName) {
				h.Missing = true
				continue
			}
			if h.Err == "" {
				h.Err = pair.err.Error()
			}
			continue
		}
		if len(pair.a.CNAMEs) > 0 && len(h.CNAMEs) == 0 {
			h.CNAMEs = trimAll(pair.a.CNAMEs)
		}
		for _, rr := range pair.a.Records {
			switch v := rr.(type) {
			case *dns.A:
				h.IPv4 = append(h.IPv4, v.A.String())
			case *dns.AAAA:
				h.IPv6 = append(h.IPv6, v.AAAA.String())
			}
		}
	}
	sort.Strings(h.IPv4)
	sort.Strings(h.IPv6)
	if h.Err == "" && len(h.IPv4) == 0 && len(h.IPv6) == 0 {
		h.Missing = true
	}
}

// isIPLiteral recognises targets such as "192.0.2.1.", "[192.0.2.1]." or
// "2001:db8::1." that zone authors write by mistake.
func isIPLiteral(name string) bool {
	s := strings.TrimSuffix(name, ".")
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "ipv6:"), "IPv6:")
	_, err := netip.ParseAddr(s)
	return err == nil
}

func hostEvidence(h *Host) map[string]any {
	ev := map[string]any{"mx": fmt.Sprintf("%d %s", h.Preference, h.Name)}
	if len(h.CNAMEs) > 0 {
		ev["cname_chain"] = h.CNAMEs
	}
	if len(h.IPv4) > 0 {
		ev["ipv4"] = h.IPv4
	}
	if len(h.IPv6) > 0 {
		ev["ipv6"] = h.IPv6
	}
	if h.Err != "" {
		ev["error"] = h.Err
	}
	return ev
}

func answerEvidence(a *resolver.Answer) map[string]any {
	if a == nil {
		return nil
	}
	ev := map[string]any{"outcome": string(a.Outcome)}
	if a.Server != "" {
		ev["server"] = a.Server
	}
	return ev
}

func mxStrings(hosts []Host) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, fmt.Sprintf("%d %s", h.Preference, h.Name))
	}
	return out
}

func hostList(hosts []Host) string {
	parts := make([]string, 0, len(hosts))
	for _, h := range hosts {
		parts = append(parts, fmt.Sprintf("%s (%d)", trimDot(h.Name), h.Preference))
	}
	return strings.Join(parts, ", ")
}

func trimDot(s string) string {
	if s == "." {
		return s
	}
	return strings.TrimSuffix(s, ".")
}

func trimAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = trimDot(s)
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func humanDuration(s uint32) string {
	switch {
	case s >= 86400 && s%86400 == 0:
		return plural(int(s/86400), "day")
	case s >= 3600 && s%3600 == 0:
		return plural(int(s/3600), "hour")
	case s >= 60 && s%60 == 0:
		return plural(int(s/60), "minute")
	}
	return plural(int(s), "second")
}
