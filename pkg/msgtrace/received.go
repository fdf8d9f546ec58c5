package msgtrace

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// MaxReceivedLen bounds one Received value. Real ones are a few hundred
// bytes (Postfix with its TLS comment is about 400); a longer one is noise
// or an attack, and is not parsed.
const MaxReceivedLen = 8 << 10

// Transport says what a hop tells about its protection in transit.
type Transport string

const (
	// TransportTLS: the hop states TLS (ESMTPS, ESMTPSA, "using TLSv1.3",
	// "version=TLS1_2", "(TLS)", "STARTTLS", HTTPS).
	TransportTLS Transport = "tls"
	// TransportPlain: the hop states an SMTP/LMTP protocol without TLS
	// (SMTP, ESMTP, ESMTPA, "Microsoft SMTP Server" without version=).
	TransportPlain Transport = "plain"
	// TransportUnknown: the hop names no protocol, or one that says nothing
	// about TLS (mapi, HTTP, local).
	TransportUnknown Transport = "unknown"
	// TransportLocal: the hop has no "from" clause, so nothing travelled
	// over a network (local submission, pickup, a filter's internal step).
	TransportLocal Transport = "local"
)

// Hop is one Received header field, numbered from the sender's side.
type Hop struct {
	// Index is 1 for the hop closest to the sender (the bottom-most
	// Received field) and grows towards the mailbox.
	Index int `json:"index"`
	// From is the name the sending host gave in HELO/EHLO (RFC 5321 §4.4
	// From-domain), or its address literal.
	From string `json:"from,omitempty"`
	// FromRDNS is the sender's reverse-DNS name as the receiver recorded it
	// in the TCP-info comment; FromIP its address.
	FromRDNS string `json:"from_rdns,omitempty"`
	FromIP   string `json:"from_ip,omitempty"`
	// By is the receiving host's name; Via the link (rarely used).
	By  string `json:"by,omitempty"`
	Via string `json:"via,omitempty"`
	// With is the protocol (RFC 5321 §4.4; ESMTPS and friends from RFC 3848,
	// UTF8SMTP* from RFC 6531 §3.7.3), as written ("Microsoft SMTP Server").
	With string `json:"with,omitempty"`
	ID   string `json:"id,omitempty"`
	For  string `json:"for,omitempty"`
	// TLS is set when the hop states TLS; TLSVersion and TLSCipher when it
	// names them.
	TLS        bool      `json:"tls"`
	TLSVersion string    `json:"tls_version,omitempty"`
	TLSCipher  string    `json:"tls_cipher,omitempty"`
	Transport  Transport `json:"transport"`
	// Time is the date-time after the last ';' (RFC 5322 §3.6.7).
	Time time.Time `json:"time,omitzero"`
	// DelayS is the seconds since the previous hop's time; negative means
	// the two clocks disagree. Nil when either time is unknown.
	DelayS *float64 `json:"delay_s,omitempty"`
	// Raw is the header value (unfolded), abbreviated when long.
	Raw string `json:"raw"`
	// ParseError says what could not be read; the other fields hold what
	// could.
	ParseError string `json:"parse_error,omitempty"`
	// Gateway marks a hop by or from a host of the gateway profile;
	// GatewayMatch says which name or address matched which pattern.
	Gateway      bool   `json:"gateway"`
	GatewayMatch string `json:"gateway_match,omitempty"`
	// Mailbox marks a hop received by the mail platform (Options.Mailbox).
	Mailbox      bool   `json:"mailbox,omitempty"`
	MailboxMatch string `json:"mailbox_match,omitempty"`

	// gwRole is the profile list that matched ("mx", "smarthost",
	// "journal", "" for a vendor-domain or range match); gwSide is "by"
	// when the gateway received the message in this hop, "from" when it
	// sent it.
	gwRole, gwSide string
	// mbInternal marks a platform hop between the platform's own hosts.
	mbInternal bool
}

// ParseReceived parses one Received field value:
//
//	Stamp = From-domain By-domain Opt-info [CFWS] ";" FWS date-time
//
// (RFC 5321 §4.4), with Opt-info the via, with, id and for clauses and any
// additional clause (Exim's "tls"). Comments nest (RFC 5322 §3.2.2); the
// TCP-info comment after the From-domain gives the reverse-DNS name and the
// address in the forms MTAs write: "(mx.example [192.0.2.1])", "(unknown
// [192.0.2.1])", "([192.0.2.1] helo=x)" (Exim), "(2603:10a6::18)" (Exchange
// Online), "(HELO x) (192.0.2.1)" (qmail).
//
// It returns the hop it could read in every case; the error (also in
// Hop.ParseError) says what was missing or malformed: no 'by' clause, no or
// unreadable date, unbalanced parentheses, control characters, or a value
// longer than MaxReceivedLen (then nothing is parsed).
func ParseReceived(value string) (Hop, error) {
	h := Hop{Raw: abbreviate(value, 2048), Transport: TransportUnknown}
	if len(value) > MaxReceivedLen {
		err := fmt.Errorf("the value is %d bytes long; a Received field is parsed only up to %d", len(value), MaxReceivedLen)
		h.ParseError = err.Error()
		return h, err
	}
	var problems []string
	if i := strings.IndexFunc(value, isControl); i >= 0 {
		problems = append(problems, fmt.Sprintf("control character 0x%02x at offset %d", value[i], i))
		// Byte by byte: the controls are ASCII, and strings.Map would
		// also rewrite invalid UTF-8 that is data.
		b := []byte(value)
		for j, c := range b {
			if isControl(rune(c)) {
				b[j] = ' '
			}
		}
		value = string(b)
	}

	toks, semis, unbalanced := scan(value)
	if unbalanced {
		problems = append(problems, "unbalanced parentheses")
	}
	stamp, dateText := toks, ""
	switch {
	case len(semis) > 0:
		last := semis[len(semis)-1]
		dateText = value[toks[last].end:]
		stamp = toks[:last]
	case unbalanced && strings.LastIndexByte(value, ';') >= 0:
		// An unclosed comment swallowed the ';': take the last one
		// anywhere, which is where the date is in every real header.
		i := strings.LastIndexByte(value, ';')
		dateText = value[i+1:]
		stamp, _, _ = scan(value[:i])
	}

	parseClauses(&h, stamp)
	if h.By == "" {
		problems = append(problems, "no 'by' clause")
	}
	if h.From == "" && h.FromIP == "" {
		h.Transport = TransportLocal
	} else {
		h.Transport = transportOf(&h, stamp)
	}

	switch d := strings.TrimSpace(dateText); {
	case d == "":
		problems = append(problems, "no date-time after ';'")
	default:
		t, err := parseDate(d)
		if err != nil {
			problems = append(problems, fmt.Sprintf("date-time %q could not be read", abbreviate(d, 60)))
		} else {
			h.Time = t
		}
	}
	if len(problems) > 0 {
		h.ParseError = strings.Join(problems, "; ")
		return h, errors.New(h.ParseError)
	}
	return h, nil
}

// isControl reports the characters RFC 5322 allows in no header field
// (folding white space aside): C0 controls other than HTAB, and DEL.
func isControl(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\r' && r != '\n' || r == 0x7f
}

type tokKind uint8

const (
	tokWord tokKind = iota
	tokComment
	tokSemi
)

type token struct {
	kind tokKind
	text string // for a comment: the inside, nested comments included
	end  int    // offset just past the token
}

// scan splits a header value into words, comments and semicolons. Quoted
// strings, <angle addresses> and [domain literals] are single words, so a
// ';' or '(' inside them is data. It reports the indexes of the semicolon
// tokens and whether a parenthesis was left open or closed without opening.
// It is linear in the input.
func scan(s string) (toks []token, semis []int, unbalanced bool) {
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			depth, j := 0, i
			for j < len(s) {
				switch s[j] {
				case '\\':
					j++ // quoted-pair (RFC 5322 §3.2.1)
				case '(':
					depth++
				case ')':
					depth--
				}
				j++
				if depth == 0 {
					break
				}
			}
			j = min(j, len(s))
			text := ""
			if depth > 0 {
				unbalanced = true
				text = s[i+1 : j]
			} else {
				text = s[i+1 : j-1]
			}
			toks = append(toks, token{kind: tokComment, text: text, end: j})
			i = j
		case c == ')':
			unbalanced = true
			i++
		case c == ';':
			semis = append(semis, len(toks))
			toks = append(toks, token{kind: tokSemi, text: ";", end: i + 1})
			i++
		case c == '"' || c == '<' || c == '[':
			closer := byte('"')
			switch c {
			case '<':
				closer = '>'
			case '[':
				closer = ']'
			}
			j := i + 1
			for j < len(s) && s[j] != closer {
				if c != '"' && strings.IndexByte(" \t\r\n;", s[j]) >= 0 {
					j-- // an unclosed <address or [literal ends at white space
					break
				}
				if s[j] == '\\' && c == '"' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
			toks = append(toks, token{kind: tokWord, text: s[i:j], end: j})
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n();", rune(s[j])) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: s[i:j], end: j})
			i = j
		}
	}
	return toks, semis, unbalanced
}

// clause is one keyword clause of a stamp: its keyword and the tokens up to
// the next keyword.
type clause struct {
	key  string
	toks []token
}

var keywords = map[string]bool{"from": true, "by": true, "via": true, "with": true, "id": true, "for": true}

func splitClauses(stamp []token) []clause {
	var out []clause
	cur := clause{}
	for _, t := range stamp {
		if t.kind == tokWord && keywords[strings.ToLower(t.text)] {
			if cur.key != "" || len(cur.toks) > 0 {
				out = append(out, cur)
			}
			cur = clause{key: strings.ToLower(t.text)}
			continue
		}
		if t.kind == tokSemi {
			continue
		}
		cur.toks = append(cur.toks, t)
	}
	if cur.key != "" || len(cur.toks) > 0 {
		out = append(out, cur)
	}
	return out
}

// words returns the leading words of a clause, up to its first comment.
func (c clause) words() []string {
	var w []string
	for _, t := range c.toks {
		if t.kind != tokWord {
			break
		}
		w = append(w, t.text)
	}
	return w
}

func (c clause) first() string {
	if w := c.words(); len(w) > 0 {
		return w[0]
	}
	return ""
}

func parseClauses(h *Hop, stamp []token) {
	for _, c := range splitClauses(stamp) {
		switch c.key {
		case "from":
			if h.From == "" && h.FromIP == "" {
				parseFrom(h, c)
			}
		case "by":
			if h.By == "" {
				h.By = trimName(c.first())
			}
		case "via":
			if h.Via == "" {
				h.Via = strings.Join(c.words(), " ")
			}
		case "with":
			// "with ESMTP with STARTTLS" (two clauses) is kept whole.
			if w := strings.Join(c.words(), " "); w != "" {
				if h.With == "" {
					h.With = w
				} else {
					h.With += " " + w
				}
			}
		case "id":
			if h.ID == "" {
				h.ID = c.first()
			}
		case "for":
			if h.For == "" {
				h.For = strings.TrimSuffix(strings.TrimPrefix(c.first(), "<"), ">")
			}
		}
	}
}

// parseFrom reads the From-domain and the TCP-info comments after it.
func parseFrom(h *Hop, c clause) {
	name := c.first()
	helo := ""
	for _, t := range c.toks {
		if t.kind != tokComment {
			continue
		}
		ctoks, _, _ := scan(t.text)
		for k := 0; k < len(ctoks); k++ {
			w := ctoks[k]
			if w.kind != tokWord {
				continue
			}
			lw := strings.ToLower(w.text)
			switch {
			case strings.HasPrefix(lw, "helo="):
				helo = w.text[len("helo="):]
			case lw == "helo" && k+1 < len(ctoks) && ctoks[k+1].kind == tokWord:
				helo = ctoks[k+1].text // qmail "(HELO name)"
				k++
			case parseIP(w.text).IsValid():
				if h.FromIP == "" {
					h.FromIP = parseIP(w.text).String()
				}
			case lw == "unknown" || lw == "may" || lw == "be" || lw == "forged":
				// Postfix's "unknown": no verified reverse name; sendmail's
				// "(may be forged)".
			case h.FromRDNS == "" && h.FromIP == "" && looksLikeHost(w.text):
				h.FromRDNS = trimName(w.text)
			}
		}
	}
	// Exim writes the verified reverse name first and the HELO name as
	// helo=; everyone else writes the HELO name first.
	switch {
	case helo != "" && parseIP(name).IsValid():
		h.From = trimName(helo)
	case helo != "":
		h.From = trimName(helo)
		if h.FromRDNS == "" && strings.ToLower(name) != "unknown" {
			h.FromRDNS = trimName(name)
		}
	default:
		h.From = trimName(name)
	}
	if h.FromIP == "" {
		if ip := parseIP(name); ip.IsValid() {
			h.FromIP = ip.String()
		}
	}
}

// parseIP accepts an address bare, in brackets, or as an RFC 5321 §4.1.3
// IPv6 address literal ("[IPv6:2001:db8::1]").
func parseIP(s string) netip.Addr {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if len(s) > 5 && strings.EqualFold(s[:5], "ipv6:") {
		s = s[5:]
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}
	}
	return ip.Unmap()
}

func looksLikeHost(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 || !strings.Contains(s, ".") {
		return s == "localhost"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// trimName drops one trailing dot ("mail-sor-f41.google.com." in Gmail's
// TCP-info) so names compare and match profile patterns.
func trimName(s string) string { return strings.TrimSuffix(s, ".") }

// Protocol names (RFC 5321 §4.4 "with", the registry of RFC 3848 and
// RFC 6531 §3.7.3): the S forms mean TLS; A alone means authenticated but
// not encrypted. SMTPS (Gmail) and HTTPS (Exchange Online's internal hops)
// are not registered but say TLS.
var (
	tlsProtocols = map[string]bool{
		"esmtps": true, "esmtpsa": true, "lmtps": true, "lmtpsa": true,
		"utf8smtps": true, "utf8smtpsa": true, "utf8lmtps": true, "utf8lmtpsa": true,
		"smtps": true, "https": true, "starttls": true,
	}
	plainProtocols = map[string]bool{
		"smtp": true, "esmtp": true, "esmtpa": true, "lmtp": true, "lmtpa": true,
		"utf8smtp": true, "utf8smtpa": true, "utf8lmtp": true, "utf8lmtpa": true,
		"microsoft smtp server": true,
	}
)

var (
	// Postfix: "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) ...)".
	rePostfixTLS = regexp.MustCompile(`(?i)\busing\s+((?:TLS|SSL)v?[0-9._]*)\s+with\s+cipher\s+([A-Za-z0-9_+\-]+)`)
	// Exchange Online, sendmail, Gmail, others: "version=TLS1_2, cipher=...".
	reVersion = regexp.MustCompile(`(?i)\bversion=((?:TLS|SSL)v?[0-9._]*)`)
	reCipher  = regexp.MustCompile(`(?i)\bcipher=([A-Za-z0-9_+\-]+)`)
	// Exim: "(TLS1.3)" as a comment of its own.
	reBareVersion = regexp.MustCompile(`(?i)^(?:TLS|SSL)v?[0-9][0-9._]*$`)
)

// transportOf judges a hop's protection from its "with" protocol and every
// comment and extra word of the stamp.
func transportOf(h *Hop, stamp []token) Transport {
	for k, t := range stamp {
		switch t.kind {
		case tokComment:
			text := t.text
			if m := rePostfixTLS.FindStringSubmatch(text); m != nil {
				h.TLS, h.TLSVersion, h.TLSCipher = true, m[1], m[2]
			}
			if m := reVersion.FindStringSubmatch(text); m != nil {
				h.TLS = true
				if h.TLSVersion == "" {
					h.TLSVersion = m[1]
				}
			}
			if m := reCipher.FindStringSubmatch(text); m != nil && h.TLSCipher == "" && h.TLS {
				h.TLSCipher = m[1]
			}
			if tt := strings.TrimSpace(text); strings.EqualFold(tt, "TLS") || reBareVersion.MatchString(tt) {
				h.TLS = true
				if h.TLSVersion == "" && !strings.EqualFold(tt, "TLS") {
					h.TLSVersion = tt
				}
			}
			if strings.Contains(strings.ToLower(text), "starttls") {
				h.TLS = true
			}
		case tokWord:
			// Exim's additional clause "tls TLS_AES_256_GCM_SHA384".
			if strings.EqualFold(t.text, "tls") && k+1 < len(stamp) && stamp[k+1].kind == tokWord {
				h.TLS = true
				if h.TLSCipher == "" {
					h.TLSCipher = stamp[k+1].text
				}
			}
		}
	}
	proto := strings.ToLower(h.With)
	for _, w := range strings.Fields(proto) {
		if tlsProtocols[w] {
			h.TLS = true
		}
	}
	switch {
	case h.TLS:
		return TransportTLS
	case plainProtocols[proto] || plainProtocols[firstWord(proto)]:
		return TransportPlain
	default:
		return TransportUnknown
	}
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// dateLayouts are fallbacks for dates net/mail rejects but MTAs write:
// ctime-like dates without a zone (read as UTC) and a missing weekday comma.
var dateLayouts = []string{
	"Mon Jan _2 15:04:05 2006",
	"Mon Jan _2 15:04:05 MST 2006",
	"Mon Jan _2 15:04:05 -0700 2006",
	"Mon 2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05",
	"Mon, 2 Jan 2006 15:04:05",
}

// parseDate reads an RFC 5322 §3.3 date-time, comments stripped first
// ("+0000 (UTC)").
func parseDate(s string) (time.Time, error) {
	s = strings.Join(strings.Fields(stripComments(s)), " ")
	if t, err := mail.ParseDate(s); err == nil {
		return t, nil
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("unreadable date-time")
}

// stripComments removes RFC 5322 §3.2.2 comments, keeping quoted strings
// (where a '(' is data) intact. Unclosed comments run to the end.
func stripComments(s string) string {
	if !strings.ContainsRune(s, '(') {
		return s
	}
	var b strings.Builder
	depth, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (depth > 0 || inQuote):
			if depth == 0 {
				b.WriteByte(c)
				if i+1 < len(s) {
					b.WriteByte(s[i+1])
				}
			}
			i++
		case inQuote:
			if c == '"' {
				inQuote = false
			}
			b.WriteByte(c)
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
			if depth == 0 {
				b.WriteByte(' ')
			}
		case depth > 0:
		case c == '"':
			inQuote = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
