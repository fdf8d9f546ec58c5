package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/policy"
)

// The seeds are the table tests' inputs; testdata/fuzz/<target> holds what
// fuzzing found worth keeping.

func FuzzParseDMARC(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com",
		"v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25",
		"v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net",
		"v = DMARC1 ;p = Reject ; sp=NONE; adkim=s; aspf=r; fo=0:d; rf=afrf; ri=86400;",
		"v=DMARC1; p=bogus; rua=mailto:d@example.com",
		"v=DMARC1; p=none; p=reject", "p=none; v=DMARC1", "v=DMARC1; pct=+50; p=none",
		"v=DMARC1; p=none; rua=https://r.example/x!1t,mailto:%61@b.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := policy.ParseDMARC(txt)
		switch {
		case errors.Is(err, policy.ErrNotDMARC):
			require.Nil(t, rec)
			return
		case err != nil:
			require.ErrorIs(t, err, policy.ErrDMARCSyntax)
			require.NotNil(t, rec, "a syntax error keeps the partial record")
			return
		}
		require.NotNil(t, rec)
		assert.Contains(t, []string{"none", "quarantine", "reject"}, rec.Policy)
		if rec.Percent != nil {
			assert.True(t, *rec.Percent >= 0 && *rec.Percent <= 100)
		}
		// Round trip: the canonical form parses to the same record.
		again, err := policy.ParseDMARC(rec.String())
		require.NoError(t, err, "canonical form %q of %q", rec.String(), txt)
		again.Raw = rec.Raw
		assert.Equal(t, rec, again)
	})
}

func FuzzParseMTASTSRecord(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20160831085700Z;", "v=STSv1;id=1", "v=STSv1 ; id=abc ;", "v=STSv1; id=x; ext_1.a=some-value!",
		"v=STSv1; id=", "v=STSv1; id=abc-1", "v=STSv1; id=1; id=2", "v=STSv1; ; id=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := policy.ParseMTASTSRecord(txt)
		if err != nil {
			require.ErrorIs(t, err, policy.ErrMTASTSRecord)
			require.Nil(t, rec)
			return
		}
		assert.True(t, len(rec.ID) >= 1 && len(rec.ID) <= 32)
		assert.True(t, strings.HasPrefix(txt, "v=STSv1"))
		again, err := policy.ParseMTASTSRecord(rec.String())
		require.NoError(t, err, "canonical form %q", rec.String())
		assert.Equal(t, rec, again)
	})
}

func FuzzParseMTASTSPolicy(f *testing.F) {
	for _, s := range []string{
		rfcPolicy, strings.ReplaceAll(rfcPolicy, "\n", "\r\n"),
		"version: STSv1\nmode: none\nmax_age: 86400\ncomment: ünïcode\n",
		"version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 31557600",
		"version: STSv1\nmode: enforce\nmode: testing\nmx: a.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := policy.ParseMTASTSPolicy(body)
		if err != nil {
			require.ErrorIs(t, err, policy.ErrMTASTSPolicy)
			require.Nil(t, p)
			return
		}
		assert.Equal(t, "STSv1", p.Version)
		assert.Contains(t, []string{"enforce", "testing", "none"}, p.Mode)
		assert.True(t, p.Mode == "none" || len(p.MX) > 0)
		for _, pat := range p.MX {
			// Every pattern matches the host it describes.
			host := pat
			if rest, ok := strings.CutPrefix(pat, "*."); ok {
				host = "x." + rest
				assert.False(t, policy.MatchMX(pat, rest), "a wildcard needs one more label")
			}
			assert.True(t, policy.MatchMX(pat, strings.ToUpper(host)+"."), "%s ~ %s", pat, host)
		}
		again, err := policy.ParseMTASTSPolicy([]byte(p.String()))
		require.NoError(t, err, "canonical form %q", p.String())
		assert.Equal(t, p, again)
	})
}

func FuzzParseTLSRPT(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1;rua=mailto:reports@example.com", "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
		"v=TLSRPTv1; rua=mailto:a@example.com , https://r.example.com/x;", "v=TLSRPTv1; ext=1; rua=mailto:a@example.com",
		"v=TLSRPTv1; rua=mailto:a@example.com!10m", "v=TLSRPTv1; rua=ftp://example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := policy.ParseTLSRPT(txt)
		if err != nil {
			require.ErrorIs(t, err, policy.ErrTLSRPT)
			require.Nil(t, rec)
			return
		}
		require.NotEmpty(t, rec.RUA)
		for _, u := range rec.RUA {
			assert.True(t, strings.HasPrefix(strings.ToLower(u), "mailto:") || strings.HasPrefix(strings.ToLower(u), "https:"), u)
		}
		again, err := policy.ParseTLSRPT(rec.String())
		require.NoError(t, err, "canonical form %q", rec.String())
		assert.Equal(t, rec, again)
	})
}

func FuzzParseDKIMKey(f *testing.F) {
	for _, s := range []string{"v=DKIM1; p=", "k=ed25519; t=y:s; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "v=DKIM1; k=rsa; p=AAAA", "v=DKIM1; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		k, err := policy.ParseDKIMKey(txt)
		if err != nil {
			require.ErrorIs(t, err, policy.ErrDKIMKey)
			return
		}
		assert.True(t, k.Revoked || k.Bits > 0)
	})
}
