package profile

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

// Error is one problem with one profile or one profile file. Parse, LoadFile
// and Registry.With return these (several joined with errors.Join), so a user
// sees every mistake of a file at once; errors.As finds the first.
type Error struct {
	Source  string // file name, "profiles.yaml (built in)", or a user profile's Origin
	Line    int    // 1-based; 0 when unknown (profiles built in Go)
	Profile string // the profile's id, or "#N" (its position) when it has none
	Field   string // the data-file key, "" when the problem is not about one field
	Msg     string
	// Err is the sentinel this error is an instance of (ErrDuplicateID), or
	// nil; errors.Is sees it.
	Err error
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	switch {
	case e.Line > 0 && e.Source != "":
		fmt.Fprintf(&b, ":%d", e.Line)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Profile != "" {
		fmt.Fprintf(&b, "profile %q: ", e.Profile)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// fieldSpec describes one key of the data file.
type fieldSpec struct {
	key      string
	list     bool
	required bool
	// canBeUncertain is false for the fields that identify or document the
	// profile rather than state a fact about the vendor.
	canBeUncertain bool
	// norm validates one value and returns its normal form; nil keeps the
	// trimmed text.
	norm func(string) (string, error)
}

// specList is in data-file order; validation reports problems in this order.
var specList = []*fieldSpec{
	{key: KeyID, required: true, norm: normID},
	{key: KeyName, required: true},
	{key: KeyKind, required: true, norm: normKind},
	{key: KeyRegion, canBeUncertain: true},
	{key: KeyAccountCode, canBeUncertain: true},
	{key: KeySPFIncludes, list: true, canBeUncertain: true, norm: normSPFInclude},
	{key: KeySPFTerms, list: true, canBeUncertain: true, norm: normSPFTerm},
	{key: KeyMXHosts, list: true, canBeUncertain: true, norm: normHostPattern},
	{key: KeyOutboundSmartHosts, list: true, canBeUncertain: true, norm: normHostPattern},
	{key: KeySMTPOutboundHosts, list: true, canBeUncertain: true, norm: normHostPattern},
	{key: KeyJournalHosts, list: true, canBeUncertain: true, norm: normHostPattern},
	{key: KeyIPRangesLive, list: true, canBeUncertain: true, norm: normDomain},
	{key: KeyIPRanges, list: true, canBeUncertain: true, norm: normPrefix},
	{key: KeyIPRangesSnapshot, canBeUncertain: true},
	{key: KeyDKIM, list: true, canBeUncertain: true},
	{key: KeyVerification, list: true, canBeUncertain: true},
	{key: KeyNotes},
	{key: KeyUncertain, list: true},
	{key: KeySources, list: true},
}

var specs = func() map[string]*fieldSpec {
	m := make(map[string]*fieldSpec, len(specList))
	for _, s := range specList {
		m[s.key] = s
	}
	return m
}()

func keys(filter func(*fieldSpec) bool) []string {
	var out []string
	for _, s := range specList {
		if filter == nil || filter(s) {
			out = append(out, s.key)
		}
	}
	return out
}

// value is one scalar from a profile, with the line it came from (0 when the
// profile was built in Go).
type value struct {
	s    string
	line int
}

// draft is a profile as written, before validation: Parse fills it from YAML
// nodes, Registry.With from a Profile, so both go through the same build.
type draft struct {
	line  int // line of the profile's mapping
	index int // 1-based position in its file, for profiles without an id
	vals  map[string][]value
}

func draftOf(p *Profile) *draft {
	d := &draft{vals: map[string][]value{}}
	scalar := func(k, s string) {
		if s != "" {
			d.vals[k] = []value{{s: s}}
		}
	}
	list := func(k string, ss []string) {
		for _, s := range ss {
			d.vals[k] = append(d.vals[k], value{s: s})
		}
	}
	scalar(KeyID, p.ID)
	scalar(KeyName, p.Name)
	scalar(KeyKind, string(p.Kind))
	scalar(KeyRegion, p.Region)
	scalar(KeyAccountCode, p.AccountCode)
	list(KeySPFIncludes, p.SPFIncludes)
	list(KeySPFTerms, p.SPFTerms)
	list(KeyMXHosts, p.MXHosts)
	list(KeyOutboundSmartHosts, p.OutboundSmartHosts)
	list(KeySMTPOutboundHosts, p.SMTPOutboundHosts)
	list(KeyJournalHosts, p.JournalHosts)
	list(KeyIPRangesLive, p.IPRangesLive)
	for _, pr := range p.IPRanges {
		// An invalid or unmasked prefix prints as something normPrefix
		// rejects with a message ("10.0.0.1/24 ... did you mean 10.0.0.0/24").
		d.vals[KeyIPRanges] = append(d.vals[KeyIPRanges], value{s: pr.String()})
	}
	scalar(KeyIPRangesSnapshot, p.IPRangesSnapshot)
	list(KeyDKIM, p.DKIM)
	list(KeyVerification, p.Verification)
	scalar(KeyNotes, p.Notes)
	list(KeyUncertain, p.Uncertain)
	list(KeySources, p.Sources)
	return d
}

// build validates a draft and returns the profile in normal form, or every
// problem found. src names the file in the errors.
func build(d *draft, src string) (*Profile, []error) {
	label := fmt.Sprintf("#%d", d.index)
	if v := d.vals[KeyID]; len(v) > 0 && strings.TrimSpace(v[0].s) != "" {
		label = strings.TrimSpace(v[0].s)
	} else if d.index == 0 {
		label = ""
	}
	var errs []error
	bad := map[string]bool{}
	errf := func(key string, line int, format string, args ...any) {
		if line == 0 {
			line = d.line
		}
		bad[key] = true
		if len(errs) > maxErrors {
			return // the caller reports "too many errors"
		}
		errs = append(errs, &Error{Source: src, Line: line, Profile: label, Field: key, Msg: fmt.Sprintf(format, args...)})
	}

	norm := map[string][]string{}
	for _, spec := range specList {
		if spec.key == KeyUncertain {
			continue // checked below, against the normalised values
		}
		seen := map[string]int{}
		for i, v := range d.vals[spec.key] {
			s := strings.TrimSpace(v.s)
			if s == "" {
				if spec.list {
					errf(spec.key, v.line, "value %d is empty", i+1)
				}
				continue
			}
			if spec.norm != nil {
				n, err := spec.norm(s)
				if err != nil {
					errf(spec.key, v.line, "%v", err)
					continue
				}
				s = n
			}
			if first, dup := seen[s]; dup {
				if first > 0 {
					errf(spec.key, v.line, "%q is listed twice (first at line %d)", s, first)
				} else {
					errf(spec.key, v.line, "%q is listed twice", s)
				}
				continue
			}
			seen[s] = v.line
			norm[spec.key] = append(norm[spec.key], s)
		}
		if spec.required && len(norm[spec.key]) == 0 && !bad[spec.key] {
			errf(spec.key, 0, "missing; every profile needs one")
		}
	}

	var uncertain []string
	uncertainKeys := keys(func(s *fieldSpec) bool { return s.canBeUncertain })
	for _, v := range d.vals[KeyUncertain] {
		s := strings.TrimSpace(v.s)
		if s == "" {
			errf(KeyUncertain, v.line, "empty entry; write \"field\" or \"field:value\"")
			continue
		}
		field, val, hasVal := strings.Cut(s, ":")
		field = strings.TrimSpace(field)
		spec := specs[field]
		switch {
		case spec == nil:
			errf(KeyUncertain, v.line, "%q names no field%s", field, didYouMean(field, uncertainKeys))
			continue
		case !spec.canBeUncertain:
			errf(KeyUncertain, v.line, "field %q cannot be marked uncertain; fields that can: %s", field, strings.Join(uncertainKeys, ", "))
			continue
		}
		entry := field
		if hasVal {
			val = strings.TrimSpace(val)
			if val == "" {
				errf(KeyUncertain, v.line, "%q: empty value after \":\"; write %q to mark the whole field", s, field)
				continue
			}
			if spec.norm != nil {
				n, err := spec.norm(val)
				if err != nil {
					errf(KeyUncertain, v.line, "%q: %v", s, err)
					continue
				}
				val = n
			}
			// Naming a value that is not there is almost always a typo, and
			// would leave the real value shown as verified.
			if !slices.Contains(norm[field], val) {
				if !bad[field] {
					errf(KeyUncertain, v.line, "%q: %q is not one of the profile's %s", s, val, field)
				}
				continue
			}
			entry = field + ":" + val
		}
		if slices.Contains(uncertain, entry) {
			errf(KeyUncertain, v.line, "%q is listed twice", entry)
			continue
		}
		uncertain = append(uncertain, entry)
	}
	if len(errs) > 0 {
		return nil, errs
	}

	one := func(k string) string {
		if v := norm[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	p := &Profile{
		ID:                 one(KeyID),
		Name:               one(KeyName),
		Kind:               Kind(one(KeyKind)),
		Region:             one(KeyRegion),
		AccountCode:        one(KeyAccountCode),
		SPFIncludes:        norm[KeySPFIncludes],
		SPFTerms:           norm[KeySPFTerms],
		MXHosts:            norm[KeyMXHosts],
		OutboundSmartHosts: norm[KeyOutboundSmartHosts],
		SMTPOutboundHosts:  norm[KeySMTPOutboundHosts],
		JournalHosts:       norm[KeyJournalHosts],
		IPRangesLive:       norm[KeyIPRangesLive],
		IPRangesSnapshot:   one(KeyIPRangesSnapshot),
		DKIM:               norm[KeyDKIM],
		Verification:       norm[KeyVerification],
		Notes:              one(KeyNotes),
		Uncertain:          uncertain,
		Sources:            norm[KeySources],
	}
	for _, s := range norm[KeyIPRanges] {
		// normPrefix accepted s, so this cannot fail; the check keeps a
		// future change of normPrefix from turning into a silent zero value.
		pr, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, []error{&Error{Source: src, Line: d.line, Profile: label, Field: KeyIPRanges, Msg: err.Error()}}
		}
		p.IPRanges = append(p.IPRanges, pr)
	}
	return p, nil
}

func normID(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty id")
	}
	if len(s) > 64 {
		return "", fmt.Errorf("%q is longer than 64 characters", s)
	}
	ok := s[0] >= 'a' && s[0] <= 'z' || s[0] >= '0' && s[0] <= '9'
	for i := 1; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		hint := ""
		if l := strings.ToLower(s); l != s && isASCII(l) {
			if _, err := normID(l); err == nil {
				hint = fmt.Sprintf(" (did you mean %q?)", l)
			}
		}
		return "", fmt.Errorf("%q is not a valid id: use lower-case letters, digits and '-', starting with a letter or digit%s", s, hint)
	}
	return s, nil
}

func normKind(s string) (string, error) {
	k := Kind(strings.ToLower(s))
	if !k.Valid() {
		return "", fmt.Errorf("%q is not a kind; use %q (an email security gateway) or %q (a mail platform such as Microsoft 365)", s, KindGateway, KindMailbox)
	}
	return string(k), nil
}

// normHostPattern validates a host pattern and returns it in normal form.
func normHostPattern(s string) (string, error) {
	p, err := compilePattern(s)
	if err != nil {
		return "", fmt.Errorf("host pattern %q: %v", s, err)
	}
	if err := checkPatternScope(p); err != nil {
		return "", fmt.Errorf("host pattern %q: %v", s, err)
	}
	n, err := normName(s)
	if err != nil {
		return "", fmt.Errorf("host pattern %q: %v", s, err)
	}
	return n, nil
}

// normDomain validates a plain domain name (no wildcards), such as the
// target of an SPF include, and returns it in normal form.
func normDomain(s string) (string, error) {
	if strings.ContainsAny(s, "*?<>") {
		return "", fmt.Errorf("%q: a domain name here cannot hold wildcards or placeholders", s)
	}
	n, err := normName(s)
	if err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	if len(n) > 253 {
		return "", fmt.Errorf("%q is longer than 253 characters", s)
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%q is not a fully qualified domain name", s)
	}
	for _, l := range labels {
		if l == "" {
			return "", fmt.Errorf("%q has an empty label", s)
		}
		if len(l) > 63 {
			return "", fmt.Errorf("%q: label %q is longer than 63 characters", s, l)
		}
		for i := 0; i < len(l); i++ {
			if !isNameByte(l[i]) {
				return "", fmt.Errorf("%q: character %q is not allowed in a domain name", s, l[i])
			}
		}
	}
	return n, nil
}

// normSPFInclude checks an spf_includes entry: the domain after "include:".
// Other SPF terms were once mixed into this list; they belong in spf_terms,
// and the error says so.
func normSPFInclude(s string) (string, error) {
	if strings.HasPrefix(strings.ToLower(s), "include:") {
		return "", fmt.Errorf("%q: write only the domain, %q", s, s[len("include:"):])
	}
	if strings.ContainsAny(s, ":%=/ \t") {
		return "", fmt.Errorf("%q is not a domain name; put SPF terms other than a plain include under %s", s, KeySPFTerms)
	}
	return normDomain(s)
}

var spfMechanisms = []string{"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}

// normSPFTerm checks an spf_terms entry lightly: one term, a known mechanism
// or a modifier. Full RFC 7208 parsing is pkg/spf's job; this only catches
// data-entry mistakes. Only the mechanism name is lower-cased, because macro
// letters are case-sensitive ("%{I}" differs from "%{i}").
func normSPFTerm(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty SPF term")
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return "", fmt.Errorf("%q: one SPF term per entry", s)
	}
	if strings.HasPrefix(strings.ToLower(s), "v=spf1") {
		return "", fmt.Errorf("%q: the version tag v=spf1 is not a term", s)
	}
	qual, t := "", s
	if strings.ContainsRune("+-~?", rune(t[0])) {
		qual, t = t[:1], t[1:]
	}
	end := strings.IndexAny(t, ":/=")
	name, rest := t, ""
	if end >= 0 {
		name, rest = t[:end], t[end:]
	}
	lname := strings.ToLower(name)
	if strings.HasPrefix(rest, "=") {
		if qual != "" || name == "" || rest == "=" {
			return "", fmt.Errorf("%q is not a valid SPF modifier", s)
		}
		return lname + rest, nil
	}
	if !slices.Contains(spfMechanisms, lname) {
		return "", fmt.Errorf("%q: unknown SPF mechanism %q (known: %s)", s, name, strings.Join(spfMechanisms, ", "))
	}
	arg, hasArg := strings.CutPrefix(rest, ":")
	switch lname {
	case "all":
		if rest != "" {
			return "", fmt.Errorf("%q: \"all\" takes no argument", s)
		}
	case "include", "exists", "ip4", "ip6":
		if !hasArg || arg == "" {
			return "", fmt.Errorf("%q: %q needs an argument after \":\"", s, lname)
		}
	}
	if lname == "include" && qual == "" && !strings.ContainsAny(arg, "%<") {
		if _, err := normDomain(arg); err == nil {
			return "", fmt.Errorf("%q: a plain include belongs under %s as %q", s, KeySPFIncludes, arg)
		}
	}
	return qual + lname + rest, nil
}

// normPrefix checks a CIDR range. It insists on the network address, because
// "10.0.0.1/24" is usually a typo for either 10.0.0.0/24 or 10.0.0.1/32, and
// guessing which would silently allow-list the wrong addresses.
func normPrefix(s string) (string, error) {
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			return "", fmt.Errorf("%q has no prefix length; write %s", s, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP range in CIDR form (such as 192.0.2.0/24 or 2001:db8::/32)", s)
	}
	if p.Addr().Is4In6() {
		return "", fmt.Errorf("%q is an IPv4-mapped IPv6 range; write it as an IPv4 range", s)
	}
	if m := p.Masked(); m != p {
		return "", fmt.Errorf("%q is not a network address, did you mean %s?", s, m)
	}
	return p.String(), nil
}

// didYouMean formats a suggestion from candidates, or "" when none is close.
func didYouMean(s string, candidates []string) string {
	if m := closest(s, candidates, 3); len(m) > 0 {
		return " (did you mean " + orList(m) + "?)"
	}
	return ""
}

// errTooMany stops error lists that would bury the first, most useful ones.
var errTooMany = errors.New("too many errors; fix these first")
