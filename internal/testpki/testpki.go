// Package testpki mints certificates in memory for tests and for the demo lab:
// a root CA, intermediates, and server leaves with the defects a TLS probe has
// to recognise (expired, wrong name, self-signed, missing intermediate, weak
// key, weak signature).
//
// Nothing here is meant for production: keys live only in memory, serial
// numbers are random, and there is no revocation. It is a non-test package so
// pkg/lab (the demo world) can use the same certificates the tests use;
// DESIGN.md asks for certificates made at test time rather than committed
// keys.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// caValidity is how long NewCA and Intermediate certificates are valid.
// caBackdate is how far before now they start: a year, so that a leaf
// made expired or old (NotBefore in the past) still has an issuer that
// was valid when it was issued, as in real life, and a verifier can tell
// "the leaf expired" from "the chain was never valid".
const (
	caValidity = 10 * 365 * 24 * time.Hour
	caBackdate = 365 * 24 * time.Hour
)

// CA is a certificate authority: a root (NewCA) or an intermediate
// (CA.Intermediate).
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is Cert in PEM form, for a --ca-file or a lab's trust store.
	PEM []byte

	// chain is this CA's certificate followed by its issuers up to, but
	// excluding, the root; empty for a root. Leaves copy it as their Chain.
	chain []*x509.Certificate
}

// NewCA returns a self-signed root CA with an ECDSA P-256 key, valid from a
// year ago until ten years from now.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA key: %w", err)
	}
	tmpl, err := caTemplate(commonName, key.Public())
	if err != nil {
		return nil, err
	}
	cert, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: encodeCert(cert)}, nil
}

// Intermediate returns a CA whose certificate ca signs. Leaves it issues carry
// it (and any intermediates above it) in their Chain.
func (ca *CA) Intermediate(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: intermediate key: %w", err)
	}
	tmpl, err := caTemplate(commonName, key.Public())
	if err != nil {
		return nil, err
	}
	tmpl.NotAfter = minTime(tmpl.NotAfter, ca.Cert.NotAfter)
	cert, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: encodeCert(cert),
		chain: append([]*x509.Certificate{cert}, ca.chain...)}, nil
}

// Pool returns a pool holding only this CA's certificate, for use as Roots.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// KeyPEM returns the CA's private key as a PKCS #8 PEM block.
func (ca *CA) KeyPEM() []byte { return encodeKey(ca.Key) }

// LeafOptions describe a server certificate. The zero value is a valid
// ECDSA P-256 certificate without names, valid from an hour ago for 90 days.
type LeafOptions struct {
	// CommonName defaults to the first of DNSNames (or "testpki leaf").
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	// NotBefore and NotAfter default to now-1h and now+90d; set them in the
	// past for an expired certificate, in the future for a not-yet-valid one.
	NotBefore, NotAfter time.Time
	// RSABits selects an RSA key of that size (1024 for a weak key); 0 means
	// ECDSA P-256.
	RSABits int
	// SignatureAlgorithm is what the issuer signs with; 0 lets crypto/x509
	// choose from the issuer's key (ECDSA-SHA256 for testpki CAs).
	SignatureAlgorithm x509.SignatureAlgorithm
}

// Leaf is a server certificate and its key.
type Leaf struct {
	Cert *x509.Certificate
	// Chain holds the intermediates between the leaf and the root, leaf's
	// issuer first, root excluded; empty for a leaf signed by a root or a
	// self-signed leaf.
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// Leaf issues a server certificate signed by ca.
func (ca *CA) Leaf(o LeafOptions) (*Leaf, error) {
	key, tmpl, err := leafTemplate(o)
	if err != nil {
		return nil, err
	}
	cert, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, Chain: slices.Clone(ca.chain), Key: key}, nil
}

// SelfSigned returns a server certificate signed by its own key, the way
// appliances and default installs (Postfix's snakeoil, Exchange's
// self-signed certificate) ship.
func SelfSigned(o LeafOptions) (*Leaf, error) {
	key, tmpl, err := leafTemplate(o)
	if err != nil {
		return nil, err
	}
	tmpl.AuthorityKeyId = tmpl.SubjectKeyId
	cert, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, Key: key}, nil
}

// TLSCertificate returns the leaf for a tls.Config. withChain=false sends the
// leaf alone, the "missing intermediate" misconfiguration when the leaf was
// issued by an intermediate.
func (l *Leaf) TLSCertificate(withChain bool) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
	if withChain {
		for _, ic := range l.Chain {
			c.Certificate = append(c.Certificate, ic.Raw)
		}
	}
	return c
}

// CertPEM returns the leaf (and with withChain its intermediates, in order)
// as PEM, the layout of a server's chain file.
func (l *Leaf) CertPEM(withChain bool) []byte {
	out := encodeCert(l.Cert)
	if withChain {
		for _, ic := range l.Chain {
			out = append(out, encodeCert(ic)...)
		}
	}
	return out
}

// KeyPEM returns the leaf's private key as a PKCS #8 PEM block.
func (l *Leaf) KeyPEM() []byte { return encodeKey(l.Key) }

func caTemplate(cn string, pub crypto.PublicKey) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := keyID(pub)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"mfcheck testpki"}},
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}, nil
}

func leafTemplate(o LeafOptions) (crypto.Signer, *x509.Certificate, error) {
	var key crypto.Signer
	var err error
	usage := x509.KeyUsageDigitalSignature
	if o.RSABits > 0 {
		key, err = rsa.GenerateKey(rand.Reader, o.RSABits)
		// RSA key exchange (TLS 1.0-1.2 non-ECDHE suites) encrypts to the key.
		usage |= x509.KeyUsageKeyEncipherment
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("testpki: leaf key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	ski, err := keyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = now.Add(-time.Hour)
	}
	if na.IsZero() {
		na = now.Add(90 * 24 * time.Hour)
	}
	cn := o.CommonName
	if cn == "" && len(o.DNSNames) > 0 {
		cn = o.DNSNames[0]
	}
	if cn == "" {
		cn = "testpki leaf"
	}
	return key, &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              slices.Clone(o.DNSNames),
		IPAddresses:           slices.Clone(o.IPs),
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		SignatureAlgorithm:    o.SignatureAlgorithm,
	}, nil
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("testpki: sign %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: parse %q: %w", tmpl.Subject.CommonName, err)
	}
	return cert, nil
}

func randomSerial() (*big.Int, error) {
	// 128 random bits: distinct certificates never share a serial, which
	// matters when a test presents several leaves of one CA.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("testpki: serial: %w", err)
	}
	return n, nil
}

// keyID is the RFC 5280 §4.2.1.2 method (1) key identifier: SHA-1 of the
// subject public key.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("testpki: public key: %w", err)
	}
	// The SHA-1 of the full SPKI rather than of the bit string alone is fine:
	// the identifier only has to be unique, not reproducible elsewhere.
	sum := sha1.Sum(der)
	return sum[:], nil
}

func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func encodeKey(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		// Only ECDSA and RSA keys made above reach here; both marshal.
		panic(errors.Join(errors.New("testpki: marshal key"), err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
