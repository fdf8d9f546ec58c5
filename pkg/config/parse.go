package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mfcheck/mfcheck/internal/suggest"
	"github.com/mfcheck/mfcheck/internal/yamlnode"
	"github.com/mfcheck/mfcheck/pkg/profile"
)

// Keys of the file, in the order the schema lists them; unknown keys are
// matched against these for "did you mean".
var (
	rootKeys       = []string{"version", "defaults", "domains"}
	defaultsKeys   = []string{"profile", "mode", "thresholds"}
	domainKeys     = []string{"domain", "profile", "mode", "sending_ips", "sending_ranges", "sender", "helo", "allowlist", "smart_hosts", "dkim_selectors", "send", "thresholds", "suppress"}
	sendKeys       = []string{"to", "from", "outbound_server", "outbound_to", "bypass_host", "maildir"}
	thresholdsKeys = []string{"cert_expiry_warn_days", "mx_ttl_max_seconds", "fail_on"}
	suppressKeys   = []string{"id", "subject", "reason", "expires"}
)

// parser walks one file's node tree, collecting every error.
type parser struct {
	path     string
	profiles *profile.Registry
	errs     []error
	// misspelt holds the keys an unknown key was taken for ("did you mean
	// domains?"), so their absence is not reported a second time.
	misspelt map[string]bool
}

// missing reports a required key that is absent, unless a misspelling of it
// was already reported.
func (p *parser) missing(line int, key, format string, args ...any) {
	if p.misspelt[key] {
		return
	}
	p.errf(line, key, format, args...)
}

func (p *parser) errf(line int, key, format string, args ...any) {
	if len(p.errs) > maxErrors {
		return // Parse reports "too many errors" instead
	}
	p.errs = append(p.errs, &Error{File: p.path, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// file parses the whole document; it returns nil when there were errors.
func (p *parser) file(data []byte) *File {
	root, err := decode(data)
	if err != nil {
		p.yamlError(err)
		return nil
	}
	if root == nil || yamlnode.IsNull(root) {
		p.errf(0, "", "the file is empty; it needs \"version: 1\" and a domains list (mfcheck init DOMAIN writes one)")
		return nil
	}
	if !p.checkTree(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.errf(root.Line, "", "want a mapping with version, defaults and domains, got %s", yamlnode.KindName(root))
		return nil
	}
	m := p.mapping(root, "", rootKeys)

	if v, ok := m["version"]; !ok {
		p.missing(root.Line, "version", "missing; write \"version: %d\" at the top of the file", Version)
	} else if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
		p.errf(v.Line, "version", "want the number %d, got %s", Version, describe(v))
	} else if n, err := strconv.Atoi(v.Value); err != nil || n != Version {
		p.errf(v.Line, "version", "version %s is not supported; this mfcheck reads version %d", strconv.Quote(v.Value), Version)
	}

	var defs Domain
	if v, ok := m["defaults"]; ok {
		defs = p.defaults(v)
	}

	f := &File{Path: p.path}
	list, ok := m["domains"]
	switch {
	case !ok:
		p.missing(root.Line, "domains", "missing; list the domains to check (\"domains:\" then \"- domain: contoso.com\")")
	case list.Kind != yaml.SequenceNode:
		p.errf(list.Line, "domains", "want a list of domains (\"- domain: contoso.com\"), got %s", yamlnode.KindName(list))
	case len(list.Content) == 0:
		p.errf(list.Line, "domains", "the list is empty; add at least one \"- domain: NAME\"")
	default:
		firstLine := map[string]int{}
		for i, item := range list.Content {
			key := fmt.Sprintf("domains[%d]", i)
			if item.Kind != yaml.MappingNode {
				p.errf(item.Line, key, "want a mapping (\"- domain: contoso.com\" and its keys), got %s", yamlnode.KindName(item))
				continue
			}
			d, ok := p.domain(item, key, defs)
			if d.Name == "" {
				continue
			}
			// Checked for entries with other errors too, so fixing
			// those does not reveal a new one.
			if first, dup := firstLine[d.Name]; dup {
				p.errf(d.Line, key+".domain", "%s is already listed at line %d; merge the two entries", d.Name, first)
				continue
			}
			firstLine[d.Name] = d.Line
			if ok {
				f.Domains = append(f.Domains, d)
			}
		}
	}
	if len(p.errs) > 0 {
		return nil
	}
	return f
}

// decode parses data into a node tree. Exactly one YAML document is allowed:
// a second one ("---") would be silently ignored by a reader that takes the
// first, so it is refused.
func decode(data []byte) (root *yaml.Node, err error) {
	// yaml.v3 has panicked on hostile input in the past; a config file
	// must give an error, never bring the tool down.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &docError{line: next.Line}
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// docError is a second YAML document in the file.
type docError struct{ line int }

func (e *docError) Error() string { return "second YAML document" }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError reports a yaml.v3 syntax error with the line where editors and
// other tools expect it ("file:12: ...").
func (p *parser) yamlError(err error) {
	var de *docError
	if errors.As(err, &de) {
		p.errf(de.line, "", "a second YAML document (after \"---\"); put every domain in the one domains list")
		return
	}
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			p.errf(line, "", "invalid YAML: %s", m[2])
			return
		}
	}
	p.errf(0, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// checkTree refuses aliases and merge keys and bounds the number of values.
// Aliases are the one way a small YAML file becomes a huge tree (the
// "billion laughs"); a config file has no need for them, and refusing them
// keeps every later walk linear in the size of the text.
func (p *parser) checkTree(root *yaml.Node) bool {
	nodes := 0
	stack := []*yaml.Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		nodes++
		if nodes > maxNodes {
			p.errf(0, "", "too many values (more than %d); split the file", maxNodes)
			return false
		}
		switch {
		case n.Kind == yaml.AliasNode:
			p.errf(n.Line, "", "YAML aliases (*%s) are not supported; repeat the value", n.Value)
			return false
		case n.Kind == yaml.ScalarNode && n.Tag == "!!merge":
			p.errf(n.Line, "", "YAML merge keys (<<) are not supported; repeat the keys (a domain inherits defaults: anyway)")
			return false
		}
		stack = append(stack, n.Content...)
	}
	return true
}

// describe names a node for a "want X, got Y" message: a scalar by its text.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !yamlnode.IsNull(n) {
		return strconv.Quote(n.Value)
	}
	return yamlnode.KindName(n)
}

// mapping checks the keys of m against allowed and returns the values by key.
// Unknown keys (with a suggestion), keys given twice and non-scalar keys are
// errors; null values ("key:" with nothing after it) count as absent.
func (p *parser) mapping(m *yaml.Node, path string, allowed []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	keyLine := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k.Line, path, "keys must be plain names, got %s", yamlnode.KindName(k))
			continue
		}
		full := join(path, k.Value)
		if !slices.Contains(allowed, k.Value) {
			if len(p.errs) > maxErrors {
				continue // not reported: spare the suggestion's cost
			}
			if c := closest(k.Value, allowed); c != "" {
				if p.misspelt == nil {
					p.misspelt = map[string]bool{}
				}
				p.misspelt[join(path, c)] = true
			}
			p.errf(k.Line, full, "unknown key%s", didYouMean(k.Value, allowed))
			continue
		}
		if first, dup := keyLine[k.Value]; dup {
			p.errf(k.Line, full, "given twice (first at line %d)", first)
			continue
		}
		keyLine[k.Value] = k.Line
		if yamlnode.IsNull(v) {
			continue
		}
		out[k.Value] = v
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// str returns a single, non-empty value, trimmed.
func (p *parser) str(v *yaml.Node, key string) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		p.errf(v.Line, key, "want a single value, got %s", yamlnode.KindName(v))
		return "", false
	}
	s := strings.TrimSpace(v.Value)
	if s == "" {
		p.errf(v.Line, key, "empty; give a value or remove the key")
		return "", false
	}
	return s, true
}

// item is one list entry and where it was written.
type item struct {
	s    string
	line int
	key  string // "domains[0].smart_hosts[1]"
}

// strList returns the items of a list of single values, trimmed; empty items
// and items that are not single values are errors.
func (p *parser) strList(v *yaml.Node, key string) ([]item, bool) {
	if v.Kind != yaml.SequenceNode {
		p.errf(v.Line, key, "want a list of strings (e.g. [a, b] or one \"- item\" per line), got %s", describe(v))
		return nil, false
	}
	ok := true
	var out []item
	seen := map[string]int{}
	for i, n := range v.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		if n.Kind != yaml.ScalarNode || yamlnode.IsNull(n) {
			p.errf(n.Line, k, "want a string, got %s", yamlnode.KindName(n))
			ok = false
			continue
		}
		s := strings.TrimSpace(n.Value)
		if s == "" {
			p.errf(n.Line, k, "empty string")
			ok = false
			continue
		}
		if first, dup := seen[s]; dup {
			p.errf(n.Line, k, "%q is listed twice (first at line %d)", s, first)
			ok = false
			continue
		}
		seen[s] = n.Line
		out = append(out, item{s: s, line: n.Line, key: k})
	}
	return out, ok
}

// integer returns a whole number between lo and hi.
func (p *parser) integer(v *yaml.Node, key string, lo, hi int, unit string) (int, bool) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
		p.errf(v.Line, key, "want a whole number of %s, got %s", unit, describe(v))
		return 0, false
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil || n < lo || n > hi {
		p.errf(v.Line, key, "%s: want %d to %d %s", strconv.Quote(v.Value), lo, hi, unit)
		return 0, false
	}
	return n, true
}

// defaults parses the defaults block into a Domain holding only the keys
// every domain inherits.
func (p *parser) defaults(v *yaml.Node) Domain {
	var d Domain
	if v.Kind != yaml.MappingNode {
		p.errf(v.Line, "defaults", "want a mapping of profile, mode and thresholds, got %s", yamlnode.KindName(v))
		return d
	}
	m := p.mapping(v, "defaults", defaultsKeys)
	if n, ok := m["profile"]; ok {
		d.Profile = p.profileID(n, "defaults.profile")
	}
	if n, ok := m["mode"]; ok {
		d.Mode = p.mode(n, "defaults.mode")
	}
	if n, ok := m["thresholds"]; ok {
		d.Thresholds = p.thresholds(n, "defaults.thresholds")
	}
	return d
}

func (p *parser) profileID(v *yaml.Node, key string) string {
	s, ok := p.str(v, key)
	if !ok {
		return ""
	}
	prof, err := p.profiles.Get(s)
	if err != nil {
		// Registry.Get says "unknown profile "x" (did you mean y?)".
		p.errf(v.Line, key, "%v", err)
		return ""
	}
	return prof.ID
}

var modes = []string{ModeReadiness, ModeSmoke, ModeHealth}

func (p *parser) mode(v *yaml.Node, key string) string {
	s, ok := p.str(v, key)
	if !ok {
		return ""
	}
	if !slices.Contains(modes, s) {
		p.errf(v.Line, key, "%q is not a mode%s; want readiness (before the MX cutover), smoke (right after it) or health (nightly)",
			s, didYouMean(strings.ToLower(s), modes))
		return ""
	}
	return s
}

// maxTTL is the largest TTL a resolver honours (RFC 2181 §8).
const maxTTL = 1<<31 - 1

func (p *parser) thresholds(v *yaml.Node, key string) Thresholds {
	var t Thresholds
	if v.Kind != yaml.MappingNode {
		p.errf(v.Line, key, "want a mapping of %s, got %s", strings.Join(thresholdsKeys, ", "), yamlnode.KindName(v))
		return t
	}
	m := p.mapping(v, key, thresholdsKeys)
	if n, ok := m["cert_expiry_warn_days"]; ok {
		// A public certificate lives at most 398 days; warning further
		// ahead would warn about every certificate all the time.
		t.CertExpiryWarnDays, _ = p.integer(n, key+".cert_expiry_warn_days", 1, 397, "days")
	}
	if n, ok := m["mx_ttl_max_seconds"]; ok {
		t.MXTTLMaxSeconds, _ = p.integer(n, key+".mx_ttl_max_seconds", 1, maxTTL, "seconds")
	}
	if n, ok := m["fail_on"]; ok {
		if s, ok := p.str(n, key+".fail_on"); ok {
			switch l := strings.ToLower(s); l {
			case "info", "warn", "fail":
				t.FailOn = l
			default:
				p.errf(n.Line, key+".fail_on", "%q is not a status%s; want info, warn or fail", s, didYouMean(l, []string{"info", "warn", "fail"}))
			}
		}
	}
	return t
}

// didYouMean formats a suggestion from candidates, or "" when none is close.
func didYouMean(s string, candidates []string) string {
	if m := closest(s, candidates); m != "" {
		return " (did you mean " + m + "?)"
	}
	return ""
}

// closest returns the candidate nearest to s when it is near enough to be a
// typo (an edit distance of about a third of the length, at most 3), else "".
// Ties go to the first candidate in schema order.
func closest(s string, candidates []string) string {
	limit := min(max(len(s)/3, 1), 3)
	best, out := limit+1, ""
	for _, c := range candidates {
		if d := suggest.EditDistance(s, c); d < best {
			best, out = d, c
		}
	}
	return out
}
