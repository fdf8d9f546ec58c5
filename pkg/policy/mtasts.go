package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// MTASTS is what the MTA-STS check found.
type MTASTS struct {
	RecordName string   `json:"record_name"`
	TXT        []string `json:"txt,omitempty"`
	CNAMEs     []string `json:"cnames,omitempty"`
	// Records are the TXT records that begin with v=STSv1.
	Records     []string      `json:"records,omitempty"`
	Record      *MTASTSRecord `json:"record,omitempty"`
	RecordError string        `json:"record_error,omitempty"`
	Fetch       *PolicyFetch  `json:"fetch,omitempty"`
	Policy      *MTASTSPolicy `json:"policy,omitempty"`
	PolicyError string        `json:"policy_error,omitempty"`
	// MXHosts are the domain's MX hosts the policy was matched against,
	// MXSource says where they came from ("options" or "dns").
	MXHosts  []string  `json:"mx_hosts,omitempty"`
	MXSource string    `json:"mx_source,omitempty"`
	Matches  []MXMatch `json:"matches,omitempty"`
	// Unused are mx patterns that match no MX host.
	Unused []string `json:"unused_patterns,omitempty"`
	// Gateway are the gateway profile's MX hosts matched against the
	// policy (readiness mode), GatewaySkipped those that are patterns.
	Gateway        []MXMatch `json:"gateway,omitempty"`
	GatewaySkipped []string  `json:"gateway_skipped,omitempty"`
	// Err is set when the TXT lookup failed.
	Err string `json:"error,omitempty"`
}

// MXMatch is one host and the first policy pattern that matches it.
type MXMatch struct {
	Host    string `json:"host"`
	Pattern string `json:"pattern,omitempty"`
}

// Enforcing reports whether senders apply the policy (mode enforce or
// testing) — the modes in which TLS reporting matters.
func (m *MTASTS) active() bool {
	return m != nil && m.Policy != nil && m.Policy.Mode != "none"
}

func analyzeMTASTS(ctx context.Context, r Resolver, domain string, o Options) (*MTASTS, []report.Finding) {
	m := &MTASTS{RecordName: "_mta-sts." + domain}
	tr := lookupTXT(ctx, r, m.RecordName)
	m.TXT, m.CNAMEs = tr.Records, tr.CNAMEs
	for _, t := range tr.Records {
		if isSTSRecord(t) {
			m.Records = append(m.Records, t)
		}
	}
	f := report.Finding{ID: IDMTASTSRecord, Subject: domain, Evidence: map[string]any{"name": m.RecordName, "txt": m.TXT, "outcome": string(tr.Outcome)}}
	if len(m.CNAMEs) > 0 {
		f.Evidence["cnames"] = m.CNAMEs
	}
	switch {
	case tr.Err != nil:
		m.Err = tr.Err.Error()
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("Could not look up %s TXT: %v", m.RecordName, tr.Err)
		return m, []report.Finding{f}
	case len(m.Records) == 0:
		f.Status = report.StatusInfo
		f.Message = fmt.Sprintf("No MTA-STS record at %s: senders deliver to the MX with opportunistic TLS, which an attacker on the path can strip (MTA-STS is optional, RFC 8461)", m.RecordName)
		f.Remediation = fmt.Sprintf("To require TLS from senders, serve a policy (mode: testing first) at https://mta-sts.%s/.well-known/mta-sts.txt listing every MX host, then publish %s, and a TLS-RPT record to receive failure reports.", domain, zoneLine(m.RecordName, "TXT", quoteTXT("v=STSv1; id="+newID(o))))
		return m, []report.Finding{f}
	case len(m.Records) > 1:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("%s has %d MTA-STS records: senders treat the domain as having no MTA-STS policy (RFC 8461 §3.1) and keep using a cached one until it expires", m.RecordName, len(m.Records))
		f.Remediation = "Keep one v=STSv1 record at " + m.RecordName + " and delete the others."
		return m, []report.Finding{f}
	}
	rec, err := ParseMTASTSRecord(m.Records[0])
	if err != nil {
		m.RecordError = err.Error()
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("The MTA-STS record at %s is invalid (%s): senders ignore it and never fetch the policy (RFC 8461 §3.1)", m.RecordName, strings.TrimPrefix(err.Error(), ErrMTASTSRecord.Error()+": "))
		f.Remediation = "Publish " + zoneLine(m.RecordName, "TXT", quoteTXT("v=STSv1; id="+newID(o))) + " (id: 1 to 32 letters and digits, changed whenever the policy changes)."
		return m, []report.Finding{f}
	}
	m.Record = rec
	f.Status = report.StatusPass
	f.Message = fmt.Sprintf("MTA-STS record at %s: %s", m.RecordName, m.Records[0])
	f.Evidence["id"] = rec.ID
	out := []report.Finding{f}

	// The MX lookup runs beside the fetch (the slowest step), and only
	// when a policy can follow: a domain without MTA-STS costs no query.
	type mxResult struct {
		hosts []string
		err   error
	}
	mxc := make(chan mxResult, 1)
	if o.MXHosts == nil {
		go func() {
			h, err := lookupMX(ctx, r, domain)
			mxc <- mxResult{h, err}
		}()
	}
	m.Fetch = fetchPolicy(ctx, r, domain, o)
	out = append(out, m.policyFindings(domain, o)...)
	mx := mxResult{hosts: o.MXHosts}
	m.MXSource = "options"
	if o.MXHosts == nil {
		mx = <-mxc // waited for even when unused, so no lookup outlives Analyze
		m.MXSource = "dns"
	}
	if !m.active() {
		return m, out
	}
	out = append(out, m.mxFindings(domain, o, mx.hosts, mx.err)...)
	return m, out
}

// newID is a fresh policy id (digits of the current UTC time, which is
// what most operators use and sorts nicely).
func newID(o Options) string {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return now().UTC().Format("20060102150405")
}

// consequence is what a sender does when the policy cannot be used,
// RFC 8461 §3.3 and §5.1 put together.
const consequence = "senders without a cached policy deliver as if the domain had no MTA-STS (RFC 8461 §3.3), and senders that cached an earlier policy keep applying it until its max_age runs out, unable to learn of changes: after an MX change they refuse mail to MX hosts the old policy does not list (§5.1)"

func (m *MTASTS) policyFindings(domain string, o Options) []report.Finding {
	pf := m.Fetch
	ev := map[string]any{"url": pf.URL, "addresses": pf.Addresses}
	for k, v := range map[string]any{"connected": pf.Connected, "tls_version": pf.TLSVersion, "content_type": pf.ContentType, "location": pf.Location, "certificate_error": pf.CertError} {
		if v != "" {
			ev[k] = v
		}
	}
	if pf.StatusCode != 0 {
		ev["status_code"] = pf.StatusCode
		ev["size"] = pf.Size
	}
	if pf.Certificate != nil {
		ev["certificate"] = pf.Certificate
	}
	ev["duration_ms"] = pf.DurationMS
	f := report.Finding{ID: IDMTASTSPolicy, Subject: pf.Host, Evidence: ev}
	if pf.class != nil {
		f.Message = fmt.Sprintf("The MTA-STS policy could not be fetched from %s: %s", pf.URL, pf.Error)
		switch {
		case errors.Is(pf.class, errFetchDNS), errors.Is(pf.class, errFetchOurs):
			f.Status = report.StatusError
			f.Message = "Could not check the MTA-STS policy: " + pf.Error
			return []report.Finding{f}
		case errors.Is(pf.class, errNoAddress):
			f.Remediation = fmt.Sprintf("Publish A/AAAA records for %s pointing at the web server (or hosting service) that serves the policy.", pf.Host)
		case errors.Is(pf.class, errCertificate):
			f.Remediation = fmt.Sprintf("Install a certificate for %s from a public CA (the name must be in its subject alternative names) with the full chain.", pf.Host)
		case errors.Is(pf.class, errConnect), errors.Is(pf.class, errFetchTimeout):
			f.Remediation = fmt.Sprintf("Make %s answer HTTPS on port 443 from the internet.", pf.Host)
		default:
			f.Remediation = fmt.Sprintf("Serve the policy at %s itself with status 200 and Content-Type: text/plain, at most %d octets, without redirects.", pf.URL, MaxPolicySize)
		}
		f.Status = report.StatusFail
		f.Message += "; " + consequence
		return []report.Finding{f}
	}
	ev["body"] = pf.Body
	p, err := ParseMTASTSPolicy(pf.body)
	if err != nil {
		m.PolicyError = err.Error()
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("The MTA-STS policy at %s is invalid (%s); %s", pf.URL, strings.TrimPrefix(err.Error(), ErrMTASTSPolicy.Error()+": "), consequence)
		f.Remediation = "Serve a policy of this form (RFC 8461 §3.2), one field per line:\nversion: STSv1\nmode: testing\nmx: <each MX host, or *.<parent>>\nmax_age: 604800"
		return []report.Finding{f}
	}
	m.Policy = p
	ev["mode"], ev["mx"], ev["max_age"] = p.Mode, p.MX, p.MaxAge
	switch p.Mode {
	case "enforce":
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("MTA-STS policy in enforce mode: senders deliver only over TLS with a valid certificate to MX hosts matching %s (RFC 8461 §5)", strings.Join(p.MX, ", "))
	case "testing":
		f.Status = report.StatusInfo
		f.Message = fmt.Sprintf("MTA-STS policy in testing mode: senders report failures (TLS-RPT) but still deliver (RFC 8461 §5); mx %s", strings.Join(p.MX, ", "))
		f.Remediation = "When the TLS-RPT reports show no failures, change the policy to mode: enforce and change the id of " + m.RecordName + "."
	default:
		f.Status = report.StatusInfo
		f.Message = "MTA-STS policy in mode none: senders treat the domain as having no policy (RFC 8461 §5); this is the way to withdraw MTA-STS"
	}
	out := []report.Finding{f}
	if p.Mode != "none" {
		day := int64(24 * 60 * 60)
		switch {
		case p.MaxAge > MaxMaxAge:
			out = append(out, report.Finding{ID: IDMTASTSPolicy, Status: report.StatusWarn, Subject: pf.Host,
				Message:     fmt.Sprintf("max_age %d is above the maximum of %d (one year, RFC 8461 §3.2); senders may reject the policy or cap it", p.MaxAge, MaxMaxAge),
				Remediation: "Use max_age: 604800 (one week) to 31557600.",
				Evidence:    map[string]any{"max_age": p.MaxAge}})
		case p.MaxAge < day:
			out = append(out, report.Finding{ID: IDMTASTSPolicy, Status: report.StatusWarn, Subject: pf.Host,
				Message:     fmt.Sprintf("max_age %d is under one day: cached policies expire quickly, so an attacker who blocks the policy fetch for that long downgrades senders to plain delivery again; RFC 8461 §3.2 expects weeks or more", p.MaxAge),
				Remediation: "Use max_age: 604800 (one week) or more once the policy is stable; a short value only helps while testing.",
				Evidence:    map[string]any{"max_age": p.MaxAge}})
		}
	}
	return out
}

// lookupMX returns the MX target names of domain; an empty list for no MX
// (NXDOMAIN, NODATA) and for a null MX (RFC 7505).
func lookupMX(ctx context.Context, r Resolver, domain string) ([]string, error) {
	ans, err := r.Lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, rr := range ans.Records {
		if mx, ok := rr.(*dns.MX); ok && mx.Mx != "." {
			hosts = append(hosts, strings.ToLower(strings.TrimSuffix(mx.Mx, ".")))
		}
	}
	sort.Strings(hosts)
	return hosts, nil
}

func firstMatch(patterns []string, host string) string {
	for _, p := range patterns {
		if MatchMX(p, host) {
			return p
		}
	}
	return ""
}

// literalHost reports whether a profile host pattern is one concrete name.
func literalHost(p string) bool { return !strings.ContainsAny(p, "*?<>") }

func (m *MTASTS) mxFindings(domain string, o Options, hosts []string, err error) []report.Finding {
	p := m.Policy
	if err != nil {
		return []report.Finding{{ID: IDMTASTSMXMatch, Status: report.StatusError, Subject: domain,
			Message: fmt.Sprintf("Could not look up the MX of %s to match it against the MTA-STS policy: %v", domain, err)}}
	}
	m.MXHosts = hosts
	enforce := p.Mode == "enforce"
	uncovered := report.StatusWarn
	effect := "senders report the mismatch (TLS-RPT) but still deliver (testing mode)"
	if enforce {
		uncovered = report.StatusFail
		effect = "senders that apply MTA-STS refuse to deliver to it (enforce mode, RFC 8461 §5)"
	}
	fix := func(host string) string {
		return fmt.Sprintf("Add \"mx: %s\" (or a *. pattern that covers it) to %s and publish a new id: %s.", host, m.Fetch.URL, zoneLine(m.RecordName, "TXT", quoteTXT("v=STSv1; id="+newID(o))))
	}
	var out []report.Finding
	used := map[string]bool{}
	var missing []string
	for _, h := range hosts {
		pat := firstMatch(p.MX, h)
		m.Matches = append(m.Matches, MXMatch{Host: h, Pattern: pat})
		for _, q := range p.MX {
			if MatchMX(q, h) {
				used[q] = true
			}
		}
		if pat == "" {
			missing = append(missing, h)
			out = append(out, report.Finding{ID: IDMTASTSMXMatch, Status: uncovered, Subject: h,
				Message:     fmt.Sprintf("MX host %s of %s matches no mx pattern of the MTA-STS policy (%s): %s", h, domain, strings.Join(p.MX, ", "), effect),
				Remediation: fix(h),
				Evidence:    map[string]any{"mx": h, "patterns": p.MX}})
		}
	}
	switch {
	case len(hosts) == 0:
		out = append(out, report.Finding{ID: IDMTASTSMXMatch, Status: report.StatusInfo, Subject: domain,
			Message:  fmt.Sprintf("%s has no MX host to match against the MTA-STS policy", domain),
			Evidence: map[string]any{"patterns": p.MX}})
	case len(missing) == 0:
		out = append(out, report.Finding{ID: IDMTASTSMXMatch, Status: report.StatusPass, Subject: domain,
			Message:  fmt.Sprintf("Every MX host of %s (%d) matches an mx pattern of the MTA-STS policy", domain, len(hosts)),
			Evidence: map[string]any{"matches": m.Matches, "patterns": p.MX, "mx_source": m.MXSource}})
	}

	// Readiness: the MX will point at the gateway. A policy that does not
	// list it yet makes enforcing senders refuse mail right after the
	// cutover, and they only notice a new policy when the id changes.
	if o.Mode == ModeReadiness && o.Profile != nil {
		for _, h := range o.Profile.MXHosts {
			if !literalHost(h) {
				m.GatewaySkipped = append(m.GatewaySkipped, h)
				continue
			}
			pat := firstMatch(p.MX, h)
			m.Gateway = append(m.Gateway, MXMatch{Host: h, Pattern: pat})
			if pat != "" {
				used[pat] = true
				continue
			}
			out = append(out, report.Finding{ID: IDMTASTSMXMatch, Status: uncovered, Subject: h,
				Message: fmt.Sprintf("The gateway's MX host %s (%s) matches no mx pattern of the MTA-STS policy (%s): once the MX points at it, %s",
					h, o.Profile.Name, strings.Join(p.MX, ", "), effect),
				Remediation: fix(h) + " Do this before the MX change, and keep the old hosts listed until it is done.",
				Evidence:    map[string]any{"gateway_mx": h, "profile": o.Profile.ID, "unverified": o.Profile.ValueUncertain(profile.KeyMXHosts, h), "patterns": p.MX}})
		}
	}

	for _, q := range p.MX {
		if !used[q] {
			m.Unused = append(m.Unused, q)
		}
	}
	if len(m.Unused) > 0 && len(hosts) > 0 {
		// Info, not warn: an extra pattern never stops delivery, and during
		// a migration listing both platforms is the right thing. It is
		// worth a look afterwards: a leftover pattern keeps authorizing a
		// platform that no longer receives the domain's mail.
		out = append(out, report.Finding{ID: IDMTASTSMXMatch, Status: report.StatusInfo, Subject: domain,
			Message:     fmt.Sprintf("mx pattern(s) %s of the MTA-STS policy match no MX host of %s: stale unless a migration is under way", strings.Join(m.Unused, ", "), domain),
			Remediation: "Once no mail goes to those hosts any more, remove the lines from the policy and publish a new id.",
			Evidence:    map[string]any{"unused": m.Unused, "mx": hosts}})
	}
	return out
}
