package msgtrace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// MaxDKIMSignatures bounds the signatures verified per message (each costs
// a key lookup and a hash of the body).
const MaxDKIMSignatures = 8

// DKIM results, kept apart because each has a different fix.
const (
	DKIMPass = "pass"
	// DKIMBroken: the key was found but the signature does not verify:
	// the body or a signed header changed after signing.
	DKIMBroken = "broken"
	// DKIMKeyNotFound: no TXT record at <selector>._domainkey.<domain>
	// (NXDOMAIN or NODATA).
	DKIMKeyNotFound = "key-not-found"
	// DKIMKeyInvalid: a record is there but is not a usable key (revoked,
	// syntax, too short, wrong algorithm, several records).
	DKIMKeyInvalid = "key-invalid"
	// DKIMInvalid: the signature itself is malformed, expired or uses a
	// forbidden algorithm (rsa-sha1, RFC 8301 §3.1).
	DKIMInvalid = "invalid"
	// DKIMDNSError: the key lookup failed (SERVFAIL, timeout): not checked.
	DKIMDNSError = "dns-error"
	// DKIMNotVerified: no resolver, or over MaxDKIMSignatures.
	DKIMNotVerified = "not-verified"
)

// DKIMCheck is the verification of one DKIM-Signature field.
type DKIMCheck struct {
	Domain    string `json:"domain"`
	Selector  string `json:"selector"`
	Algorithm string `json:"algorithm,omitempty"`
	// KeyName is <selector>._domainkey.<domain>, the TXT name asked.
	KeyName  string `json:"key_name,omitempty"`
	Verified bool   `json:"verified"`
	Result   string `json:"result"`
	Error    string `json:"error,omitempty"`
	// KeyOutcome is the key lookup's DNS outcome (ok, nxdomain, nodata,
	// servfail, timeout, ...); KeyRecord the TXT it returned.
	KeyOutcome string `json:"key_outcome,omitempty"`
	KeyRecord  string `json:"key_record,omitempty"`
	// Aligned is relaxed alignment of d= with the From domain (RFC 7489
	// §3.1.1): the same organizational domain.
	Aligned bool `json:"aligned"`
}

// keyLookup is what the TXT lookup for one key name returned.
type keyLookup struct {
	outcome string
	txt     []string
	err     error
	temp    bool
}

// tempDNSError is a failed lookup go-msgauth must treat as a temporary
// failure: it tests for net.Error with Temporary() (dkim/query.go), and
// anything else becomes "no key for signature", which would turn a
// SERVFAIL into a failing signature.
type tempDNSError struct{ err error }

func (e tempDNSError) Error() string   { return e.err.Error() }
func (e tempDNSError) Timeout() bool   { return errors.Is(e.err, resolver.ErrTimeout) }
func (e tempDNSError) Temporary() bool { return true }
func (e tempDNSError) Unwrap() error   { return e.err }

// sigTags reads the d=, s= and a= tags of a DKIM-Signature value (RFC 6376
// §3.5), white space removed from each.
func sigTags(v string) (d, s, a string) {
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		val = strings.Join(strings.Fields(val), "")
		switch strings.TrimSpace(k) {
		case "d":
			d = strings.ToLower(val)
		case "s":
			s = val
		case "a":
			a = val
		}
	}
	return d, s, a
}

// verifyDKIM verifies every DKIM signature of raw with go-msgauth, looking
// keys up through r, and returns one check and one trace.dkim finding per
// signature (one info finding when there is none).
func verifyDKIM(ctx context.Context, raw []byte, m *Message, r Resolver, from, subject string) ([]DKIMCheck, []report.Finding) {
	sigs := m.Values("DKIM-Signature")
	fromDom := fromDomain(from)
	if len(sigs) == 0 {
		return nil, []report.Finding{{ID: IDDKIM, Status: report.StatusInfo, Subject: subject,
			Message:     "The message has no DKIM signature",
			Remediation: fmt.Sprintf("Sign outgoing mail with DKIM for %s (in the mail platform, or at the gateway if it rewrites messages); DMARC then passes on DKIM even where SPF cannot.", orUnknown(fromDom))}}
	}
	checks := make([]DKIMCheck, len(sigs))
	for i, v := range sigs {
		d, s, a := sigTags(v)
		checks[i] = DKIMCheck{Domain: d, Selector: s, Algorithm: a, Result: DKIMNotVerified, Aligned: aligned(d, fromDom)}
		if d != "" && s != "" {
			checks[i].KeyName = s + "._domainkey." + d
		}
	}
	switch {
	case r == nil:
		return checks, dkimFindings(checks, subject, "no resolver was given, so the signatures were not verified")
	case len(raw) > MaxMessageBytes:
		return checks, dkimFindings(checks, subject, fmt.Sprintf("the message is %d bytes, over the %d verified", len(raw), MaxMessageBytes))
	}

	var mu sync.Mutex
	lookups := map[string]*keyLookup{}
	lookup := func(name string) ([]string, error) {
		l := &keyLookup{}
		ans, err := r.Lookup(ctx, name, dns.TypeTXT)
		if ans != nil {
			l.outcome = string(ans.Outcome)
			for _, rr := range ans.Records {
				if t, ok := rr.(*dns.TXT); ok {
					// A TXT record is a list of strings to join
					// (RFC 6376 §3.6.2.2).
					l.txt = append(l.txt, strings.Join(t.Txt, ""))
				}
			}
		}
		switch {
		case err != nil && errors.Is(err, resolver.ErrBadName):
			l.err = fmt.Errorf("key name %s is not a valid domain name: %w", name, err)
		case err != nil:
			l.err, l.temp = tempDNSError{err}, true
		case ans == nil:
			l.err, l.temp = tempDNSError{errors.New("resolver returned no answer")}, true
		case ans.Outcome == resolver.OutcomeNXDomain || ans.Outcome == resolver.OutcomeNoData || len(l.txt) == 0:
			l.err = fmt.Errorf("no TXT record at %s (%s)", name, ans.Outcome)
		case ans.Outcome != resolver.OutcomeOK:
			l.err, l.temp = tempDNSError{fmt.Errorf("lookup of %s: %s", name, ans.Outcome)}, true
		}
		mu.Lock()
		lookups[strings.ToLower(strings.TrimSuffix(name, "."))] = l
		mu.Unlock()
		return l.txt, l.err
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: MaxDKIMSignatures})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) && len(verifs) == 0 {
		for i := range checks {
			checks[i].Result, checks[i].Error = DKIMInvalid, err.Error()
		}
		return checks, dkimFindings(checks, subject, "")
	}
	if len(verifs) > len(checks) {
		verifs = verifs[:len(checks)] // go-msgauth saw the same fields; never more
	}
	for i, v := range verifs {
		c := &checks[i]
		if v.Domain != "" {
			c.Domain = strings.ToLower(v.Domain)
			c.Aligned = aligned(c.Domain, fromDom)
		}
		l := lookups[strings.ToLower(c.KeyName)]
		if l != nil {
			c.KeyOutcome = l.outcome
			if len(l.txt) > 0 {
				c.KeyRecord = abbreviate(strings.Join(l.txt, " | "), 1024)
			}
		}
		c.Result, c.Error = classifyDKIM(v.Err, l)
		c.Verified = c.Result == DKIMPass
	}
	return checks, dkimFindings(checks, subject, "")
}

// classifyDKIM sorts a go-msgauth verification error into our results. The
// lookup record decides the DNS cases (go-msgauth's own messages do not
// tell NXDOMAIN from a bad name); the rest follows go-msgauth's error
// classes: temporary, permanent (the signature or key cannot be used), and
// plain failure (the hash or signature does not match).
func classifyDKIM(err error, l *keyLookup) (result, msg string) {
	switch {
	case err == nil:
		return DKIMPass, ""
	case l != nil && l.temp:
		return DKIMDNSError, l.err.Error()
	case l != nil && l.err != nil:
		return DKIMKeyNotFound, l.err.Error()
	case dkim.IsTempFail(err):
		return DKIMDNSError, err.Error()
	case dkim.IsPermFail(err) && l != nil:
		// The key was fetched: a permanent failure after that is about
		// the key (revoked, syntax, size, algorithm), except the few
		// checks go-msgauth makes on the signature after the lookup.
		if strings.Contains(err.Error(), "malformed") || strings.Contains(err.Error(), "hash algorithm") {
			return DKIMInvalid, err.Error()
		}
		return DKIMKeyInvalid, err.Error()
	case dkim.IsPermFail(err):
		return DKIMInvalid, err.Error()
	default:
		return DKIMBroken, err.Error()
	}
}

func aligned(d, fromDom string) bool {
	if d == "" || fromDom == "" {
		return false
	}
	od, err1 := publicsuffix.EffectiveTLDPlusOne(d)
	of, err2 := publicsuffix.EffectiveTLDPlusOne(fromDom)
	if err1 != nil || err2 != nil {
		return strings.EqualFold(d, fromDom)
	}
	return strings.EqualFold(od, of)
}

// dkimFindings turns the checks into trace.dkim findings. notVerified, when
// set, says why no signature was verified (one info finding).
func dkimFindings(checks []DKIMCheck, subject, notVerified string) []report.Finding {
	if notVerified != "" {
		return []report.Finding{{ID: IDDKIM, Status: report.StatusInfo, Subject: subject,
			Message:  fmt.Sprintf("%d DKIM signatures, not verified: %s", len(checks), notVerified),
			Evidence: map[string]any{"signatures": checks}}}
	}
	out := make([]report.Finding, 0, len(checks))
	for _, c := range checks {
		subj := fmt.Sprintf("d=%s s=%s", orUnknown(c.Domain), orUnknown(c.Selector))
		f := report.Finding{ID: IDDKIM, Subject: subj, Evidence: map[string]any{"signature": c}}
		align := ""
		if !c.Aligned {
			align = " (not aligned with the From domain, so it does not count for DMARC)"
		}
		switch c.Result {
		case DKIMPass:
			f.Status = report.StatusPass
			f.Message = fmt.Sprintf("The DKIM signature of %s (selector %s) verifies%s", c.Domain, c.Selector, align)
		case DKIMBroken:
			f.Status = report.StatusFail
			what := "a signed header field (often the Subject, tagged by a gateway) changed after signing"
			if strings.Contains(c.Error, "body hash") {
				what = "the body changed after signing (a disclaimer, a banner, rewritten links)"
			}
			f.Message = fmt.Sprintf("The DKIM signature of %s (selector %s) is broken: %s; %s", c.Domain, c.Selector, c.Error, what)
			f.Remediation = "Find the hop that modifies the message (the gateway's disclaimers, banners or URL rewriting, a list server) and either sign after it (DKIM signing at the gateway) or stop the change; receivers that trust the gateway can use its ARC seal instead."
		case DKIMKeyNotFound:
			f.Status = report.StatusFail
			f.Message = fmt.Sprintf("The DKIM key for %s (selector %s) is not in DNS: %s", c.Domain, c.Selector, c.Error)
			f.Remediation = fmt.Sprintf("Publish the selector's public key at %s (for Microsoft 365 the selector1/selector2 CNAMEs), or fix the signer's selector.", orUnknown(c.KeyName))
		case DKIMKeyInvalid:
			f.Status = report.StatusFail
			f.Message = fmt.Sprintf("The DKIM key record at %s is not usable: %s", orUnknown(c.KeyName), c.Error)
			f.Remediation = "Publish one valid key record (v=DKIM1; k=rsa or ed25519; p=<base64>, RSA at least 1024 bits, 2048 recommended, RFC 8301) at that name; mfcheck check --dkim-selector reports on it."
		case DKIMInvalid:
			f.Status = report.StatusFail
			f.Message = fmt.Sprintf("The DKIM signature of %s is invalid: %s", orUnknown(c.Domain), c.Error)
			f.Remediation = "Fix the signer: required tags (RFC 6376 §3.5), From among the signed fields, rsa-sha256 or ed25519-sha256 (rsa-sha1 is forbidden by RFC 8301), no expired x=."
		case DKIMDNSError:
			f.Status = report.StatusError
			f.Message = fmt.Sprintf("Could not look up the DKIM key at %s: %s", orUnknown(c.KeyName), c.Error)
		default:
			f.Status = report.StatusInfo
			f.Message = fmt.Sprintf("The DKIM signature of %s was not verified (more than %d signatures)", orUnknown(c.Domain), MaxDKIMSignatures)
		}
		out = append(out, f)
	}
	return out
}
