package report

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cutover pair: contoso.com days before the MX change (readiness: MX at
// Microsoft 365, the gateway's SPF include missing) and minutes after it
// (smoke: MX at Mimecast, a leftover on-premises MX, a smart host that lost
// its intermediate). The smoke run's lab port differs from the readiness
// run's, and one smart host has a new address.

const (
	o365MX    = "contoso-com.mail.protection.outlook.com"
	outbound  = "eu-smtp-o365-outbound-1.mimecast.com"
	outbound2 = "eu-smtp-o365-outbound-2.mimecast.com"
	inbound   = "eu-smtp-inbound-1.mimecast.com"
)

func days(n int) *int { return &n }

func readinessReport() *Report {
	r := New("contoso.com", "readiness")
	r.Tool.Version = "1.2.3-test"
	r.Profile = "mimecast-eu"
	r.StartedAt = fixedStart
	r.DurationMS = 812
	r.Add(
		Finding{ID: "mx.present", Status: StatusPass, Subject: "contoso.com", Message: "1 MX record published: " + o365MX + " (0)",
			Evidence: map[string]any{"mx": []string{"0 " + o365MX + "."}, "ttl": 3600}},
		Finding{ID: "mx.at-gateway", Status: StatusFail, Subject: "contoso.com", Message: "0 of 1 MX hosts point at Mimecast"},
		Finding{ID: "mx.bypass-mx", Status: StatusFail, Subject: o365MX, Message: "MX " + o365MX + " at preference 0 is outside Mimecast"},
		Finding{ID: "mx.ttl", Status: StatusWarn, Subject: "contoso.com", Message: "The MX TTL is 3600 s (1 hour), above 300 s"},
		Finding{ID: "spf.gateway-include", Status: StatusFail, Subject: "contoso.com", Message: "The record does not include Mimecast (include:eu._netblocks.mimecast.com)"},
		Finding{ID: "spf.headroom", Status: StatusPass, Subject: "contoso.com", Message: "adding the include makes 4 of 10"},
		Finding{ID: "dmarc.policy", Status: StatusWarn, Subject: "contoso.com", Message: "DMARC policy is p=none"},
		Finding{ID: "mtasts.policy", Status: StatusWarn, Subject: "mta-sts.contoso.com", Message: "The MTA-STS policy is in testing mode"},
		Finding{ID: "dkim.selectors", Status: StatusPass, Subject: "selector1._domainkey.contoso.com", Message: "selector1 is a CNAME to Microsoft 365's key"},
		Finding{ID: "tls.cert-chain", Status: StatusPass, Subject: outbound + " [127.0.55.41]:40291", Message: "The chain verifies"},
		Finding{ID: "tls.handshake", Status: StatusPass, Subject: outbound + " [127.0.55.41]:40291", Message: "TLS 1.3 handshake"},
		Finding{ID: "tls.cert-expiry", Status: StatusPass, Subject: outbound2 + " [127.0.55.42]:40291", Message: "valid for 184 more days"},
		Finding{ID: "tls.dane", Status: StatusPass, Subject: o365MX + " [52.101.68.1]", Message: "TLSA records match"},
		Finding{ID: "allowlist.gateway-ranges", Status: StatusFail, Subject: "contoso.com", Message: "2 of 9 gateway ranges are missing from the allow list",
			Suppressed: &Suppression{Reason: "allow list change CHG-1042 scheduled", Expires: "2025-06-10", Source: "mfcheck.yaml:14"}},
	)
	r.SPF = &SPF{Domain: "contoso.com", Lookups: 3, LookupLimit: 10, VoidLimit: 2, Complete: true,
		Tree: &SPFNode{Domain: "contoso.com", Record: "v=spf1 include:spf.protection.outlook.com ip4:198.51.100.25 -all"}}
	r.TLS = []TLSEndpoint{
		{Host: o365MX, Address: "52.101.68.1", Port: 25, Role: "mx", Verdict: "verified", StartTLS: true, TLSVersion: "TLS 1.2", TotalMS: 80},
		{Host: outbound, Address: "127.0.55.41", Port: 40291, Role: "smart-host", Verdict: "verified", StartTLS: true, TLSVersion: "TLS 1.3", DaysLeft: days(184), TotalMS: 7},
		{Host: outbound2, Address: "127.0.55.42", Port: 40291, Role: "smart-host", Verdict: "verified", StartTLS: true, TLSVersion: "TLS 1.3", DaysLeft: days(184), TotalMS: 7},
	}
	return r
}

func smokeReport() *Report {
	r := New("contoso.com", "smoke")
	r.Tool.Version = "1.2.3-test"
	r.Profile = "mimecast-eu"
	r.StartedAt = fixedStart.Add(7 * 24 * time.Hour)
	r.DurationMS = 1430
	r.Add(
		Finding{ID: "mx.present", Status: StatusPass, Subject: "contoso.com", Message: "3 MX records published",
			Evidence: map[string]any{"mx": []any{"10 EU-SMTP-INBOUND-1.mimecast.com.", "10 eu-smtp-inbound-2.mimecast.com.", "20 mail.contoso.com."}, "ttl": 300}},
		Finding{ID: "mx.at-gateway", Status: StatusPass, Subject: "contoso.com", Message: "2 of 3 MX hosts point at Mimecast"},
		Finding{ID: "mx.bypass-mx", Status: StatusFail, Subject: "mail.contoso.com", Message: "MX mail.contoso.com at preference 20 is outside Mimecast: senders that use it skip the gateway's filtering",
			Remediation: "Delete the MX record \"20 mail.contoso.com.\""},
		Finding{ID: "mx.ttl", Status: StatusInfo, Subject: "contoso.com", Message: "The MX records have a TTL of 300 s"},
		Finding{ID: "spf.gateway-include", Status: StatusPass, Subject: "contoso.com", Message: "The record includes include:eu._netblocks.mimecast.com"},
		Finding{ID: "spf.headroom", Status: StatusPass, Subject: "contoso.com", Message: "4 of 10 lookups"},
		Finding{ID: "dmarc.policy", Status: StatusWarn, Subject: "contoso.com", Message: "DMARC policy is p=none",
			Suppressed: &Suppression{Reason: "p=quarantine after the cutover settles", Expires: "2025-07-01", Source: "mfcheck.yaml:20"}},
		Finding{ID: "dkim.selectors", Status: StatusError, Subject: "selector1._domainkey.contoso.com", Message: "Could not look up selector1: i/o timeout"},
		Finding{ID: "tls.cert-chain", Status: StatusFail, Subject: outbound + " [127.0.55.41]:38117", Message: "The server does not send its intermediate certificate \x1b[31m"},
		Finding{ID: "tls.handshake", Status: StatusPass, Subject: outbound + " [127.0.55.41]:38117", Message: "TLS 1.3 handshake"},
		Finding{ID: "tls.cert-expiry", Status: StatusWarn, Subject: outbound2 + " [127.0.55.52]:38117", Message: "The certificate expires in 12 days"},
		Finding{ID: "tls.connect", Status: StatusError, Subject: inbound + " [185.58.85.10]", Message: "could not connect: dial tcp 185.58.85.10:25: i/o timeout"},
		Finding{ID: "send.inbound", Status: StatusPass, Subject: inbound + " [185.58.85.11]", Message: "Test message accepted: 250 queued as 4f2a"},
		Finding{ID: "allowlist.gateway-ranges", Status: StatusFail, Subject: "contoso.com", Message: "2 of 9 gateway ranges are missing from the allow list"},
	)
	r.SPF = &SPF{Domain: "contoso.com", Lookups: 4, LookupLimit: 10, VoidLimit: 2, Complete: true,
		Tree: &SPFNode{Domain: "contoso.com", Record: "v=spf1 include:spf.protection.outlook.com include:eu._netblocks.mimecast.com ip4:198.51.100.25 -all"}}
	r.TLS = []TLSEndpoint{
		{Host: inbound, Address: "185.58.85.10", Port: 25, Role: "mx", Verdict: "unreachable", Reason: "i/o timeout", TotalMS: 10000},
		{Host: outbound, Address: "127.0.55.41", Port: 38117, Role: "smart-host", Verdict: "untrusted", Reason: "missing intermediate certificate", StartTLS: true, TLSVersion: "TLS 1.3", TotalMS: 7},
		{Host: outbound2, Address: "127.0.55.52", Port: 38117, Role: "smart-host", Verdict: "verified", StartTLS: true, TLSVersion: "TLS 1.3", DaysLeft: days(12), TotalMS: 7},
	}
	return r
}

// changeMap indexes changes by "id subject".
func changeMap(d *ReportDiff) map[string]FindingChange {
	m := map[string]FindingChange{}
	for _, c := range d.Changes {
		m[c.ID+" "+c.Subject] = c
	}
	return m
}

func TestDiffCutover(t *testing.T) {
	before, after := readinessReport(), smokeReport()
	d := Diff(before, after)
	m := changeMap(d)

	want := map[string]Change{
		"mx.at-gateway contoso.com":                             ChangeFixed,
		"mx.bypass-mx " + o365MX:                                ChangeFixed,
		"mx.bypass-mx mail.contoso.com":                         ChangeNew,
		"mx.ttl contoso.com":                                    ChangeBetter,
		"spf.gateway-include contoso.com":                       ChangeFixed,
		"dmarc.policy contoso.com":                              ChangeSuppressed,
		"mtasts.policy mta-sts.contoso.com":                     ChangeFixed,
		"dkim.selectors selector1._domainkey.contoso.com":       ChangeUnverifiable,
		"tls.cert-chain " + outbound + " [127.0.55.41]:38117":   ChangeWorse,
		"tls.cert-expiry " + outbound2 + " [127.0.55.52]:38117": ChangeWorse,
		"tls.connect " + inbound + " [185.58.85.10]":            ChangeNew,
		"send.inbound " + inbound + " [185.58.85.11]":           ChangeNew,
		"tls.dane " + o365MX + " [52.101.68.1]":                 ChangeRemoved,
		"allowlist.gateway-ranges contoso.com":                  ChangeUnsuppressed,
	}
	for k, ch := range want {
		if assert.Contains(t, m, k) {
			assert.Equal(t, ch, m[k].Change, k)
		}
	}
	assert.Len(t, d.Changes, len(want), "mx.present, spf.headroom and tls.handshake are unchanged, not listed")
	assert.Equal(t, 3, d.Counts[ChangeUnchanged])

	assert.Equal(t, outbound+" [127.0.55.41]:40291", m["tls.cert-chain "+outbound+" [127.0.55.41]:38117"].BeforeSubject, "paired across the lab's port change")
	assert.Equal(t, outbound2+" [127.0.55.42]:40291", m["tls.cert-expiry "+outbound2+" [127.0.55.52]:38117"].BeforeSubject, "paired across an address change")
	assert.Equal(t, Status(""), m["tls.connect "+inbound+" [185.58.85.10]"].Before)
	assert.Equal(t, StatusError, m["tls.connect "+inbound+" [185.58.85.10]"].After)
	assert.NotNil(t, m["dmarc.policy contoso.com"].SuppressedAfter)
	assert.NotNil(t, m["allowlist.gateway-ranges contoso.com"].SuppressedBefore)

	// The list starts with what needs attention.
	assert.Equal(t, ChangeWorse, d.Changes[0].Change)
	assert.Equal(t, "tls.cert-chain", d.Changes[0].ID)

	require.NotNil(t, d.MX)
	assert.Equal(t, []string{"0 " + o365MX}, d.MX.Before)
	assert.Equal(t, []string{"10 eu-smtp-inbound-1.mimecast.com", "10 eu-smtp-inbound-2.mimecast.com", "20 mail.contoso.com"}, d.MX.After, "lower case, no final dot, sorted by preference")
	assert.Equal(t, d.MX.After, d.MX.Added)
	assert.Equal(t, d.MX.Before, d.MX.Removed)

	require.NotNil(t, d.SPF)
	assert.Equal(t, 3, d.SPF.Before.Lookups)
	assert.Equal(t, 4, d.SPF.After.Lookups)
	assert.Contains(t, d.SPF.After.Record, "include:eu._netblocks.mimecast.com")

	tls := map[string]TLSChange{}
	for _, c := range d.TLS {
		tls[c.Host] = c
	}
	assert.Len(t, d.TLS, 3, "outbound-2 stays verified at its new address")
	assert.Equal(t, TLSChange{Change: ChangeWorse, Host: outbound, Address: "127.0.55.41", Port: 38117, Role: "smart-host",
		Before: "verified", After: "untrusted", Reason: "missing intermediate certificate"}, tls[outbound])
	assert.Equal(t, ChangeNew, tls[inbound].Change)
	assert.Equal(t, "unreachable", tls[inbound].After)
	assert.Equal(t, ChangeRemoved, tls[o365MX].Change)

	assert.Equal(t, StatusFail, d.Before.Summary.Worst)
	assert.Equal(t, StatusFail, d.After.Summary.Worst)
	assert.Equal(t, 1, d.Before.Summary.Suppressed)

	// The inputs are left alone.
	assert.Equal(t, "mx.present", before.Findings[0].ID)
	assert.Equal(t, "mx.present", after.Findings[0].ID)
}

func TestGateRegression(t *testing.T) {
	d := Diff(readinessReport(), smokeReport())
	regs := func(g Gate) []string {
		var out []string
		for _, c := range d.Changes {
			if g.Regression(c) {
				out = append(out, c.ID+" "+string(c.Change))
			}
		}
		return out
	}
	assert.Equal(t, []string{"tls.cert-chain worse", "mx.bypass-mx new", "allowlist.gateway-ranges unsuppressed"}, regs(Gate{}))
	assert.Equal(t, []string{"tls.cert-chain worse", "tls.cert-expiry worse", "mx.bypass-mx new", "allowlist.gateway-ranges unsuppressed"}, regs(Gate{FailOn: StatusWarn}),
		"a warn that rose from pass counts at --fail-on warn; the suppressed dmarc warn does not")
	assert.Equal(t, []string{"tls.cert-chain worse", "dkim.selectors unverifiable", "mx.bypass-mx new", "tls.connect new", "allowlist.gateway-ranges unsuppressed"}, regs(Gate{ErrorsAreWorse: true}))
	// mx.ttl went warn → info: better, never a regression, even at info.
	assert.NotContains(t, regs(Gate{FailOn: StatusInfo}), "mx.ttl better")
}

// pairReports wraps findings in two reports of one domain.
func pairReports(before, after []Finding) (*Report, *Report) {
	b, a := New("d.example", "health"), New("d.example", "health")
	b.StartedAt, a.StartedAt = fixedStart, fixedStart
	b.Add(before...)
	a.Add(after...)
	return b, a
}

func TestDiffExitCode(t *testing.T) {
	f := func(id string, st Status) Finding {
		return Finding{ID: id, Status: st, Subject: "d.example", Message: "m"}
	}
	tests := []struct {
		name          string
		before, after []Finding
		gate          Gate
		want          int
	}{
		{"identical", []Finding{f("a.b", StatusFail)}, []Finding{f("a.b", StatusFail)}, Gate{}, ExitOK},
		{"new fail", nil, []Finding{f("a.b", StatusFail)}, Gate{}, ExitFindings},
		{"new warn at fail", nil, []Finding{f("a.b", StatusWarn)}, Gate{}, ExitOK},
		{"new warn at warn", nil, []Finding{f("a.b", StatusWarn)}, Gate{FailOn: StatusWarn}, ExitFindings},
		{"new info at info", nil, []Finding{f("a.b", StatusInfo)}, Gate{FailOn: StatusInfo}, ExitFindings},
		{"rose to warn at fail", []Finding{f("a.b", StatusPass)}, []Finding{f("a.b", StatusWarn)}, Gate{}, ExitOK},
		{"rose to fail", []Finding{f("a.b", StatusWarn)}, []Finding{f("a.b", StatusFail)}, Gate{}, ExitFindings},
		{"fixed", []Finding{f("a.b", StatusFail)}, []Finding{f("a.b", StatusPass)}, Gate{FailOn: StatusInfo}, ExitOK},
		{"gone", []Finding{f("a.b", StatusFail)}, nil, Gate{}, ExitOK},
		{"new error", nil, []Finding{f("a.b", StatusError)}, Gate{}, ExitOK},
		{"new error, errors are worse", nil, []Finding{f("a.b", StatusError)}, Gate{ErrorsAreWorse: true}, ExitFindings},
		{"unverifiable", []Finding{f("a.b", StatusPass)}, []Finding{f("a.b", StatusError)}, Gate{FailOn: StatusInfo}, ExitOK},
		{"unverifiable, errors are worse", []Finding{f("a.b", StatusPass)}, []Finding{f("a.b", StatusError)}, Gate{ErrorsAreWorse: true}, ExitFindings},
		{"verifiable again as fail", []Finding{f("a.b", StatusError)}, []Finding{f("a.b", StatusFail)}, Gate{}, ExitFindings},
		{"verifiable again as pass", []Finding{f("a.b", StatusError)}, []Finding{f("a.b", StatusPass)}, Gate{}, ExitOK},
		{"new fail suppressed", nil, []Finding{{ID: "a.b", Status: StatusFail, Subject: "d.example", Suppressed: &Suppression{Reason: "known"}}}, Gate{}, ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, a := pairReports(tt.before, tt.after)
			s, err := DiffAll([]*Report{b}, []*Report{a})
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.ExitCode(tt.gate))
		})
	}
}

func TestDiffSubjectPairing(t *testing.T) {
	f := func(id, subject string, st Status) Finding {
		return Finding{ID: id, Status: st, Subject: subject, Message: "m"}
	}
	tests := []struct {
		name          string
		before, after []Finding
		// want maps AFTER's subject to BEFORE's ("" = new).
		want map[string]string
	}{
		{"port changes", []Finding{f("tls.x", "h.example [127.0.0.5]:40291", StatusPass)}, []Finding{f("tls.x", "h.example [127.0.0.5]:38117", StatusFail)},
			map[string]string{"h.example [127.0.0.5]:38117": "h.example [127.0.0.5]:40291"}},
		{"port appears", []Finding{f("tls.x", "h.example [192.0.2.1]", StatusPass)}, []Finding{f("tls.x", "h.example [192.0.2.1]:2525", StatusFail)},
			map[string]string{"h.example [192.0.2.1]:2525": "h.example [192.0.2.1]"}},
		{"bare address and port", []Finding{f("tls.x", "192.0.2.1:2525", StatusPass)}, []Finding{f("tls.x", "192.0.2.1:2526", StatusFail)},
			map[string]string{"192.0.2.1:2526": "192.0.2.1:2525"}},
		{"ipv6 with port", []Finding{f("tls.x", "h.example [2001:db8::1]:2525", StatusPass)}, []Finding{f("tls.x", "h.example [2001:db8::1]:2526", StatusFail)},
			map[string]string{"h.example [2001:db8::1]:2526": "h.example [2001:db8::1]:2525"}},
		{"addresses change, in address order",
			[]Finding{f("tls.x", "h.example [192.0.2.2]", StatusPass), f("tls.x", "h.example [192.0.2.1]", StatusPass)},
			[]Finding{f("tls.x", "h.example [198.51.100.1]", StatusFail), f("tls.x", "h.example [198.51.100.2]", StatusPass)},
			map[string]string{"h.example [198.51.100.1]": "h.example [192.0.2.1]", "h.example [198.51.100.2]": "h.example [192.0.2.2]"}},
		{"an unchanged address keeps its pair",
			[]Finding{f("tls.x", "h.example [192.0.2.1]", StatusPass), f("tls.x", "h.example [192.0.2.2]", StatusPass)},
			[]Finding{f("tls.x", "h.example [192.0.2.2]", StatusFail), f("tls.x", "h.example [192.0.2.9]", StatusPass)},
			map[string]string{"h.example [192.0.2.2]": "h.example [192.0.2.2]", "h.example [192.0.2.9]": "h.example [192.0.2.1]"}},
		{"families do not mix", []Finding{f("tls.x", "h.example [192.0.2.1]", StatusPass)}, []Finding{f("tls.x", "h.example [2001:db8::1]", StatusPass)},
			map[string]string{"h.example [2001:db8::1]": ""}},
		{"exact wins over port-less",
			[]Finding{f("tls.x", "h.example [192.0.2.1]:25", StatusPass), f("tls.x", "h.example [192.0.2.1]:587", StatusWarn)},
			[]Finding{f("tls.x", "h.example [192.0.2.1]:587", StatusFail)},
			map[string]string{"h.example [192.0.2.1]:587": "h.example [192.0.2.1]:587"}},
		{"another host is another finding", []Finding{f("tls.x", "a.example [192.0.2.1]", StatusPass)}, []Finding{f("tls.x", "b.example [192.0.2.1]", StatusPass)},
			map[string]string{"b.example [192.0.2.1]": ""}},
		{"another id is another finding", []Finding{f("tls.x", "h.example [192.0.2.1]", StatusPass)}, []Finding{f("tls.y", "h.example [192.0.2.1]", StatusPass)},
			map[string]string{"h.example [192.0.2.1]": ""}},
		{"plain subjects only match exactly", []Finding{f("mx.bypass-mx", "a.example", StatusFail)}, []Finding{f("mx.bypass-mx", "b.example", StatusFail)},
			map[string]string{"b.example": ""}},
		{"same key twice pairs in order",
			[]Finding{f("dkim.selectors", "s._domainkey.d.example", StatusPass), f("dkim.selectors", "s._domainkey.d.example", StatusWarn)},
			[]Finding{f("dkim.selectors", "s._domainkey.d.example", StatusPass), f("dkim.selectors", "s._domainkey.d.example", StatusWarn)},
			map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, a := pairReports(tt.before, tt.after)
			b.Finalize()
			a.Finalize()
			pairs := pairBy(len(b.Findings), len(a.Findings),
				func(i int) (string, string) { return b.Findings[i].ID, b.Findings[i].Subject },
				func(j int) (string, string) { return a.Findings[j].ID, a.Findings[j].Subject })
			got := map[string]string{}
			unchanged := 0
			for _, p := range pairs {
				if p.a < 0 {
					continue
				}
				as := a.Findings[p.a].Subject
				if p.b < 0 {
					got[as] = ""
					continue
				}
				if b.Findings[p.b].Status == a.Findings[p.a].Status && b.Findings[p.b].Subject == as && len(tt.want) == 0 {
					unchanged++
					continue
				}
				got[as] = b.Findings[p.b].Subject
			}
			assert.Equal(t, tt.want, got)
			if len(tt.want) == 0 {
				assert.Equal(t, 2, unchanged, "the pass pairs with the pass, the warn with the warn")
			}
		})
	}
}

func bulkSides() (before, after []*Report) {
	mk := func(domain string, st Status) *Report {
		r := New(domain, "health")
		r.Tool.Version = "1.2.3-test"
		r.StartedAt = fixedStart
		r.Add(Finding{ID: "spf.lookup-limit", Status: st, Subject: domainKey(domain), Message: "SPF lookups"})
		return r
	}
	before = []*Report{mk("a.example", StatusPass), mk("gone.example", StatusFail), mk("b.example", StatusFail)}
	after = []*Report{mk("B.example.", StatusPass), mk("new.example", StatusFail), mk("a.example", StatusFail)}
	return before, after
}

func TestDiffAllPairsByDomain(t *testing.T) {
	before, after := bulkSides()
	s, err := DiffAll(before, after)
	require.NoError(t, err)
	require.Len(t, s.Domains, 2)
	assert.Equal(t, "B.example.", s.Domains[0].Domain, "AFTER's order and spelling; matched case-insensitively without the final dot")
	assert.Equal(t, ChangeFixed, s.Domains[0].Changes[0].Change)
	assert.Equal(t, "a.example", s.Domains[1].Domain)
	assert.Equal(t, ChangeWorse, s.Domains[1].Changes[0].Change)
	require.Len(t, s.OnlyBefore, 1)
	assert.Equal(t, "gone.example", s.OnlyBefore[0].Domain)
	require.Len(t, s.OnlyAfter, 1)
	assert.Equal(t, "new.example", s.OnlyAfter[0].Domain)
	assert.Equal(t, StatusFail, s.OnlyAfter[0].Summary.Worst)
	assert.Equal(t, ExitFindings, s.ExitCode(Gate{}), "a.example got worse")

	// A new domain's failures are not a regression: nothing to compare.
	s, err = DiffAll(before[:1], []*Report{before[0], after[1]})
	require.NoError(t, err)
	assert.Equal(t, ExitOK, s.ExitCode(Gate{FailOn: StatusInfo}))

	_, err = DiffAll(before, append(after, after[2]))
	var dup *DuplicateDomainError
	require.ErrorAs(t, err, &dup)
	assert.True(t, dup.After)
	assert.Equal(t, 2, dup.Count)
	assert.EqualError(t, err, "domain a.example appears in 2 reports; a diff pairs one report per domain")
}

func TestReadReports(t *testing.T) {
	one := render(t, FormatJSON, Options{}, readinessReport())
	rs, err := ReadReports(bytes.NewReader(one))
	require.NoError(t, err)
	require.Len(t, rs, 1)
	assert.Equal(t, "contoso.com", rs[0].Domain)
	for _, f := range rs[0].Findings {
		if f.ID == "mx.present" {
			assert.Equal(t, []any{"0 " + o365MX + "."}, f.Evidence["mx"], "evidence read back as JSON values")
		}
	}
	d := Diff(rs[0], smokeReport())
	assert.Equal(t, Diff(readinessReport(), smokeReport()), d, "a report read from JSON diffs like the one in memory")

	before, _ := bulkSides()
	lines := render(t, FormatJSON, Options{}, before...)
	rs, err = ReadReports(bytes.NewReader(lines))
	require.NoError(t, err)
	require.Len(t, rs, 3)
	assert.Equal(t, "b.example", rs[2].Domain)

	// A byte-order mark (UTF-8, or UTF-16 from Windows PowerShell's ">").
	utf16le := []byte{0xFF, 0xFE}
	for _, r := range string(lines) {
		utf16le = append(utf16le, byte(r), byte(r>>8)) // the fixtures are ASCII
	}
	for name, in := range map[string][]byte{"utf-8": append([]byte{0xEF, 0xBB, 0xBF}, lines...), "utf-16le": utf16le} {
		rs, err := ReadReports(bytes.NewReader(in))
		if assert.NoError(t, err, name) {
			assert.Len(t, rs, 3, name)
		}
	}

	// Concatenated indented documents are read too.
	rs, err = ReadReports(bytes.NewReader(append(append([]byte{}, one...), one...)))
	require.NoError(t, err)
	assert.Len(t, rs, 2)
}

func TestReadReportsGarbage(t *testing.T) {
	var line bytes.Buffer
	require.NoError(t, WriteJSONLine(&line, bulkSidesFirst()))
	good := strings.TrimSpace(line.String())
	tests := []struct {
		name, in, want string
		line           int
	}{
		{"empty", "", "report: no report in the input (empty file?)", 0},
		{"blank lines", "\n\n  \n", "report: no report in the input (empty file?)", 0},
		{"not JSON", "hello\n", "line 1: not JSON: invalid character 'h' looking for beginning of value", 1},
		{"garbage on line 3", good + "\n" + good + "\n{garbage}\n", "line 3: not JSON: invalid character 'g' looking for beginning of object key string", 3},
		{"cut off", good + "\n" + good[:40], "line 2: not JSON: the document is cut off (unexpected end of input)", 2},
		{"array", "[1, 2]", "line 1: not an mfcheck report: a JSON object was expected", 1},
		{"no schema", "\n{\"domain\": \"x.example\"}", "line 2: not an mfcheck report: no \"schema\" member (want \"mfcheck.report/v1\")", 2},
		{"other schema", `{"schema": "mfcheck.report/v2", "domain": "x.example"}`, `line 1: schema "mfcheck.report/v2" is not "mfcheck.report/v1"`, 1},
		{"a diff", `{"schema": "mfcheck.diff/v1"}`, `line 1: this is the output of mfcheck diff ("mfcheck.diff/v1"), not a report`, 1},
		{"no domain", `{"schema": "mfcheck.report/v1", "findings": []}`, "line 1: the report has no domain", 1},
		{"bad status", good + "\n" + strings.Replace(good, `"status":"fail"`, `"status":"critical"`, 1), `line 2: finding 1 (spf.lookup-limit): unknown status "critical"`, 2},
		{"wrong type", "{\"schema\": \"mfcheck.report/v1\",\n\"domain\": \"x.example\",\n\"findings\": \"none\"}", `line 3: not an mfcheck report: member "findings" has the wrong type (JSON string)`, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadReports(strings.NewReader(tt.in))
			require.Error(t, err)
			assert.EqualError(t, err, tt.want)
			assert.NotContains(t, err.Error(), "\n", "one-line errors")
			var re *ReadError
			if tt.line > 0 {
				require.ErrorAs(t, err, &re)
				assert.Equal(t, tt.line, re.Line)
			} else {
				assert.ErrorIs(t, err, ErrNoReport)
			}
		})
	}
}

func bulkSidesFirst() *Report {
	r := New("x.example", "health")
	r.StartedAt = fixedStart
	r.Add(Finding{ID: "spf.lookup-limit", Status: StatusFail, Subject: "x.example", Message: "m"})
	return r
}

func cutoverSet(t *testing.T) *DiffSet {
	t.Helper()
	s, err := DiffAll([]*Report{readinessReport()}, []*Report{smokeReport()})
	require.NoError(t, err)
	s.Tool.Version = "1.2.3-test"
	s.Before.Source, s.After.Source = "readiness.json", "smoke.json"
	return s
}

func bulkSet(t *testing.T) *DiffSet {
	t.Helper()
	before, after := bulkSides()
	s, err := DiffAll(before, after)
	require.NoError(t, err)
	s.Tool.Version = "1.2.3-test"
	s.Before.Source, s.After.Source = "nightly-2025-05-31.jsonl", "nightly-2025-06-01.jsonl"
	return s
}

func renderDiff(t *testing.T, f Format, opt DiffOptions, s *DiffSet) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, RenderDiff(&buf, f, opt, s))
	return buf.Bytes()
}

func TestDiffGolden(t *testing.T) {
	tests := []struct {
		file   string
		format Format
		opt    DiffOptions
		set    func(*testing.T) *DiffSet
	}{
		{"diff_cutover.txt", FormatTable, DiffOptions{}, cutoverSet},
		{"diff_cutover_color.txt", FormatTable, DiffOptions{Color: true}, cutoverSet},
		{"diff_cutover.json", FormatJSON, DiffOptions{}, cutoverSet},
		{"diff_cutover.md", FormatMarkdown, DiffOptions{}, cutoverSet},
		{"diff_cutover_errors_warn.json", FormatJSON, DiffOptions{Gate: Gate{FailOn: StatusWarn, ErrorsAreWorse: true}}, cutoverSet},
		{"diff_bulk.txt", FormatTable, DiffOptions{}, bulkSet},
		{"diff_bulk.json", FormatJSON, DiffOptions{}, bulkSet},
		{"diff_bulk.md", FormatMarkdown, DiffOptions{}, bulkSet},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			golden(t, tt.file, renderDiff(t, tt.format, tt.opt, tt.set(t)))
		})
	}
}

func TestDiffRenderSanitizes(t *testing.T) {
	s := cutoverSet(t)
	for _, f := range []Format{FormatTable, FormatMarkdown} {
		out := string(renderDiff(t, f, DiffOptions{}, s))
		assert.NotContains(t, out, "\x1b", f)
		assert.Contains(t, out, `x1b`, f, "shown, not emitted")
	}
	out := string(renderDiff(t, FormatTable, DiffOptions{}, s))
	assert.Contains(t, out, "! worse")
	assert.Contains(t, out, "Worse at or above fail: 3 changes in 1 domain.")

	var buf bytes.Buffer
	assert.Error(t, RenderDiff(&buf, FormatJUnit, DiffOptions{}, s))
	assert.False(t, s.Domains[0].Changes[0].Regression, "RenderDiff leaves the set alone")
	assert.False(t, s.GotWorse)
}

const diffSchemaURL = "https://mfcheck.dev/schema/diff/v1.json"

func compileDiffSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "diff.schema.json"))
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource(diffSchemaURL, doc))
	sch, err := c.Compile(diffSchemaURL)
	require.NoError(t, err)
	return sch
}

func TestDiffJSONMatchesSchema(t *testing.T) {
	sch := compileDiffSchema(t)
	goldens, err := filepath.Glob(filepath.Join("testdata", "golden", "diff_*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, goldens)
	var docs [][]byte
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		require.NoError(t, err)
		docs = append(docs, b)
	}
	empty, err := DiffAll(nil, nil)
	require.NoError(t, err)
	docs = append(docs, renderDiff(t, FormatJSON, DiffOptions{}, empty))
	b, a := pairReports(nil, nil)
	minimal, err := DiffAll([]*Report{b}, []*Report{a})
	require.NoError(t, err)
	docs = append(docs, renderDiff(t, FormatJSON, DiffOptions{}, minimal))
	for i, doc := range docs {
		assert.NoError(t, sch.Validate(decode(t, doc)), "document %d", i)
	}
}

func TestDiffSchemaRejects(t *testing.T) {
	sch := compileDiffSchema(t)
	good := renderDiff(t, FormatJSON, DiffOptions{}, cutoverSet(t))
	require.NoError(t, sch.Validate(decode(t, good)))
	dom := func(d map[string]any) map[string]any { return d["domains"].([]any)[0].(map[string]any) }
	change0 := func(d map[string]any) map[string]any { return dom(d)["changes"].([]any)[0].(map[string]any) }
	tests := []struct {
		name   string
		mutate func(map[string]any)
	}{
		{"wrong schema", func(d map[string]any) { d["schema"] = "mfcheck.report/v1" }},
		{"unknown top-level member", func(d map[string]any) { d["extra"] = 1 }},
		{"bad change", func(d map[string]any) { change0(d)["change"] = "different" }},
		{"listed unchanged", func(d map[string]any) { change0(d)["change"] = "unchanged" }},
		{"bad status", func(d map[string]any) { change0(d)["after"] = "critical" }},
		{"unknown change member", func(d map[string]any) { change0(d)["evidence"] = map[string]any{} }},
		{"counts without unchanged", func(d map[string]any) { delete(dom(d)["counts"].(map[string]any), "unchanged") }},
		{"fail_on error", func(d map[string]any) { d["fail_on"] = "error" }},
		{"missing worse", func(d map[string]any) { delete(dom(d), "worse") }},
		{"bad started_at", func(d map[string]any) { dom(d)["after"].(map[string]any)["started_at"] = "later" }},
		{"mx added not strings", func(d map[string]any) { dom(d)["mx"].(map[string]any)["added"] = []any{1} }},
		{"tls change without host", func(d map[string]any) { delete(dom(d)["tls"].([]any)[0].(map[string]any), "host") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decode(t, good)
			tt.mutate(d)
			assert.Error(t, sch.Validate(d))
		})
	}
}

func TestDiffErrorsAreTyped(t *testing.T) {
	_, err := ReadReports(strings.NewReader("x"))
	var re *ReadError
	require.True(t, errors.As(err, &re))
	assert.Equal(t, 1, re.Line)
}
