package smtpprobe

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/internal/testpki"
	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sha512Hex(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }

// daneWorld serves a zone with TLSA records for several test hosts, signed
// (AD=1) except under insecure.mfcheck.test, and returns a resolver for it.
func daneWorld(t *testing.T, p *pki) (*dnstest.Server, Resolver) {
	t.Helper()
	leafSPKI := sha256Hex(p.leaf.Cert.RawSubjectPublicKeyInfo)
	interCert := sha256Hex(p.inter.Cert.Raw)
	zone := fmt.Sprintf(`$ORIGIN mfcheck.test.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 127.0.0.1
_25._tcp.ee          TLSA 3 1 1 %[1]s
_25._tcp.ta          TLSA 2 0 1 %[2]s
_25._tcp.mixed       TLSA 3 1 1 %[3]s
_25._tcp.mixed       TLSA 1 1 1 %[1]s
_25._tcp.mixed       TLSA 3 0 2 %[4]s
_25._tcp.nomatch     TLSA 3 1 1 %[3]s
_25._tcp.pkix        TLSA 1 1 1 %[1]s
_25._tcp.pkix        TLSA 0 0 1 %[2]s
_25._tcp.insecure    TLSA 3 1 1 %[1]s
_2525._tcp.ee        TLSA 3 1 1 %[1]s
`, leafSPKI, interCert, sha256Hex([]byte("some other key")), sha512Hex(p.leaf.Cert.Raw))
	srv := dnstest.MustStart(t, dnstest.MustParseZone(t, "mfcheck.test.", zone))
	srv.SetAuthenticated("mfcheck.test", true)
	srv.SetAuthenticated("_25._tcp.insecure.mfcheck.test", false)
	srv.SetFault("_25._tcp.broken.mfcheck.test", dnstest.Fault{Rcode: dns.RcodeServerFailure})
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, AttemptTimeout: 2 * time.Second})
	require.NoError(t, err)
	return srv, c
}

func TestLookupTLSA(t *testing.T) {
	p := testPKI(t)
	_, res := daneWorld(t, p)
	ctx := context.Background()

	s := LookupTLSA(ctx, res, "ee.mfcheck.test", 0)
	assert.Equal(t, "_25._tcp.ee.mfcheck.test.", s.Name)
	assert.True(t, s.AD)
	assert.Empty(t, s.Err)
	require.Len(t, s.Records, 1)
	assert.Equal(t, TLSARecord{Usage: 3, Selector: 1, MatchingType: 1, Data: sha256Hex(p.leaf.Cert.RawSubjectPublicKeyInfo)}, s.Records[0])

	s = LookupTLSA(ctx, res, "ee.mfcheck.test.", 2525)
	assert.Equal(t, "_2525._tcp.ee.mfcheck.test.", s.Name)
	assert.Len(t, s.Records, 1)

	s = LookupTLSA(ctx, res, "insecure.mfcheck.test", 25)
	assert.False(t, s.AD)
	assert.Len(t, s.Records, 1)

	s = LookupTLSA(ctx, res, "none.mfcheck.test", 25)
	assert.Empty(t, s.Err)
	assert.Empty(t, s.Records)
	assert.Equal(t, resolver.OutcomeNXDomain, s.Outcome)

	s = LookupTLSA(ctx, res, "broken.mfcheck.test", 25)
	assert.NotEmpty(t, s.Err)
	assert.Equal(t, resolver.OutcomeServFail, s.Outcome)
}

func TestTLSAMatch(t *testing.T) {
	p := testPKI(t)
	chain := []*x509.Certificate{p.leaf.Cert, p.inter.Cert}
	leaf := p.leaf.Cert
	rec := func(u, s, m uint8, data string) TLSARecord {
		return TLSARecord{Usage: u, Selector: s, MatchingType: m, Data: data}
	}
	set := &TLSASet{Records: []TLSARecord{
		rec(3, 0, 0, hex.EncodeToString(leaf.Raw)),
		rec(3, 1, 0, hex.EncodeToString(leaf.RawSubjectPublicKeyInfo)),
		rec(3, 0, 1, sha256Hex(leaf.Raw)),
		rec(3, 1, 2, sha512Hex(leaf.RawSubjectPublicKeyInfo)),
		rec(2, 1, 1, sha256Hex(p.inter.Cert.RawSubjectPublicKeyInfo)),
		rec(2, 1, 1, sha256Hex(leaf.RawSubjectPublicKeyInfo)),         // DANE-TA never matches the leaf
		rec(3, 1, 1, sha256Hex(p.inter.Cert.RawSubjectPublicKeyInfo)), // DANE-EE never matches an issuer
		rec(1, 1, 1, sha256Hex(leaf.RawSubjectPublicKeyInfo)),
		rec(3, 2, 1, "00"),
		rec(3, 1, 7, "00"),
		rec(3, 1, 1, "not hex"),
	}}
	ms := set.Match(chain)
	require.Len(t, ms, len(set.Records))
	for i, want := range []struct {
		usable, matched bool
		cert            int
	}{
		{true, true, 0}, {true, true, 0}, {true, true, 0}, {true, true, 0},
		{true, true, 1}, {true, false, -1}, {true, false, -1},
		{false, false, -1}, {false, false, -1}, {false, false, -1}, {true, false, -1},
	} {
		assert.Equal(t, want.usable, ms[i].Usable, "record %d %s", i, ms[i].Record)
		assert.Equal(t, want.matched, ms[i].Matched, "record %d %s", i, ms[i].Record)
		assert.Equal(t, want.cert, ms[i].CertIndex, "record %d %s", i, ms[i].Record)
	}
	assert.Contains(t, ms[7].Reason, "RFC 7672 §3.1.3")
	assert.Empty(t, (*TLSASet)(nil).Match(chain))
	assert.Len(t, set.Match(nil), len(set.Records), "no chain: nothing matches, nothing panics")
}

func TestDANEFinding(t *testing.T) {
	p := testPKI(t)
	_, res := daneWorld(t, p)
	ctx := context.Background()
	good := Probe(ctx, smtpServer{TLS: serverConfig(p.leaf.TLSCertificate(true))}.start(t), p.opts())
	require.NotNil(t, good.TLS, good.Err)
	noTLS := Probe(ctx, smtpServer{}.start(t), p.opts())
	require.Empty(t, noTLS.Err)

	// A leaf for another name under the same intermediate: DANE-TA needs
	// the name, DANE-EE does not.
	wrongName, err := p.inter.Leaf(testpki.LeafOptions{DNSNames: []string{"elsewhere.example"}})
	require.NoError(t, err)
	wrong := Probe(ctx, smtpServer{TLS: serverConfig(wrongName.TLSCertificate(true))}.start(t), p.opts())
	require.NotNil(t, wrong.TLS)

	cases := []struct {
		host    string
		r       *Result
		status  report.Status
		outcome string
		msg     string
	}{
		{"ee", good, report.StatusPass, DANEValid, "DANE-EE ignores"},
		{"ta", good, report.StatusPass, DANEValid, "1 match"},
		{"ta", wrong, report.StatusFail, DANEMismatch, "none matches"},
		{"mixed", good, report.StatusPass, DANEValid, "3 TLSA record(s)"},
		{"nomatch", good, report.StatusFail, DANEMismatch, "DANE mismatch"},
		{"pkix", good, report.StatusWarn, DANEUnusable, "none usable"},
		{"insecure", good, report.StatusInfo, DANEUnauthenticated, "not DNSSEC-authenticated"},
		{"none", good, report.StatusInfo, DANENone, "No DANE"},
		{"broken", good, report.StatusError, DANEError, "Could not look up"},
		{"ee", noTLS, report.StatusFail, DANENoTLS, "does not offer STARTTLS"},
		{"ee", nil, report.StatusError, DANEError, "not probed"},
	}
	for _, tc := range cases {
		name := tc.host
		if tc.r != nil && tc.r != good {
			name += "/other-server"
		}
		t.Run(name, func(t *testing.T) {
			s := LookupTLSA(ctx, res, tc.host+".mfcheck.test", 25)
			f := DANEFinding("mx [127.0.0.1]", s, tc.r)
			assert.Equal(t, IDDANE, f.ID)
			assert.Equal(t, tc.status, f.Status, f.Message)
			assert.Equal(t, tc.outcome, f.Evidence["outcome"])
			assert.Contains(t, f.Message, tc.msg)
			if tc.status == report.StatusFail || tc.status == report.StatusWarn {
				assert.NotEmpty(t, f.Remediation)
			}
		})
	}

	// The evidence explains each record.
	f := DANEFinding("x", LookupTLSA(ctx, res, "mixed.mfcheck.test", 25), good)
	recs := f.Evidence["records"].([]map[string]any)
	require.Len(t, recs, 3)
	n := map[string]int{}
	for _, r := range recs {
		if r["matched"] == true {
			n["matched"]++
		}
		if r["usable"] == false {
			n["unusable"]++
			assert.Contains(t, r["reason"], "PKIX-EE")
		}
	}
	assert.Equal(t, map[string]int{"matched": 1, "unusable": 1}, n)
	assert.Equal(t, report.StatusError, DANEFinding("x", nil, good).Status)
}
