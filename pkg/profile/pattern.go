package profile

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Match reports whether host matches the host pattern. The syntax:
//
//   - "*" is exactly one DNS label when it is a label of its own, or one or
//     more characters (never a dot) inside a label: "vade-mx-*",
//     "*-smtp-inbound-?";
//   - "?" is exactly one character;
//   - "**" is one or more whole labels, and must be a label of its own;
//   - "<name>" is a placeholder for a customer-specific part and matches like
//     "*" within its label: "<token>.mail.protection.outlook.com";
//   - everything else is literal. Case and one trailing dot are ignored, and
//     internationalised names are compared in their A-label (xn--) form.
//
// An invalid pattern or host matches nothing.
func Match(pattern, host string) bool {
	p, err := compilePattern(pattern)
	if err != nil {
		return false
	}
	h, ok := hostLabels(host)
	return ok && p.match(h)
}

// hostLabels normalises a host name for matching and splits it into labels.
func hostLabels(host string) ([]string, bool) {
	name, err := normName(host)
	if err != nil || name == "" {
		return nil, false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return nil, false
		}
	}
	return labels, true
}

// normName lower-cases a name, drops one trailing dot and turns
// internationalised labels into A-labels. It works label by label, not on the
// whole name, because profile names legitimately hold characters that IDNA's
// host-name rules reject (underscores in "_spf.google.com", wildcards in
// patterns); only labels with non-ASCII characters go through IDNA.
func normName(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if isASCII(s) {
		return strings.ToLower(s), nil
	}
	if !utf8.ValidString(s) {
		return "", errors.New("not valid UTF-8")
	}
	// IDNA treats these as dots too; mapping them first keeps a label from
	// turning into two after conversion.
	s = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".").Replace(s)
	s = strings.TrimSuffix(s, ".")
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if isASCII(l) {
			labels[i] = strings.ToLower(l)
			continue
		}
		a, err := idna.Lookup.ToASCII(l)
		if err != nil {
			return "", fmt.Errorf("label %q is not a valid internationalised name: %v", l, err)
		}
		if a == "" || strings.Contains(a, ".") {
			return "", fmt.Errorf("label %q is not a valid internationalised name", l)
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// A pattern is a compiled host pattern.
type pattern struct {
	labels []patLabel
	// literal counts literal characters; more means more specific, which
	// orders DetectMX results (a profile's exact host beats a grid wildcard).
	literal int
	// wild is true when the pattern has any wildcard or placeholder.
	wild bool
}

// A patLabel is one label of a pattern: "**" or a sequence of tokens.
type patLabel struct {
	many bool // "**": one or more whole labels
	toks []patTok
	wild bool
}

type tokKind uint8

const (
	tokByte tokKind = iota // one literal byte
	tokOne                 // "?": exactly one character
	tokSome                // "*" or "<name>": one or more characters
)

type patTok struct {
	kind tokKind
	b    byte
}

// maxPatternLen bounds the work a hostile pattern can cause; real host names
// are at most 253 characters.
const maxPatternLen = 1024

// compilePattern checks the syntax of a pattern and compiles it. It does not
// apply the profile rules on how broad a pattern may be (see checkPatternScope).
func compilePattern(s string) (*pattern, error) {
	if s == "" {
		return nil, errors.New("empty host pattern")
	}
	if len(s) > maxPatternLen {
		return nil, fmt.Errorf("host pattern is %d characters long; a host name has at most 253", len(s))
	}
	name, err := normName(s)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("empty host pattern")
	}
	p := &pattern{}
	for _, l := range strings.Split(name, ".") {
		pl, err := compileLabel(l)
		if err != nil {
			return nil, err
		}
		if pl.wild {
			p.wild = true
		}
		for _, t := range pl.toks {
			if t.kind == tokByte {
				p.literal++
			}
		}
		p.labels = append(p.labels, pl)
	}
	return p, nil
}

func compileLabel(l string) (patLabel, error) {
	switch {
	case l == "":
		return patLabel{}, errors.New("empty label (two dots in a row, or a leading dot)")
	case l == "**":
		return patLabel{many: true, wild: true}, nil
	}
	var pl patLabel
	literal := 0
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c == '*':
			if i+1 < len(l) && l[i+1] == '*' {
				return patLabel{}, fmt.Errorf("label %q: \"**\" stands for whole labels and must be a label of its own", l)
			}
			pl.toks = append(pl.toks, patTok{kind: tokSome})
			pl.wild = true
		case c == '?':
			pl.toks = append(pl.toks, patTok{kind: tokOne})
			pl.wild = true
		case c == '<':
			end := strings.IndexByte(l[i:], '>')
			if end < 0 {
				return patLabel{}, fmt.Errorf("label %q: placeholder \"<\" is not closed by \">\" within the label", l)
			}
			name := l[i+1 : i+end]
			if name == "" {
				return patLabel{}, fmt.Errorf("label %q: empty placeholder \"<>\"", l)
			}
			for j := 0; j < len(name); j++ {
				if !isNameByte(name[j]) {
					return patLabel{}, fmt.Errorf("label %q: placeholder name %q may hold only letters, digits, '-' and '_'", l, name)
				}
			}
			pl.toks = append(pl.toks, patTok{kind: tokSome})
			pl.wild = true
			i += end
		case c == '>':
			return patLabel{}, fmt.Errorf("label %q: \">\" without \"<\"", l)
		case isNameByte(c):
			pl.toks = append(pl.toks, patTok{kind: tokByte, b: c})
			literal++
		default:
			return patLabel{}, fmt.Errorf("label %q: character %q is not allowed in a host name", l, c)
		}
	}
	if !pl.wild && literal > 63 {
		return patLabel{}, fmt.Errorf("label %q is %d characters long; the limit is 63", l, literal)
	}
	return pl, nil
}

// isNameByte reports whether c may appear in a (lower-cased) DNS label as
// mfcheck accepts them: letters, digits, hyphen, and the underscore used by
// service names such as "_spf".
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// match runs a dynamic programme over (pattern label, host label) so that
// several "**" labels cost O(labels²), never exponential backtracking.
func (p *pattern) match(host []string) bool {
	n := len(host)
	prev := make([]bool, n+1) // prev[j]: the labels so far match host[:j]
	prev[0] = true
	cur := make([]bool, n+1)
	for _, pl := range p.labels {
		cur[0] = false
		if pl.many {
			seen := false
			for j := 1; j <= n; j++ {
				seen = seen || prev[j-1]
				cur[j] = seen
			}
		} else {
			for j := 1; j <= n; j++ {
				cur[j] = prev[j-1] && matchLabel(pl.toks, host[j-1])
			}
		}
		prev, cur = cur, prev
	}
	return prev[n]
}

// matchLabel matches one label against its tokens, again as a dynamic
// programme over (token, position) to stay linear in the label's length per
// token. Host labels are ASCII after normName, so a byte is a character,
// and they hold no dots, so "*" cannot run past its label.
func matchLabel(toks []patTok, s string) bool {
	n := len(s)
	prev := make([]bool, n+1)
	prev[0] = true
	cur := make([]bool, n+1)
	for _, t := range toks {
		cur[0] = false
		switch t.kind {
		case tokByte:
			for j := 1; j <= n; j++ {
				cur[j] = prev[j-1] && s[j-1] == t.b
			}
		case tokOne:
			for j := 1; j <= n; j++ {
				cur[j] = prev[j-1]
			}
		case tokSome:
			seen := false
			for j := 1; j <= n; j++ {
				seen = seen || prev[j-1]
				cur[j] = seen
			}
		}
		prev, cur = cur, prev
	}
	return prev[n]
}

// checkPatternScope applies the profile rule on top of the syntax: a pattern
// with wildcards must end in at least two literal labels, so that no profile
// claims whole top-level domains ("*.com", "**") and DetectMX cannot attribute
// every MX host on the internet to one vendor.
func checkPatternScope(p *pattern) error {
	if !p.wild {
		return nil
	}
	k := len(p.labels)
	if k < 3 || p.labels[k-1].wild || p.labels[k-2].wild {
		return errors.New("a pattern with wildcards must end in at least two literal labels (e.g. \"*.mimecast.com\")")
	}
	return nil
}
