package policy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
)

// DMARC parse errors. ParseDMARC wraps one of them with %w.
var (
	// ErrNotDMARC: the text does not start with v=DMARC1, so receivers
	// discard it during policy discovery (RFC 7489 §6.6.3 steps 2 and 4).
	ErrNotDMARC = errors.New("policy: not a DMARC record")
	// ErrDMARCSyntax: a DMARC record with an invalid tag list or value.
	ErrDMARCSyntax = errors.New("policy: DMARC syntax error")
)

// DMARCRecord is a parsed DMARC record (RFC 7489 §6.3).
type DMARCRecord struct {
	// Raw is the text as published; Tags are its tags in order.
	Raw  string `json:"raw"`
	Tags []Tag  `json:"tags"`
	// Policy and SubdomainPolicy are "none", "quarantine" or "reject", in
	// lower case; "" when absent or invalid (sp absent means p applies to
	// subdomains too, §6.3).
	Policy          string `json:"p,omitempty"`
	SubdomainPolicy string `json:"sp,omitempty"`
	// Percent is pct; nil when absent, which means 100 (§6.3).
	Percent *int `json:"pct,omitempty"`
	// ADKIM and ASPF are "r" or "s" ("r" when absent).
	ADKIM string `json:"adkim"`
	ASPF  string `json:"aspf"`
	// RUA and RUF are the aggregate and failure report URIs.
	RUA []ReportURI `json:"rua,omitempty"`
	RUF []ReportURI `json:"ruf,omitempty"`
}

// ReportURI is one entry of a rua or ruf list (RFC 7489 §6.4:
// dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]).
type ReportURI struct {
	URI    string `json:"uri"`
	Scheme string `json:"scheme,omitempty"`
	// Address is the mailbox of a mailto: URI; Host is the domain that
	// receives the reports (the mailbox's domain, or an https URI's host).
	Address string `json:"address,omitempty"`
	Host    string `json:"host,omitempty"`
	// MaxSize is the size limit after "!", as written ("10m").
	MaxSize string `json:"max_size,omitempty"`
	// Err says why the URI is unusable; receivers skip such a URI.
	Err string `json:"error,omitempty"`
}

// EffectivePercent is pct, or 100 when absent.
func (r *DMARCRecord) EffectivePercent() int {
	if r.Percent == nil {
		return 100
	}
	return *r.Percent
}

// String is the canonical form of the record: its tags joined by "; ".
// Parsing it gives back the same tags and values.
func (r *DMARCRecord) String() string { return formatTags(r.Tags) }

// HasValidRUA reports whether some rua URI is syntactically valid, the
// condition of RFC 7489 §6.6.3 step 6.
func (r *DMARCRecord) HasValidRUA() bool {
	for _, u := range r.RUA {
		if u.Err == "" {
			return true
		}
	}
	return false
}

// keywordTags are the tags whose values are ABNF string literals, which RFC
// 5234 §2.3 makes case-insensitive ("p=Reject" is valid).
var keywordTags = map[string]bool{"p": true, "sp": true, "adkim": true, "aspf": true, "fo": true, "rf": true}

// ParseDMARC parses a DMARC record. It is built on go-msgauth's dmarc.Parse
// for the tag semantics, with own handling where that parser loses what
// mfcheck must report or is laxer or stricter than RFC 7489:
//
//   - msgauth does not check that v=DMARC1 is the first tag (§6.3 requires
//     it; receivers discard other records, §6.6.3 step 2): we do, and return
//     ErrNotDMARC;
//   - msgauth lets a repeated tag silently override the first; RFC 6376
//     §3.2 (whose syntax DMARC uses, §6.4) makes the whole record invalid:
//     we reject it;
//   - msgauth compares keyword values case-sensitively ("p=Reject" fails),
//     while ABNF literals are case-insensitive (RFC 5234 §2.3): we lower-case
//     p, sp, adkim, aspf, fo and rf before handing the record over;
//   - msgauth accepts pct=+50 (strconv.Atoi); the ABNF is 1*3DIGIT: we
//     check the digits;
//   - on an invalid p or sp msgauth returns only an error, but a receiver
//     then still acts as if p=none when rua holds a valid URI (§6.6.3 step
//     6): on a syntax error we return the record too, with the tags, p/sp
//     where valid and the report URIs, so the caller can say what receivers
//     do;
//   - msgauth keeps rua/ruf entries as raw strings ("mailto:a@b!10m"): we
//     split off the size limit and parse the URI (ReportURI).
//
// The error wraps ErrNotDMARC (rec is nil) or ErrDMARCSyntax (rec is the
// partial record). It never panics.
func ParseDMARC(txt string) (*DMARCRecord, error) {
	first, _, _ := strings.Cut(txt, ";")
	if name, value, ok := strings.Cut(first, "="); !ok || strings.TrimSpace(name) != "v" || trimFWS(value) != "DMARC1" {
		return nil, fmt.Errorf("%w: the record must start with v=DMARC1 (RFC 7489 §6.3)", ErrNotDMARC)
	}
	tags, err := parseTagList(txt)
	rec := &DMARCRecord{Raw: txt, Tags: tags, ADKIM: "r", ASPF: "r"}
	// What can be read without msgauth, for the partial record.
	if v, ok := tagValue(tags, "p"); ok && isPolicy(strings.ToLower(v)) {
		rec.Policy = strings.ToLower(v)
	}
	if v, ok := tagValue(tags, "sp"); ok && isPolicy(strings.ToLower(v)) {
		rec.SubdomainPolicy = strings.ToLower(v)
	}
	if v, ok := tagValue(tags, "rua"); ok {
		rec.RUA = parseReportURIs(v)
	}
	if v, ok := tagValue(tags, "ruf"); ok {
		rec.RUF = parseReportURIs(v)
	}
	if err != nil {
		return rec, fmt.Errorf("%w: %v", ErrDMARCSyntax, err)
	}
	if v, ok := tagValue(tags, "pct"); ok && (!allDigits(v) || len(v) > 3) {
		return rec, fmt.Errorf("%w: pct=%s is not a number from 0 to 100", ErrDMARCSyntax, abbreviate(v, 20))
	}

	norm := make([]Tag, len(tags))
	for i, t := range tags {
		if keywordTags[t.Name] {
			t.Value = strings.ToLower(t.Value)
		}
		norm[i] = t
	}
	m, err := dmarc.Parse(formatTags(norm))
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "dmarc: ")
		return rec, fmt.Errorf("%w: %s", ErrDMARCSyntax, msg)
	}
	rec.Policy = string(m.Policy)
	rec.SubdomainPolicy = string(m.SubdomainPolicy)
	rec.Percent = m.Percent
	rec.ADKIM = string(m.DKIMAlignment)
	rec.ASPF = string(m.SPFAlignment)
	return rec, nil
}

func isPolicy(s string) bool { return s == "none" || s == "quarantine" || s == "reject" }

// parseReportURIs splits a rua/ruf value. Commas inside a URI must be
// %-encoded (RFC 7489 §6.4), so a plain split is right.
func parseReportURIs(v string) []ReportURI {
	var out []ReportURI
	for _, raw := range strings.Split(v, ",") {
		raw = trimFWS(raw)
		if raw == "" {
			continue
		}
		out = append(out, parseReportURI(raw))
	}
	return out
}

func parseReportURI(raw string) ReportURI {
	u := ReportURI{URI: raw}
	s := raw
	if i := strings.LastIndexByte(s, '!'); i >= 0 {
		size := s[i+1:]
		unit := strings.TrimRight(size, "kmgt")
		if !allDigits(unit) || len(size)-len(unit) > 1 {
			u.Err = fmt.Sprintf("%q after \"!\" is not a size limit such as 10m (RFC 7489 §6.4); a literal \"!\" must be written %%21", size)
			return u
		}
		u.MaxSize, s = size, s[:i]
	}
	pu, err := url.Parse(s)
	if err != nil {
		u.Err = fmt.Sprintf("not a URI: %v", err)
		return u
	}
	u.Scheme = strings.ToLower(pu.Scheme)
	switch u.Scheme {
	case "mailto":
		addr := pu.Opaque
		if addr == "" {
			addr = strings.TrimPrefix(pu.Path, "//")
		}
		if dec, err := url.PathUnescape(addr); err == nil {
			addr = dec
		}
		u.Address = addr
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 {
			u.Err = fmt.Sprintf("mailto:%s has no mailbox@domain", addr)
			return u
		}
		u.Host = strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
	case "https", "http":
		u.Host = strings.ToLower(pu.Hostname())
		if u.Host == "" {
			u.Err = "the URI has no host"
		}
	case "":
		u.Err = "no scheme: write mailto:" + s
	default:
		// Receivers MUST support mailto and MAY support others (§6.2);
		// such a URI is valid, just rarely used by anyone.
	}
	return u
}
