package profile

import (
	"net/netip"
	"slices"
	"strings"
)

// Kind says what a profile describes.
type Kind string

const (
	// KindGateway is an email security gateway that sits in front of the
	// mailboxes (it holds the MX) and usually relays outbound mail.
	KindGateway Kind = "gateway"
	// KindMailbox is a mail platform that hosts the mailboxes (Microsoft 365,
	// Google Workspace); behind a gateway it receives mail from the gateway.
	KindMailbox Kind = "mailbox"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool { return k == KindGateway || k == KindMailbox }

// Keys of the data file. They are also the field names that Uncertain
// entries, FieldUncertain and ValueUncertain use, so consumers should use
// these constants rather than spelling the names out.
const (
	KeyID                 = "id"
	KeyName               = "name"
	KeyKind               = "kind"
	KeyRegion             = "region"
	KeyAccountCode        = "account_code"
	KeySPFIncludes        = "spf_includes"
	KeySPFTerms           = "spf_terms"
	KeyMXHosts            = "mx_hosts"
	KeyOutboundSmartHosts = "outbound_smart_hosts"
	KeySMTPOutboundHosts  = "smtp_outbound_hosts"
	KeyJournalHosts       = "journal_hosts"
	KeyIPRangesLive       = "ip_ranges_live"
	KeyIPRanges           = "ip_ranges"
	KeyIPRangesSnapshot   = "ip_ranges_snapshot"
	KeyDKIM               = "dkim"
	KeyVerification       = "verification"
	KeyNotes              = "notes"
	KeyUncertain          = "uncertain"
	KeySources            = "sources"
)

// Profile is one gateway or mail platform. Host lists hold patterns (see
// Match), already lower-cased and in A-label form. Values listed in Uncertain
// are not confirmed by an official source and must be shown as unverified.
type Profile struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	Region      string `json:"region,omitempty"`
	AccountCode string `json:"account_code,omitempty"`

	// SPFIncludes are domain names that go after "include:"; SPFTerms are
	// any other SPF terms (a:, exists:, macro includes), where "<name>" marks
	// a customer-specific part. Both lists are alternatives: a customer
	// publishes one of them, not all.
	SPFIncludes []string `json:"spf_includes,omitempty"`
	SPFTerms    []string `json:"spf_terms,omitempty"`

	MXHosts []string `json:"mx_hosts,omitempty"`
	// OutboundSmartHosts are the hosts a Microsoft 365 outbound connector (or
	// a mail platform's relay setting) sends to; SMTPOutboundHosts are the
	// gateway's generic SMTP smart hosts for on-premises servers.
	OutboundSmartHosts []string `json:"outbound_smart_hosts,omitempty"`
	SMTPOutboundHosts  []string `json:"smtp_outbound_hosts,omitempty"`
	JournalHosts       []string `json:"journal_hosts,omitempty"`

	// IPRangesLive names the records whose SPF expansion gives the current
	// ranges; expand them at run time. IPRanges is a stored snapshot (taken
	// as IPRangesSnapshot says), a fallback only: vendors change their
	// ranges without notice.
	IPRangesLive     []string       `json:"ip_ranges_live,omitempty"`
	IPRanges         []netip.Prefix `json:"ip_ranges,omitempty"`
	IPRangesSnapshot string         `json:"ip_ranges_snapshot,omitempty"`

	DKIM         []string `json:"dkim,omitempty"`
	Verification []string `json:"verification,omitempty"`
	Notes        string   `json:"notes,omitempty"`

	// Uncertain holds "field" (the whole field is unverified, including an
	// empty one: "we do not know") or "field:value" (that one value).
	Uncertain []string `json:"uncertain,omitempty"`
	Sources   []string `json:"sources,omitempty"`

	// Builtin is true for the embedded profiles, false for user profiles.
	Builtin bool `json:"builtin"`
	// Origin says where the profile was defined: "built-in", or "file:line"
	// for a user profile, so messages can point at it.
	Origin string `json:"origin,omitempty"`
}

// Clone returns a deep copy, so a caller can change it without touching the
// registry's profile that other goroutines may be reading.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	q := *p
	q.SPFIncludes = slices.Clone(p.SPFIncludes)
	q.SPFTerms = slices.Clone(p.SPFTerms)
	q.MXHosts = slices.Clone(p.MXHosts)
	q.OutboundSmartHosts = slices.Clone(p.OutboundSmartHosts)
	q.SMTPOutboundHosts = slices.Clone(p.SMTPOutboundHosts)
	q.JournalHosts = slices.Clone(p.JournalHosts)
	q.IPRangesLive = slices.Clone(p.IPRangesLive)
	q.IPRanges = slices.Clone(p.IPRanges)
	q.DKIM = slices.Clone(p.DKIM)
	q.Verification = slices.Clone(p.Verification)
	q.Uncertain = slices.Clone(p.Uncertain)
	q.Sources = slices.Clone(p.Sources)
	return &q
}

// FieldUncertain reports whether the whole field (a Key* name such as
// "mx_hosts") is marked uncertain.
func (p *Profile) FieldUncertain(field string) bool {
	return slices.Contains(p.Uncertain, field)
}

// ValueUncertain reports whether value of field is unverified: the field is
// uncertain as a whole, or the value is named by a "field:value" entry. The
// value is compared in the field's normal form, so "EU-SMTP-Inbound-1.
// mimecast.com." and "10.0.0.0/8" written any valid way both work.
func (p *Profile) ValueUncertain(field, value string) bool {
	if p.FieldUncertain(field) {
		return true
	}
	if spec := specs[field]; spec != nil && spec.norm != nil {
		if v, err := spec.norm(strings.TrimSpace(value)); err == nil {
			value = v
		}
	}
	return slices.Contains(p.Uncertain, field+":"+value)
}

// MatchMX returns the first MX pattern of p that host matches.
func (p *Profile) MatchMX(host string) (pattern string, ok bool) {
	return matchAny(host, p.MXHosts)
}

// MatchSmartHost returns the first outbound smart-host pattern of p that host
// matches, looking at OutboundSmartHosts and then SMTPOutboundHosts: a
// connector may use either family.
func (p *Profile) MatchSmartHost(host string) (pattern string, ok bool) {
	return matchAny(host, p.OutboundSmartHosts, p.SMTPOutboundHosts)
}

func matchAny(host string, lists ...[]string) (string, bool) {
	h, ok := hostLabels(host)
	if !ok {
		return "", false
	}
	for _, list := range lists {
		for _, pat := range list {
			if c, err := compilePattern(pat); err == nil && c.match(h) {
				return pat, true
			}
		}
	}
	return "", false
}
