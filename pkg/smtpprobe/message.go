package smtpprobe

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"net/netip"
	"os"
	"strings"
	"time"
)

// The test message: RFC 5322 with CRLF line ends, a token that finds it
// again in the mailbox and in the gateway's logs, and optionally a DKIM
// signature (RFC 6376) so the receiving side's DKIM verdict can be traced.

// MessageOptions describe a test message.
type MessageOptions struct {
	From string
	To   []string
	// Token is in the Message-ID, the Subject, X-Mfcheck-Token and the
	// body; NewToken makes one. Required.
	Token string
	// Date is the Date header; now when zero.
	Date time.Time
	// Hostname is the right side of the Message-ID; From's domain when
	// empty.
	Hostname string
	// Subject is the subject before the token; "mfcheck test" when empty.
	Subject string
	// DKIM signs the message when set.
	DKIM *DKIMSigner
}

// DKIMSigner is a DKIM signing identity: d=Domain, s=Selector.
type DKIMSigner struct {
	Domain, Selector string
	// Key is an RSA (rsa-sha256, RFC 6376) or Ed25519 (ed25519-sha256,
	// RFC 8463) private key.
	Key crypto.Signer
}

// tokenPrefix starts every token, so a mailbox search for "mfc-" finds
// every test message.
const tokenPrefix = "mfc-"

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a fresh token: "mfc-" and 20 lowercase base32
// characters (100 bits from crypto/rand, so no two runs collide).
func NewToken() string {
	var b [13]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return tokenPrefix + tokenEncoding.EncodeToString(b[:])[:20]
}

// validToken: the token goes into header fields and the Message-ID's
// left side (RFC 5322 §3.6.4 dot-atom-text), so letters, digits and
// hyphens only.
func validToken(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// BuildMessage makes the test message: From, To, Date, Message-ID
// (<token@hostname>), Subject ("mfcheck test <token>"), X-Mfcheck-Token,
// MIME-Version and a text/plain body naming the token, with CRLF line
// ends; DKIM-signed when o.DKIM is set.
func BuildMessage(o MessageOptions) ([]byte, error) {
	if err := validateAddress(o.From); err != nil {
		return nil, fmt.Errorf("sender %q: %w", printable(o.From, 80), err)
	}
	if len(o.To) == 0 {
		return nil, errors.New("no recipient")
	}
	for _, to := range o.To {
		if err := validateAddress(to); err != nil {
			return nil, fmt.Errorf("recipient %q: %w", printable(to, 80), err)
		}
	}
	if !validToken(o.Token) {
		return nil, fmt.Errorf("token %q: want letters, digits and hyphens (NewToken makes one)", printable(o.Token, 80))
	}
	host := o.Hostname
	if host == "" {
		host = o.From[strings.LastIndexByte(o.From, '@')+1:]
	}
	if !validDomain(host) && !validLiteral(host) {
		return nil, fmt.Errorf("hostname %q for the Message-ID is not a domain name", printable(host, 80))
	}
	subject := o.Subject
	if subject == "" {
		subject = "mfcheck test"
	}
	// Header injection: a CR or LF would start a new field.
	subject = strings.Join(strings.Fields(subject), " ")
	if !strings.Contains(subject, o.Token) {
		subject += " " + o.Token
	}
	if !isASCII(subject) {
		subject = mime.QEncoding.Encode("utf-8", subject) // RFC 2047
	}
	date := o.Date
	if date.IsZero() {
		date = time.Now()
	}

	var b bytes.Buffer
	field := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	field("From", "<"+o.From+">")
	field("To", "<"+strings.Join(o.To, ">,\r\n <")+">")
	// RFC 5322 §3.3 date-time; RFC1123Z is that format.
	field("Date", date.Format(time.RFC1123Z))
	field("Message-ID", "<"+o.Token+"@"+host+">")
	field("Subject", subject)
	field("X-Mfcheck-Token", o.Token)
	field("MIME-Version", "1.0")
	field("Content-Type", "text/plain; charset=us-ascii")
	field("Content-Transfer-Encoding", "7bit")
	b.WriteString("\r\n")
	b.WriteString("This is a test message sent by mfcheck to check the mail flow of this domain.\r\n")
	b.WriteString("It can be deleted. Its token is:\r\n")
	b.WriteString("\r\n")
	b.WriteString("    " + o.Token + "\r\n")
	b.WriteString("\r\n")
	b.WriteString("Sent " + date.UTC().Format(time.RFC3339) + " from <" + o.From + ">.\r\n")
	msg := b.Bytes()
	if o.DKIM == nil {
		return msg, nil
	}
	return signDKIM(msg, o.DKIM, date)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// validateAddress accepts an RFC 5321 §4.1.2 Mailbox in plain ASCII:
// Local-part "@" (Domain / address-literal), with a dot-atom local part
// (quoted local parts are legal but are not what a test recipient needs,
// and refusing them keeps quoting out of the commands) and the lengths of
// RFC 5321 §4.5.3.1 (64 for the local part, 254 for the address so the
// path fits in 256). No spaces, no control characters: nothing that could
// change the command it goes into.
func validateAddress(a string) error {
	if a == "" {
		return errors.New("empty address")
	}
	if len(a) > 254 {
		return errors.New("longer than 254 characters (RFC 5321 §4.5.3.1.3)")
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c <= ' ' || c >= 0x7f {
			return errors.New("contains a space, a control character or a non-ASCII character")
		}
	}
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return errors.New("no @")
	}
	local, domain := a[:at], a[at+1:]
	if local == "" || len(local) > 64 {
		return errors.New("the local part must have 1 to 64 characters (RFC 5321 §4.5.3.1.1)")
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return errors.New("the local part has an empty dot-separated part")
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return fmt.Errorf("the local part contains %q (RFC 5322 §3.2.3 atext only)", atom[i])
			}
		}
	}
	if !validDomain(domain) && !validLiteral(domain) {
		return fmt.Errorf("%q is not a domain name or address literal", domain)
	}
	return nil
}

// isAtext is RFC 5322 §3.2.3 atext.
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// validDomain: LDH labels of 1 to 63 characters, 253 in all, a trailing
// dot refused (addresses carry none).
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validLiteral: an RFC 5321 §4.1.3 address literal, [192.0.2.1] or
// [IPv6:2001:db8::1].
func validLiteral(d string) bool {
	if len(d) < 3 || d[0] != '[' || d[len(d)-1] != ']' {
		return false
	}
	in := d[1 : len(d)-1]
	if v6, ok := strings.CutPrefix(in, "IPv6:"); ok {
		a, err := netip.ParseAddr(v6)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	a, err := netip.ParseAddr(in)
	return err == nil && a.Is4()
}

// LoadDKIMKey reads a PEM private key for DKIM: PKCS#1 ("RSA PRIVATE
// KEY") or PKCS#8 ("PRIVATE KEY") RSA of at least 1024 bits (RFC 8301
// §3.2), or PKCS#8 Ed25519 (RFC 8463). Errors say what is wrong without
// showing any of the key.
func LoadDKIMKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the DKIM key: %w", err)
	}
	return parseDKIMKey(data)
}

func parseDKIMKey(data []byte) (crypto.Signer, error) {
	var blk *pem.Block
	for {
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, errors.New("no PEM private key in the file (want a \"PRIVATE KEY\" or \"RSA PRIVATE KEY\" block)")
		}
		if strings.Contains(blk.Type, "PRIVATE KEY") {
			break
		}
	}
	var key any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		if _, enc := blk.Headers["DEK-Info"]; enc {
			return nil, errors.New("the RSA key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
		}
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
	case "EC PRIVATE KEY":
		return nil, errors.New("an EC key: DKIM signs with RSA (RFC 6376) or Ed25519 (RFC 8463) only")
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (want \"PRIVATE KEY\" or \"RSA PRIVATE KEY\")", blk.Type)
	}
	if err != nil {
		// x509's messages name the structure, never the key material.
		return nil, fmt.Errorf("the %s block does not parse: %v", blk.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < 1024 {
			return nil, fmt.Errorf("an RSA key of %d bits: DKIM signers must use at least 1024 (RFC 8301 §3.2), better 2048", bits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return nil, errors.New("an ECDSA key: DKIM signs with RSA (RFC 6376) or Ed25519 (RFC 8463) only")
	}
	return nil, fmt.Errorf("unsupported key type %T (want RSA or Ed25519)", key)
}
