package policy

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// ErrDKIMKey: the key record is invalid (RFC 6376 §3.6.1).
var ErrDKIMKey = errors.New("policy: invalid DKIM key record")

// RSA key sizes of RFC 8301 §3.2: verifiers MUST NOT accept signatures
// with keys under 1024 bits; signers SHOULD use at least 2048.
const (
	MinRSABits         = 1024
	RecommendedRSABits = 2048
)

// DKIMKey is a parsed DKIM key record (RFC 6376 §3.6.1). go-msgauth's dkim
// package parses key records only inside its verifier (unexported), so this
// is a small parser of our own on the shared tag-list reader.
type DKIMKey struct {
	Tags []Tag `json:"tags"`
	// KeyType is k: "rsa" (the default) or "ed25519" (RFC 8463).
	KeyType string `json:"k"`
	// Bits is the RSA modulus size, or 256 for Ed25519.
	Bits int `json:"bits,omitempty"`
	// Revoked is set for an empty p= (§3.6.1: the key has been revoked).
	Revoked bool `json:"revoked,omitempty"`
	// Testing is set for t=y: verifiers treat signatures like unsigned mail.
	Testing bool `json:"testing,omitempty"`
}

// ParseDKIMKey parses a key record: a tag list whose v=, if present, is
// DKIM1 and comes first; k= rsa (default) or ed25519; p= the base64 public
// key (SubjectPublicKeyInfo, or RSAPublicKey as RFC 6376 erratum 3017
// allows), empty when revoked. It never panics.
func ParseDKIMKey(txt string) (*DKIMKey, error) {
	tags, err := parseTagList(txt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDKIMKey, err)
	}
	k := &DKIMKey{Tags: tags, KeyType: "rsa"}
	for i, t := range tags {
		if t.Name == "v" && (i != 0 || t.Value != "DKIM1") {
			return nil, fmt.Errorf("%w: v=%s must be v=DKIM1 and the first tag", ErrDKIMKey, abbreviate(t.Value, 20))
		}
	}
	if v, ok := tagValue(tags, "k"); ok {
		k.KeyType = strings.ToLower(v)
	}
	if v, ok := tagValue(tags, "t"); ok {
		for _, fl := range strings.Split(v, ":") {
			if strings.TrimSpace(fl) == "y" {
				k.Testing = true
			}
		}
	}
	p, ok := tagValue(tags, "p")
	if !ok {
		return nil, fmt.Errorf("%w: no p= tag (the public key)", ErrDKIMKey)
	}
	p = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, p)
	if p == "" {
		k.Revoked = true
		return k, nil
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		if der, err = base64.RawStdEncoding.DecodeString(p); err != nil {
			return nil, fmt.Errorf("%w: p= is not base64: %v", ErrDKIMKey, err)
		}
	}
	switch k.KeyType {
	case "rsa":
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			if pub, err = x509.ParsePKCS1PublicKey(der); err != nil {
				return nil, fmt.Errorf("%w: p= is not an RSA public key: %v", ErrDKIMKey, err)
			}
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: k=rsa but p= holds a %T", ErrDKIMKey, pub)
		}
		k.Bits = rk.N.BitLen()
	case "ed25519":
		// RFC 8463 §4.2: the raw 32-octet key, not SubjectPublicKeyInfo.
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: an Ed25519 key is %d octets, p= has %d", ErrDKIMKey, ed25519.PublicKeySize, len(der))
		}
		k.Bits = 256
	default:
		return nil, fmt.Errorf("%w: unknown key type k=%s", ErrDKIMKey, abbreviate(k.KeyType, 20))
	}
	return k, nil
}

// DKIMSelector is what one selector's key record showed.
type DKIMSelector struct {
	Selector string `json:"selector"`
	Name     string `json:"name"`
	// Sources say who named the selector: "user", or "profile:<id>".
	Sources []string `json:"sources"`
	// Patterns are the profile's record patterns for this selector.
	Patterns []string `json:"patterns,omitempty"`
	CNAMEs   []string `json:"cnames,omitempty"`
	Outcome  string   `json:"outcome,omitempty"`
	TXT      []string `json:"txt,omitempty"`
	Key      *DKIMKey `json:"key,omitempty"`
	// ParseError says why the record is invalid; Err why the lookup failed.
	ParseError string `json:"parse_error,omitempty"`
	Err        string `json:"error,omitempty"`

	user bool
}

// ProfileSelectors are the DKIM selectors named by a profile's dkim
// patterns: the name before "._domainkey" in each ("selector1._domainkey
// CNAME ..." gives selector1). Patterns that name no selector of the
// customer's domain (a service's own d= signature) give nothing.
func ProfileSelectors(p *profile.Profile) map[string][]string {
	out := map[string][]string{}
	if p == nil {
		return out
	}
	for _, pat := range p.DKIM {
		for _, tok := range strings.Fields(pat) {
			sel, ok := strings.CutSuffix(strings.ToLower(tok), "._domainkey")
			if !ok || !validSelector(sel) {
				continue
			}
			out[sel] = append(out[sel], pat)
			break
		}
	}
	return out
}

// validSelector is RFC 6376 §3.1: sub-domain *("." sub-domain), with the
// underscore that real selectors use.
func validSelector(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func analyzeDKIM(ctx context.Context, r Resolver, domain string, o Options) ([]DKIMSelector, []report.Finding) {
	byName := map[string]*DKIMSelector{}
	var order []string
	add := func(sel, source string, patterns []string, user bool) {
		sel = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(sel), "."))
		sel = strings.TrimSuffix(sel, "._domainkey")
		s := byName[sel]
		if s == nil {
			s = &DKIMSelector{Selector: sel, Name: sel + "._domainkey." + domain}
			byName[sel] = s
			order = append(order, sel)
		}
		if !contains(s.Sources, source) {
			s.Sources = append(s.Sources, source)
		}
		s.Patterns = append(s.Patterns, patterns...)
		s.user = s.user || user
	}
	mailbox := o.Mailbox
	if o.MailboxFunc != nil {
		mailbox = o.MailboxFunc()
	}
	for _, p := range []*profile.Profile{mailbox, o.Profile} {
		if p == nil {
			continue
		}
		sels := ProfileSelectors(p)
		// Keep the profile's order (selector1 before selector2).
		for _, pat := range p.DKIM {
			for sel, pats := range sels {
				if len(pats) > 0 && pats[0] == pat {
					add(sel, "profile:"+p.ID, pats, false)
				}
			}
		}
	}
	for _, s := range o.Selectors {
		if strings.TrimSpace(s) != "" {
			add(s, "user", nil, true)
		}
	}
	if len(order) == 0 {
		return nil, []report.Finding{{ID: IDDKIMSelectors, Status: report.StatusInfo, Subject: domain,
			Message:     "No DKIM selector to check: none was given (--dkim-selector) and the profiles name none",
			Remediation: "Give the selectors the domain signs with (the s= of a DKIM-Signature header of a sent message) with --dkim-selector."}}
	}
	sels := make([]DKIMSelector, len(order))
	var wg sync.WaitGroup
	for i, name := range order {
		s := byName[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			checkSelector(ctx, r, s)
			sels[i] = *s
		}()
	}
	wg.Wait()
	out := make([]report.Finding, len(sels))
	for i := range sels {
		out[i] = selectorFinding(&sels[i])
	}
	return sels, out
}

func checkSelector(ctx context.Context, r Resolver, s *DKIMSelector) {
	if !validSelector(s.Selector) {
		s.Err = fmt.Sprintf("%q is not a valid selector (RFC 6376 §3.1)", s.Selector)
		return
	}
	tr := lookupTXT(ctx, r, s.Name)
	s.CNAMEs, s.TXT, s.Outcome = tr.CNAMEs, tr.Records, string(tr.Outcome)
	if tr.Err != nil {
		s.Err = tr.Err.Error()
		return
	}
	if len(tr.Records) != 1 {
		return
	}
	k, err := ParseDKIMKey(tr.Records[0])
	s.Key = k
	if err != nil {
		s.ParseError = err.Error()
	}
}

// cnameMatchesProfile reports whether the alias chain ends where one of the
// profile patterns ("selector1._domainkey CNAME <target pattern>") says.
func cnameMatchesProfile(s *DKIMSelector) (checked, ok bool) {
	if len(s.CNAMEs) == 0 {
		return false, false
	}
	for _, pat := range s.Patterns {
		f := strings.Fields(pat)
		for i := 0; i+1 < len(f); i++ {
			if strings.EqualFold(f[i], "CNAME") {
				checked = true
				if profile.Match(f[i+1], s.CNAMEs[0]) {
					return true, true
				}
			}
		}
	}
	return checked, false
}

func selectorFinding(s *DKIMSelector) report.Finding {
	ev := map[string]any{"name": s.Name, "sources": s.Sources, "outcome": s.Outcome}
	if len(s.CNAMEs) > 0 {
		ev["cname_chain"] = s.CNAMEs
	}
	if len(s.TXT) > 0 {
		ev["txt"] = s.TXT
	}
	if len(s.Patterns) > 0 {
		ev["profile_patterns"] = s.Patterns
	}
	if checked, ok := cnameMatchesProfile(s); checked {
		ev["cname_matches_profile"] = ok
	}
	f := report.Finding{ID: IDDKIMSelectors, Subject: s.Name, Evidence: ev}
	via := ""
	if len(s.CNAMEs) > 0 {
		via = " (via CNAME " + strings.Join(s.CNAMEs, " → ") + ")"
	}
	// A selector the user named must exist; one a profile names is what
	// the platform signs with once DKIM is enabled for the domain, so its
	// absence is a warning: mail is then signed for the platform's own
	// domain (onmicrosoft.com), which does not align for DMARC.
	missing := report.StatusWarn
	if s.user {
		missing = report.StatusFail
	}
	switch {
	case s.Err != "" && strings.Contains(s.Err, "not a valid selector"):
		f.Status = report.StatusFail
		f.Message = s.Err
	case s.Err != "":
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("Could not look up the DKIM key %s: %s", s.Name, s.Err)
	case len(s.TXT) == 0:
		f.Status = missing
		if len(s.CNAMEs) > 0 {
			f.Message = fmt.Sprintf("%s is an alias of %s, which has no TXT record (%s): the key is not published there, so signatures with selector %s fail", s.Name, s.CNAMEs[len(s.CNAMEs)-1], s.Outcome, s.Selector)
			f.Remediation = "Enable DKIM for the domain on the platform that owns " + s.CNAMEs[len(s.CNAMEs)-1] + " (in Microsoft 365: Defender portal, Email authentication settings, DKIM), which publishes the key behind the alias."
		} else {
			f.Message = fmt.Sprintf("No DKIM key at %s (%s)", s.Name, s.Outcome)
			f.Remediation = "Publish the key record the signing platform gives for selector " + s.Selector
			if len(s.Patterns) > 0 {
				f.Remediation += ", of the form " + strings.Join(s.Patterns, " or ")
			}
			f.Remediation += "."
		}
	case len(s.TXT) > 1:
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("%s has %d TXT records%s: verifiers treat that as no key (RFC 6376 §3.6.2.2 leaves it undefined)", s.Name, len(s.TXT), via)
		f.Remediation = "Keep one key record at " + s.Name + "."
	case s.ParseError != "":
		f.Status = report.StatusFail
		f.Message = fmt.Sprintf("The DKIM key record at %s%s is invalid (%s): signatures with selector %s fail", s.Name, via, strings.TrimPrefix(s.ParseError, ErrDKIMKey.Error()+": "), s.Selector)
		f.Remediation = "Publish the record exactly as the signing platform gives it: v=DKIM1; k=rsa; p=<base64 key>."
	case s.Key.Revoked:
		f.Status = report.StatusWarn
		f.Message = fmt.Sprintf("The DKIM key at %s%s is revoked (empty p=): signatures with selector %s fail (RFC 6376 §3.6.1)", s.Name, via, s.Selector)
		f.Remediation = "Make sure nothing signs with selector " + s.Selector + " any more, or publish its current key."
	default:
		ev["key_type"], ev["bits"] = s.Key.KeyType, s.Key.Bits
		desc := fmt.Sprintf("%s %d-bit", strings.ToUpper(s.Key.KeyType), s.Key.Bits)
		if s.Key.KeyType == "ed25519" {
			desc = "Ed25519"
		}
		test := ""
		if s.Key.Testing {
			test = "; t=y marks it as testing, so verifiers may treat its signatures like unsigned mail (RFC 6376 §3.6.1)"
		}
		switch {
		case s.Key.KeyType == "rsa" && s.Key.Bits < MinRSABits:
			f.Status = report.StatusFail
			f.Message = fmt.Sprintf("The DKIM key at %s%s is %s: verifiers MUST NOT accept signatures with RSA keys under %d bits (RFC 8301 §3.2)%s", s.Name, via, desc, MinRSABits, test)
			f.Remediation = fmt.Sprintf("Generate a %d-bit RSA key on the signing platform, publish it under a new selector and switch signing to it.", RecommendedRSABits)
		case s.Key.KeyType == "rsa" && s.Key.Bits < RecommendedRSABits:
			f.Status = report.StatusWarn
			f.Message = fmt.Sprintf("The DKIM key at %s%s is %s: signers SHOULD use at least %d bits (RFC 8301 §3.2)%s", s.Name, via, desc, RecommendedRSABits, test)
			f.Remediation = fmt.Sprintf("Rotate to a %d-bit RSA key (in Microsoft 365: Rotate DKIM keys, or Rotate-DkimSigningConfig -KeySize 2048).", RecommendedRSABits)
		default:
			f.Status = report.StatusPass
			f.Message = fmt.Sprintf("DKIM key at %s%s: %s%s", s.Name, via, desc, test)
		}
	}
	return f
}
