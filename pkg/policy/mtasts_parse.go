package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MTA-STS limits and errors.
const (
	// MaxPolicySize is the largest policy body we read. RFC 8461 sets no
	// number; real policies are a few hundred octets, so 64 KiB leaves
	// ample room and keeps a hostile server from making us read without
	// end.
	MaxPolicySize = 64 << 10
	// MaxMaxAge is the largest max_age a policy may give: one year
	// (RFC 8461 §3.2).
	MaxMaxAge = 31557600
)

var (
	// ErrMTASTSRecord: the _mta-sts TXT record is invalid (RFC 8461 §3.1).
	ErrMTASTSRecord = errors.New("policy: invalid MTA-STS record")
	// ErrMTASTSPolicy: the policy file is invalid (RFC 8461 §3.2).
	ErrMTASTSPolicy = errors.New("policy: invalid MTA-STS policy")
)

// MTASTSRecord is a parsed _mta-sts TXT record (RFC 8461 §3.1).
type MTASTSRecord struct {
	// ID changes whenever the policy changes; senders refetch the policy
	// when it differs from the one they cached.
	ID         string `json:"id"`
	Extensions []Tag  `json:"extensions,omitempty"`
}

// String is the canonical form of the record; parsing it gives the record
// back.
func (r *MTASTSRecord) String() string {
	s := "v=STSv1; id=" + r.ID
	for _, e := range r.Extensions {
		s += "; " + e.Name + "=" + e.Value
	}
	return s
}

// isSTSRecord is the test of §3.1 for discarding records: they must begin
// with "v=STSv1;" (we also accept the version ending the text or followed
// by white space, which then fails parsing and is reported as invalid
// rather than silently ignored).
func isSTSRecord(txt string) bool { return startsWithVersion(txt, "v=STSv1") }

// startsWithVersion reports whether txt begins with the version tag, ended
// by ";", white space or the end of the text (MTA-STS and TLS-RPT share the
// rule; see isSTSRecord).
func startsWithVersion(txt, version string) bool {
	rest, ok := strings.CutPrefix(txt, version)
	return ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t')
}

// ParseMTASTSRecord parses an _mta-sts TXT record by the grammar of
// RFC 8461 §3.1:
//
//	sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//	sts-field       = sts-id / sts-extension
//	sts-field-delim = *WSP ";" *WSP
//	sts-version     = %s"v=STSv1"
//	sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//	sts-extension   = sts-ext-name "=" sts-ext-value
//
// The id is required and may occur once; the version must open the record
// exactly as written (case-sensitive, no white space around "=").
// Extensions are kept and otherwise ignored. It never panics.
func ParseMTASTSRecord(txt string) (*MTASTSRecord, error) {
	rest, ok := strings.CutPrefix(txt, "v=STSv1")
	if !ok {
		return nil, fmt.Errorf("%w: it must start with v=STSv1", ErrMTASTSRecord)
	}
	fields := strings.Split(rest, ";")
	if strings.Trim(fields[0], " \t") != "" {
		return nil, fmt.Errorf("%w: v=STSv1 must be followed by \";\"", ErrMTASTSRecord)
	}
	fields = fields[1:]
	rec := &MTASTSRecord{}
	seen := map[string]bool{}
	for i, f := range fields {
		f = strings.Trim(f, " \t")
		if f == "" {
			if i == len(fields)-1 && i > 0 {
				break // the optional trailing delimiter
			}
			return nil, fmt.Errorf("%w: empty field", ErrMTASTSRecord)
		}
		name, value, ok := strings.Cut(f, "=")
		if !ok || !validExtName(name) || !validExtValue(value) {
			return nil, fmt.Errorf("%w: %q is not name=value (RFC 8461 §3.1)", ErrMTASTSRecord, abbreviate(f, 60))
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: %s= occurs twice", ErrMTASTSRecord, name)
		}
		seen[name] = true
		switch name {
		case "id":
			if len(value) > 32 || !alnum(value) {
				return nil, fmt.Errorf("%w: id=%s must be 1 to 32 letters and digits", ErrMTASTSRecord, abbreviate(value, 40))
			}
			rec.ID = value
		case "v":
			return nil, fmt.Errorf("%w: v= occurs twice", ErrMTASTSRecord)
		default:
			rec.Extensions = append(rec.Extensions, Tag{Name: name, Value: value})
		}
	}
	if rec.ID == "" {
		return nil, fmt.Errorf("%w: the id field is missing", ErrMTASTSRecord)
	}
	return rec, nil
}

// MTASTSPolicy is a parsed policy file (RFC 8461 §3.2).
type MTASTSPolicy struct {
	Version string `json:"version"`
	// Mode is "enforce", "testing" or "none".
	Mode string `json:"mode"`
	// MX are the mx patterns, in order: host names, or "*." and a name.
	MX []string `json:"mx"`
	// MaxAge is max_age in seconds (at most MaxMaxAge is meaningful).
	MaxAge int64 `json:"max_age"`
	// Extensions are the other fields, kept in order and ignored.
	Extensions []Tag `json:"extensions,omitempty"`
	// fields is every field in order, for String.
	fields []Tag
}

// String is the policy as a file (LF line ends, fields in their order);
// parsing it gives the policy back.
func (p *MTASTSPolicy) String() string {
	var b strings.Builder
	for _, f := range p.fields {
		b.WriteString(f.Name + ": " + f.Value + "\n")
	}
	return b.String()
}

// ParseMTASTSPolicy parses a policy file by the grammar of RFC 8461 §3.2:
// one "key: value" field per line, lines ending in LF or CRLF; version
// (STSv1), mode (enforce, testing, none) and max_age (1 to 10 digits) once
// each, mx at least once unless the mode is none, other fields kept as
// extensions. Keys are case-sensitive and the ":" follows the key directly;
// white space is allowed after the ":" and at the end of a line. Blank
// lines are tolerated although the grammar has none: they are harmless,
// and rejecting them would report a policy as broken that lenient senders
// accept. Bodies
// over MaxPolicySize, invalid UTF-8 and control characters are errors. It
// never panics.
func ParseMTASTSPolicy(body []byte) (*MTASTSPolicy, error) {
	if len(body) > MaxPolicySize {
		return nil, fmt.Errorf("%w: %d octets, more than the %d we accept", ErrMTASTSPolicy, len(body), MaxPolicySize)
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMTASTSPolicy)
	}
	p := &MTASTSPolicy{}
	seen := map[string]int{}
	lines := strings.Split(string(body), "\n")
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		n := i + 1
		if strings.Trim(line, " \t") == "" {
			continue
		}
		for _, c := range line {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return nil, fmt.Errorf("%w: line %d contains the control character %q", ErrMTASTSPolicy, n, c)
			}
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok || !validExtName(key) {
			return nil, fmt.Errorf("%w: line %d (%q) is not \"key: value\"", ErrMTASTSPolicy, n, abbreviate(line, 60))
		}
		value = strings.Trim(value, " \t")
		if value == "" {
			return nil, fmt.Errorf("%w: line %d: %s has no value", ErrMTASTSPolicy, n, key)
		}
		seen[key]++
		if key != "mx" && seen[key] > 1 && (key == "version" || key == "mode" || key == "max_age") {
			return nil, fmt.Errorf("%w: line %d: %s occurs twice", ErrMTASTSPolicy, n, key)
		}
		switch key {
		case "version":
			if value != "STSv1" {
				return nil, fmt.Errorf("%w: line %d: version %q, want STSv1", ErrMTASTSPolicy, n, abbreviate(value, 40))
			}
			p.Version = value
		case "mode":
			if value != "enforce" && value != "testing" && value != "none" {
				return nil, fmt.Errorf("%w: line %d: mode %q, want enforce, testing or none", ErrMTASTSPolicy, n, abbreviate(value, 40))
			}
			p.Mode = value
		case "max_age":
			if !allDigits(value) || len(value) > 10 {
				return nil, fmt.Errorf("%w: line %d: max_age %q is not 1 to 10 digits", ErrMTASTSPolicy, n, abbreviate(value, 40))
			}
			p.MaxAge, _ = strconv.ParseInt(value, 10, 64)
		case "mx":
			if err := validMXPattern(value); err != nil {
				return nil, fmt.Errorf("%w: line %d: mx %q: %v", ErrMTASTSPolicy, n, abbreviate(value, 60), err)
			}
			p.MX = append(p.MX, value)
		default:
			p.Extensions = append(p.Extensions, Tag{Name: key, Value: value})
		}
		p.fields = append(p.fields, Tag{Name: key, Value: value})
	}
	var missing []string
	for _, k := range []string{"version", "mode", "max_age"} {
		if seen[k] == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: missing %s", ErrMTASTSPolicy, strings.Join(missing, ", "))
	}
	if len(p.MX) == 0 && p.Mode != "none" {
		return nil, fmt.Errorf("%w: no mx field (required unless mode is none)", ErrMTASTSPolicy)
	}
	return p, nil
}

// validMXPattern checks sts-policy-mx-value = ["*."] Domain, Domain being
// RFC 5321's dot-separated letter-digit-hyphen labels.
func validMXPattern(s string) error {
	name := strings.TrimPrefix(s, "*.")
	if len(name) > 253 {
		return errors.New("longer than 253 characters")
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 {
			return errors.New("empty or over-long label")
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if !isAlpha(c) && !isDigit(c) && !(c == '-' && j > 0 && j < len(l)-1) {
				return fmt.Errorf("label %q is not letters, digits and inner hyphens", l)
			}
		}
	}
	return nil
}

// MatchMX reports whether an MX host name matches a policy mx pattern
// (RFC 8461 §4.1): case-insensitively, ignoring one trailing dot of the
// host, and "*." standing for exactly one whole leftmost label, so
// "*.example.com" matches "mail.example.com" but neither "example.com" nor
// "a.b.example.com".
func MatchMX(pattern, host string) bool {
	pattern = strings.ToLower(pattern)
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" || pattern == "" {
		return false
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		label, rest, ok := strings.Cut(host, ".")
		return ok && label != "" && rest == suffix && suffix != ""
	}
	return pattern == host
}
