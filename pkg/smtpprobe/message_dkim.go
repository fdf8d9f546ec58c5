package smtpprobe

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DKIM signing (RFC 6376) of the test message, relaxed/relaxed.
//
// Why not go-msgauth's dkim.Sign: its dkim package imports
// golang.org/x/crypto/ed25519, which our go.mod does not require, so
// importing it would need a go.mod change this package may not make. The
// signer needs little: the message is ours, with one instance of each
// signed field and CRLF line ends. The tests verify the signatures with
// go-msgauth's dkim.Verify, built as a separate module in
// testdata/dkimverify, so the two implementations check each other.

// dkimHeaders are signed, in this order. RFC 6376 §5.4.1 recommends From
// (required), To, Subject, Date, Message-ID and the MIME fields; our
// X-Mfcheck-Token is signed so a relay cannot swap it.
var dkimHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "X-Mfcheck-Token", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}

// signDKIM prepends a DKIM-Signature field to msg.
func signDKIM(msg []byte, s *DKIMSigner, at time.Time) ([]byte, error) {
	if s.Key == nil {
		return nil, errors.New("DKIM: no key")
	}
	if !validDomain(s.Domain) {
		return nil, fmt.Errorf("DKIM: domain %q is not a domain name", printable(s.Domain, 80))
	}
	if !validDomain(s.Selector) {
		return nil, fmt.Errorf("DKIM: selector %q is not a sequence of DNS labels (RFC 6376 §3.1)", printable(s.Selector, 80))
	}
	var algo string
	var opts crypto.SignerOpts
	switch k := s.Key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("DKIM: an RSA key of %d bits; at least 1024 are needed (RFC 8301 §3.2)", k.N.BitLen())
		}
		algo, opts = "rsa-sha256", crypto.SHA256
	case ed25519.PublicKey:
		// RFC 8463 §3: PureEdDSA over the SHA-256 hash.
		algo, opts = "ed25519-sha256", crypto.Hash(0)
	default:
		return nil, fmt.Errorf("DKIM: unsupported key type %T (want RSA or Ed25519)", k)
	}

	i := bytes.Index(msg, []byte("\r\n\r\n"))
	if i < 0 {
		return nil, errors.New("DKIM: the message has no header/body separator")
	}
	header, body := string(msg[:i+2]), string(msg[i+4:])
	fields := splitFields(header)

	bh := sha256.Sum256([]byte(relaxedBody(body)))
	var names []string
	h := sha256.New()
	for _, name := range dkimHeaders {
		f, ok := lastField(fields, name)
		if !ok {
			continue
		}
		names = append(names, strings.ToLower(name))
		h.Write([]byte(relaxedHeader(f) + "\r\n"))
	}
	sig := "v=1; a=" + algo + "; c=relaxed/relaxed; d=" + s.Domain + "; s=" + s.Selector + ";\r\n" +
		"\tt=" + strconv.FormatInt(at.Unix(), 10) + "; h=" + strings.Join(names, ":") + ";\r\n" +
		"\tbh=" + base64.StdEncoding.EncodeToString(bh[:]) + ";\r\n" +
		"\tb="
	// RFC 6376 §3.7: the signature field itself, b= empty, last, and
	// without its CRLF.
	h.Write([]byte(relaxedHeader("DKIM-Signature: " + sig)))
	signature, err := s.Key.Sign(rand.Reader, h.Sum(nil), opts)
	if err != nil {
		return nil, fmt.Errorf("DKIM: signing failed: %v", err)
	}
	b64 := base64.StdEncoding.EncodeToString(signature)
	var out bytes.Buffer
	out.WriteString("DKIM-Signature: " + sig)
	for len(b64) > 0 {
		n := min(len(b64), 72)
		out.WriteString(b64[:n])
		b64 = b64[n:]
		if len(b64) > 0 {
			out.WriteString("\r\n\t")
		}
	}
	out.WriteString("\r\n")
	out.Write(msg)
	return out.Bytes(), nil
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

// lastField is the last instance of a field (RFC 6376 §5.4.2 signs from
// the bottom up).
func lastField(fields []string, name string) (string, bool) {
	for i := len(fields) - 1; i >= 0; i-- {
		k, _, ok := strings.Cut(fields[i], ":")
		if ok && strings.EqualFold(strings.TrimRight(k, " \t"), name) {
			return fields[i], true
		}
	}
	return "", false
}

// relaxedHeader is RFC 6376 §3.4.2: lower-case name, unfolded, runs of
// whitespace to one space, none around the colon or at the end.
func relaxedHeader(f string) string {
	k, v, _ := strings.Cut(f, ":")
	v = strings.ReplaceAll(v, "\r\n", "")
	return strings.ToLower(strings.TrimRight(k, " \t")) + ":" + strings.TrimSpace(collapseWSP(v))
}

// relaxedBody is RFC 6376 §3.4.4: whitespace runs to one space, none at
// line ends, no empty lines at the end, CRLF after a non-empty body.
func relaxedBody(body string) string {
	lines := strings.Split(body, "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(collapseWSP(l), " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

func collapseWSP(s string) string {
	var b strings.Builder
	ws := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ' ' || c == '\t' {
			ws = true
			continue
		}
		if ws {
			b.WriteByte(' ')
			ws = false
		}
		b.WriteByte(s[i])
	}
	if ws {
		b.WriteByte(' ')
	}
	return b.String()
}
