package allowlist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"go4.org/netipx"
)

// List is a parsed allow list.
type List struct {
	// Source names where the list came from (the file name); findings use
	// it as their subject.
	Source string
	// Entries are in the order of the input.
	Entries []Entry
}

// Entry is one item of the list: an address, a CIDR or a range, as written.
type Entry struct {
	// Line is the 1-based line the entry starts on.
	Line int
	// Text is the entry as written, without quotes or the spaces around a
	// range's "-" (e.g. "192.0.2.1/24", "192.0.2.1-192.0.2.20").
	Text string
	// Prefixes are what the entry covers: one masked prefix for an address
	// or a CIDR, the minimal CIDR cover for a range.
	Prefixes []netip.Prefix
}

// IsRange reports whether the entry was written as a range (a-b). Addresses
// and CIDRs never contain "-", ranges always do.
func (e Entry) IsRange() bool { return strings.Contains(e.Text, "-") }

// Prefixes returns the prefixes of every entry, in list order (not merged).
func (l *List) Prefixes() []netip.Prefix {
	if l == nil {
		return nil
	}
	var out []netip.Prefix
	for _, e := range l.Entries {
		out = append(out, e.Prefixes...)
	}
	return out
}

// ParseError is a line Parse could not read. The CLI shows it and exits 2.
type ParseError struct {
	File   string
	Line   int    // 1-based; 0 when the problem is the whole input
	Text   string // the offending entry or line; may be empty
	Reason string
}

// maxErrorText bounds how much of the offending text Error repeats: a
// garbage line can be as long as the input.
const maxErrorText = 80

// Error reads `file:line: "text": reason`; the line is left out when it is
// 0 and the text when it is empty.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Text != "" {
		t := e.Text
		if utf8.RuneCountInString(t) > maxErrorText {
			t = string([]rune(t)[:maxErrorText-1]) + "…"
		}
		fmt.Fprintf(&b, "%q: ", t)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// ErrTruncated is matched (errors.Is) by the ParseError Parse returns for a
// list PowerShell shortened with "..." or "…".
var ErrTruncated = errors.New("allow list truncated by PowerShell")

const reasonTruncated = `the list is truncated: PowerShell cut it at $FormatEnumerationLimit items and wrote "..."; ` +
	`export it whole with: Get-HostedConnectionFilterPolicy -Identity Default | Select-Object -ExpandProperty IPAllowList ` +
	`(or run $FormatEnumerationLimit = -1 before Format-List)`

// Is makes errors.Is(err, ErrTruncated) true for a truncated list.
func (e *ParseError) Is(target error) bool {
	return target == ErrTruncated && e.Reason == reasonTruncated
}

// MaxInputSize bounds the input: an IP Allow List holds at most 1273
// entries, a few tens of kilobytes even as UTF-16, so anything near this
// size is not an allow list export.
const MaxInputSize = 16 << 20

// ParseFile reads the allow list at path; the list's Source is path.
func ParseFile(path string) (*List, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads an allow list (see the package documentation for the formats).
// source names the input in errors and in List.Source. A read error is
// returned as it is; a problem with the content is a *ParseError. An empty
// input is an empty list, not an error: an empty IP Allow List is a valid
// (if unhelpful) configuration.
func Parse(r io.Reader, source string) (*List, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(data) > MaxInputSize {
		return nil, &ParseError{File: source, Reason: fmt.Sprintf("larger than %d MiB: not an allow list export", MaxInputSize>>20)}
	}
	text, perr := decodeText(data)
	if perr != "" {
		return nil, &ParseError{File: source, Reason: perr}
	}
	p := parser{list: &List{Source: source}}
	if err := p.run(text); err != nil {
		return nil, err
	}
	return p.list, nil
}

// decodeText turns the input into a string. Windows PowerShell's Out-File
// and ">" write UTF-16LE with a byte-order mark, so UTF-16 (either order)
// with a BOM is decoded; a UTF-8 BOM is dropped. NUL bytes without a BOM
// mean UTF-16 the parser cannot place, and are refused rather than read as
// garbage.
func decodeText(b []byte) (string, string) {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		b = b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		little := b[0] == 0xFF
		b = b[2:]
		if len(b)%2 != 0 {
			return "", "UTF-16 text with an odd number of bytes: the file is cut short"
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			if little {
				u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			} else {
				u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
			}
		}
		return string(utf16.Decode(u)), ""
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", "the text contains NUL bytes (UTF-16 without a byte-order mark?): save it as UTF-8"
	}
	return string(b), ""
}

// propertyLine matches a Format-List line, "Name : value". The key must be
// followed by a colon and then a blank or the end of the line, which no IPv6
// address is (its colons are followed by hex digits or another colon).
var propertyLine = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?:[ \t]+(.*))?$`)

// allowProperty is the only Format-List property whose values are read.
const allowProperty = "IPAllowList"

// piece is part of a value and the line it came from.
type piece struct {
	text string
	line int
}

type parser struct {
	list *List

	// The current Format-List property: set by a "Name : value" line and
	// kept for its continuation lines.
	inProp bool
	wanted bool // the property is IPAllowList

	// An open "{...}" value and the lines collected for it.
	braceOpen bool
	braceLine int
	pieces    []piece

	sawProperty, sawAllow bool
}

func (p *parser) errorf(line int, text, format string, args ...any) *ParseError {
	return &ParseError{File: p.list.Source, Line: line, Text: text, Reason: fmt.Sprintf(format, args...)}
}

func (p *parser) run(text string) error {
	for i, raw := range strings.Split(text, "\n") {
		if err := p.line(i+1, strings.TrimSuffix(raw, "\r")); err != nil {
			return err
		}
	}
	if err := p.closeBrace(); err != nil {
		return err
	}
	if p.sawProperty && !p.sawAllow && len(p.list.Entries) == 0 {
		return &ParseError{File: p.list.Source, Reason: "Format-List output without an IPAllowList property; " +
			"export the list with: Get-HostedConnectionFilterPolicy -Identity Default | Select-Object -ExpandProperty IPAllowList"}
	}
	return nil
}

func (p *parser) line(n int, raw string) error {
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	text := strings.TrimSpace(raw)
	indented := text != "" && (raw[0] == ' ' || raw[0] == '\t')
	m := propertyLine.FindStringSubmatch(text)
	if m != nil && isHex(m[1]) {
		m = nil // "fe80:" is a broken address, not a property
	}
	// An indented "Name : value" line right after a property is part of
	// its value (a wrapped description); anywhere else it is a property of
	// output that was pasted with a margin.
	isProp := m != nil && (!indented || !(p.inProp || p.braceOpen))

	if p.braceOpen {
		switch {
		case text == "" || isProp:
			// A blank line or the next property before the "}": the
			// value was never closed.
			if err := p.closeBrace(); err != nil {
				return err
			}
		default:
			return p.addPiece(text, n)
		}
	}
	if text == "" {
		p.inProp = false
		return nil
	}
	if isProp {
		p.inProp = true
		p.sawProperty = true
		p.wanted = strings.EqualFold(m[1], allowProperty)
		if p.wanted {
			p.sawAllow = true
		}
		return p.value(strings.TrimSpace(m[2]), n)
	}
	if indented && p.inProp {
		// PowerShell wraps a long value onto indented lines.
		return p.value(text, n)
	}
	p.inProp = false
	p.wanted = true // a bare line is part of the list
	if strings.EqualFold(text, allowProperty) || strings.Trim(text, "- \t") == "" {
		// The header and the dashes of Select-Object IPAllowList output.
		return nil
	}
	return p.value(text, n)
}

// value handles the value of a property line, a continuation line or a bare
// line: either entries, or the start of a "{...}" list.
func (p *parser) value(v string, n int) error {
	if v == "" {
		return nil
	}
	if strings.HasPrefix(v, "{") {
		p.braceOpen = true
		p.braceLine = n
		p.pieces = p.pieces[:0]
		return p.addPiece(v[1:], n)
	}
	if !p.wanted {
		return nil
	}
	if strings.ContainsAny(v, "{}") {
		return p.errorf(n, v, "unexpected brace: a list is written {a, b, c}")
	}
	return p.entries([]piece{{v, n}})
}

// addPiece adds a line to the open "{...}" value and finishes it at "}".
func (p *parser) addPiece(text string, n int) error {
	before, after, closed := strings.Cut(text, "}")
	if p.wanted && strings.Contains(before, "{") {
		return p.errorf(n, text, "unexpected {: lists do not nest")
	}
	p.pieces = append(p.pieces, piece{before, n})
	if !closed {
		return nil
	}
	p.braceOpen = false
	if !p.wanted {
		return nil
	}
	if strings.TrimSpace(after) != "" {
		return p.errorf(n, after, "unexpected text after the closing }")
	}
	return p.entries(p.pieces)
}

// closeBrace ends a "{...}" value that has no "}": an error for the
// IPAllowList (the value may be cut short), nothing for other properties.
func (p *parser) closeBrace() error {
	if !p.braceOpen {
		return nil
	}
	p.braceOpen = false
	if !p.wanted {
		return nil
	}
	text := "{"
	if len(p.pieces) > 0 {
		text += strings.TrimSpace(p.pieces[0].text)
		if last := p.pieces[len(p.pieces)-1]; hasEllipsis(last.text) {
			return p.errorf(last.line, strings.TrimSpace(last.text), "%s", reasonTruncated)
		}
	}
	return p.errorf(p.braceLine, text, "the { opened here is never closed with }")
}

// rangeDash joins the spaces around a range's dash ("a - b" is "a-b"). No
// address or CIDR contains "-", so this cannot merge two entries that were
// meant apart.
var rangeDash = regexp.MustCompile(`[ \t]*-[ \t]*`)

// entries parses the entries of a value spread over pieces (lines). When
// PowerShell wraps a value it breaks after ", " (the comma ends the line) or,
// for a word longer than the line, inside it; so pieces are joined with a
// blank after a comma and directly otherwise.
func (p *parser) entries(pieces []piece) error {
	var joined strings.Builder
	type mark struct{ off, line int }
	var marks []mark
	for i, pc := range pieces {
		t := rangeDash.ReplaceAllString(strings.TrimSpace(pc.text), "-")
		if i > 0 && joined.Len() > 0 && (strings.HasSuffix(joined.String(), ",") || strings.HasPrefix(t, ",")) {
			joined.WriteByte(' ')
		}
		marks = append(marks, mark{joined.Len(), pc.line})
		joined.WriteString(t)
	}
	s := joined.String()
	// Tokens come in offset order, so the piece a token starts in is found
	// by moving forward, never by searching from the start again.
	cur := 0
	lineAt := func(off int) int {
		for cur+1 < len(marks) && marks[cur+1].off <= off {
			cur++
		}
		return marks[cur].line
	}
	for off := 0; off < len(s); {
		if isSep(s[off]) {
			off++
			continue
		}
		end := off
		for end < len(s) && !isSep(s[end]) {
			end++
		}
		tok := unquote(s[off:end])
		line := lineAt(off)
		off = end
		if tok == "" {
			continue
		}
		if hasEllipsis(tok) {
			return p.errorf(line, tok, "%s", reasonTruncated)
		}
		prefixes, reason := parseEntry(tok)
		if reason != "" {
			return p.errorf(line, tok, "%s", reason)
		}
		p.list.Entries = append(p.list.Entries, Entry{Line: line, Text: tok, Prefixes: prefixes})
	}
	return nil
}

func isSep(c byte) bool { return c == ',' || c == ' ' || c == '\t' }

// unquote drops the quotes of a PowerShell string ("192.0.2.1" or
// '192.0.2.1'), so entries pasted from a command read back.
func unquote(t string) string {
	for _, q := range []string{`"`, `'`} {
		if len(t) >= 2 && strings.HasPrefix(t, q) && strings.HasSuffix(t, q) {
			return t[1 : len(t)-1]
		}
	}
	return t
}

// hasEllipsis recognises PowerShell's truncation mark: "..." in Windows
// PowerShell, "…" (U+2026) in PowerShell 7, and byte 0x85 (the ellipsis in
// Windows-1252, what Out-File -Encoding Default writes).
func hasEllipsis(t string) bool {
	t = strings.TrimRight(t, " \t}")
	return strings.HasSuffix(t, "...") || strings.HasSuffix(t, "…") || strings.HasSuffix(t, "\x85")
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// parseEntry reads one entry: an address, a CIDR or a range. It returns the
// prefixes it covers, or a reason it is not valid.
func parseEntry(t string) ([]netip.Prefix, string) {
	if from, to, ok := strings.Cut(t, "-"); ok {
		return parseRange(from, to)
	}
	if addr, bits, ok := strings.Cut(t, "/"); ok {
		a, reason := parseAddr(addr)
		if reason != "" {
			return nil, reason
		}
		if bits == "" || len(bits) > 3 || strings.Trim(bits, "0123456789") != "" {
			return nil, fmt.Sprintf("the prefix length %q is not a number", bits)
		}
		n, _ := strconv.Atoi(bits)
		if n > a.BitLen() {
			return nil, fmt.Sprintf("prefix length /%d is out of range for %s (/0 to /%d)", n, family(a), a.BitLen())
		}
		// Host bits under the mask are accepted (see the package doc):
		// the entry stands for its network.
		return []netip.Prefix{netip.PrefixFrom(a, n).Masked()}, ""
	}
	a, reason := parseAddr(t)
	if reason != "" {
		return nil, reason
	}
	return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, ""
}

func parseRange(from, to string) ([]netip.Prefix, string) {
	if from == "" || to == "" {
		return nil, "incomplete range: write it as first-last, e.g. 192.0.2.1-192.0.2.20"
	}
	if strings.Contains(to, "-") {
		return nil, "a range has one - between two addresses"
	}
	if strings.Contains(from, "/") || strings.Contains(to, "/") {
		return nil, "a range joins two addresses, not CIDRs"
	}
	a, reason := parseAddr(from)
	if reason != "" {
		return nil, "range start: " + reason
	}
	b, reason := parseAddr(to)
	if reason != "" {
		return nil, "range end: " + reason
	}
	if a.BitLen() != b.BitLen() {
		return nil, fmt.Sprintf("the range mixes %s and %s addresses", family(a), family(b))
	}
	if b.Less(a) {
		return nil, fmt.Sprintf("the range ends (%s) before it starts (%s)", b, a)
	}
	return netipx.IPRangeFrom(a, b).Prefixes(), ""
}

// parseAddr reads an IPv4 or IPv6 address without a zone.
func parseAddr(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if s != "" && strings.Trim(s, "0123456789abcdefABCDEF.:") == "" {
			// Looks like an address: netip's reason is the useful one
			// ("IPv4 field has value >255", "... leading zero").
			msg := err.Error()
			if i := strings.LastIndex(msg, "): "); i >= 0 {
				msg = msg[i+3:]
			}
			return netip.Addr{}, "not a valid IP address: " + msg
		}
		if strings.Contains(s, "%") {
			return netip.Addr{}, "not a valid IP address (an IPv6 zone such as %eth0 has no place in an allow list)"
		}
		return netip.Addr{}, "not an IP address, CIDR or range"
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Sprintf("the IPv6 zone %%%s has no place in an allow list", a.Zone())
	}
	return a, ""
}

func family(a netip.Addr) string {
	if a.BitLen() == 32 {
		return "IPv4"
	}
	return "IPv6"
}
