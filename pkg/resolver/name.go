package resolver

import (
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// maxNameOctets is the longest presentation name we accept without the final
// dot: 253 characters give 255 octets on the wire (RFC 1035 §2.3.4).
const maxNameOctets = 253

// CanonicalName turns a user- or record-supplied domain name into the form we
// put on the wire and use as a cache key: absolute, lower-case ASCII, with
// internationalised labels converted to A-labels (RFC 5890) one label at a
// time, so that labels such as "_dmarc" or "_domainkey" that IDNA's STD3 rules
// would reject pass through untouched.
func CanonicalName(name string) (string, error) {
	n := strings.TrimSuffix(strings.TrimSpace(name), ".")
	if n == "" {
		if strings.TrimSpace(name) == "." {
			return ".", nil
		}
		return "", fmt.Errorf("%w: empty name", ErrBadName)
	}
	labels := strings.Split(n, ".")
	for i, l := range labels {
		if l == "" {
			return "", fmt.Errorf("%w: %q has an empty label", ErrBadName, name)
		}
		if !isASCII(l) {
			a, err := idna.Lookup.ToASCII(l)
			if err != nil {
				return "", fmt.Errorf("%w: %q: label %q is not a valid internationalised label: %v", ErrBadName, name, l, err)
			}
			l = a
		}
		l = strings.ToLower(l)
		if len(l) > 63 {
			return "", fmt.Errorf("%w: %q: label %q is %d octets long; the limit is 63 (RFC 1035 §2.3.4)", ErrBadName, name, truncate(l, 20), len(l))
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			// Any octet is legal in a DNS label, but these would be read as
			// presentation-format syntax or are plainly not a name.
			if c <= ' ' || c >= 0x7f || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' {
				return "", fmt.Errorf("%w: %q: label %q contains the character %q", ErrBadName, name, l, c)
			}
		}
		labels[i] = l
	}
	n = strings.Join(labels, ".")
	if len(n) > maxNameOctets {
		return "", fmt.Errorf("%w: %q is %d characters long; the limit is %d (RFC 1035 §2.3.4)", ErrBadName, truncate(name, 40), len(n), maxNameOctets)
	}
	return n + ".", nil
}

// ValidateHostname is stricter than CanonicalName: it accepts only names a
// user would type as a mail domain or host (letters, digits, hyphens, at least
// two labels, no leading or trailing hyphen; RFC 1123 §2.1, RFC 5321 §2.3.5)
// and returns the canonical form.
func ValidateHostname(name string) (string, error) {
	c, err := CanonicalName(name)
	if err != nil {
		return "", err
	}
	trimmed := strings.TrimSuffix(c, ".")
	labels := strings.Split(trimmed, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%w: %q is not a fully qualified domain name", ErrBadName, name)
	}
	for _, l := range labels {
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("%w: %q: label %q starts or ends with a hyphen", ErrBadName, name, l)
		}
		for j := 0; j < len(l); j++ {
			ch := l[j]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
				return "", fmt.Errorf("%w: %q: label %q contains %q; host names use letters, digits and hyphens", ErrBadName, name, l, ch)
			}
		}
	}
	last := labels[len(labels)-1]
	allDigits := true
	for j := 0; j < len(last); j++ {
		if last[j] < '0' || last[j] > '9' {
			allDigits = false
		}
	}
	if allDigits {
		return "", fmt.Errorf("%w: %q looks like an IP address, not a domain name", ErrBadName, name)
	}
	return c, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
