package report

import (
	"fmt"
	"strings"
	"time"
)

// Fixed reports for the golden files: fixed times and durations, every
// status, nested evidence, hostile text, a simulation, and findings added out
// of order so the goldens also pin the sort.

var fixedStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// contoso is a readiness run with every status, DNS stats and a query log.
func contoso() *Report {
	r := New("contoso.com", "readiness")
	r.Tool.Version = "1.2.3-test"
	r.Profile = "mimecast-eu"
	r.StartedAt = fixedStart
	r.DurationMS = 43.2
	r.Notes = []string{"certificates verified against --ca-file lab-ca.pem in addition to the system roots"}
	r.DNS = &DNSStats{
		Queries: 14, Distinct: 9, Errors: 1,
		Log: []DNSQuery{
			{Name: "contoso.com.", Type: "MX", Server: "127.0.0.53:53", Proto: "udp", Rcode: "NOERROR", RTTMS: 3.25, Answers: 1},
			{Name: "contoso.com.", Type: "TXT", Server: "127.0.0.53:53", Proto: "tcp", Rcode: "NOERROR", RTTMS: 11.5, Answers: 3},
			{Name: "_dmarc.contoso.com.", Type: "TXT", Server: "127.0.0.53:53", Proto: "udp", Rcode: "", RTTMS: 2000, Answers: 0, Error: "read udp 127.0.0.1:40000->127.0.0.53:53: i/o timeout"},
		},
	}
	r.Add(
		Finding{ID: "zz.experimental", Status: StatusInfo, Subject: "contoso.com", Message: "an area the renderer does not know sorts last"},
		Finding{ID: "send.inbound", Status: StatusFail, Subject: "probe@contoso.com",
			Message:     "Test message rejected: 550 5.7.1 <probe@contoso.com> | \"relay\" denied & logged\nsecond line: see <https://status.example/?a=1&b=2> ~all",
			Remediation: "Add contoso.com as an internal domain in the gateway.\nThen re-run: mfcheck check contoso.com --send",
			Evidence: map[string]any{
				"transcript": "220 mx.example ESMTP\r\n250 OK\r\n550 5.7.1 <probe@contoso.com> denied",
				"nested":     map[string]any{"a": map[string]any{"b": []any{1, 2, map[string]any{"c": "d|e"}}}},
				"long":       strings.Repeat("x", 200),
				"rcpt":       "probe@contoso.com",
			}},
		Finding{ID: "tls.cert-expiry", Status: StatusPass, Subject: "eu-smtp-inbound-2.mimecast.com [91.220.42.11]", Message: "certificate valid for 184 more days"},
		Finding{ID: "mx.present", Status: StatusPass, Subject: "contoso.com", Message: "1 MX record"},
		Finding{ID: "tls.handshake", Status: StatusError, Subject: "eu-smtp-inbound-2.mimecast.com [91.220.42.11]",
			Message:  "could not connect: dial tcp 91.220.42.11:25: i/o timeout",
			Evidence: map[string]any{"address": "91.220.42.11:25", "timeout_ms": 10000}},
		Finding{ID: "spf.lookup-limit", Status: StatusFail, Subject: "contoso.com",
			Message:     "SPF needs 12 DNS lookups; the limit is 10",
			Remediation: "Replace include:_spf.salesforce.com with its ip4: ranges, or drop unused includes.",
			Evidence: map[string]any{
				"lookups": 12, "limit": 10,
				"record": "v=spf1 include:spf.protection.outlook.com include:_spf.salesforce.com include:servers.mcsv.net ~all",
				"terms": []map[string]any{
					{"term": "include:spf.protection.outlook.com", "lookups": 4},
					{"term": "include:_spf.salesforce.com", "lookups": 5},
					{"term": "include:servers.mcsv.net", "lookups": 3},
				},
			}},
		Finding{ID: "tls.cert-expiry", Status: StatusPass, Subject: "eu-smtp-inbound-1.mimecast.com [185.58.85.10]", Message: "certificate valid for 184 more days"},
		Finding{ID: "dmarc.policy", Status: StatusInfo, Subject: "contoso.com", Message: "DMARC policy is p=none: reports only, no enforcement",
			Remediation: "Move to p=quarantine once the aggregate reports are clean.",
			Evidence:    map[string]any{"record": "v=DMARC1; p=none; rua=mailto:dmarc@contoso.com"}},
		Finding{ID: "mx.ttl", Status: StatusWarn, Subject: "contoso.com", Message: "MX TTL is 3600 s; lower it to 300 s at least a day before the cutover so a rollback is quick",
			Remediation: "Set the TTL of the contoso.com MX RRset to 300.",
			Evidence:    map[string]any{"ttl": 3600, "max": 300}},
		Finding{ID: "mx.at-gateway", Status: StatusFail, Subject: "contoso.com",
			Message:     "MX points at contoso-com.mail.protection.outlook.com, not at the mimecast-eu gateway",
			Remediation: "Publish MX 10 eu-smtp-inbound-1.mimecast.com. and MX 10 eu-smtp-inbound-2.mimecast.com.",
			Evidence:    map[string]any{"mx": []any{map[string]any{"pref": 0, "host": "contoso-com.mail.protection.outlook.com."}}}},
		Finding{ID: "spf.present", Status: StatusPass, Subject: "contoso.com", Message: "one SPF record"},
		Finding{ID: "acme.custom", Status: StatusWarn, Subject: "", Message: "unknown areas sort alphabetically after the known ones"},
	)
	return r
}

// lab is a simulated smoke run: no DNS stats, an error, a note.
func lab() *Report {
	r := New("lab.example", "smoke")
	r.Tool.Version = "1.2.3-test"
	r.Profile = "lab"
	r.Simulation = true
	r.StartedAt = fixedStart.Add(time.Minute)
	r.DurationMS = 1250
	r.Add(
		Finding{ID: "trace.gateway-hop", Status: StatusError, Subject: "lab.example", Message: "could not read the test mailbox: permission denied",
			Evidence: map[string]any{"maildir": "/tmp/lab/Maildir"}},
		Finding{ID: "send.inbound", Status: StatusPass, Subject: "postmaster@lab.example", Message: "accepted by the gateway in 120 ms",
			Evidence: map[string]any{"queue_id": "4XyZ1"}},
		Finding{ID: "mx.at-gateway", Status: StatusPass, Subject: "lab.example", Message: "every MX host belongs to the lab gateway"},
	)
	return r
}

// spfContoso is a readiness run with an SPF section that exercises the SPF
// renderers: includes nested three deep, a redirect, terms over the lookup
// limit, a void lookup, error nodes, an incomplete tree with parts unknown
// in advance, a hostile and very long vendor record, address terms to
// summarise, and a flattened set of two records (the first with two
// strings, its answer over 512 octets).
//
// The arithmetic is that of a walk through the whole tree: an include adds
// its own lookup, then its record's; its Total is the count after both.
func spfContoso() *Report {
	r := New("contoso.com", "readiness")
	r.Tool.Version = "1.2.3-test"
	r.Profile = "mimecast-eu"
	r.StartedAt = fixedStart
	r.DurationMS = 87.5
	r.DNS = &DNSStats{Queries: 21, Distinct: 19, Errors: 2}
	r.Add(
		Finding{ID: "spf.lookup-limit", Status: StatusFail, Subject: "contoso.com",
			Message:     "SPF needs at least 12 DNS lookups (worst case); the limit is 10",
			Remediation: "Publish the flattened records below, or drop includes that no longer send mail."},
		Finding{ID: "spf.include-without-spf", Status: StatusFail, Subject: "spf.gone.example",
			Message: "include:spf.gone.example leads to a domain without an SPF record: permerror"},
		Finding{ID: "spf.present", Status: StatusPass, Subject: "contoso.com", Message: "one SPF record"},
	)

	// Three levels of Microsoft 365 includes, each with a few ranges.
	spfb := &SPFNode{Domain: "spfb.protection.outlook.com",
		Record: "v=spf1 ip6:2a01:111:f403::/49 ip4:51.4.72.0/24 ip4:51.5.72.0/24 -all",
		Terms: []SPFTerm{
			{Index: 1, Text: "ip6:2a01:111:f403::/49", Total: 5},
			{Index: 2, Text: "ip4:51.4.72.0/24", Total: 5},
			{Index: 3, Text: "ip4:51.5.72.0/24", Total: 5},
			{Index: 4, Text: "-all", Total: 5},
		}}
	spfa := &SPFNode{Domain: "spfa.protection.outlook.com",
		Record: "v=spf1 include:spfb.protection.outlook.com ip4:52.100.0.0/14 ip4:104.47.0.0/17 -all",
		Terms: []SPFTerm{
			{Index: 1, Text: "include:spfb.protection.outlook.com", Cost: 1, Total: 5, Child: spfb},
			{Index: 2, Text: "ip4:52.100.0.0/14", Total: 5},
			{Index: 3, Text: "ip4:104.47.0.0/17", Total: 5},
			{Index: 4, Text: "-all", Total: 5},
		}}
	outlook := &SPFNode{Domain: "spf.protection.outlook.com",
		Record: "v=spf1 include:spfa.protection.outlook.com ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip6:2a01:111:f400::/48 -all",
		Terms: []SPFTerm{
			{Index: 1, Text: "include:spfa.protection.outlook.com", Cost: 2, Total: 5, Child: spfa},
			{Index: 2, Text: "ip4:40.92.0.0/15", Total: 5},
			{Index: 3, Text: "ip4:40.107.0.0/16", Total: 5},
			{Index: 4, Text: "ip6:2a01:111:f400::/48", Total: 5},
			{Index: 5, Text: "-all", Total: 5},
		}}

	// A hostile vendor: escape sequences in its record, a modifier too
	// long for the TERM column, and ten ranges for the summary row.
	mark := "x-mark=\x1b[2J\x1b[31mgotcha" + strings.Repeat("A", 60)
	hostileRecord := "v=spf1"
	var hostileTerms []SPFTerm
	for i := range 10 {
		text := fmt.Sprintf("ip4:192.0.2.%d/28", 16*i)
		hostileRecord += " " + text
		hostileTerms = append(hostileTerms, SPFTerm{Index: i + 1, Text: text, Total: 11})
	}
	for _, text := range []string{"ip6:2001:db8:ff::/48", "ip6:2001:db8:fe::/48", mark, "~all"} {
		hostileRecord += " " + text
		hostileTerms = append(hostileTerms, SPFTerm{Index: len(hostileTerms) + 1, Text: text, Total: 11})
	}
	hostileTerms[len(hostileTerms)-2].Note = "unknown modifier: ignored"
	hostile := &SPFNode{Domain: "spf.hostile.example", Record: hostileRecord, Terms: hostileTerms}

	redirect := &SPFNode{Domain: "_spf.contoso.com",
		Record: "v=spf1 a:mta1.contoso.com include:spf.hostile.example include:spf.gone.example -all",
		Terms: []SPFTerm{
			{Index: 1, Text: "a:mta1.contoso.com", Cost: 1, Total: 10, Note: "1 address"},
			{Index: 2, Text: "include:spf.hostile.example", Cost: 1, Total: 11, OverLimit: true, Child: hostile},
			{Index: 3, Text: "include:spf.gone.example", Cost: 1, Total: 12, OverLimit: true,
				Child: &SPFNode{Domain: "spf.gone.example", Error: "no SPF record (2 TXT records, none starts with v=spf1)"}},
			{Index: 4, Text: "-all", Total: 12},
		}}

	root := &SPFNode{Domain: "contoso.com",
		Record: "v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/27 ip6:2001:db8:10::/48 mx a:legacy.contoso.com include:spf.protection.outlook.com include:_spf.mailvendor.example exists:%{i}._spf.contoso.com include:%{l}._spf.crm.example redirect=_spf.contoso.com",
		Terms: []SPFTerm{
			{Index: 1, Text: "ip4:198.51.100.0/24"},
			{Index: 2, Text: "ip4:203.0.113.0/27"},
			{Index: 3, Text: "ip6:2001:db8:10::/48"},
			{Index: 4, Text: "mx", Cost: 1, Total: 1, Note: "2 MX hosts, 3 addresses"},
			{Index: 5, Text: "a:legacy.contoso.com", Cost: 1, Total: 2, Void: []string{"ipv4"}, Note: "no A record; 1 AAAA record"},
			{Index: 6, Text: "include:spf.protection.outlook.com", Cost: 3, Total: 5, Child: outlook},
			{Index: 7, Text: "include:_spf.mailvendor.example", Cost: 1, Total: 6,
				Child: &SPFNode{Domain: "_spf.mailvendor.example", Error: "DNS failure: SERVFAIL from every server"}},
			{Index: 8, Text: "exists:%{i}._spf.contoso.com", Cost: 1, Total: 7, Note: "depends on the client address"},
			{Index: 9, Text: "include:%{l}._spf.crm.example", Cost: 1, Total: 8,
				Child: &SPFNode{Domain: "%{l}._spf.crm.example", Error: "not expanded: the domain depends on the sender"}},
			{Index: 10, Text: "redirect=_spf.contoso.com", Cost: 4, Total: 12, Child: redirect},
		}}

	r.SPF = &SPF{
		Domain:      "contoso.com",
		Lookups:     12,
		LookupLimit: 10,
		VoidLookups: 1,
		VoidLimit:   2,
		Complete:    false,
		Incomplete:  []string{"_spf.mailvendor.example: TXT lookup failed (SERVFAIL from every server)"},
		Unknown: []string{
			"exists:%{i}._spf.contoso.com: the name depends on the client address",
			"include:%{l}._spf.crm.example: the domain depends on the sender's local part",
		},
		Tree: root,
		Flattened: &SPFFlattened{
			Lookups:    6,
			MaxLookups: 10,
			Records: []SPFPublish{
				{Name: "contoso.com", AnswerOctets: 548, Strings: []string{
					"v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/27 ip6:2001:db8:10::/48 mx include:_spf.mailvendor.example exists:%{i}._spf.contoso.com include:%{l}._spf.crm.example ip6:2001:db8:20::1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ",
					"ip4:52.100.0.0/14 ip4:104.47.0.0/17 ip4:51.4.72.0/24 ip4:51.5.72.0/24 ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 a:mta1.contoso.com include:_spf1.contoso.com -all",
				}},
				{Name: "_spf1.contoso.com.", AnswerOctets: 283, Strings: []string{
					"v=spf1 ip4:192.0.2.0/28 ip4:192.0.2.16/28 ip4:192.0.2.32/28 ip4:192.0.2.48/28 ip4:192.0.2.64/28 ip4:192.0.2.80/28 ip4:192.0.2.96/28 ip4:192.0.2.112/28 ip4:192.0.2.128/28 ip4:192.0.2.144/28 ip6:2001:db8:ff::/48 ip6:2001:db8:fe::/48 -all",
				}},
			},
			Kept:     []string{"mx", "include:_spf.mailvendor.example", "exists:%{i}._spf.contoso.com", "include:%{l}._spf.crm.example", "a:mta1.contoso.com"},
			Replaced: []string{"a:legacy.contoso.com", "include:spf.protection.outlook.com", "redirect=_spf.contoso.com", "include:spf.hostile.example"},
			Warnings: []string{
				"include:spf.gone.example was left out: spf.gone.example has no SPF record, so every evaluation reaching it was a permerror",
				"the addresses of spf.protection.outlook.com and spf.hostile.example are frozen as of this run; flatten again when the vendors change them",
				"contoso.com: the TXT answer is 548 octets with the 2 other TXT records there; remove stale verification records to get under 512",
			},
		},
	}
	return r
}
