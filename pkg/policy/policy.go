package policy

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Finding IDs of this package; docs/checks.md
// describes each.
const (
	IDDMARCPresent          = "dmarc.present"
	IDDMARCPolicy           = "dmarc.policy"
	IDDMARCRUAAuthorization = "dmarc.rua-authorization"
	IDMTASTSRecord          = "mtasts.record"
	IDMTASTSPolicy          = "mtasts.policy"
	IDMTASTSMXMatch         = "mtasts.mx-match"
	IDTLSRPTPresent         = "tlsrpt.present"
	IDDKIMSelectors         = "dkim.selectors"
)

// Modes, the same strings as the mx package's (not imported, to keep the
// packages independent): readiness is before the MX moves to the gateway,
// smoke right after, health any time later.
const (
	ModeReadiness = "readiness"
	ModeSmoke     = "smoke"
	ModeHealth    = "health"
)

// DefaultFetchTimeout bounds the MTA-STS policy fetch (connect, TLS, request
// and body) when Options.FetchTimeout is zero. RFC 8461 §3.3 suggests senders
// allow 60 seconds; a diagnosis that waits a third of that has already found
// a host that many senders will give up on at busy times, and the root
// context's deadline still wins when it is earlier.
const DefaultFetchTimeout = 20 * time.Second

// Resolver is what this package needs from DNS; *resolver.Client satisfies
// it. Lookup follows CNAMEs and returns a nil error for NXDOMAIN and NODATA;
// an error means the question could not be answered.
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*resolver.Answer, error)
}

// Options say what Analyze checks besides the domain's own records.
type Options struct {
	// Mode is ModeReadiness, ModeSmoke or ModeHealth. In readiness mode the
	// MTA-STS policy is also checked against the gateway profile's MX hosts,
	// which the MX does not point at yet.
	Mode string
	// Profile is the gateway; nil skips the gateway questions. Its dkim
	// patterns name DKIM selectors to check.
	Profile *profile.Profile
	// Mailbox is the mail platform behind the gateway (Microsoft 365, Google
	// Workspace); nil when unknown. Only its dkim patterns are used: they
	// name the selectors the platform signs with (selector1, selector2).
	Mailbox *profile.Profile
	// MailboxFunc, when set, is called by the DKIM part instead of reading
	// Mailbox. It may block until the caller knows the platform (from the
	// MX and SPF analyses), so DMARC, MTA-STS and TLS-RPT need not wait.
	MailboxFunc func() *profile.Profile
	// Selectors are DKIM selectors the user named (--dkim-selector).
	Selectors []string
	// MXHosts are the domain's MX host names, for MTA-STS matching; nil
	// means Analyze looks the MX up through the resolver itself.
	MXHosts []string
	// Roots verify the MTA-STS policy host's certificate; nil means the
	// system roots.
	Roots *x509.CertPool
	// HTTPSPort is the port of the policy host; 0 means 443.
	HTTPSPort int
	// Dial opens the TCP connection to the policy host (an address that
	// came from the resolver); nil means a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// FetchTimeout bounds the policy fetch; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
}

// Result is what Analyze found: the data of each part, and the findings.
type Result struct {
	Domain   string           `json:"domain"`
	DMARC    *DMARC           `json:"dmarc,omitempty"`
	MTASTS   *MTASTS          `json:"mta_sts,omitempty"`
	TLSRPT   *TLSRPT          `json:"tls_rpt,omitempty"`
	DKIM     []DKIMSelector   `json:"dkim,omitempty"`
	Findings []report.Finding `json:"findings"`
}

// Analyze checks domain's DMARC, MTA-STS, TLS-RPT and DKIM selector records
// through r. The four parts run concurrently; the MTA-STS policy fetch
// starts as soon as its TXT record is known. It never fails: what could not
// be checked is reported as findings with status error.
func Analyze(ctx context.Context, r Resolver, domain string, o Options) *Result {
	domain = normalizeDomain(domain)
	res := &Result{Domain: domain}
	var (
		wg                        sync.WaitGroup
		dmarcF, stsF, rptF, dkimF []report.Finding
		tlsrptRaw                 *TLSRPT
	)
	wg.Add(4)
	go func() { defer wg.Done(); res.DMARC, dmarcF = analyzeDMARC(ctx, r, domain) }()
	go func() { defer wg.Done(); res.MTASTS, stsF = analyzeMTASTS(ctx, r, domain, o) }()
	go func() { defer wg.Done(); tlsrptRaw = lookupTLSRPT(ctx, r, domain) }()
	go func() { defer wg.Done(); res.DKIM, dkimF = analyzeDKIM(ctx, r, domain, o) }()
	wg.Wait()
	// The TLS-RPT finding depends on the MTA-STS mode (a testing-mode policy
	// without reports tells nobody anything), so it is judged last.
	res.TLSRPT = tlsrptRaw
	rptF = tlsrptFindings(domain, tlsrptRaw, res.MTASTS)

	for _, fs := range [][]report.Finding{dmarcF, stsF, rptF, dkimF} {
		res.Findings = append(res.Findings, fs...)
	}
	if res.Findings == nil {
		res.Findings = []report.Finding{}
	}
	return res
}

func normalizeDomain(d string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
}

// txtResult is one TXT question, the strings of each record joined.
type txtResult struct {
	Name    string
	Records []string
	CNAMEs  []string
	Outcome resolver.Outcome
	Err     error
}

// lookupTXT asks name TXT. Each record's character-strings are concatenated
// without separators, as every TXT-based policy here specifies (RFC 7489
// §6.6.3 via RFC 6376 §3.6.2.2, RFC 8461 §3.1, RFC 8460 §3).
func lookupTXT(ctx context.Context, r Resolver, name string) txtResult {
	out := txtResult{Name: normalizeDomain(name)}
	ans, err := r.Lookup(ctx, name, dns.TypeTXT)
	if ans != nil {
		out.Outcome = ans.Outcome
		out.CNAMEs = trimDots(ans.CNAMEs)
		for _, rr := range ans.Records {
			if t, ok := rr.(*dns.TXT); ok {
				out.Records = append(out.Records, strings.Join(t.Txt, ""))
			}
		}
	}
	out.Err = err
	if err == nil && ans == nil {
		out.Err = errors.New("resolver returned no answer")
	}
	return out
}

// badName reports an error that comes from the name itself (it cannot be put
// on the wire), not from the network: a property of the record that named it.
func badName(err error) bool { return errors.Is(err, resolver.ErrBadName) }

func trimDots(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSuffix(n, ".")
	}
	return out
}

// abbreviate shortens s for a message (evidence keeps the whole value).
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// quoteTXT renders a TXT value the way it goes into a zone file, split into
// 255-octet character-strings (RFC 1035 §3.3.14).
func quoteTXT(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	parts = append(parts, `"`+s+`"`)
	return strings.Join(parts, " ")
}

// zoneLine is a record to publish, as a zone-file line.
func zoneLine(name, typ, value string) string {
	return name + ". IN " + typ + " " + value
}
