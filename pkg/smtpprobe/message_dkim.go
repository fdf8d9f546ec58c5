package smtpprobe

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIM signing (RFC 6376) of the test message with go-msgauth's signer,
// relaxed/relaxed so that relays that refold headers or trailing white
// space do not break it. The checks before it give our own clear errors
// for what go-msgauth would reject or accept silently (a 512-bit key).

// dkimHeaders are signed. RFC 6376 §5.4.1 recommends From (required), To,
// Subject, Date, Message-ID and the MIME fields; our X-Mfcheck-Token is
// signed so a relay cannot swap it.
var dkimHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "X-Mfcheck-Token", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}

// signDKIM prepends a DKIM-Signature field to msg. go-msgauth stamps t=
// with the current time, so at is not used for it.
func signDKIM(msg []byte, s *DKIMSigner, _ time.Time) ([]byte, error) {
	if s.Key == nil {
		return nil, errors.New("DKIM: no key")
	}
	if !validDomain(s.Domain) {
		return nil, fmt.Errorf("DKIM: domain %q is not a domain name", printable(s.Domain, 80))
	}
	if !validDomain(s.Selector) {
		return nil, fmt.Errorf("DKIM: selector %q is not a sequence of DNS labels (RFC 6376 §3.1)", printable(s.Selector, 80))
	}
	switch k := s.Key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("DKIM: an RSA key of %d bits; at least 1024 are needed (RFC 8301 §3.2)", k.N.BitLen())
		}
	case ed25519.PublicKey: // RFC 8463
	default:
		return nil, fmt.Errorf("DKIM: unsupported key type %T (want RSA or Ed25519)", k)
	}
	if !bytes.Contains(msg, []byte("\r\n\r\n")) {
		return nil, errors.New("DKIM: the message has no header/body separator")
	}
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: s.Domain, Selector: s.Selector, Signer: s.Key, Hash: crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: presentFields(msg, dkimHeaders),
	})
	if err != nil {
		return nil, fmt.Errorf("DKIM: signing failed: %v", err)
	}
	return out.Bytes(), nil
}

// presentFields keeps the names of want that the message's header has:
// signing an absent field would oversign it (RFC 6376 §8.15), which is not
// what the list means here.
func presentFields(msg []byte, want []string) []string {
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	fields := splitFields(string(msg[:i+2]))
	var out []string
	for _, name := range want {
		for _, f := range fields {
			if n, _, ok := strings.Cut(f, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// splitFields cuts a header into fields, each with its continuation lines
// and without the final CRLF.
func splitFields(header string) []string {
	var fields []string
	for _, l := range strings.SplitAfter(header, "\r\n") {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] += l
			continue
		}
		fields = append(fields, l)
	}
	for i := range fields {
		fields[i] = strings.TrimSuffix(fields[i], "\r\n")
	}
	return fields
}
