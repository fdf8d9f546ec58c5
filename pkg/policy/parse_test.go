package policy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/policy"
)

func ptr(i int) *int { return &i }

func TestParseDMARC(t *testing.T) {
	type want struct {
		p, sp string
		pct   *int
		rua   []string // hosts
		ruf   []string
		adkim string
	}
	good := []struct {
		name, txt string
		want      want
	}{
		// RFC 7489 Appendix B.2 examples.
		{"B.2.1 monitoring", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
			want{p: "none", rua: []string{"example.com"}, adkim: "r"}},
		{"B.2.3 third-party failure reports", "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net",
			want{p: "none", rua: []string{"example.com"}, ruf: []string{"thirdparty.example.net"}, adkim: "r"}},
		{"B.2.4 quarantine 25%", "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25",
			want{p: "quarantine", pct: ptr(25), rua: []string{"example.com", "thirdparty.example.net"}, adkim: "r"}},
		// §7.1: the authorization record of a report receiver.
		{"authorization record", "v=DMARC1", want{}},
		{"keywords are case-insensitive (RFC 5234 §2.3)", "v=DMARC1; p=Reject; sp=NONE; adkim=S", want{p: "reject", sp: "none", adkim: "s"}},
		{"white space around = and ;", "v = DMARC1 ;p = reject ; pct = 100 ;", want{p: "reject", pct: ptr(100), adkim: "r"}},
		{"unknown tags ignored (§6.3)", "v=DMARC1; p=reject; np=reject; psd=n", want{p: "reject", adkim: "r"}},
		{"pct 0", "v=DMARC1; p=reject; pct=0", want{p: "reject", pct: ptr(0), adkim: "r"}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := policy.ParseDMARC(tc.txt)
			if tc.want.p == "" {
				require.Error(t, err, "no p= is a syntax error")
				assert.ErrorIs(t, err, policy.ErrDMARCSyntax)
				require.NotNil(t, rec)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want.p, rec.Policy)
			assert.Equal(t, tc.want.sp, rec.SubdomainPolicy)
			assert.Equal(t, tc.want.pct, rec.Percent)
			assert.Equal(t, tc.want.adkim, rec.ADKIM)
			var rua, ruf []string
			for _, u := range rec.RUA {
				assert.Empty(t, u.Err)
				rua = append(rua, u.Host)
			}
			for _, u := range rec.RUF {
				ruf = append(ruf, u.Host)
			}
			assert.Equal(t, tc.want.rua, rua)
			assert.Equal(t, tc.want.ruf, ruf)
		})
	}
	rec, err := policy.ParseDMARC("v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25")
	require.NoError(t, err)
	assert.Equal(t, policy.ReportURI{URI: "mailto:tld-test@thirdparty.example.net!10m", Scheme: "mailto", Address: "tld-test@thirdparty.example.net", Host: "thirdparty.example.net", MaxSize: "10m"}, rec.RUA[1])
	assert.Equal(t, 25, rec.EffectivePercent())

	bad := []struct {
		name, txt string
		class     error
		validRUA  bool
	}{
		{"v not first", "p=none; v=DMARC1", policy.ErrNotDMARC, false},
		{"version case", "v=dmarc1; p=none", policy.ErrNotDMARC, false},
		{"SPF record", "v=spf1 -all", policy.ErrNotDMARC, false},
		{"empty", "", policy.ErrNotDMARC, false},
		{"duplicate tag", "v=DMARC1; p=none; p=reject", policy.ErrDMARCSyntax, false},
		{"invalid p with valid rua", "v=DMARC1; p=bogus; rua=mailto:d@example.com", policy.ErrDMARCSyntax, true},
		{"invalid sp", "v=DMARC1; p=reject; sp=never", policy.ErrDMARCSyntax, false},
		{"pct with sign", "v=DMARC1; p=reject; pct=+50", policy.ErrDMARCSyntax, false},
		{"pct over 100", "v=DMARC1; p=reject; pct=101", policy.ErrDMARCSyntax, false},
		{"not name=value", "v=DMARC1; p=reject; rua", policy.ErrDMARCSyntax, false},
		{"bad alignment", "v=DMARC1; p=reject; aspf=x", policy.ErrDMARCSyntax, false},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := policy.ParseDMARC(tc.txt)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.class)
			if tc.class == policy.ErrNotDMARC {
				assert.Nil(t, rec)
				return
			}
			require.NotNil(t, rec)
			assert.Equal(t, tc.validRUA, rec.HasValidRUA())
		})
	}

	rec, err = policy.ParseDMARC("v=DMARC1; p=none; rua=dmarc@example.com,mailto:x@y.example!big,mailto:nobody")
	require.NoError(t, err, "bad URIs are skipped by receivers, not a record error")
	require.Len(t, rec.RUA, 3)
	for _, u := range rec.RUA {
		assert.NotEmpty(t, u.Err, u.URI)
	}
}

func TestParseMTASTSRecord(t *testing.T) {
	good := map[string]string{
		"v=STSv1; id=20160831085700Z;":                 "20160831085700Z", // RFC 8461 §3.1 example
		"v=STSv1;id=1":                                 "1",
		"v=STSv1 ; id=abc ;":                           "abc",
		"v=STSv1; id=12345678901234567890123456789012": "12345678901234567890123456789012",
		"v=STSv1; id=x; ext_1.a=some-value!":           "x",
	}
	for txt, id := range good {
		rec, err := policy.ParseMTASTSRecord(txt)
		if assert.NoError(t, err, txt) {
			assert.Equal(t, id, rec.ID, txt)
		}
	}
	rec, err := policy.ParseMTASTSRecord("v=STSv1; id=x; ext_1.a=some-value!")
	require.NoError(t, err)
	assert.Equal(t, []policy.Tag{{Name: "ext_1.a", Value: "some-value!"}}, rec.Extensions)
	assert.Equal(t, "v=STSv1; id=x; ext_1.a=some-value!", rec.String())

	for _, txt := range []string{
		"", "v=STSv1", "v=STSv1;", "v=STSv1; id=", "v=STSv1; id=abc-1", "v=STSv1 id=1",
		"V=STSv1; id=1", "v=stsv1; id=1", "v=STSv1; id=1; id=2", "v=STSv1; id=123456789012345678901234567890123",
		"v=STSv1; ; id=1", "v=STSv1; id = 1", "v=STSv1; id=1; v=STSv1", "v=STSv1; id=1; x=a b", " v=STSv1; id=1",
		"v=STSv10; id=1",
	} {
		_, err := policy.ParseMTASTSRecord(txt)
		assert.ErrorIs(t, err, policy.ErrMTASTSRecord, "%q", txt)
	}
}

// The example policy of RFC 8461 §3.2.
const rfcPolicy = `version: STSv1
mode: enforce
mx: mail.example.com
mx: *.example.net
mx: backupmx.example.com
max_age: 604800
`

func TestParseMTASTSPolicy(t *testing.T) {
	for name, body := range map[string]string{
		"LF": rfcPolicy, "CRLF": strings.ReplaceAll(rfcPolicy, "\n", "\r\n"), "no final newline": strings.TrimSuffix(rfcPolicy, "\n"),
		"trailing white space and blank lines": strings.ReplaceAll(rfcPolicy, "\n", " \t\n\n"),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := policy.ParseMTASTSPolicy([]byte(body))
			require.NoError(t, err)
			assert.Equal(t, "STSv1", p.Version)
			assert.Equal(t, "enforce", p.Mode)
			assert.Equal(t, []string{"mail.example.com", "*.example.net", "backupmx.example.com"}, p.MX)
			assert.Equal(t, int64(604800), p.MaxAge)
			assert.Equal(t, rfcPolicy, p.String())
		})
	}

	p, err := policy.ParseMTASTSPolicy([]byte("version: STSv1\nmode: none\nmax_age: 86400\ncomment: ünïcode is fine\n"))
	require.NoError(t, err, "mode none needs no mx")
	assert.Equal(t, []policy.Tag{{Name: "comment", Value: "ünïcode is fine"}}, p.Extensions)

	for name, body := range map[string]string{
		"missing max_age":         "version: STSv1\nmode: enforce\nmx: a.example\n",
		"missing mx":              "version: STSv1\nmode: enforce\nmax_age: 1\n",
		"duplicate mode":          "version: STSv1\nmode: enforce\nmode: testing\nmx: a.example\nmax_age: 1\n",
		"bad version":             "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
		"bad mode":                "version: STSv1\nmode: report\nmx: a.example\nmax_age: 1\n",
		"keys are case-sensitive": "version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 1\n",
		"space before colon":      "version: STSv1\nmode : enforce\nmx: a.example\nmax_age: 1\n",
		"two wildcards":           "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n",
		"wildcard inside":         "version: STSv1\nmode: enforce\nmx: mx*.example\nmax_age: 1\n",
		"max_age 11 digits":       "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n",
		"negative max_age":        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
		"control character":       "version: STSv1\nmode: enforce\x00\nmx: a.example\nmax_age: 1\n",
		"bare CR":                 "version: STSv1\rmode: enforce\nmx: a.example\nmax_age: 1\n",
		"not UTF-8":               "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nx: \xff\n",
		"JSON (an old draft)":     `{"version": "STSv1", "mode": "enforce", "mx": ["a.example"], "max_age": 1}`,
		"too large":               rfcPolicy + strings.Repeat("x: y\n", policy.MaxPolicySize/5+1),
	} {
		_, err := policy.ParseMTASTSPolicy([]byte(body))
		assert.ErrorIs(t, err, policy.ErrMTASTSPolicy, name)
	}
}

func TestMatchMX(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		// RFC 8461 §4.1.
		{"*.example.com", "mail.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "foo.bar.example.com", false},
		{"mail.example.com", "mail.example.com", true},
		{"mail.example.com", "MAIL.Example.COM.", true},
		{"*.Example.com", "mx1.example.com.", true},
		{"mail.example.com", "mail2.example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "", false},
		{"", "example.com", false},
		{"*.", "a.", false},
	} {
		assert.Equal(t, tc.want, policy.MatchMX(tc.pattern, tc.host), "%s ~ %s", tc.pattern, tc.host)
	}
}

func TestParseTLSRPT(t *testing.T) {
	for txt, rua := range map[string][]string{
		// RFC 8460 §3 examples.
		"v=TLSRPTv1;rua=mailto:reports@example.com":                       {"mailto:reports@example.com"},
		"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt":         {"https://reporting.example.com/v1/tlsrpt"},
		"v=TLSRPTv1; rua=mailto:a@example.com , https://r.example.com/x;": {"mailto:a@example.com", "https://r.example.com/x"},
		"v=TLSRPTv1; ext=1; rua=mailto:a@example.com":                     {"mailto:a@example.com"},
	} {
		rec, err := policy.ParseTLSRPT(txt)
		if assert.NoError(t, err, txt) {
			assert.Equal(t, rua, rec.RUA, txt)
		}
	}
	for _, txt := range []string{
		"", "v=TLSRPTv1", "v=TLSRPTv1;", "v=TLSRPTv1; rua=", "v=TLSRPTv1; rua=ftp://example.com", "v=TLSRPTv1; rua=reports@example.com",
		"v=TLSRPTv1; rua=mailto:a@example.com!10m", "v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example",
		"v=TLSRPTv2; rua=mailto:a@example.com", "v=TLSRPTv1 rua=mailto:a@example.com", "v=TLSRPTv1; rua=https:///x",
		"v=TLSRPTv1; rua=mailto:nobody",
	} {
		_, err := policy.ParseTLSRPT(txt)
		assert.ErrorIs(t, err, policy.ErrTLSRPT, "%q", txt)
	}
}

func TestParseDKIMKey(t *testing.T) {
	k, err := policy.ParseDKIMKey("v=DKIM1; p=")
	require.NoError(t, err)
	assert.True(t, k.Revoked)
	k, err = policy.ParseDKIMKey("k=ed25519; t=y:s; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=") // RFC 8463 Appendix A.2
	require.NoError(t, err)
	assert.Equal(t, "ed25519", k.KeyType)
	assert.True(t, k.Testing)
	for _, txt := range []string{"v=DKIM2; p=", "k=rsa; v=DKIM1; p=", "v=DKIM1", "v=DKIM1; k=dsa; p=AAAA", "v=DKIM1; p=!!", "v=DKIM1; k=ed25519; p=AAAA", "v=DKIM1; p=AAAA"} {
		_, err := policy.ParseDKIMKey(txt)
		assert.ErrorIs(t, err, policy.ErrDKIMKey, txt)
	}
}
