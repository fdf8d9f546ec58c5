package report

import (
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
