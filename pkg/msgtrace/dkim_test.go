package msgtrace

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Keys are made by the test, never committed.
var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t *testing.T) (*rsa.PrivateKey, ed25519.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		_, edKey, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
	})
	return rsaKey, edKey
}

// txtStrings splits a record into 255-byte character-strings, as a zone
// must hold a 2048-bit key (RFC 6376 §3.6.2.2: the verifier joins them).
func txtStrings(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	parts = append(parts, `"`+s+`"`)
	return strings.Join(parts, " ")
}

// dkimWorld serves fabrikam.example's keys from an in-process DNS server
// and returns a resolver client pointed at it.
func dkimWorld(t *testing.T) (*dnstest.Server, *resolver.Client) {
	t.Helper()
	rk, ek := testKeys(t)
	der, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	require.NoError(t, err)
	rsaRec := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	edRec := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(ek.Public().(ed25519.PublicKey))
	zone := fmt.Sprintf(`$ORIGIN fabrikam.example.
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 127.0.0.1
rsa1._domainkey TXT %s
ed1._domainkey TXT %s
revoked._domainkey TXT "v=DKIM1; k=rsa; p="
`, txtStrings(rsaRec), txtStrings(edRec))
	srv := dnstest.MustStart(t, dnstest.MustParseZone(t, "fabrikam.example.", zone))
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, AttemptTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	return srv, c
}

const unsignedMsg = "From: Bob <bob@fabrikam.example>\r\n" +
	"To: alice@contoso.example\r\n" +
	"Subject: signed test\r\n" +
	"Date: Tue, 1 Dec 2026 09:00:00 +0000\r\n" +
	"Message-ID: <signed-1@fabrikam.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"Hello, signed.\r\n"

// received is what the receivers add after signing.
const received = "Received: from eu-smtp-delivery-1.mimecast.com (185.58.86.151) by AM6EUR05FT012.mail.protection.outlook.com (10.233.240.104) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8093.13 via Frontend Transport; Tue, 1 Dec 2026 09:00:04 +0000\r\n" +
	"Received: from mail.fabrikam.example (mail.fabrikam.example [203.0.113.25]) by relay.mimecast.com with ESMTP with STARTTLS (version=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384) id uk-mta-1; Tue, 01 Dec 2026 09:00:02 +0000\r\n"

func sign(t *testing.T, msg, domain, selector string, key crypto.Signer) string {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
		Domain: domain, Selector: selector, Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID"},
	})
	require.NoError(t, err)
	return out.String()
}

func analyzeSigned(t *testing.T, msg string, r Resolver) (*Trace, []report.Finding) {
	t.Helper()
	tr := Analyze(context.Background(), []byte(received+msg), Options{Resolver: r, Now: fixedNow})
	validate(t, tr)
	return tr, only(t, tr, IDDKIM)
}

func TestDKIMPassRSAAndEd25519(t *testing.T) {
	srv, c := dkimWorld(t)
	rk, ek := testKeys(t)
	msg := sign(t, sign(t, unsignedMsg, "fabrikam.example", "rsa1", rk), "fabrikam.example", "ed1", ek)
	tr, fs := analyzeSigned(t, msg, c)
	require.Len(t, fs, 2)
	require.Len(t, tr.DKIM, 2)
	for i, f := range fs {
		assert.Equal(t, report.StatusPass, f.Status, f.Message)
		assert.True(t, tr.DKIM[i].Verified)
		assert.True(t, tr.DKIM[i].Aligned)
		assert.Equal(t, "ok", tr.DKIM[i].KeyOutcome)
	}
	// The outer (last added) signature comes first.
	assert.Equal(t, "ed1", tr.DKIM[0].Selector)
	assert.Equal(t, "ed25519-sha256", tr.DKIM[0].Algorithm)
	assert.Equal(t, "rsa1", tr.DKIM[1].Selector)
	assert.Contains(t, tr.DKIM[1].KeyRecord, "k=rsa", "multi-string TXT joined")
	assert.Equal(t, 1, srv.Count("rsa1._domainkey.fabrikam.example.", dns.TypeTXT))
}

func TestDKIMLFLineEndings(t *testing.T) {
	// A Maildir file holds LF line endings; the signature was made over CRLF.
	_, c := dkimWorld(t)
	_, ek := testKeys(t)
	msg := strings.ReplaceAll(sign(t, unsignedMsg, "fabrikam.example", "ed1", ek), "\r\n", "\n")
	_, fs := analyzeSigned(t, msg, c)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusPass, fs[0].Status, fs[0].Message)
}

func TestDKIMTamperedBody(t *testing.T) {
	_, c := dkimWorld(t)
	rk, _ := testKeys(t)
	msg := strings.Replace(sign(t, unsignedMsg, "fabrikam.example", "rsa1", rk), "Hello, signed.", "Hello, signed.\r\n-- scanned by the gateway", 1)
	tr, fs := analyzeSigned(t, msg, c)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusFail, fs[0].Status)
	assert.Equal(t, DKIMBroken, tr.DKIM[0].Result)
	assert.Contains(t, fs[0].Message, "the body changed after signing")
	assert.Contains(t, fs[0].Remediation, "sign after it")
}

func TestDKIMTamperedHeader(t *testing.T) {
	_, c := dkimWorld(t)
	_, ek := testKeys(t)
	msg := strings.Replace(sign(t, unsignedMsg, "fabrikam.example", "ed1", ek), "Subject: signed test", "Subject: [EXTERNAL] signed test", 1)
	tr, fs := analyzeSigned(t, msg, c)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusFail, fs[0].Status)
	assert.Equal(t, DKIMBroken, tr.DKIM[0].Result)
	assert.Contains(t, fs[0].Message, "a signed header field")
}

func TestDKIMKeyNotFound(t *testing.T) {
	_, c := dkimWorld(t)
	_, ek := testKeys(t)
	msg := sign(t, unsignedMsg, "fabrikam.example", "gone", ek)
	tr, fs := analyzeSigned(t, msg, c)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusFail, fs[0].Status)
	assert.Equal(t, DKIMKeyNotFound, tr.DKIM[0].Result)
	assert.Equal(t, "nxdomain", tr.DKIM[0].KeyOutcome)
	assert.Contains(t, fs[0].Message, "not in DNS")
	assert.Contains(t, fs[0].Remediation, "gone._domainkey.fabrikam.example")
}

func TestDKIMRevokedKey(t *testing.T) {
	_, c := dkimWorld(t)
	rk, _ := testKeys(t)
	msg := sign(t, unsignedMsg, "fabrikam.example", "revoked", rk)
	tr, fs := analyzeSigned(t, msg, c)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusFail, fs[0].Status)
	assert.Equal(t, DKIMKeyInvalid, tr.DKIM[0].Result)
	assert.Contains(t, tr.DKIM[0].Error, "revoked")
}

func TestDKIMServFailIsError(t *testing.T) {
	srv, c := dkimWorld(t)
	rk, _ := testKeys(t)
	srv.SetFault("rsa1._domainkey.fabrikam.example", dnstest.Fault{Rcode: dns.RcodeServerFailure})
	msg := sign(t, unsignedMsg, "fabrikam.example", "rsa1", rk)
	tr, fs := analyzeSigned(t, msg, c)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusError, fs[0].Status, "a lookup failure is not a broken signature")
	assert.Equal(t, DKIMDNSError, tr.DKIM[0].Result)
	assert.Equal(t, "servfail", tr.DKIM[0].KeyOutcome)
	assert.Contains(t, fs[0].Message, "Could not look up")
}

func TestDKIMNoResolver(t *testing.T) {
	_, ek := testKeys(t)
	msg := sign(t, unsignedMsg, "fabrikam.example", "ed1", ek)
	tr, fs := analyzeSigned(t, msg, nil)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusInfo, fs[0].Status)
	assert.Contains(t, fs[0].Message, "not verified: no resolver")
	require.Len(t, tr.DKIM, 1)
	assert.Equal(t, DKIMNotVerified, tr.DKIM[0].Result)
	assert.Equal(t, "ed1._domainkey.fabrikam.example", tr.DKIM[0].KeyName)
}

func TestDKIMNotAligned(t *testing.T) {
	// A signature by another domain verifies but does not count for DMARC.
	_, ek := testKeys(t)
	zone := fmt.Sprintf("$ORIGIN mailer.example.\n$TTL 300\n@ SOA ns1 h 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 127.0.0.1\ned1._domainkey TXT \"v=DKIM1; k=ed25519; p=%s\"\n",
		base64.StdEncoding.EncodeToString(ek.Public().(ed25519.PublicKey)))
	srv := dnstest.MustStart(t, dnstest.MustParseZone(t, "mailer.example.", zone))
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}})
	require.NoError(t, err)
	_, fs := analyzeSigned(t, sign(t, unsignedMsg, "mailer.example", "ed1", ek), c)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusPass, fs[0].Status)
	assert.Contains(t, fs[0].Message, "not aligned with the From domain")
}

func TestDKIMMalformedSignature(t *testing.T) {
	_, c := dkimWorld(t)
	msg := "DKIM-Signature: v=1; a=rsa-sha256; d=fabrikam.example\r\n" + unsignedMsg
	tr, fs := analyzeSigned(t, msg, c)
	require.Len(t, fs, 1)
	assert.Equal(t, report.StatusFail, fs[0].Status)
	assert.Equal(t, DKIMInvalid, tr.DKIM[0].Result)
	assert.Contains(t, tr.DKIM[0].Error, "missing required tag")
}
