package spf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// macroContext says where a macro-string appears, which decides what it may
// contain (RFC 7208 §7.1, §7.2).
type macroContext int

const (
	// inDomainSpec: the argument of a mechanism, of redirect= or of exp=.
	// The letters c, r and t are not allowed (§7.2: "allowed only in exp
	// text").
	inDomainSpec macroContext = iota
	// inModifier: the value of an unknown modifier. It is never expanded,
	// so any macro-letter of the §12 ABNF is accepted.
	inModifier
	// inExplanation: the text of the TXT record an exp= modifier points to
	// (explain-string, §6.2): spaces are allowed, and so are c, r and t.
	inExplanation
)

// maxTransformerDigits caps the DIGIT transformer; RFC 7208 §7.3 asks
// implementations to support at least 128 labels, and more than that many
// can never be present in a 253-character name.
const maxTransformerDigits = 128

// MacroString is a parsed macro-string (RFC 7208 §7.1): literal text and
// macro-expand items such as "%{ir}" or "%{l1r-}".
type MacroString struct {
	raw   string
	parts []macroPart
}

// macroPart is one literal run or one %{...} item of a MacroString.
type macroPart struct {
	literal string // the text when letter == 0 (%%, %_ and %- already decoded)
	letter  byte   // lower-case macro-letter, 0 for a literal
	upper   bool   // the letter was upper-case: URL-escape the value (§7.3)
	digits  int    // keep this many right-hand parts; 0 keeps all
	reverse bool   // the "r" transformer
	delims  string // delimiters to split on; "" means "."
}

// String returns the macro-string as written in the record.
func (m *MacroString) String() string {
	if m == nil {
		return ""
	}
	return m.raw
}

// Literal returns the text and true when the macro-string has no %{...}
// item, so it names the same thing for every check_host() call (the static
// analysis can follow it without knowing the sender or the IP address).
func (m *MacroString) Literal() (string, bool) {
	if m == nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range m.parts {
		if p.letter != 0 {
			return "", false
		}
		b.WriteString(p.literal)
	}
	return b.String(), true
}

// Letters returns the macro-letters used, lower-cased, in order of
// appearance, each once ("p" flags a record that needs PTR lookups).
func (m *MacroString) Letters() string {
	if m == nil {
		return ""
	}
	var out []byte
	for _, p := range m.parts {
		if p.letter != 0 && strings.IndexByte(string(out), p.letter) < 0 {
			out = append(out, p.letter)
		}
	}
	return string(out)
}

// parseMacroString parses s per RFC 7208 §7.1:
//
//	macro-string  = *( macro-expand / macro-literal )
//	macro-expand  = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
//	macro-literal = %x21-24 / %x26-7E
//	transformers  = *DIGIT [ "r" ]
//	delimiter     = "." / "-" / "+" / "," / "/" / "_" / "="
//
// In explanation context a space is also allowed (explain-string, §6.2).
// The returned error is a plain reason, without position; the caller places it.
func parseMacroString(s string, ctx macroContext) (*MacroString, error) {
	m := &MacroString{raw: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			m.parts = append(m.parts, macroPart{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("'%%' at the end of %q: write \"%%%%\" for a literal '%%' (RFC 7208 §7.1)", s)
			}
			switch s[i+1] {
			case '%':
				lit.WriteByte('%')
				i++
			case '_':
				lit.WriteByte(' ')
				i++
			case '-':
				lit.WriteString("%20")
				i++
			case '{':
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("macro %q has no closing '}'", abbreviate(s[i:], 20))
				}
				p, err := parseMacroExpand(s[i+2:i+end], ctx)
				if err != nil {
					return nil, err
				}
				flush()
				m.parts = append(m.parts, p)
				i += end
			default:
				return nil, fmt.Errorf("'%%' followed by %q: only \"%%{\", \"%%%%\", \"%%_\" and \"%%-\" are allowed (RFC 7208 §7.1)", s[i+1])
			}
		case c == ' ' && ctx == inExplanation:
			lit.WriteByte(c)
		case c < 0x21 || c > 0x7e:
			return nil, fmt.Errorf("byte 0x%02x is not allowed in a macro-string (visible ASCII only, RFC 7208 §7.1)", c)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return m, nil
}

// parseMacroExpand parses the inside of "%{...}".
func parseMacroExpand(body string, ctx macroContext) (macroPart, error) {
	bad := func(format string, args ...any) (macroPart, error) {
		return macroPart{}, fmt.Errorf("macro %q: %s", "%{"+body+"}", fmt.Sprintf(format, args...))
	}
	if body == "" {
		return bad("no macro-letter")
	}
	var p macroPart
	l := body[0]
	p.letter = l | 0x20 // ASCII lower-case; only letters pass the switch below
	p.upper = l >= 'A' && l <= 'Z'
	switch p.letter {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if ctx == inDomainSpec {
			return bad("the letter %q is only allowed in explanation text (RFC 7208 §7.2)", l)
		}
	default:
		return bad("unknown macro-letter %q (RFC 7208 §7.2)", l)
	}
	rest := body[1:]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n > 0 {
		v, err := strconv.Atoi(rest[:n])
		if err != nil || v > maxTransformerDigits {
			v = maxTransformerDigits
		}
		if v == 0 {
			return bad("the number of labels must be nonzero (RFC 7208 §7.3)")
		}
		p.digits = v
	}
	rest = rest[n:]
	if rest != "" && (rest[0] == 'r' || rest[0] == 'R') {
		p.reverse = true
		rest = rest[1:]
	}
	for i := 0; i < len(rest); i++ {
		if !strings.ContainsRune(".-+,/_=", rune(rest[i])) {
			return bad("%q is not a delimiter (one of . - + , / _ =)", rest[i])
		}
	}
	p.delims = rest
	return p, nil
}

// macroEnv holds the values the macro-letters expand to (RFC 7208 §7.3).
type macroEnv struct {
	sender   string     // s
	local    string     // l ("postmaster" when the sender has none, §4.3)
	senderD  string     // o
	domain   string     // d: the current <domain>
	ip       netip.Addr // i, c, v (already unmapped from ::ffff:0:0/96)
	helo     string     // h
	receiver string     // r
	now      func() time.Time
	// ptr returns the validated domain name of ip for the current domain
	// (p); it is called only when a %{p} is expanded.
	ptr func(domain string) string
}

// expand returns the macro-string with every macro replaced by its value.
func (m *MacroString) expand(env *macroEnv) string {
	var b strings.Builder
	for _, p := range m.parts {
		if p.letter == 0 {
			b.WriteString(p.literal)
			continue
		}
		v := transform(env.value(p.letter), p)
		if p.upper {
			v = urlEscape(v)
		}
		b.WriteString(v)
	}
	return b.String()
}

// value is the raw value of one macro-letter (RFC 7208 §7.3).
func (env *macroEnv) value(letter byte) string {
	switch letter {
	case 's':
		return env.sender
	case 'l':
		return env.local
	case 'o':
		return env.senderD
	case 'd':
		return env.domain
	case 'i':
		return dottedIP(env.ip)
	case 'p':
		if env.ptr == nil {
			return "unknown"
		}
		return env.ptr(env.domain)
	case 'v':
		if env.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'h':
		return env.helo
	case 'c':
		if !env.ip.IsValid() {
			return ""
		}
		return env.ip.String()
	case 'r':
		if env.receiver == "" {
			return "unknown"
		}
		return env.receiver
	case 't':
		now := time.Now
		if env.now != nil {
			now = env.now
		}
		return strconv.FormatInt(now().Unix(), 10)
	}
	return ""
}

// transform applies the transformers and delimiters of one macro (RFC 7208
// §7.3): split on the delimiters, reverse when asked, keep the right-most
// `digits` parts, and join them with dots.
func transform(v string, p macroPart) string {
	if p.digits == 0 && !p.reverse && (p.delims == "" || p.delims == ".") {
		return v
	}
	delims := p.delims
	if delims == "" {
		delims = "."
	}
	// Empty parts are kept (as pyspf does): "a..b" stays "a..b", and the
	// empty label then makes the name invalid.
	var parts []string
	start := 0
	for i := 0; i < len(v); i++ {
		if strings.IndexByte(delims, v[i]) >= 0 {
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	parts = append(parts, v[start:])
	if p.reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if p.digits > 0 && p.digits < len(parts) {
		parts = parts[len(parts)-p.digits:]
	}
	return strings.Join(parts, ".")
}

// dottedIP is the "i" macro: dotted-quad for IPv4, and for IPv6 32
// dot-separated nibbles (RFC 7208 §7.3). Nibbles are upper-case hex, as
// pyspf writes them and as the openspf suite (v-macro-ip6) expects in
// explanation text; the RFC's own §7.4 example is lower-case, and DNS
// compares names case-insensitively, so queries are unaffected.
func dottedIP(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	if ip.Is4() {
		return ip.String()
	}
	const hex = "0123456789ABCDEF"
	a := ip.As16()
	b := make([]byte, 0, 63)
	for i, x := range a {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, hex[x>>4], '.', hex[x&0xf])
	}
	return string(b)
}

// reverseName is the PTR query name for ip: d.c.b.a.in-addr.arpa or the 32
// reversed nibbles under ip6.arpa (RFC 1035 §3.5, RFC 3596 §2.5).
func reverseName(ip netip.Addr) string {
	if ip.Is4() {
		a := ip.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", a[3], a[2], a[1], a[0])
	}
	const hex = "0123456789abcdef"
	a := ip.As16()
	b := make([]byte, 0, 72)
	for i := len(a) - 1; i >= 0; i-- {
		b = append(b, hex[a[i]&0xf], '.', hex[a[i]>>4], '.')
	}
	return string(b) + "ip6.arpa"
}

// urlEscape percent-encodes every byte outside the URI "unreserved" set
// (RFC 3986 §2.3), as RFC 7208 §7.3 requires for upper-case macro-letters.
func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
