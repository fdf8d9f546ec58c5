package smtpprobe

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewToken(t *testing.T) {
	re := regexp.MustCompile(`^mfc-[a-z2-7]{20}$`)
	seen := map[string]bool{}
	for range 1000 {
		tok := NewToken()
		require.Regexp(t, re, tok)
		require.False(t, seen[tok], "tokens are unique")
		seen[tok] = true
	}
}

func TestBuildMessage(t *testing.T) {
	date := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	msg, err := BuildMessage(MessageOptions{From: testFrom, To: []string{testTo, "bob@contoso.test"}, Token: "mfc-abc", Date: date})
	require.NoError(t, err)
	s := string(msg)
	hdr, body, ok := strings.Cut(s, "\r\n\r\n")
	require.True(t, ok)
	assert.NotContains(t, strings.ReplaceAll(s, "\r\n", ""), "\n", "CRLF line ends only")
	assert.Equal(t, "<"+testFrom+">", headerValue(msg, "From"))
	assert.Contains(t, hdr, "To: <alice@contoso.test>,\r\n <bob@contoso.test>")
	assert.Equal(t, "Sun, 01 Mar 2026 12:00:00 +0100", headerValue(msg, "Date"))
	assert.Equal(t, "<mfc-abc@sender.test>", headerValue(msg, "Message-ID"), "the right side defaults to From's domain")
	assert.Equal(t, "mfcheck test mfc-abc", headerValue(msg, "Subject"))
	assert.Equal(t, "mfc-abc", headerValue(msg, "X-Mfcheck-Token"))
	assert.Equal(t, "1.0", headerValue(msg, "MIME-Version"))
	assert.Contains(t, headerValue(msg, "Content-Type"), "text/plain")
	assert.Contains(t, body, "mfc-abc")

	t.Run("subject", func(t *testing.T) {
		msg, err := BuildMessage(MessageOptions{From: testFrom, To: []string{testTo}, Token: "mfc-x", Subject: "cutover\r\nBcc: evil@x.test", Hostname: "h.test"})
		require.NoError(t, err)
		assert.Equal(t, "cutover Bcc: evil@x.test mfc-x", headerValue(msg, "Subject"), "no header injection")
		assert.Empty(t, headerValue(msg, "Bcc"))
		msg, err = BuildMessage(MessageOptions{From: testFrom, To: []string{testTo}, Token: "mfc-x", Subject: "Prüfung"})
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(headerValue(msg, "Subject"), "=?utf-8?q?"), "RFC 2047")
	})
	t.Run("refused", func(t *testing.T) {
		for name, o := range map[string]MessageOptions{
			"no token":      {From: testFrom, To: []string{testTo}},
			"bad token":     {From: testFrom, To: []string{testTo}, Token: "a b"},
			"no recipient":  {From: testFrom, Token: "t"},
			"bad recipient": {From: testFrom, To: []string{"x"}, Token: "t"},
			"bad from":      {From: "a@b\r\nX: y", To: []string{testTo}, Token: "t"},
			"bad hostname":  {From: testFrom, To: []string{testTo}, Token: "t", Hostname: "a b"},
		} {
			_, err := BuildMessage(o)
			assert.Error(t, err, name)
		}
	})
}

func TestValidateAddress(t *testing.T) {
	for _, ok := range []string{"a@b.test", "first.last+tag@sub.contoso.com", "x@[192.0.2.1]", "x@[IPv6:2001:db8::1]", "o'brien@x.test", strings.Repeat("l", 64) + "@x.test"} {
		assert.NoError(t, validateAddress(ok), ok)
	}
	for _, bad := range []string{"", "a", "@x.test", "a@", "a b@x.test", "a@x test", "a@b.test>", "<a@b.test>", "a@b.test\r\nRCPT TO:<c@d>", "a..b@x.test", ".a@x.test",
		"a@-x.test", "a@x..test", "ü@x.test", "a@[300.1.1.1]", "a@[IPv6:192.0.2.1]", strings.Repeat("l", 65) + "@x.test", "a@" + strings.Repeat("x", 64) + ".test", "\"q\"@x.test"} {
		assert.Error(t, validateAddress(bad), bad)
	}
}

func TestLoadDKIMKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pk8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}

	k, err := LoadDKIMKey(write("pkcs1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})))
	require.NoError(t, err)
	assert.IsType(t, &rsa.PrivateKey{}, k)
	k, err = LoadDKIMKey(write("pkcs8-rsa.pem", pk8(rk)))
	require.NoError(t, err)
	assert.IsType(t, &rsa.PrivateKey{}, k)
	k, err = LoadDKIMKey(write("ed.pem", append([]byte("a comment\n"), pk8(ek)...)))
	require.NoError(t, err)
	assert.IsType(t, ed25519.PrivateKey{}, k)

	small, err := rsa.GenerateKey(rand.Reader, 768) //nolint:gosec // a weak key on purpose
	if err == nil {
		_, err = LoadDKIMKey(write("small.pem", pk8(small)))
		assert.ErrorContains(t, err, "RFC 8301")
	}
	_, err = LoadDKIMKey(write("cert.pem", testPKI(t).leaf.CertPEM(false)))
	assert.ErrorContains(t, err, "no PEM private key")
	_, err = LoadDKIMKey(write("ec.pem", testPKI(t).leaf.KeyPEM()))
	assert.Error(t, err)
	_, err = LoadDKIMKey(write("enc.pem", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})))
	assert.ErrorContains(t, err, "encrypted")
	_, err = LoadDKIMKey(write("junk.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secret-bytes")})))
	assert.ErrorContains(t, err, "does not parse")
	_, err = LoadDKIMKey(filepath.Join(dir, "missing.pem"))
	assert.Error(t, err)
}

// verifyDKIM checks msg's DKIM signature with go-msgauth's verifier, the
// key served as txt; it returns the verdict in words and whether it passed.
func verifyDKIM(msg []byte, txt string) (string, bool) {
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return []string{txt}, nil },
	})
	if err != nil {
		return err.Error(), false
	}
	if len(vs) != 1 {
		return fmt.Sprintf("%d signatures", len(vs)), false
	}
	if vs[0].Err != nil {
		return vs[0].Err.Error(), false
	}
	return "pass d=" + vs[0].Domain, true
}

func TestDKIMSignatureVerifies(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	epub, ek, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rder, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	require.NoError(t, err)
	cases := []struct {
		name string
		key  crypto.Signer
		txt  string
	}{
		{"rsa-sha256", rk, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rder)},
		{"ed25519-sha256", ek, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(epub)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, err := BuildMessage(MessageOptions{From: testFrom, To: []string{testTo}, Token: "mfc-dkimtest", Date: time.Now(),
				DKIM: &DKIMSigner{Domain: "sender.test", Selector: "mfcheck", Key: c.key}})
			require.NoError(t, err)
			sig := headerValue(msg, "DKIM-Signature")
			assert.Contains(t, sig, "a="+c.name)
			assert.Contains(t, strings.ToLower(sig), "h=from:to:subject:date:message-id:x-mfcheck-token")
			out, ok := verifyDKIM(msg, c.txt)
			assert.True(t, ok, out)
			assert.Contains(t, out, "pass d=sender.test")

			// A changed token breaks the signature: the verifier is real.
			bad := bytes.Replace(msg, []byte("X-Mfcheck-Token: mfc-dkimtest"), []byte("X-Mfcheck-Token: mfc-other"), 1)
			out, ok = verifyDKIM(bad, c.txt)
			assert.False(t, ok, out)
			// So does a changed body.
			bad = bytes.Replace(msg, []byte("It can be deleted"), []byte("It can be kept"), 1)
			_, ok = verifyDKIM(bad, c.txt)
			assert.False(t, ok)
		})
	}
	t.Run("the signed message goes through Send", func(t *testing.T) {
		srv := &mailServer{TLS: validTLS(t)}
		o := sendOpts(t, PathInbound, srv.start(t))
		msg, err := BuildMessage(MessageOptions{From: testFrom, To: []string{testTo}, Token: NewToken(), DKIM: &DKIMSigner{Domain: "sender.test", Selector: "s1", Key: rk}})
		require.NoError(t, err)
		o.Message = msg
		r := Send(t.Context(), o)
		require.True(t, r.Accepted, r.Err)
		got := srv.messages()
		require.Len(t, got, 1)
		out, ok := verifyDKIM(got[0].Data, cases[0].txt)
		assert.True(t, ok, "the message as received still verifies: %s", out)
	})
	t.Run("refused", func(t *testing.T) {
		for name, s := range map[string]*DKIMSigner{
			"no key":       {Domain: "sender.test", Selector: "s"},
			"bad domain":   {Domain: "a b", Selector: "s", Key: rk},
			"bad selector": {Domain: "sender.test", Selector: "s;x", Key: rk},
		} {
			_, err := BuildMessage(MessageOptions{From: testFrom, To: []string{testTo}, Token: "t", DKIM: s})
			assert.Error(t, err, name)
		}
	})
}
