package testpki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func verify(l *Leaf, roots *x509.CertPool, inter []*x509.Certificate, name string) error {
	ip := x509.NewCertPool()
	for _, c := range inter {
		ip.AddCert(c)
	}
	_, err := l.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: ip, DNSName: name})
	return err
}

func TestChain(t *testing.T) {
	root, err := NewCA("Test Root")
	require.NoError(t, err)
	inter, err := root.Intermediate("Test Intermediate")
	require.NoError(t, err)
	leaf, err := inter.Leaf(LeafOptions{DNSNames: []string{"mx.example"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	require.NoError(t, err)

	assert.True(t, root.Cert.IsCA)
	assert.Equal(t, "mx.example", leaf.Cert.Subject.CommonName)
	require.Len(t, leaf.Chain, 1)
	assert.Equal(t, inter.Cert, leaf.Chain[0])
	_, isEC := leaf.Key.(*ecdsa.PrivateKey)
	assert.True(t, isEC)

	assert.NoError(t, verify(leaf, root.Pool(), leaf.Chain, "mx.example"))
	// Without the intermediate the chain stops at an unknown issuer.
	var ua x509.UnknownAuthorityError
	assert.ErrorAs(t, verify(leaf, root.Pool(), nil, "mx.example"), &ua)
	var he x509.HostnameError
	assert.ErrorAs(t, verify(leaf, root.Pool(), leaf.Chain, "other.example"), &he)

	// A leaf straight from the root has no chain.
	direct, err := root.Leaf(LeafOptions{DNSNames: []string{"a.example"}})
	require.NoError(t, err)
	assert.Empty(t, direct.Chain)
	assert.NoError(t, verify(direct, root.Pool(), nil, "a.example"))

	// Two levels of intermediates: the chain lists both, issuer first.
	inter2, err := inter.Intermediate("Second Intermediate")
	require.NoError(t, err)
	deep, err := inter2.Leaf(LeafOptions{DNSNames: []string{"b.example"}})
	require.NoError(t, err)
	require.Len(t, deep.Chain, 2)
	assert.Equal(t, inter2.Cert, deep.Chain[0])
	assert.Equal(t, inter.Cert, deep.Chain[1])
	assert.NoError(t, verify(deep, root.Pool(), deep.Chain, "b.example"))
}

func TestOptions(t *testing.T) {
	root, err := NewCA("Test Root")
	require.NoError(t, err)

	past := time.Now().Add(-48 * time.Hour)
	expired, err := root.Leaf(LeafOptions{DNSNames: []string{"x.example"}, NotBefore: past.Add(-time.Hour), NotAfter: past})
	require.NoError(t, err)
	var ce x509.CertificateInvalidError
	require.ErrorAs(t, verify(expired, root.Pool(), nil, "x.example"), &ce)
	assert.Equal(t, x509.Expired, ce.Reason)

	weak, err := root.Leaf(LeafOptions{DNSNames: []string{"x.example"}, RSABits: 1024})
	require.NoError(t, err)
	rk, ok := weak.Key.(*rsa.PrivateKey)
	require.True(t, ok)
	assert.Equal(t, 1024, rk.N.BitLen())

	self, err := SelfSigned(LeafOptions{DNSNames: []string{"self.example"}})
	require.NoError(t, err)
	// Signed by its own key; not a CA, so CheckSignatureFrom would refuse it.
	assert.NoError(t, self.Cert.CheckSignature(self.Cert.SignatureAlgorithm, self.Cert.RawTBSCertificate, self.Cert.Signature))
	assert.NoError(t, verify(self, func() *x509.CertPool { p := x509.NewCertPool(); p.AddCert(self.Cert); return p }(), nil, "self.example"))
	assert.Equal(t, self.Cert.Subject.String(), self.Cert.Issuer.String())
	assert.Empty(t, self.Chain)
}

func TestTLSAndPEM(t *testing.T) {
	root, err := NewCA("Test Root")
	require.NoError(t, err)
	inter, err := root.Intermediate("Test Intermediate")
	require.NoError(t, err)
	leaf, err := inter.Leaf(LeafOptions{DNSNames: []string{"mx.example"}})
	require.NoError(t, err)

	assert.Len(t, leaf.TLSCertificate(true).Certificate, 2)
	assert.Len(t, leaf.TLSCertificate(false).Certificate, 1)

	// The PEM forms load back as a key pair, the way a server reads its files.
	pair, err := tls.X509KeyPair(leaf.CertPEM(true), leaf.KeyPEM())
	require.NoError(t, err)
	assert.Len(t, pair.Certificate, 2)
	_, err = tls.X509KeyPair(root.PEM, root.KeyPEM())
	assert.NoError(t, err)

	blk, rest := pem.Decode(leaf.CertPEM(false))
	require.NotNil(t, blk)
	assert.Empty(t, rest)
	assert.Equal(t, leaf.Cert.Raw, blk.Bytes)

	// A handshake over a pipe trusts the root and checks the name.
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	go func() {
		s := tls.Server(srv, &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate(true)}})
		_ = s.Handshake()
	}()
	c := tls.Client(cli, &tls.Config{RootCAs: root.Pool(), ServerName: "mx.example"})
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	assert.NoError(t, c.Handshake())
}

func TestSHA1Signature(t *testing.T) {
	// Weak signatures are a finding in pkg/smtpprobe, so testpki must be able
	// to make one. crypto/x509 still signs with SHA-1 when asked, and Verify
	// refuses it, as a verifier should.
	root, err := NewCA("Test Root")
	require.NoError(t, err)
	leaf, err := root.Leaf(LeafOptions{DNSNames: []string{"x.example"}, SignatureAlgorithm: x509.ECDSAWithSHA1})
	if err != nil {
		t.Skipf("this Go refuses to sign with SHA-1: %v", err)
	}
	assert.Equal(t, x509.ECDSAWithSHA1, leaf.Cert.SignatureAlgorithm)
	assert.Error(t, verify(leaf, root.Pool(), nil, "x.example"))
}
