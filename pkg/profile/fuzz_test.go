package profile

import (
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, and what it
// accepts must be valid: re-validating an accepted profile changes nothing,
// and describing or matching against it is safe.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 30s ./pkg/profile/
func FuzzParse(f *testing.F) {
	// One real profile rather than the whole embedded file: a large seed
	// makes the fuzzer spend its time minimising instead of exploring.
	f.Add([]byte(`profiles:
  - id: mimecast-za
    name: Mimecast (South Africa)
    kind: gateway
    region: ZA
    account_code: CSA
    spf_includes: [za._netblocks.mimecast.com]
    mx_hosts: [za-smtp-inbound-1.mimecast.co.za, za-smtp-inbound-2.mimecast.co.za]
    smtp_outbound_hosts: [za-smtp-outbound-1.mimecast.co.za]
    ip_ranges_live: [za._netblocks.mimecast.com]
    ip_ranges_snapshot: "~2025"
    ip_ranges: [41.74.192.0/22, 41.74.206.0/24]
    notes: >
      Host names are under mimecast.co.za.
    uncertain: [smtp_outbound_hosts, "mx_hosts:za-smtp-inbound-2.mimecast.co.za"]
    sources: [https://community.mimecast.com/docs/DOC-2010]
`))
	f.Add([]byte("id: a\nname: A\nkind: gateway\nmx_hosts: [\"*-x-?.example.com\", \"<t>.b.example.com\"]\n"))
	f.Add([]byte("profiles:\n  - {id: a, name: A, kind: mailbox, ip_ranges: [10.0.0.0/8, \"2001:db8::/32\"], uncertain: [\"ip_ranges:10.0.0.0/8\"]}\n"))
	f.Add([]byte("profiles:\n  - &p {id: a, name: A, kind: gateway, sources: &l [x, y]}\n  - *p\n"))
	f.Add([]byte("id: a\nname: A\nkind: gateway\nspf_terms: [\"exists:%{i}.spf.<a>.iphmx.com\", \"-all\"]\n---\nid: b\n"))
	f.Add([]byte("profiles: [[], {}, ~, \"x\"]\n"))
	f.Add([]byte("\t- : :\n"))
	f.Add([]byte("id: a\nname: A\nkind: gateway\nmx_hosts: [mx.bücher.example, \"**.x.example\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if ps != nil {
				t.Fatalf("profiles returned with an error: %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		reg, err := (&Registry{}).With(ps...)
		if err != nil {
			t.Fatalf("accepted profiles fail validation again: %v", err)
		}
		for _, p := range ps {
			q, err := reg.Get(p.ID)
			if err != nil {
				t.Fatal(err)
			}
			q.Origin = p.Origin
			if !equalProfiles(p, q) {
				t.Fatalf("validation is not idempotent:\n%+v\n%+v", p, q)
			}
			_ = Describe(p)
			for _, h := range p.MXHosts {
				reg.DetectMX(h)
				p.MatchMX(h)
				p.MatchSmartHost(h)
			}
		}
	})
}

// FuzzMatch checks Match never panics, and that a literal host always
// matches itself as a pattern.
func FuzzMatch(f *testing.F) {
	f.Add("*-smtp-inbound-?.mimecast.com", "de-smtp-inbound-2.mimecast.com")
	f.Add("**.ess.barracudanetworks.com", "d1.a.ess.barracudanetworks.com")
	f.Add("<domain-dashes>.*.mx.microsoft", "contoso-com.o-v1.mx.microsoft")
	f.Add("a*b*c*d.x", "aXbXcXd.x")
	f.Add("mx.bücher.example", "MX.XN--BCHER-KVA.example.")
	f.Fuzz(func(t *testing.T, pattern, host string) {
		Match(pattern, host)
		if p, err := compilePattern(host); err == nil && !p.wild {
			if !Match(host, host) {
				t.Fatalf("literal %q does not match itself", host)
			}
		}
	})
}

func equalProfiles(a, b *Profile) bool {
	eq := func(x, y []string) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if a.ID != b.ID || a.Name != b.Name || a.Kind != b.Kind || a.Region != b.Region ||
		a.AccountCode != b.AccountCode || a.IPRangesSnapshot != b.IPRangesSnapshot || a.Notes != b.Notes ||
		len(a.IPRanges) != len(b.IPRanges) {
		return false
	}
	for i := range a.IPRanges {
		if a.IPRanges[i] != b.IPRanges[i] {
			return false
		}
	}
	return eq(a.SPFIncludes, b.SPFIncludes) && eq(a.SPFTerms, b.SPFTerms) && eq(a.MXHosts, b.MXHosts) &&
		eq(a.OutboundSmartHosts, b.OutboundSmartHosts) && eq(a.SMTPOutboundHosts, b.SMTPOutboundHosts) &&
		eq(a.JournalHosts, b.JournalHosts) && eq(a.IPRangesLive, b.IPRangesLive) && eq(a.DKIM, b.DKIM) &&
		eq(a.Verification, b.Verification) && eq(a.Uncertain, b.Uncertain) && eq(a.Sources, b.Sources)
}
