package policy_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/policy"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

func TestProfileSelectors(t *testing.T) {
	m365, err := profile.Builtin().Get("microsoft365")
	require.NoError(t, err)
	sels := policy.ProfileSelectors(m365)
	assert.Len(t, sels, 2)
	assert.Len(t, sels["selector1"], 2, "both selector1 forms")
	assert.Len(t, sels["selector2"], 1)

	google, err := profile.Builtin().Get("google-workspace")
	require.NoError(t, err)
	assert.Contains(t, policy.ProfileSelectors(google), "google")

	sophos, err := profile.Builtin().Get("sophos-central-email")
	require.NoError(t, err)
	assert.Empty(t, policy.ProfileSelectors(sophos), "its pattern is the service's own d= signature")
	assert.Empty(t, policy.ProfileSelectors(nil))
}

func TestDKIMSelectors(t *testing.T) {
	w := startWorld(t)
	m365, err := profile.Builtin().Get("microsoft365")
	require.NoError(t, err)
	res := w.analyze(t, "dkim.test", policy.Options{Mailbox: m365,
		Selectors: []string{"strong", "weak", "tiny", "revoked", "ed", "garbage", "twice", "missing", "Selector1", "bad selector"}})

	got := map[string]report.Status{}
	for _, f := range byID(res.Findings, policy.IDDKIMSelectors) {
		got[f.Subject] = f.Status
	}
	assert.Equal(t, map[string]report.Status{
		"selector1._domainkey.dkim.test":    "pass", // CNAME to the tenant, 2048-bit key behind it
		"selector2._domainkey.dkim.test":    "warn", // a profile selector whose alias dangles
		"strong._domainkey.dkim.test":       "pass",
		"weak._domainkey.dkim.test":         "warn", // 1024 bits: under RFC 8301's SHOULD
		"tiny._domainkey.dkim.test":         "fail", // 512 bits: under RFC 8301's MUST
		"revoked._domainkey.dkim.test":      "warn",
		"ed._domainkey.dkim.test":           "pass",
		"garbage._domainkey.dkim.test":      "fail",
		"twice._domainkey.dkim.test":        "fail",
		"missing._domainkey.dkim.test":      "fail", // the user named it: it must exist
		"bad selector._domainkey.dkim.test": "fail",
	}, got)

	bySel := map[string]policy.DKIMSelector{}
	for _, s := range res.DKIM {
		bySel[s.Selector] = s
	}
	s1 := bySel["selector1"]
	assert.Equal(t, []string{"profile:microsoft365", "user"}, s1.Sources, "Selector1 from the user is the same selector")
	assert.Equal(t, []string{"selector1-dkim-test._domainkey.tenant.onmicrosoft.com"}, s1.CNAMEs)
	assert.Equal(t, 2048, s1.Key.Bits)
	f := findSubject(res.Findings, "selector1._domainkey.dkim.test")
	assert.Equal(t, true, f.Evidence["cname_matches_profile"])
	assert.Contains(t, f.Message, "via CNAME selector1-dkim-test._domainkey.tenant.onmicrosoft.com")

	s2 := findSubject(res.Findings, "selector2._domainkey.dkim.test")
	assert.Contains(t, s2.Message, "alias of selector2-dkim-test._domainkey.tenant.onmicrosoft.com, which has no TXT record")
	assert.Equal(t, 1024, bySel["weak"].Key.Bits)
	assert.Equal(t, 512, bySel["tiny"].Key.Bits)
	assert.Equal(t, "ed25519", bySel["ed"].Key.KeyType)
	assert.True(t, bySel["revoked"].Key.Revoked)
}

func findSubject(fs []report.Finding, subject string) report.Finding {
	for _, f := range fs {
		if f.Subject == subject {
			return f
		}
	}
	return report.Finding{}
}

func TestDKIMNoSelectorsAndFailures(t *testing.T) {
	w := startWorld(t)
	res := w.analyze(t, "dkim.test", policy.Options{})
	f := one(t, res.Findings, policy.IDDKIMSelectors)
	assert.Equal(t, report.StatusInfo, f.Status)
	assert.Contains(t, f.Message, "none was given")

	w.dns.SetFault("strong._domainkey.dkim.test", dnstest.Fault{Rcode: dns.RcodeServerFailure})
	res = w.analyze(t, "dkim.test", policy.Options{Selectors: []string{"strong"}})
	assert.Equal(t, report.StatusError, one(t, res.Findings, policy.IDDKIMSelectors).Status)
}

func TestTLSRPTFindings(t *testing.T) {
	w := startWorld(t)
	f := one(t, w.analyze(t, "badsts.test", policy.Options{}).Findings, policy.IDTLSRPTPresent)
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Contains(t, f.Message, `scheme "ftp"`)

	w.dns.SetFault("_smtp._tls.sts.test", dnstest.Fault{Drop: true})
	// The policy fetch is not the point here: refuse it without touching
	// any port.
	refuse := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("refused by the test") }
	res := w.analyze(t, "sts.test", policy.Options{MXHosts: []string{}, Dial: refuse})
	assert.Equal(t, report.StatusError, one(t, res.Findings, policy.IDTLSRPTPresent).Status)
}
