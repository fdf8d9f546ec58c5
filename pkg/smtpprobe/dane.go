package smtpprobe

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Resolver is the DNS this package needs; *resolver.Client satisfies it.
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*resolver.Answer, error)
}

// TLSA usages, selectors and matching types (RFC 6698 §2.1, RFC 7218).
const (
	UsagePKIXTA = 0 // unusable for SMTP (RFC 7672 §3.1.3)
	UsagePKIXEE = 1 // unusable for SMTP (RFC 7672 §3.1.3)
	UsageDANETA = 2
	UsageDANEEE = 3

	SelectorCert = 0 // the full certificate (DER)
	SelectorSPKI = 1 // the SubjectPublicKeyInfo (DER)

	MatchExact  = 0
	MatchSHA256 = 1
	MatchSHA512 = 2
)

// TLSARecord is one TLSA record.
type TLSARecord struct {
	Usage        uint8  `json:"usage"`
	Selector     uint8  `json:"selector"`
	MatchingType uint8  `json:"matching_type"`
	Data         string `json:"data"` // hex, lower case
}

// String is the presentation form, "3 1 1 abcd…", with long data cut.
func (t TLSARecord) String() string {
	d := t.Data
	if len(d) > 24 {
		d = d[:24] + "…"
	}
	return fmt.Sprintf("%d %d %d %s", t.Usage, t.Selector, t.MatchingType, d)
}

// TLSASet is the answer for one TLSA name.
type TLSASet struct {
	Name    string       `json:"name"` // "_25._tcp.mx.example."
	Records []TLSARecord `json:"records,omitempty"`
	// AD is the Authenticated Data bit of the answer: only an answer a
	// validating resolver authenticated counts (RFC 7672 §2.2).
	AD      bool             `json:"authenticated"`
	Outcome resolver.Outcome `json:"outcome,omitempty"`
	TTL     uint32           `json:"ttl,omitempty"`
	// Err says why the lookup could not be done (SERVFAIL, timeout).
	Err string `json:"error,omitempty"`
}

// LookupTLSA asks for the TLSA records of host's SMTP service: the name is
// _port._tcp.host (RFC 7672 §2.2, RFC 6698 §3), port 25 when port is 0.
// It never returns nil; a failed lookup is in Err. The TLSA base domain is
// the MX host name as given: following CNAMEs of the host to pick another
// base (RFC 7672 §2.2.2) is left to the caller.
func LookupTLSA(ctx context.Context, r Resolver, host string, port int) *TLSASet {
	if port == 0 {
		port = 25
	}
	name := "_" + strconv.Itoa(port) + "._tcp." + strings.TrimSuffix(host, ".") + "."
	s := &TLSASet{Name: name}
	ans, err := r.Lookup(ctx, name, dns.TypeTLSA)
	if ans != nil {
		s.AD, s.Outcome, s.TTL = ans.AD, ans.Outcome, ans.TTL
	}
	if err != nil {
		s.Err = err.Error()
		return s
	}
	if ans == nil {
		s.Err = "no answer"
		return s
	}
	for _, rr := range ans.Records {
		if t, ok := rr.(*dns.TLSA); ok {
			s.Records = append(s.Records, TLSARecord{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: strings.ToLower(t.Certificate)})
		}
	}
	return s
}

// TLSAMatch is the verdict on one record against a presented chain.
type TLSAMatch struct {
	Record TLSARecord `json:"record"`
	// Usable is false for records an SMTP client must ignore: PKIX usages
	// (RFC 7672 §3.1.3) and unknown usages, selectors or matching types
	// (RFC 6698 §4.1).
	Usable bool   `json:"usable"`
	Reason string `json:"reason,omitempty"`
	// Matched: the association data equals that of CertIndex.
	Matched     bool   `json:"matched"`
	CertIndex   int    `json:"cert_index"` // into the chain; -1 when none
	CertSubject string `json:"cert_subject,omitempty"`
}

// Match compares every record with the chain as presented, leaf first.
// DANE-EE (3) records match the leaf only; DANE-TA (2) records match a
// certificate above the leaf (RFC 7671 §5.2.2: servers must send the trust
// anchor). Match compares data only: for DANE-TA the chain from the leaf to
// the matched anchor, the name and the dates still have to verify, which
// DANEFinding checks (RFC 7672 §3.1.2); DANE-EE ignores all three (RFC 7672
// §3.1.1).
func (s *TLSASet) Match(chain []*x509.Certificate) []TLSAMatch {
	if s == nil {
		return nil
	}
	out := make([]TLSAMatch, 0, len(s.Records))
	for _, rec := range s.Records {
		m := TLSAMatch{Record: rec, CertIndex: -1, Usable: true}
		switch {
		case rec.Usage == UsagePKIXTA || rec.Usage == UsagePKIXEE:
			m.Usable = false
			m.Reason = fmt.Sprintf("usage %d (PKIX-%s) is unusable for SMTP (RFC 7672 §3.1.3)", rec.Usage, map[uint8]string{0: "TA", 1: "EE"}[rec.Usage])
		case rec.Usage > UsageDANEEE:
			m.Usable, m.Reason = false, fmt.Sprintf("unknown usage %d (RFC 6698 §4.1)", rec.Usage)
		case rec.Selector > SelectorSPKI:
			m.Usable, m.Reason = false, fmt.Sprintf("unknown selector %d (RFC 6698 §4.1)", rec.Selector)
		case rec.MatchingType > MatchSHA512:
			m.Usable, m.Reason = false, fmt.Sprintf("unknown matching type %d (RFC 6698 §4.1)", rec.MatchingType)
		}
		if m.Usable {
			from, to := 0, min(1, len(chain))
			if rec.Usage == UsageDANETA {
				from, to = 1, len(chain)
			}
			for i := from; i < to; i++ {
				if tlsaMatches(rec, chain[i]) {
					m.Matched, m.CertIndex, m.CertSubject = true, i, chain[i].Subject.String()
					break
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// tlsaMatches computes the association data of c for rec's selector and
// matching type (RFC 6698 §2.1.2, §2.1.3) and compares it.
func tlsaMatches(rec TLSARecord, c *x509.Certificate) bool {
	data := c.Raw
	if rec.Selector == SelectorSPKI {
		data = c.RawSubjectPublicKeyInfo
	}
	switch rec.MatchingType {
	case MatchSHA256:
		sum := sha256.Sum256(data)
		data = sum[:]
	case MatchSHA512:
		sum := sha512.Sum512(data)
		data = sum[:]
	}
	want, err := hex.DecodeString(rec.Data)
	return err == nil && subtle.ConstantTimeCompare(want, data) == 1
}

// DANE outcome words, for report.TLSEndpoint.DANE.
const (
	DANENone            = "none"
	DANEValid           = "valid"
	DANEMismatch        = "mismatch"
	DANEUnauthenticated = "unauthenticated"
	DANEUnusable        = "unusable"
	DANENoTLS           = "no-tls" // usable TLSA records, but no TLS session to match
	DANEError           = "error"
)

// DANEFinding judges the TLSA records of one endpoint against its probe
// (r may be nil when the endpoint was not probed). The outcome word is in
// Evidence["outcome"].
//
// An answer without AD is reported as info, not warn: a sender ignores
// such records (RFC 7672 §2.2), so they change nothing for mail, and AD=0
// is just as often the resolver mfcheck asked (most stub and office
// resolvers do not validate) as an unsigned zone. A warning that is wrong
// in the common case would teach readers to ignore warnings.
func DANEFinding(subject string, s *TLSASet, r *Result) report.Finding {
	f := report.Finding{ID: IDDANE, Subject: subject, Evidence: map[string]any{}}
	outcome := func(o string) { f.Evidence["outcome"] = o }
	if s == nil {
		f.Status, f.Message = report.StatusError, "Could not check DANE: no TLSA lookup was made"
		outcome(DANEError)
		return f
	}
	f.Evidence["tlsa_name"] = s.Name
	f.Evidence["authenticated"] = s.AD
	if s.Err != "" {
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("Could not look up the TLSA records at %s: %s (a DANE sender defers mail to a signed zone it cannot resolve, RFC 7672 §2.2.1)", s.Name, s.Err)
		outcome(DANEError)
		return f
	}
	if len(s.Records) == 0 {
		f.Status = report.StatusInfo
		f.Message = fmt.Sprintf("No DANE: no TLSA records at %s", s.Name)
		outcome(DANENone)
		return f
	}

	var chain []*x509.Certificate
	if r != nil {
		chain = r.PeerCertificates
	}
	matches := s.Match(chain)
	usable, matched := 0, 0
	var valid []string
	var records []map[string]any
	for i := range matches {
		m := &matches[i]
		rec := map[string]any{"record": fmt.Sprintf("%d %d %d %s", m.Record.Usage, m.Record.Selector, m.Record.MatchingType, m.Record.Data), "usable": m.Usable, "matched": m.Matched}
		if m.Usable {
			usable++
		}
		if m.Matched {
			matched++
			rec["cert"] = m.CertSubject
			if why := daneTACheck(m, chain, r); why != "" {
				rec["invalid"] = why
				m.Reason = why
			} else {
				valid = append(valid, m.Record.String())
			}
		}
		if m.Reason != "" {
			rec["reason"] = m.Reason
		}
		records = append(records, rec)
	}
	f.Evidence["records"] = records

	n := fmt.Sprintf("%d TLSA record(s) at %s", len(s.Records), s.Name)
	switch {
	case !s.AD:
		f.Status = report.StatusInfo
		f.Message = fmt.Sprintf("%s, but the answer is not DNSSEC-authenticated (AD=0): senders cannot use them (RFC 7672 §2.2). Either the zone is not signed, or the resolver mfcheck asked does not validate", n)
		f.Remediation = "Sign the zone with DNSSEC (and publish the DS at the parent), or remove the records; to tell which, run mfcheck with --resolver set to a validating resolver."
		outcome(DANEUnauthenticated)
	case usable == 0:
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("%s, none usable for SMTP: DANE senders still insist on TLS but authenticate nothing (RFC 7672 §2.2, §3.1.3)", n)
		f.Remediation = fmt.Sprintf("Publish a DANE-EE record (3 1 1, the SHA-256 of the server's public key) or DANE-TA (2 1 1) at %s, and remove the PKIX (0/1) ones.", s.Name)
		outcome(DANEUnusable)
	case r == nil || r.TLS == nil && couldNotReachTLS(r):
		f.Status = report.StatusError
		why := "the endpoint was not probed"
		if r != nil && r.Err != "" {
			why = r.Err
		} else if r != nil && r.Banner != nil {
			why = "greeting " + r.Banner.String()
		}
		f.Message = fmt.Sprintf("Could not match %s against the server's certificate: %s", n, why)
		outcome(DANEError)
	case r.TLS == nil:
		f.Status = report.StatusFail
		why := "the server does not offer STARTTLS"
		if r.StartTLSOffered {
			why = "the TLS handshake failed: " + trimPhase(r.Err)
		}
		f.Message = fmt.Sprintf("%s require TLS, but %s: DANE senders will not deliver (RFC 7672 §2.2)", n, why)
		f.Remediation = "Make STARTTLS work with the certificate the TLSA records describe, or remove the TLSA records first."
		outcome(DANENoTLS)
	case len(valid) > 0:
		f.Status = report.StatusPass
		f.Message = fmt.Sprintf("DANE: %s; %d match the server's certificate (%s)", n, len(valid), strings.Join(valid, ", "))
		if strings.HasPrefix(valid[0], "3 ") {
			f.Message += "; DANE-EE ignores the certificate's name and dates (RFC 7672 §3.1.1)"
		}
		outcome(DANEValid)
	default:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("DANE mismatch: %s, %d usable, none matches the certificate the server presented (%d matched data but failed the chain or name check): DANE senders defer mail (RFC 7672 §2.2)", n, usable, matched)
		f.Remediation = fmt.Sprintf("Publish a TLSA record for the current certificate at %s (for a key change, publish the new record a few TTLs before switching, RFC 7671 §8.1), or reinstall the certificate the records describe.", s.Name)
		outcome(DANEMismatch)
	}
	return f
}

// daneTACheck verifies what a DANE-TA match still requires (RFC 7672
// §3.1.2): the chain from the leaf to the matched anchor, the host name
// and the dates. It returns "" when satisfied, or for DANE-EE matches.
func daneTACheck(m *TLSAMatch, chain []*x509.Certificate, r *Result) string {
	if m.Record.Usage != UsageDANETA || m.CertIndex < 1 || r == nil {
		return ""
	}
	roots := x509.NewCertPool()
	roots.AddCert(chain[m.CertIndex])
	inter := x509.NewCertPool()
	for _, c := range chain[1:m.CertIndex] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: hostForName(r.Target)}
	if r.TLS != nil {
		opts.CurrentTime = r.TLS.CheckedAt
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return "DANE-TA: the trust anchor matches but the chain to it does not verify: " + err.Error()
	}
	return ""
}

// couldNotReachTLS: the probe stopped before TLS for a reason that says
// nothing about the server's TLS (unreachable, no greeting, a timeout).
func couldNotReachTLS(r *Result) bool {
	switch {
	case r.ErrKind == KindTimeout || r.ErrKind == KindCanceled:
		return true
	case r.ErrPhase == PhaseConnect || r.ErrPhase == PhaseBanner || r.ErrPhase == PhaseEHLO || r.ErrPhase == PhaseHELO:
		return true
	case r.Banner != nil && r.Banner.Code != 220:
		return true
	}
	return false
}
