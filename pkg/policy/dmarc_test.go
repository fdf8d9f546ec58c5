package policy_test

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/policy"
	"github.com/mfcheck/mfcheck/pkg/report"
)

func TestDMARCCases(t *testing.T) {
	w := startWorld(t)
	cases := []struct {
		domain string
		want   map[string][]report.Status
	}{
		{"good.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"pass"}, policy.IDDMARCRUAAuthorization: {"pass"}}},
		{"none.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"warn"}, policy.IDDMARCRUAAuthorization: {"pass"}}},
		{"pct.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"pass", "warn"}, policy.IDDMARCRUAAuthorization: {"pass"}}},
		{"spweak.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"pass", "warn"}, policy.IDDMARCRUAAuthorization: {"pass"}}},
		{"multi.test", map[string][]report.Status{policy.IDDMARCPresent: {"fail"}}},
		{"absent.test", map[string][]report.Status{policy.IDDMARCPresent: {"fail"}}},
		{"mail.inherit.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"pass"}, policy.IDDMARCRUAAuthorization: {"pass"}}},
		{"norua.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"pass"}, policy.IDDMARCRUAAuthorization: {"warn"}}},
		{"bad.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"fail"}, policy.IDDMARCRUAAuthorization: {"pass"}}},
		{"ext.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"pass"}, policy.IDDMARCRUAAuthorization: {"pass", "fail", "pass"}}},
		{"wild.test", map[string][]report.Status{policy.IDDMARCPresent: {"pass"}, policy.IDDMARCPolicy: {"pass"}, policy.IDDMARCRUAAuthorization: {"pass"}}},
	}
	for _, tc := range cases {
		t.Run(tc.domain, func(t *testing.T) {
			res := w.analyze(t, tc.domain, policy.Options{Mode: policy.ModeHealth, MXHosts: []string{}})
			got := statuses(res.Findings)
			for id, st := range tc.want {
				assert.Equal(t, st, got[id], id)
			}
			for id := range got {
				if id[:5] == "dmarc" {
					_, ok := tc.want[id]
					assert.True(t, ok, "unexpected %s: %v", id, byID(res.Findings, id))
				}
			}
		})
	}
}

func TestDMARCDetails(t *testing.T) {
	w := startWorld(t)

	t.Run("inherited record says where it came from and applies sp", func(t *testing.T) {
		res := w.analyze(t, "mail.inherit.test", policy.Options{})
		d := res.DMARC
		assert.True(t, d.Inherited)
		assert.Equal(t, "inherit.test", d.OrgDomain)
		assert.Equal(t, "_dmarc.inherit.test", d.RecordName)
		assert.Equal(t, "quarantine", d.Effective)
		require.Len(t, d.Asked, 2)
		assert.Equal(t, "nxdomain", d.Asked[0].Outcome)
		f := one(t, res.Findings, policy.IDDMARCPresent)
		assert.Contains(t, f.Message, "organizational domain's record at _dmarc.inherit.test applies")
		assert.Contains(t, one(t, res.Findings, policy.IDDMARCPolicy).Message, "sp=quarantine")
	})

	t.Run("p=none explains itself and proposes quarantine", func(t *testing.T) {
		f := one(t, w.analyze(t, "none.test", policy.Options{}).Findings, policy.IDDMARCPolicy)
		assert.Contains(t, f.Message, "monitoring only")
		assert.Contains(t, f.Remediation, `_dmarc.none.test. IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@none.test"`)
	})

	t.Run("pct names the share and the weaker policy", func(t *testing.T) {
		fs := byID(w.analyze(t, "pct.test", policy.Options{}).Findings, policy.IDDMARCPolicy)
		require.Len(t, fs, 2)
		assert.Contains(t, fs[1].Message, "pct=25")
		assert.Contains(t, fs[1].Message, "other 75% gets p=none")
	})

	t.Run("multiple records list both", func(t *testing.T) {
		f := one(t, w.analyze(t, "multi.test", policy.Options{}).Findings, policy.IDDMARCPresent)
		assert.Contains(t, f.Message, "§6.6.3 step 5")
		assert.Len(t, f.Evidence["records"], 2)
	})

	t.Run("absent gives the record to publish", func(t *testing.T) {
		f := one(t, w.analyze(t, "absent.test", policy.Options{}).Findings, policy.IDDMARCPresent)
		assert.Contains(t, f.Remediation, `_dmarc.absent.test. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@absent.test"`)
	})

	t.Run("invalid p with a valid rua is treated as p=none", func(t *testing.T) {
		res := w.analyze(t, "bad.test", policy.Options{})
		assert.Equal(t, "none", res.DMARC.Effective)
		f := one(t, res.Findings, policy.IDDMARCPolicy)
		assert.Contains(t, f.Message, "act as if it said p=none")
	})

	t.Run("report destinations", func(t *testing.T) {
		res := w.analyze(t, "ext.test", policy.Options{})
		fs := byID(res.Findings, policy.IDDMARCRUAAuthorization)
		require.Len(t, fs, 3)
		assert.Equal(t, "ext.test", fs[0].Subject) // the ruf to itself
		assert.Equal(t, "ext.test._report._dmarc.noauth.test", fs[1].Subject)
		assert.Equal(t, report.StatusFail, fs[1].Status)
		assert.Contains(t, fs[1].Message, "none starting with v=DMARC1")
		assert.Contains(t, fs[1].Remediation, `ext.test._report._dmarc.noauth.test. IN TXT "v=DMARC1"`)
		assert.Equal(t, []string{"mailto:b@noauth.test!10m"}, fs[1].Evidence["uris"])
		assert.Equal(t, "ext.test._report._dmarc.reports.vendor.test", fs[2].Subject)
		assert.Equal(t, report.StatusPass, fs[2].Status)
	})
}

// A failed lookup is "could not check", never "absent", and never falls
// back to the organizational domain.
func TestDMARCLookupFailures(t *testing.T) {
	cases := []struct {
		name, domain, fault string
		f                   dnstest.Fault
		id                  string
	}{
		{"servfail", "good.test", "_dmarc.good.test", dnstest.Fault{Rcode: dns.RcodeServerFailure}, policy.IDDMARCPresent},
		{"timeout", "good.test", "_dmarc.good.test", dnstest.Fault{Drop: true}, policy.IDDMARCPresent},
		{"servfail on the subdomain: no fallback", "mail.inherit.test", "_dmarc.mail.inherit.test", dnstest.Fault{Rcode: dns.RcodeServerFailure}, policy.IDDMARCPresent},
		{"servfail at the organizational domain", "mail.inherit.test", "_dmarc.inherit.test", dnstest.Fault{Rcode: dns.RcodeServerFailure}, policy.IDDMARCPresent},
		{"authorization lookup fails", "ext.test", "ext.test._report._dmarc.noauth.test", dnstest.Fault{Rcode: dns.RcodeServerFailure}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := startWorld(t)
			w.dns.SetFault(tc.fault, tc.f)
			res := w.analyze(t, tc.domain, policy.Options{MXHosts: []string{}})
			if tc.id != "" {
				f := one(t, res.Findings, tc.id)
				assert.Equal(t, report.StatusError, f.Status, f.Message)
				assert.Contains(t, f.Message, "Could not look up")
				assert.Empty(t, byID(res.Findings, policy.IDDMARCPolicy))
				assert.False(t, res.DMARC.Inherited)
				return
			}
			fs := byID(res.Findings, policy.IDDMARCRUAAuthorization)
			got := map[string]report.Status{}
			for _, f := range fs {
				got[f.Subject] = f.Status
			}
			assert.Equal(t, report.StatusError, got["ext.test._report._dmarc.noauth.test"])
			assert.Equal(t, report.StatusPass, got["ext.test._report._dmarc.reports.vendor.test"])
		})
	}
}
