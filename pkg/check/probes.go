package check

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
	"github.com/mfcheck/mfcheck/pkg/smtpprobe"
)

// SMTPConfig is the SMTP/TLS part of a run: which endpoints to probe, and
// how.
type SMTPConfig struct {
	// Skip makes no SMTP connection at all (--no-smtp, for networks where
	// port 25 is blocked); the endpoints are still listed, as skipped.
	Skip bool
	// Port is where MX hosts and profile smart hosts are probed; 0 = 25.
	// Only labs change it: MX records carry no port.
	Port int
	// SmartHosts are extra smart hosts (--smart-host), probed beside the
	// profile's.
	SmartHosts []HostPort
	// HeloName is the EHLO name (--ehlo-name); empty = smtpprobe's default.
	HeloName string
	// Roots verify certificates (system roots plus --ca-file); nil = the
	// system roots.
	Roots *x509.CertPool
	// Timeouts per protocol phase; zero fields = smtpprobe's defaults.
	Timeouts smtpprobe.Timeouts
	// ExpiryWarn is when tls.cert-expiry starts warning (0 = 21 days).
	ExpiryWarn time.Duration
	// TLSAOwnPort looks TLSA records up at the probed port rather than 25
	// (mfcheck tls HOST:PORT).
	TLSAOwnPort bool

	// limiter keeps the per-address connection bound across the run's
	// probe batches (MX and smart hosts start at different times).
	limiter *smtpprobe.Limiter
}

// tlsaPort is the port whose TLSA records apply to t (RFC 6698 §3: the
// name is _port._tcp.host). MX hosts serve SMTP on 25; a lab's --smtp-port
// stands in for 25 and does not move the records, while a port the user
// gave with the host (mfcheck tls host:2525) does.
func (c SMTPConfig) tlsaPort(t smtpprobe.Target) int {
	if c.TLSAOwnPort {
		return portOf(t)
	}
	return 25
}

// HostPort is a host name or address literal with an optional port (0 =
// the run's SMTP port).
type HostPort struct {
	Host string
	Port int
}

func (h HostPort) String() string {
	if h.Port == 0 {
		return h.Host
	}
	return fmt.Sprintf("%s:%d", h.Host, h.Port)
}

// IDTLSResolve is the finding for a smart host whose addresses could not be
// found; MX hosts have mx.target-unresolvable for that.
const IDTLSResolve = "tls.resolve"

// endpointPlan is one host to probe and the reason it is probed.
type endpointPlan struct {
	host HostPort
	role smtpprobe.Role
	// fromProfile is set for the profile's smart hosts: the profile's data
	// may be unverified, and an unresolvable name then says more about the
	// profile than about the domain.
	fromProfile *profile.Profile
}

// probeResult is what the TLS part of a run adds to the report.
type probeResult struct {
	findings  []report.Finding
	endpoints []report.TLSEndpoint
}

// smartHostPlans lists the smart hosts to probe: the profile's (its
// Exchange Online connector hosts, then its generic SMTP relays, as both
// carry a hybrid organisation's outbound mail) and the user's, each once.
func smartHostPlans(p *profile.Profile, extra []HostPort) []endpointPlan {
	var out []endpointPlan
	seen := map[string]bool{}
	add := func(h HostPort, from *profile.Profile) {
		key := strings.ToLower(strings.TrimSuffix(h.String(), "."))
		if seen[key] {
			return
		}
		seen[key] = true
		out = append(out, endpointPlan{host: h, role: smtpprobe.RoleSmartHost, fromProfile: from})
	}
	if p != nil {
		for _, h := range slices.Concat(p.OutboundSmartHosts, p.SMTPOutboundHosts) {
			// Patterns ("*", "<name>") stand for customer-specific hosts
			// that cannot be probed without knowing the customer's value.
			if strings.ContainsAny(h, "*<>") {
				continue
			}
			add(HostPort{Host: h}, p)
		}
	}
	for _, h := range extra {
		add(h, nil)
	}
	return out
}

// mxTargets turns the MX analysis into probe targets: every address of
// every MX host, in preference order, IPv4 before IPv6.
func mxTargets(res *mx.Result, port int) []smtpprobe.Target {
	if res == nil {
		return nil
	}
	var out []smtpprobe.Target
	for _, h := range res.Hosts {
		if h.Missing || h.Err != "" {
			continue // mx.target-unresolvable already says so
		}
		name := strings.TrimSuffix(h.Name, ".")
		if h.IPLiteral {
			name = "" // no name to check the certificate against
		}
		for _, s := range slices.Concat(h.IPv4, h.IPv6) {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, smtpprobe.Target{Host: name, Addr: a, Port: port, Role: smtpprobe.RoleMX})
			}
		}
	}
	return out
}

// resolveEndpoints looks up the addresses of each planned host (A and
// AAAA at once). A host that is an address literal is used as is.
func resolveEndpoints(ctx context.Context, r mx.Resolver, plans []endpointPlan, port int) ([]smtpprobe.Target, []report.Finding) {
	type resolved struct {
		targets []smtpprobe.Target
		finding *report.Finding
	}
	out := make([]resolved, len(plans))
	var wg sync.WaitGroup
	for i, p := range plans {
		wg.Go(func() {
			targets, f := resolveEndpoint(ctx, r, p, port)
			out[i] = resolved{targets, f}
		})
	}
	wg.Wait()
	var ts []smtpprobe.Target
	var fs []report.Finding
	for _, o := range out {
		ts = append(ts, o.targets...)
		if o.finding != nil {
			fs = append(fs, *o.finding)
		}
	}
	return ts, fs
}

func resolveEndpoint(ctx context.Context, r mx.Resolver, p endpointPlan, port int) ([]smtpprobe.Target, *report.Finding) {
	if p.host.Port != 0 {
		port = p.host.Port
	}
	implicit := port == 465 // RFC 8314 §3.3: TLS from the first byte
	host := strings.TrimSuffix(p.host.Host, ".")
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []smtpprobe.Target{{Addr: a, Port: port, Role: p.role, ImplicitTLS: implicit}}, nil
	}
	answers := make([]*resolver.Answer, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		wg.Go(func() { answers[i], errs[i] = r.Lookup(ctx, host, qt) })
	}
	wg.Wait()
	var ts []smtpprobe.Target
	var failed []string
	for i, a := range answers {
		if errs[i] != nil {
			failed = append(failed, errs[i].Error())
			continue
		}
		for _, ip := range a.Addrs() {
			ts = append(ts, smtpprobe.Target{Host: host, Addr: ip, Port: port, Role: p.role, ImplicitTLS: implicit})
		}
	}
	if len(ts) > 0 {
		return ts, nil
	}
	subject := p.host.String()
	noun, consequence, fix := "smart host ", ": a connector pointing at it cannot deliver",
		"Check the smart host name in the outbound connector (or --smart-host) against the gateway's documentation."
	if p.role == smtpprobe.RoleMX {
		noun, consequence, fix = "", "", "Check the host name; publish an A or AAAA record for it."
	}
	if len(failed) > 0 {
		return nil, &report.Finding{ID: IDTLSResolve, Status: report.StatusError, Subject: subject,
			Message:  fmt.Sprintf("could not look up the addresses of %s%s: %s", noun, host, strings.Join(failed, "; ")),
			Evidence: map[string]any{"errors": failed}}
	}
	f := &report.Finding{ID: IDTLSResolve, Status: report.StatusFail, Subject: subject,
		Message:     fmt.Sprintf("%s%s has no A or AAAA record%s", noun, host, consequence),
		Remediation: fix,
		Evidence:    map[string]any{"a": string(answers[0].Outcome), "aaaa": string(answers[1].Outcome)}}
	if p.fromProfile != nil {
		f.Message = fmt.Sprintf("the %s profile's smart host %s has no A or AAAA record", p.fromProfile.ID, host)
		f.Remediation = "Confirm the smart host names for your account in the gateway's administration console; profile data can lag behind the vendor's."
		if p.fromProfile.FieldUncertain(profile.KeyOutboundSmartHosts) || p.fromProfile.FieldUncertain(profile.KeySMTPOutboundHosts) {
			// The profile itself marks these names as unconfirmed: the
			// finding is about our data, not the domain.
			f.Status = report.StatusWarn
			f.Message += " (the profile marks its smart-host names as unverified)"
		}
	}
	return nil, f
}

// probeEndpoints probes every target (or, with Skip, lists them) and turns
// the results into findings and report rows. DANE applies to MX hosts only
// (RFC 7672 §2.2: the TLSA base domain is the MX host name); its TLSA
// lookups run beside the probes.
func probeEndpoints(ctx context.Context, r mx.Resolver, cfg SMTPConfig, targets []smtpprobe.Target) probeResult {
	var out probeResult
	if cfg.Skip {
		for _, t := range targets {
			out.endpoints = append(out.endpoints, report.TLSEndpoint{Host: t.Host, Address: t.Addr.String(), Port: portOf(t), Role: string(t.Role), Verdict: "skipped"})
		}
		return out
	}
	opts := smtpprobe.Options{HeloName: cfg.HeloName, Roots: cfg.Roots, Timeouts: cfg.Timeouts, Limiter: cfg.limiter, ExpiryWarn: cfg.ExpiryWarn}

	// One TLSA lookup per (host, port), whatever the number of addresses.
	type tlsaKey struct {
		host string
		port int
	}
	keyOf := func(t smtpprobe.Target) (tlsaKey, bool) {
		if t.Role != smtpprobe.RoleMX || t.Host == "" {
			return tlsaKey{}, false
		}
		return tlsaKey{t.Host, cfg.tlsaPort(t)}, true
	}
	tlsa := map[tlsaKey]*smtpprobe.TLSASet{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		k, ok := keyOf(t)
		if !ok {
			continue
		}
		if _, seen := tlsa[k]; seen {
			continue
		}
		tlsa[k] = nil
		wg.Go(func() {
			s := smtpprobe.LookupTLSA(ctx, r, k.host, k.port)
			mu.Lock()
			tlsa[k] = s
			mu.Unlock()
		})
	}
	results := smtpprobe.ProbeAll(ctx, targets, opts)
	wg.Wait()

	for _, res := range results {
		out.findings = append(out.findings, res.Findings(opts)...)
		ep := endpointOf(res)
		if k, ok := keyOf(res.Target); ok {
			s := tlsa[k]
			f := smtpprobe.DANEFinding(res.Subject, s, res)
			out.findings = append(out.findings, f)
			ep.DANE = daneWord(f)
		}
		out.endpoints = append(out.endpoints, ep)
	}
	return out
}

// daneWord is the DANE outcome DANEFinding put in its evidence.
func daneWord(f report.Finding) string {
	w, _ := f.Evidence["outcome"].(string)
	return w
}

func portOf(t smtpprobe.Target) int {
	if t.Port == 0 {
		return 25
	}
	return t.Port
}

// endpointOf is the report row of one probe.
func endpointOf(r *smtpprobe.Result) report.TLSEndpoint {
	t := r.Target
	ep := report.TLSEndpoint{Host: t.Host, Address: t.Addr.String(), Port: portOf(t), Role: string(t.Role),
		StartTLS: r.StartTLSOffered || t.ImplicitTLS, PhasesMS: r.PhaseMS(), TotalMS: r.TotalMS}
	if r.Banner != nil {
		ep.Banner = firstLine(r.Banner.String())
	}
	if s := r.TLS; s != nil {
		ep.TLSVersion, ep.Cipher = s.Version, s.Cipher
		if len(s.Chain) > 0 {
			leaf := s.Chain[0]
			ep.Certificate, ep.Issuer = leaf.Subject, leaf.Issuer
			ep.NotAfter = leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z")
			days := int(leaf.NotAfter.Sub(s.CheckedAt).Hours() / 24)
			if leaf.NotAfter.Before(s.CheckedAt) {
				days = -int(s.CheckedAt.Sub(leaf.NotAfter).Hours()/24) - 1
			}
			ep.DaysLeft = &days
		}
	}
	ep.Verdict, ep.Reason = r.Verdict()
	return ep
}

func firstLine(s string) string {
	if i := strings.Index(s, " / "); i >= 0 {
		return s[:i]
	}
	return s
}

// TLSConfig is a run of `mfcheck tls`: one host, every address of it.
type TLSConfig struct {
	Host HostPort
	Role smtpprobe.Role
	SMTP SMTPConfig
	// Roots as in Config.
	Roots   *x509.CertPool
	Mode    string
	Trace   bool
	Version string
}

// RunTLS probes one host (all its addresses) and returns the finalized
// report: tls.* findings, DANE for the MX role, and the endpoint rows.
func RunTLS(ctx context.Context, cfg TLSConfig, deps Deps) *report.Report {
	now := deps.clock()
	start := now()
	rep := newReport(strings.TrimSuffix(cfg.Host.Host, "."), cfg.Mode, cfg.Version, start)

	smtpCfg := cfg.SMTP
	smtpCfg.Roots = cfg.Roots
	smtpCfg.TLSAOwnPort = true
	port := cfg.Host.Port
	if port == 0 {
		port = 25
	}
	targets, fs := resolveEndpoints(ctx, deps.DNS, []endpointPlan{{host: cfg.Host, role: cfg.Role}}, port)
	rep.Add(fs...)
	probes := probeEndpoints(ctx, deps.DNS, smtpCfg, targets)
	rep.Add(probes.findings...)
	rep.TLS = probes.endpoints
	return finish(rep, start, now, deps.DNS, cfg.Trace)
}
