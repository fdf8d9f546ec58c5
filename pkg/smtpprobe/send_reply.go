package smtpprobe

import (
	"strings"
)

// maxQueueID bounds what ParseQueueID returns: real queue ids are 10 to 40
// characters (Postfix long ids are 15+, Exchange Online's Message-ID
// echoes reach 100); anything longer is not an id worth showing.
const maxQueueID = 128

// ParseQueueID finds the queue id in the text of the 250 reply to the end
// of DATA (RFC 5321 §4.1.1.4: the reply text is free-form, so this is best
// effort). It knows the forms the common MTAs use and returns "" for any
// other text:
//
//	Postfix          2.0.0 Ok: queued as 4ABCD1234
//	Exim             OK id=1qABCd-0001Xy-2Z
//	Exchange/M365    2.6.0 <id@host> [InternalId=…] Queued mail for delivery
//	Sendmail         2.0.0 3A1B2C3D4 Message accepted for delivery
//	Gmail            2.0.0 OK  1700000000 a1si123.45 - gsmtp
//
// The id is a single token of printable ASCII, at most maxQueueID bytes,
// and always a substring of text.
func ParseQueueID(text string) string {
	// Only the first line: continuation lines of a 250 carry no ids in
	// any MTA we know, and a hostile server could put anything there.
	text, _, _ = strings.Cut(text, "\n")
	// ASCII-only lower case: strings.ToLower would turn invalid UTF-8 into
	// U+FFFD and shift the indexes (found by FuzzParseQueueID).
	lower := asciiLower(text)
	if i := strings.Index(lower, "queued as "); i >= 0 {
		return idToken(text[i+len("queued as "):])
	}
	if i := strings.Index(lower, "id="); i >= 0 && (i == 0 || text[i-1] == ' ') {
		return idToken(text[i+len("id="):])
	}
	if i := strings.IndexByte(text, '<'); i >= 0 {
		if j := strings.IndexByte(text[i+1:], '>'); j > 0 {
			if id := text[i+1 : i+1+j]; idChars(id) && len(id) <= maxQueueID {
				return id
			}
		}
	}
	fields := strings.Fields(text)
	for i, f := range fields {
		switch {
		case strings.EqualFold(f, "message") && i+1 < len(fields) && strings.EqualFold(fields[i+1], "accepted") && i > 0:
			return idToken(fields[i-1])
		case f == "-" && i+1 < len(fields) && fields[i+1] == "gsmtp" && i > 0:
			return idToken(fields[i-1])
		}
	}
	return ""
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// idToken is the leading token of s, without trailing punctuation, or ""
// when it does not look like an id (an enhanced status code, a word).
func idToken(s string) string {
	s = strings.TrimLeft(s, " ")
	end := strings.IndexAny(s, " \t\r\n")
	if end < 0 {
		end = len(s)
	}
	id := strings.TrimRight(s[:end], ".,;:)]")
	id = strings.TrimLeft(id, "([<")
	id = strings.TrimRight(id, ">")
	if id == "" || len(id) > maxQueueID || !idChars(id) || isEnhancedCode(id) {
		return ""
	}
	return id
}

// idChars: printable ASCII without spaces or angle brackets.
func idChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// parseEnhancedCode returns the RFC 3463 status code ("5.7.1") that starts
// a reply text, or "". RFC 2034 §4 puts it first, before the text; its
// class must be 2, 4 or 5, the subject and detail 1 to 3 digits.
func parseEnhancedCode(text string) string {
	tok, _, _ := strings.Cut(strings.TrimLeft(text, " "), " ")
	tok, _, _ = strings.Cut(tok, "\n")
	if isEnhancedCode(tok) {
		return tok
	}
	return ""
}

func isEnhancedCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}
