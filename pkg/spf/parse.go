package spf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Qualifier is the prefix of a directive (RFC 7208 §4.6.2): the result a
// matching mechanism gives.
type Qualifier byte

const (
	QualifierPass     Qualifier = '+'
	QualifierFail     Qualifier = '-'
	QualifierSoftFail Qualifier = '~'
	QualifierNeutral  Qualifier = '?'
)

// Result is the result a matching mechanism with this qualifier gives.
func (q Qualifier) Result() Result {
	switch q {
	case QualifierFail:
		return Fail
	case QualifierSoftFail:
		return SoftFail
	case QualifierNeutral:
		return Neutral
	}
	return Pass
}

// MechanismKind names a mechanism (RFC 7208 §5).
type MechanismKind string

const (
	MechAll     MechanismKind = "all"     // §5.1
	MechInclude MechanismKind = "include" // §5.2
	MechA       MechanismKind = "a"       // §5.3
	MechMX      MechanismKind = "mx"      // §5.4
	MechPTR     MechanismKind = "ptr"     // §5.5 (deprecated: "SHOULD NOT be used")
	MechIP4     MechanismKind = "ip4"     // §5.6
	MechIP6     MechanismKind = "ip6"     // §5.6
	MechExists  MechanismKind = "exists"  // §5.7
)

// CountsLookup reports whether evaluating the mechanism counts against the
// limit of 10 DNS-querying terms (RFC 7208 §4.6.4).
func (k MechanismKind) CountsLookup() bool {
	switch k {
	case MechInclude, MechA, MechMX, MechPTR, MechExists:
		return true
	}
	return false
}

// Mechanism is a parsed mechanism with its qualifier (a directive).
type Mechanism struct {
	// Qualifier is always set: QualifierPass when the record has none.
	Qualifier Qualifier
	Kind      MechanismKind
	// Domain is the domain-spec (§7.1). Required for include and exists;
	// optional for a, mx and ptr, where nil means the current <domain>;
	// nil for all, ip4 and ip6.
	Domain *MacroString
	// Network is the ip4 or ip6 network as written (address not masked);
	// without a prefix length it is a /32 or /128.
	Network netip.Prefix
	// CIDR4 and CIDR6 are the dual-cidr-length of a and mx (§5.3, §5.4):
	// 32 and 128 when absent.
	CIDR4, CIDR6 int
}

// Modifier is a parsed name=value term (RFC 7208 §6): redirect, exp, or an
// unknown modifier, which is ignored (§6, last paragraph).
type Modifier struct {
	// Name as written; compare with strings.EqualFold.
	Name string
	// Value is the domain-spec of redirect and exp, the macro-string of an
	// unknown modifier.
	Value *MacroString
}

// Known reports whether the modifier is redirect or exp.
func (m *Modifier) Known() bool {
	return strings.EqualFold(m.Name, "redirect") || strings.EqualFold(m.Name, "exp")
}

// Term is one directive or modifier of a record, with where it was found.
type Term struct {
	// Index is the 1-based position of the term after "v=spf1" (which is
	// term 0).
	Index int
	// Offset is the 0-based byte offset of the term's first byte in the
	// record.
	Offset int
	// Text is the term exactly as written.
	Text string
	// Exactly one of Mechanism and Modifier is set.
	Mechanism *Mechanism
	Modifier  *Modifier
}

// Record is a parsed SPF record (RFC 7208 §4.6).
type Record struct {
	// Text is the record as parsed (the TXT strings already joined).
	Text  string
	Terms []Term
	// Redirect and Exp point into Terms, or are nil (§6.1, §6.2).
	Redirect *Term
	Exp      *Term
}

// HasAll reports whether the record has an "all" mechanism; if so, its
// redirect= is never used (RFC 7208 §6.1).
func (r *Record) HasAll() bool {
	for _, t := range r.Terms {
		if t.Mechanism != nil && t.Mechanism.Kind == MechAll {
			return true
		}
	}
	return false
}

// String returns the record in canonical form: "v=spf1", then the terms
// separated by one space, mechanism names lower-case, "+" and default prefix
// lengths omitted. Parse(r.String()) gives the same terms (except Offset and
// Text).
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=spf1")
	for _, t := range r.Terms {
		b.WriteByte(' ')
		b.WriteString(t.String())
	}
	return b.String()
}

// String returns the term in canonical form (see Record.String).
func (t Term) String() string {
	if t.Modifier != nil {
		return t.Modifier.Name + "=" + t.Modifier.Value.String()
	}
	m := t.Mechanism
	if m == nil {
		return t.Text
	}
	var b strings.Builder
	if m.Qualifier != QualifierPass && m.Qualifier != 0 {
		b.WriteByte(byte(m.Qualifier))
	}
	b.WriteString(string(m.Kind))
	switch m.Kind {
	case MechIP4, MechIP6:
		b.WriteByte(':')
		b.WriteString(m.Network.Addr().String())
		if m.Network.Bits() != m.Network.Addr().BitLen() {
			b.WriteByte('/')
			b.WriteString(strconv.Itoa(m.Network.Bits()))
		}
	default:
		if m.Domain != nil {
			b.WriteByte(':')
			b.WriteString(m.Domain.String())
		}
		if m.Kind == MechA || m.Kind == MechMX {
			if m.CIDR4 != 32 {
				b.WriteString("/" + strconv.Itoa(m.CIDR4))
			}
			if m.CIDR6 != 128 {
				b.WriteString("//" + strconv.Itoa(m.CIDR6))
			}
		}
	}
	return b.String()
}

// ErrSyntax is the class of every *SyntaxError: errors.Is(err, ErrSyntax).
var ErrSyntax = errors.New("spf: syntax error")

// SyntaxError is a record that does not follow the RFC 7208 §12 ABNF; it
// makes check_host() return permerror (§4.6). Use errors.As to get it.
type SyntaxError struct {
	// Term is the 1-based index of the offending term; 0 for the version.
	Term int
	// Offset is the 0-based byte offset of the term in the record.
	Offset int
	// Text is the term as written.
	Text string
	// Reason says what is wrong, in words.
	Reason string
}

func (e *SyntaxError) Error() string {
	// The term and the reason (which may quote the term) are shortened
	// for the message: a TXT record can carry 64 KiB, and quoting a
	// 64 KiB term (2.5 times that with %q escapes) made findings of
	// 160 KB that name nothing readable. Text and Reason keep it all.
	if e.Term == 0 {
		return elide(e.Reason, 200, 150)
	}
	return fmt.Sprintf("term %d %q: %s", e.Term, elide(e.Text, 60, 0), elide(e.Reason, 200, 150))
}

// elide keeps the first head and last tail bytes of s when it is longer
// than head+tail+40, cut at UTF-8 boundaries, with "..." between.
func elide(s string, head, tail int) string {
	if len(s) <= head+tail+40 {
		return s
	}
	h, t := head, len(s)-tail
	for h > 0 && !utf8.RuneStart(s[h]) {
		h--
	}
	for t < len(s) && !utf8.RuneStart(s[t]) {
		t++
	}
	return s[:h] + "..." + s[t:]
}

// Unwrap makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// IsSPF reports whether a TXT record is an SPF version 1 record: it starts
// with "v=spf1" (any case), followed by a space or the end (RFC 7208 §4.5).
// "v=spf10" and "v=spf1\tmx" are not.
func IsSPF(txt string) bool {
	const v = "v=spf1"
	if len(txt) < len(v) || !strings.EqualFold(txt[:len(v)], v) {
		return false
	}
	return len(txt) == len(v) || txt[len(v)] == ' '
}

// Parse parses an SPF record (RFC 7208 §4.6, §12). The whole record is
// checked before anything is evaluated: §4.6 requires syntax errors
// anywhere in the record to be detected. Errors are *SyntaxError.
func Parse(record string) (*Record, error) {
	if !IsSPF(record) {
		return nil, &SyntaxError{Text: abbreviate(record, 20), Reason: fmt.Sprintf("%q does not start with \"v=spf1\" followed by a space or the end (RFC 7208 §4.5)", abbreviate(record, 20))}
	}
	r := &Record{Text: record}
	// terms = *( 1*SP ( directive / modifier ) ); record = version terms *SP
	// Only the space (0x20) separates terms: a tab or CR is part of a term
	// and then fails its syntax (suite: control-char-policy, badip4).
	pos := len("v=spf1")
	for pos < len(record) {
		if record[pos] == ' ' {
			pos++
			continue
		}
		end := strings.IndexByte(record[pos:], ' ')
		if end < 0 {
			end = len(record)
		} else {
			end += pos
		}
		t := Term{Index: len(r.Terms) + 1, Offset: pos, Text: record[pos:end]}
		if reason := parseTerm(&t); reason != "" {
			return nil, &SyntaxError{Term: t.Index, Offset: t.Offset, Text: t.Text, Reason: reason}
		}
		r.Terms = append(r.Terms, t)
		pos = end
	}
	for i := range r.Terms {
		t := &r.Terms[i]
		if t.Modifier == nil {
			continue
		}
		var slot **Term
		switch {
		case strings.EqualFold(t.Modifier.Name, "redirect"):
			slot = &r.Redirect
		case strings.EqualFold(t.Modifier.Name, "exp"):
			slot = &r.Exp
		default:
			continue
		}
		if *slot != nil {
			// §6: "These two modifiers MUST NOT appear in a record more
			// than once each."
			return nil, &SyntaxError{Term: t.Index, Offset: t.Offset, Text: t.Text,
				Reason: fmt.Sprintf("second %s= modifier (term %d is the first); each may appear only once (RFC 7208 §6)", strings.ToLower(t.Modifier.Name), (*slot).Index)}
		}
		*slot = t
	}
	return r, nil
}

// parseTerm fills t.Mechanism or t.Modifier from t.Text, or returns why it
// cannot.
func parseTerm(t *Term) string {
	text := t.Text
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c >= 0x80:
			return fmt.Sprintf("non-ASCII byte 0x%02x at offset %d: SPF records are 7-bit ASCII (RFC 7208 §3.1)", c, t.Offset+i)
		case c < 0x20 || c == 0x7f:
			return fmt.Sprintf("control character 0x%02x at offset %d: terms are separated by spaces only (RFC 7208 §4.6.1)", c, t.Offset+i)
		}
	}
	// A modifier is name "=" with name = ALPHA *( ALPHA / DIGIT / "-" /
	// "_" / "." ), the "=" coming before any ":" or "/" (§4.6.1).
	if i := strings.IndexAny(text, ":/="); i >= 0 && text[i] == '=' {
		return parseModifier(t, text[:i], text[i+1:])
	}
	return parseMechanism(t, text)
}

func parseModifier(t *Term, name, value string) string {
	if !isModifierName(name) {
		if name == "" {
			return "modifier with an empty name (RFC 7208 §6)"
		}
		return fmt.Sprintf("%q is not a valid modifier name: name = ALPHA *( ALPHA / DIGIT / \"-\" / \"_\" / \".\" ) (RFC 7208 §12)", name)
	}
	mod := &Modifier{Name: name}
	switch {
	case strings.EqualFold(name, "redirect"), strings.EqualFold(name, "exp"):
		// A known modifier name with bad syntax is an error, not an
		// unknown-modifier (suite: redirect-syntax-error, exp-empty-domain).
		if value == "" {
			return fmt.Sprintf("%s= needs a domain (RFC 7208 §6)", strings.ToLower(name))
		}
		ms, reason := parseDomainSpec(value)
		if reason != "" {
			return reason
		}
		mod.Value = ms
	default:
		ms, err := parseMacroString(value, inModifier)
		if err != nil {
			return err.Error()
		}
		mod.Value = ms
	}
	t.Modifier = mod
	return ""
}

func isModifierName(name string) bool {
	if name == "" || !isAlpha(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(isAlpha(c) || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func parseMechanism(t *Term, text string) string {
	m := &Mechanism{Qualifier: QualifierPass, CIDR4: 32, CIDR6: 128}
	if text != "" && strings.IndexByte("+-~?", text[0]) >= 0 {
		m.Qualifier = Qualifier(text[0])
		text = text[1:]
	}
	n := strings.IndexAny(text, ":/")
	if n < 0 {
		n = len(text)
	}
	name, rest := text[:n], text[n:]
	switch kind := MechanismKind(strings.ToLower(name)); kind {
	case MechAll, MechInclude, MechA, MechMX, MechPTR, MechIP4, MechIP6, MechExists:
		m.Kind = kind
	default:
		if name == "" {
			return "missing mechanism name"
		}
		if strings.EqualFold(name, "redirect") || strings.EqualFold(name, "exp") {
			return fmt.Sprintf("%q is a modifier and needs \"=\", not \":\" (RFC 7208 §6)", name)
		}
		return fmt.Sprintf("unknown mechanism %q (RFC 7208 §5)", name)
	}
	var reason string
	switch m.Kind {
	case MechAll:
		if rest != "" {
			reason = "\"all\" takes no argument (RFC 7208 §5.1)"
		}
	case MechInclude, MechExists:
		// include = "include" ":" domain-spec; exists likewise (§5.2, §5.7)
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			reason = fmt.Sprintf("%q needs \":\" and a domain (RFC 7208 §5)", m.Kind)
			break
		}
		m.Domain, reason = parseDomainSpec(rest[1:])
	case MechA, MechMX:
		// a = "a" [ ":" domain-spec ] [ dual-cidr-length ] (§5.3, §5.4)
		rest, m.CIDR4, m.CIDR6, reason = splitDualCIDR(rest)
		if reason != "" {
			break
		}
		if rest != "" {
			if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
				reason = fmt.Sprintf("%q: expected \":\" and a domain, or a prefix length, not %q (RFC 7208 §5)", m.Kind, rest)
				break
			}
			m.Domain, reason = parseDomainSpec(rest[1:])
		}
	case MechPTR:
		// ptr = "ptr" [ ":" domain-spec ] (§5.5): no prefix length.
		if rest == "" {
			break
		}
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			reason = fmt.Sprintf("\"ptr\" takes only \":\" and a domain, not %q (RFC 7208 §5.5)", rest)
			break
		}
		m.Domain, reason = parseDomainSpec(rest[1:])
	case MechIP4, MechIP6:
		m.Network, reason = parseNetwork(m.Kind, rest)
	}
	if reason != "" {
		return reason
	}
	t.Mechanism = m
	return ""
}

// splitDualCIDR removes a trailing dual-cidr-length from the argument of a
// or mx (RFC 7208 §5.3):
//
//	dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ]
//
// It is taken from the end because a domain-spec may itself contain "/"
// (suite: a-colon-domain, "a:foo:bar/baz.example.com").
func splitDualCIDR(s string) (rest string, cidr4, cidr6 int, reason string) {
	cidr4, cidr6 = 32, 128
	if k := strings.LastIndex(s, "//"); k >= 0 && allDigits(s[k+2:]) {
		v, r := parseCIDR(s[k+2:], 128)
		if r != "" {
			return "", 0, 0, r
		}
		cidr6, s = v, s[:k]
	}
	if k := strings.LastIndexByte(s, '/'); k >= 0 && allDigits(s[k+1:]) {
		v, r := parseCIDR(s[k+1:], 32)
		if r != "" {
			return "", 0, 0, r
		}
		cidr4, s = v, s[:k]
	}
	return s, cidr4, cidr6, ""
}

// parseCIDR parses the digits of a prefix length: ip4-cidr-length = "/"
// ("0" / %x31-39 0*1DIGIT), ip6-cidr-length = "/" ("0" / %x31-39 0*2DIGIT)
// (RFC 7208 §12): no leading zero (suite: cidr4-032), at most max.
func parseCIDR(digits string, max int) (int, string) {
	if !allDigits(digits) {
		return 0, fmt.Sprintf("prefix length %q is not a number", digits)
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, fmt.Sprintf("prefix length %q has a leading zero (RFC 7208 §5.6)", digits)
	}
	v, err := strconv.Atoi(digits)
	if err != nil || v > max {
		return 0, fmt.Sprintf("prefix length %s is over %d", digits, max)
	}
	return v, ""
}

// parseNetwork parses the argument of ip4 or ip6 (RFC 7208 §5.6):
//
//	ip4 = "ip4" ":" ip4-network [ ip4-cidr-length ]
//	ip6 = "ip6" ":" ip6-network [ ip6-cidr-length ]
func parseNetwork(kind MechanismKind, rest string) (netip.Prefix, string) {
	if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
		return netip.Prefix{}, fmt.Sprintf("%q needs \":\" and an address (RFC 7208 §5.6)", kind)
	}
	addrText, lenText, hasLen := strings.Cut(rest[1:], "/")
	addr, err := netip.ParseAddr(addrText)
	max := 32
	switch {
	case kind == MechIP4 && (err != nil || !addr.Is4()):
		// netip rejects leading zeros and short forms such as "1.2.3"
		// (§5.6: "It is not permitted to omit parts of the IP address").
		return netip.Prefix{}, fmt.Sprintf("%q is not an IPv4 address in dotted-quad form (RFC 7208 §5.6)", addrText)
	case kind == MechIP6 && (err != nil || !addr.Is6() || addr.Zone() != ""):
		return netip.Prefix{}, fmt.Sprintf("%q is not an IPv6 address (RFC 7208 §5.6)", addrText)
	case kind == MechIP6:
		max = 128
	}
	bits := max
	if hasLen {
		var reason string
		if bits, reason = parseCIDR(lenText, max); reason != "" {
			return netip.Prefix{}, reason
		}
	}
	return netip.PrefixFrom(addr, bits), ""
}

// parseDomainSpec parses a domain-spec (RFC 7208 §7.1):
//
//	domain-spec = macro-string domain-end
//	domain-end  = ( "." toplabel [ "." ] ) / macro-expand
//	toplabel    = ( *alphanum ALPHA *alphanum ) /
//	              ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
//
// So a literal domain-spec needs at least one dot, and its last label may
// not be all-numeric nor start or end with "-" (suite: a-numeric,
// a-bad-toplabel, a-only-toplabel); ":" and "/" may appear before it
// (a-colon-domain). One final dot is accepted after a macro too.
func parseDomainSpec(s string) (*MacroString, string) {
	if s == "" {
		return nil, "empty domain-spec (RFC 7208 §7.1)"
	}
	ms, err := parseMacroString(s, inDomainSpec)
	if err != nil {
		return nil, err.Error()
	}
	trimmed := strings.TrimSuffix(s, ".")
	if endsWithMacro(trimmed) {
		return ms, "" // domain-end = macro-expand
	}
	dot := strings.LastIndexByte(trimmed, '.')
	if dot < 0 {
		return nil, fmt.Sprintf("%q is not a valid domain-spec: it must end with \".\" and a top label, or with a macro (RFC 7208 §7.1)", s)
	}
	if top := trimmed[dot+1:]; !isTopLabel(top) {
		return nil, fmt.Sprintf("%q is not a valid domain-spec: %q is not a valid top label (letters, digits and inner hyphens, not all digits; RFC 7208 §7.1)", s, top)
	}
	return ms, ""
}

// endsWithMacro reports whether s (a valid macro-string) ends with a
// macro-expand: "%{...}", "%%", "%_" or "%-". A final "}" may also be a
// literal, and "%%_" is a literal "%" then "_", so s is parsed again.
func endsWithMacro(s string) bool {
	if s == "" {
		return false
	}
	ms, err := parseMacroString(s, inDomainSpec)
	if err != nil || len(ms.parts) == 0 {
		return false
	}
	if ms.parts[len(ms.parts)-1].letter != 0 {
		return true
	}
	// Count the run of '%' before the last byte: an odd run means the
	// last two bytes are one of the escapes %%, %_ or %-.
	last := s[len(s)-1]
	if last != '%' && last != '_' && last != '-' {
		return false
	}
	n := 0
	for i := len(s) - 2; i >= 0 && s[i] == '%'; i-- {
		n++
	}
	if last == '%' {
		// "...%%": the final '%' belongs to a pair when the run
		// including it is even.
		return (n+1)%2 == 0
	}
	return n%2 == 1
}

func isTopLabel(l string) bool {
	if l == "" || !isAlnum(l[0]) || !isAlnum(l[len(l)-1]) {
		return false
	}
	hasAlpha, hasDash := false, false
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case isAlpha(c):
			hasAlpha = true
		case c == '-':
			hasDash = true
		case c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return hasAlpha || hasDash
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }
