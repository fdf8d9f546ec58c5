package spf

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// maxDomainLen is the longest domain name in presentation form without the
// final dot: 253 characters make 255 octets on the wire (RFC 1035 §2.3.4).
// RFC 7208 §7.3 truncates macro-expanded names to this length.
const maxDomainLen = 253

// maxLabelLen is the longest DNS label (RFC 1035 §2.3.4).
const maxLabelLen = 63

// ErrInvalidDomain is the class of every domain-validation failure: a
// <domain> that fails gives "none" (RFC 7208 §4.3).
var ErrInvalidDomain = errors.New("spf: invalid domain name")

// checkTargetName validates a name about to be queried for a mechanism's
// target (RFC 7208 §4.8, §5: a, mx, ptr, exists, exp): it must not be empty
// and must have no empty label (except the root label at the end) and no
// label over 63 octets. RFC 7208 leaves the outcome for such names undefined
// (suite tests invalid-domain-empty-label, invalid-domain-long); we treat the
// mechanism as not matching, as if the name did not exist, without a query.
// The name is expected without its final dot.
func checkTargetName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidDomain)
	}
	if len(name) > maxDomainLen {
		return fmt.Errorf("%w: %q is %d characters long; the limit is %d", ErrInvalidDomain, abbreviate(name, 40), len(name), maxDomainLen)
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			continue
		}
		l := i - start
		switch {
		case l == 0:
			return fmt.Errorf("%w: %q has an empty label", ErrInvalidDomain, name)
		case l > maxLabelLen:
			return fmt.Errorf("%w: %q has a label of %d octets; the limit is %d (RFC 1035 §2.3.4)", ErrInvalidDomain, abbreviate(name, 40), l, maxLabelLen)
		}
		start = i + 1
	}
	return nil
}

// checkDomain validates the <domain> argument of check_host() (RFC 7208
// §4.3): on top of checkTargetName's rules it must be a multi-label domain
// name (an FQDN), not a domain literal such as "[192.0.2.1]" nor an IP
// address, and contain no spaces, control characters or non-ASCII bytes.
// A <domain> that fails makes check_host() return "none". The name is
// expected without its final dot.
func checkDomain(name string) error {
	if err := checkTargetName(name); err != nil {
		return err
	}
	if strings.HasPrefix(name, "[") {
		return fmt.Errorf("%w: %q is a domain literal, not a domain name", ErrInvalidDomain, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: %q contains the byte 0x%02x", ErrInvalidDomain, name, c)
		}
	}
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return fmt.Errorf("%w: %q is not a fully qualified domain name", ErrInvalidDomain, name)
	}
	if allDigits(name[dot+1:]) {
		return fmt.Errorf("%w: %q has an all-numeric top label (an IP address is not a domain)", ErrInvalidDomain, name)
	}
	return nil
}

// normalizeDomain prepares a caller-supplied domain (Query.Domain or the
// domain of the sender) for check_host(): surrounding space and one final dot
// are removed, and internationalised labels become A-labels (RFC 5890), since
// SPF records are published under the ASCII form. Labels that are already
// ASCII are kept as they are (so "_spf" survives IDNA's STD3 rules).
func normalizeDomain(name string) string {
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	if isASCII(name) {
		return name
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if isASCII(l) {
			continue
		}
		if a, err := idna.Lookup.ToASCII(l); err == nil {
			labels[i] = a
		}
	}
	return strings.Join(labels, ".")
}

// truncateDomain applies RFC 7208 §7.3 to a macro-expanded domain name: one
// final dot is dropped, and while the name is longer than 253 characters,
// labels are removed from the left.
func truncateDomain(name string) string {
	name = strings.TrimSuffix(name, ".")
	for len(name) > maxDomainLen {
		dot := strings.IndexByte(name, '.')
		if dot < 0 {
			break // one huge label; checkTargetName rejects it
		}
		name = name[dot+1:]
	}
	return name
}

// isSubdomain reports whether name equals parent or lies below it, comparing
// case-insensitively and ignoring final dots (RFC 7208 §5.5).
func isSubdomain(name, parent string) bool {
	name = strings.TrimSuffix(name, ".")
	parent = strings.TrimSuffix(parent, ".")
	if len(name) < len(parent) {
		return false
	}
	if !strings.EqualFold(name[len(name)-len(parent):], parent) {
		return false
	}
	return len(name) == len(parent) || name[len(name)-len(parent)-1] == '.'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// abbreviate shortens s for an error message.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
