package smtpprobe

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ChainProblem names why a chain does not verify, so each gets its own
// message and remediation.
type ChainProblem string

const (
	// ChainSelfSigned: the leaf is signed by its own key and is not a
	// trusted root.
	ChainSelfSigned ChainProblem = "self-signed"
	// ChainMissingIntermediate: following issuers from the leaf through
	// what the server sent, the chain stops at an issuer the server did
	// not send and that is not a trusted root, while the leaf is not
	// self-signed. Usually the server's chain file lacks the intermediate;
	// it can also be a private CA the caller did not add (--ca-file).
	ChainMissingIntermediate ChainProblem = "missing-intermediate"
	// ChainUnknownAuthority: the chain ends at a self-signed root the
	// server sent, or otherwise at an authority that is not trusted.
	ChainUnknownAuthority ChainProblem = "unknown-authority"
	// ChainWeakSignature: a certificate in the chain is signed with SHA-1
	// or MD5, which crypto/x509 (like every current TLS client) rejects.
	ChainWeakSignature ChainProblem = "weak-signature"
	// ChainInvalid: any other verification failure (name constraints, key
	// usage, a CA that may not sign).
	ChainInvalid ChainProblem = "invalid"
)

// TLSState is the negotiated TLS session and the verdict on the certificate.
type TLSState struct {
	Version   string `json:"version"` // "TLS 1.3"
	VersionID uint16 `json:"version_id"`
	Cipher    string `json:"cipher"`
	CipherID  uint16 `json:"cipher_id"`
	// ServerName is the SNI sent; empty for an address-only target.
	ServerName string `json:"server_name,omitempty"`
	// Chain describes the certificates as presented, leaf first.
	Chain []CertInfo `json:"chain"`

	// Verified is what a strict client concludes: the chain leads to a
	// trusted root, the name matches and every date is valid at CheckedAt.
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"`

	// ChainTrusted: the chain leads to a trusted root, validity dates
	// aside (they are judged by tls.cert-expiry on their own).
	ChainTrusted bool         `json:"chain_trusted"`
	ChainProblem ChainProblem `json:"chain_problem,omitempty"`
	ChainError   string       `json:"chain_error,omitempty"`
	// MissingIssuer is the issuer the chain stops at (missing-intermediate
	// and unknown-authority), StopsAt the certificate whose issuer it is.
	MissingIssuer string `json:"missing_issuer,omitempty"`
	StopsAt       string `json:"stops_at,omitempty"`
	// WeakSigned names the certificate with the weak signature.
	WeakSigned string `json:"weak_signed,omitempty"`
	// VerifiedChain lists the subjects from the leaf to the trusted root.
	VerifiedChain []string `json:"verified_chain,omitempty"`
	// ExpiredInChain names a certificate outside its validity that the
	// verified chain needed but the server did not send (a trusted root).
	ExpiredInChain string `json:"expired_in_chain,omitempty"`

	// HostnameChecked is false for an address-only target.
	HostnameChecked bool   `json:"hostname_checked"`
	HostnameOK      bool   `json:"hostname_ok"`
	HostnameError   string `json:"hostname_error,omitempty"`

	// CheckedAt is the time (Options.Now) the dates were judged at.
	CheckedAt time.Time `json:"checked_at"`
}

// CertInfo summarises one certificate.
type CertInfo struct {
	Subject            string    `json:"subject"`
	Issuer             string    `json:"issuer"`
	DNSNames           []string  `json:"dns_names,omitempty"`
	IPs                []string  `json:"ip_addresses,omitempty"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	KeyType            string    `json:"key_type"` // "ECDSA P-256", "RSA 2048", "Ed25519"
	KeyBits            int       `json:"key_bits"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	IsCA               bool      `json:"is_ca,omitempty"`
	SelfSigned         bool      `json:"self_signed,omitempty"`
	SHA256             string    `json:"sha256"` // fingerprint of the DER, hex
}

// newTLSState describes the handshake and verifies the certificate the way
// a strict client would, but in separate questions, so each defect is its
// own finding: chain (dates aside), host name, dates.
func newTLSState(st tls.ConnectionState, t Target, roots *x509.CertPool, now time.Time) *TLSState {
	s := &TLSState{
		Version: tls.VersionName(st.Version), VersionID: st.Version,
		Cipher: tls.CipherSuiteName(st.CipherSuite), CipherID: st.CipherSuite,
		ServerName: st.ServerName, CheckedAt: now, Chain: []CertInfo{},
	}
	for _, c := range st.PeerCertificates {
		s.Chain = append(s.Chain, certInfo(c))
	}
	if len(st.PeerCertificates) == 0 {
		// TLS 1.2 anonymous suites are not offered, so this means a broken
		// server; nothing can be verified.
		s.ChainProblem, s.ChainError = ChainInvalid, "the server sent no certificate"
		s.VerifyError = s.ChainError
		return s
	}
	certs := st.PeerCertificates
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now}

	// The strict verdict, name included.
	host := hostForName(t)
	full := opts
	full.DNSName = host
	if _, err := leaf.Verify(full); err != nil {
		s.VerifyError = err.Error()
	} else {
		s.Verified = host != ""
		if host == "" {
			s.VerifyError = "no host name to verify the certificate against"
		}
	}

	// The chain, dates aside: a chain that only fails on dates is
	// re-verified at a moment every presented certificate was valid.
	chains, err := leaf.Verify(opts)
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		if at, ok := commonValidity(certs); ok {
			o2 := opts
			o2.CurrentTime = at
			chains, err = leaf.Verify(o2)
			if err == nil && inv.Cert != nil && !slices.ContainsFunc(certs, inv.Cert.Equal) {
				s.ExpiredInChain = inv.Cert.Subject.String()
			}
		} else if c, e := verifyAboveLeaf(leaf, certs, opts); e == nil {
			// No moment at which all were valid (the leaf expired before
			// the intermediate it now comes with was issued): the links
			// still hold, so the chain is trusted dates aside.
			chains, err = c, nil
		}
	}
	if err == nil {
		s.ChainTrusted = true
		for _, c := range chains[0] {
			s.VerifiedChain = append(s.VerifiedChain, c.Subject.String())
		}
	} else {
		s.ChainError = err.Error()
		classifyChain(s, certs, err)
	}

	// The name (RFC 6125 via crypto/x509: SANs only, wildcards in the
	// left-most label only, no CN fallback since Go 1.15).
	if host != "" {
		s.HostnameChecked = true
		if err := leaf.VerifyHostname(host); err != nil {
			s.HostnameError = err.Error()
		} else {
			s.HostnameOK = true
		}
	}
	return s
}

// verifyAboveLeaf checks a chain link by link when its certificates were
// never valid at the same time: the leaf's signature against the issuer the
// server sent, then that issuer's own chain to a trusted root at a moment
// within its dates. It returns the chain leaf first.
func verifyAboveLeaf(leaf *x509.Certificate, certs []*x509.Certificate, opts x509.VerifyOptions) ([][]*x509.Certificate, error) {
	for i, parent := range certs[1:] {
		if !bytes.Equal(leaf.RawIssuer, parent.RawSubject) || leaf.CheckSignatureFrom(parent) != nil {
			continue
		}
		rest := append(slices.Clone(certs[1:i+1]), certs[i+2:]...)
		inter := x509.NewCertPool()
		for _, c := range rest {
			inter.AddCert(c)
		}
		o := opts
		o.Intermediates, o.DNSName = inter, ""
		o.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		if at, ok := commonValidity(append([]*x509.Certificate{parent}, rest...)); ok && (opts.CurrentTime.Before(parent.NotBefore) || opts.CurrentTime.After(parent.NotAfter)) {
			o.CurrentTime = at
		}
		chains, err := parent.Verify(o)
		if err != nil {
			return nil, err
		}
		for j := range chains {
			chains[j] = append([]*x509.Certificate{leaf}, chains[j]...)
		}
		return chains, nil
	}
	return nil, errors.New("no issuer of the leaf among the certificates sent")
}

// hostForName is the name the certificate must carry: Target.Host,
// without a trailing dot. An IP literal is checked against IP SANs.
func hostForName(t Target) string {
	return strings.TrimSuffix(t.Host, ".")
}

// commonValidity finds a moment at which every certificate is within its
// dates (the latest NotBefore), if there is one.
func commonValidity(certs []*x509.Certificate) (time.Time, bool) {
	nb, na := certs[0].NotBefore, certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotBefore.After(nb) {
			nb = c.NotBefore
		}
		if c.NotAfter.Before(na) {
			na = c.NotAfter
		}
	}
	at := nb.Add(time.Second)
	return at, !at.After(na)
}

// classifyChain names the problem of a chain that failed verification.
func classifyChain(s *TLSState, certs []*x509.Certificate, err error) {
	leaf := certs[0]
	if selfSigned(leaf) {
		s.ChainProblem = ChainSelfSigned
		return
	}
	// A weak signature anywhere below the root: crypto/x509 reports it as
	// an unknown authority with a hint, so look at the algorithms
	// directly. A root's self-signature is never checked, so it is not
	// weak in this sense.
	for _, c := range certs {
		if weakSignature(c.SignatureAlgorithm) && !selfSigned(c) {
			s.ChainProblem, s.WeakSigned = ChainWeakSignature, c.Subject.String()
			return
		}
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		top := chainTop(certs)
		if selfSigned(top) {
			s.ChainProblem = ChainUnknownAuthority
			s.MissingIssuer, s.StopsAt = top.Subject.String(), top.Subject.String()
			return
		}
		s.ChainProblem = ChainMissingIntermediate
		s.MissingIssuer, s.StopsAt = top.Issuer.String(), top.Subject.String()
		return
	}
	var ia x509.InsecureAlgorithmError
	if errors.As(err, &ia) {
		s.ChainProblem = ChainWeakSignature
		return
	}
	s.ChainProblem = ChainInvalid
}

// chainTop follows issuers from the leaf through the certificates the
// server sent and returns the last one reached: its issuer was not sent.
func chainTop(certs []*x509.Certificate) *x509.Certificate {
	cur := certs[0]
	used := map[int]bool{0: true}
	for {
		next := -1
		for i, c := range certs {
			if used[i] || !bytes.Equal(cur.RawIssuer, c.RawSubject) {
				continue
			}
			if cur.CheckSignatureFrom(c) == nil || errors.As(cur.CheckSignatureFrom(c), new(x509.InsecureAlgorithmError)) {
				next = i
				break
			}
		}
		if next < 0 || selfSigned(cur) {
			return cur
		}
		used[next] = true
		cur = certs[next]
	}
}

// selfSigned: issuer equals subject and the certificate's own key checks
// its signature (or would, but for a weak algorithm).
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	return err == nil || errors.As(err, new(x509.InsecureAlgorithmError))
}

func weakSignature(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

func certInfo(c *x509.Certificate) CertInfo {
	typ, bits := keyType(c)
	sum := sha256.Sum256(c.Raw)
	ci := CertInfo{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		DNSNames:  slices.Clone(c.DNSNames),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		KeyType: typ, KeyBits: bits,
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		IsCA:               c.IsCA, SelfSigned: selfSigned(c),
		SHA256: hex.EncodeToString(sum[:]),
	}
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			ci.IPs = append(ci.IPs, a.Unmap().String())
		}
	}
	return ci
}

// keyType describes the public key: "ECDSA P-256", "RSA 2048", "Ed25519".
func keyType(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen()), k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name, k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return c.PublicKeyAlgorithm.String(), 0
}

// weakKey says why a key is too weak, or "". NIST SP 800-57 Part 1 and the
// CA/Browser Forum Baseline Requirements §6.1.5 put the floor at RSA 2048
// and ECDSA P-256.
func weakKey(ci CertInfo) string {
	switch {
	case strings.HasPrefix(ci.KeyType, "RSA") && ci.KeyBits < 2048:
		return fmt.Sprintf("an RSA key of %d bits (at least 2048 are needed)", ci.KeyBits)
	case strings.HasPrefix(ci.KeyType, "ECDSA") && ci.KeyBits < 256:
		return fmt.Sprintf("an ECDSA key on %s (at least P-256 is needed)", strings.TrimPrefix(ci.KeyType, "ECDSA "))
	}
	return ""
}
