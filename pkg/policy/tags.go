package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Tag is one name=value pair of a tag-list record, as written (names keep
// their case, values are trimmed of surrounding white space).
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// errTagSyntax is the class of every tag-list syntax error.
var errTagSyntax = errors.New("tag-list syntax")

// parseTagList splits a DKIM-style tag list (RFC 6376 §3.2, which DMARC
// uses, RFC 7489 §6.4): "name = value" pairs separated by ";", white space
// allowed around names, "=" and values, an optional trailing ";". Names are
// ALPHA *(ALPHA / DIGIT / "_"); a name that occurs twice makes the whole
// list invalid (RFC 6376 §3.2). Empty elements (";;") are tolerated, as
// go-msgauth and OpenDMARC do. The whole value is returned on error too,
// with the tags read so far.
func parseTagList(s string) ([]Tag, error) {
	var tags []Tag
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return tags, fmt.Errorf("%w: %q is not name=value", errTagSyntax, abbreviate(strings.TrimSpace(part), 60))
		}
		name, value = strings.TrimSpace(name), trimFWS(value)
		if !validTagName(name) {
			return tags, fmt.Errorf("%w: %q is not a tag name", errTagSyntax, abbreviate(name, 60))
		}
		if seen[name] {
			return tags, fmt.Errorf("%w: tag %q occurs twice (RFC 6376 §3.2: the whole record is then invalid)", errTagSyntax, name)
		}
		seen[name] = true
		tags = append(tags, Tag{Name: name, Value: value})
	}
	return tags, nil
}

// trimFWS trims folding white space (SP, HTAB, CR, LF) at both ends.
func trimFWS(s string) string { return strings.Trim(s, " \t\r\n") }

func validTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

func tagValue(tags []Tag, name string) (string, bool) {
	for _, t := range tags {
		if t.Name == name {
			return t.Value, true
		}
	}
	return "", false
}

func formatTags(tags []Tag) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = t.Name + "=" + t.Value
	}
	return strings.Join(parts, "; ")
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validExtName is the extension field name of RFC 8461 §3.1 and RFC 8460
// §3: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
func validExtName(s string) bool {
	if len(s) == 0 || len(s) > 32 || !(isAlpha(s[0]) || isDigit(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validExtValue is 1*(%x21-3A / %x3C / %x3E-7E): printable ASCII without
// SP, ";" and "=" (RFC 8461 §3.1, RFC 8460 §3).
func validExtValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return false
		}
	}
	return true
}
