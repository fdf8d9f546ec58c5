package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"
)

// Format names an output format (--output).
type Format string

const (
	FormatTable    Format = "table"
	FormatJSON     Format = "json"
	FormatJUnit    Format = "junit"
	FormatMarkdown Format = "markdown"
)

// Formats lists the accepted formats, in the order to show them in help text.
func Formats() []Format {
	return []Format{FormatTable, FormatJSON, FormatJUnit, FormatMarkdown}
}

// ParseFormat parses the --output value (any case).
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Formats(), f) {
		return f, nil
	}
	return "", fmt.Errorf("invalid output format %q (want table, json, junit or markdown)", s)
}

// Options tune rendering. The zero value is plain output with the default
// --fail-on (fail).
type Options struct {
	// Color adds ANSI colours to the table format only; decide it with
	// ColorFor. The other formats are files for machines and never colour.
	Color bool
	// Trace appends the DNS query log to the table format.
	Trace bool
	// FailOn is the --fail-on threshold; JUnit reports findings at or above
	// it as <failure>. Zero means fail.
	FailOn Status
	// Verbose shows the evidence of every finding in the table format, not
	// only of warn, fail and error findings.
	Verbose bool
}

func (o Options) failOn() Status {
	switch o.FailOn {
	case StatusInfo, StatusWarn, StatusFail:
		return o.FailOn
	}
	return StatusFail
}

// Render writes reports to w in format f. The reports are not modified: each
// is rendered from a finalized copy (sorted findings, fresh summary), so the
// caller need not call Finalize first. Several reports give several sections
// (table, markdown), JSON Lines (json) or several test suites (junit).
func Render(w io.Writer, f Format, opt Options, reports ...*Report) error {
	rs := make([]*Report, len(reports))
	for i, r := range reports {
		if r == nil {
			return fmt.Errorf("report: Render: report %d is nil", i)
		}
		rs[i] = r.finalized()
	}
	switch f {
	case FormatTable:
		return renderTable(w, opt, rs)
	case FormatJSON:
		return renderJSON(w, rs)
	case FormatJUnit:
		return renderJUnit(w, opt, rs)
	case FormatMarkdown:
		return renderMarkdown(w, rs)
	}
	return fmt.Errorf("report: Render: unknown format %q", f)
}

// ColorFor reports whether output to f should be coloured: only when f is a
// terminal, NO_COLOR is unset or empty (https://no-color.org), and TERM is
// not "dumb". Piped output, files and CI logs therefore stay plain.
func ColorFor(f *os.File) bool {
	if f == nil || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// ANSI SGR sequences. Kept to the 8 basic colours so every terminal,
// including Windows Terminal and CI log viewers, shows them.
const (
	ansiReset   = "\x1b[0m"
	ansiBold    = "\x1b[1m"
	ansiRed     = "\x1b[31m"
	ansiGreen   = "\x1b[32m"
	ansiYellow  = "\x1b[33m"
	ansiMagenta = "\x1b[35m"
	ansiCyan    = "\x1b[36m"
)

var statusColor = map[Status]string{
	StatusFail:  ansiRed,
	StatusWarn:  ansiYellow,
	StatusPass:  ansiGreen,
	StatusInfo:  ansiCyan,
	StatusError: ansiMagenta,
}

// paint wraps s in an SGR sequence when colour is on.
func paint(on bool, sgr, s string) string {
	if !on || sgr == "" || s == "" {
		return s
	}
	return sgr + s + ansiReset
}

// summaryText is the one-line verdict shared by table and markdown, e.g.
// "2 fail, 1 warn, 5 pass, 1 error (could not check) — 14 DNS queries in
// 43 ms". Zero counts are left out; errors are named as "could not check" so
// nobody reads them as misconfigurations. style decorates each status word.
func summaryText(r *Report, style func(Status, string) string) string {
	var parts []string
	for _, st := range statuses {
		n := r.Summary.Counts[st]
		if n == 0 {
			continue
		}
		p := strconv.Itoa(n) + " " + style(st, string(st))
		if st == StatusError {
			p += " (could not check)"
		}
		parts = append(parts, p)
	}
	if r.Summary.Suppressed > 0 {
		parts = append(parts, strconv.Itoa(r.Summary.Suppressed)+" suppressed")
	}
	s := "no findings"
	if len(parts) > 0 {
		s = strings.Join(parts, ", ")
	}
	ms := formatMS(r.DurationMS)
	if r.DNS != nil {
		return fmt.Sprintf("%s — %s in %s", s, plural(r.DNS.Queries, "DNS query", "DNS queries"), ms)
	}
	return fmt.Sprintf("%s — done in %s", s, ms)
}

// suppressedText says why a finding does not count: "suppressed until
// 2027-01-31 (mfcheck.yaml:12): legacy relay, being retired".
func suppressedText(s *Suppression) string {
	t := "suppressed"
	if s.Expires != "" {
		t += " until " + s.Expires
	}
	if s.Source != "" {
		t += " (" + s.Source + ")"
	}
	return t + ": " + s.Reason
}

// findingMessage is the message with the suppression, if any, after it.
func findingMessage(f Finding) string {
	if f.Suppressed == nil {
		return f.Message
	}
	return f.Message + " [" + suppressedText(f.Suppressed) + "]"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func formatMS(ms float64) string {
	if ms > 0 && ms < 1 {
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
}

// findingLabel names a finding in lists: "spf.lookup-limit (contoso.com)".
func findingLabel(f Finding) string {
	if f.Subject == "" {
		return f.ID
	}
	return f.ID + " (" + f.Subject + ")"
}

// showEvidence says which findings get an evidence block: the ones a reader
// has to act on, or all of them when verbose.
func showEvidence(f Finding, verbose bool) bool {
	if len(f.Evidence) == 0 {
		return false
	}
	return verbose || f.Status == StatusWarn || f.Status == StatusFail || f.Status == StatusError
}

// sanitize makes untrusted text (SMTP banners, TXT records, transcripts all
// come from the network) safe for a terminal or a Markdown cell: control
// characters other than newline and tab are shown as \xNN instead of being
// emitted, so a hostile server cannot move the cursor or recolour the screen,
// and invalid UTF-8 is replaced. Tabs become a space because their width
// depends on the terminal and would break column alignment.
func sanitize(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r == '\t' || r == '\r' || (unicode.IsControl(r) && r != '\n') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\t':
			b.WriteByte(' ')
		case r == '\r':
			// CRLF from SMTP transcripts: keep the line break only.
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
			} else {
				b.WriteRune(r)
			}
		case unicode.IsControl(r) && r != '\n':
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// wrap breaks s into lines of at most width runes at spaces, keeping the
// existing line breaks; a word longer than width is cut hard so one long
// record cannot widen the whole table.
func wrap(s string, width int) string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		words := strings.Fields(para)
		if len(words) == 0 {
			out = append(out, "")
			continue
		}
		line, n := "", 0
		flush := func() {
			if n > 0 {
				out = append(out, line)
			}
			line, n = "", 0
		}
		for _, w := range words {
			for utf8.RuneCountInString(w) > width {
				flush()
				rs := []rune(w)
				out = append(out, string(rs[:width]))
				w = string(rs[width:])
			}
			wn := utf8.RuneCountInString(w)
			switch {
			case n == 0:
				line, n = w, wn
			case n+1+wn <= width:
				line, n = line+" "+w, n+1+wn
			default:
				flush()
				line, n = w, wn
			}
		}
		flush()
	}
	return strings.Join(out, "\n")
}

// ellipsize cuts s to at most max runes, marking the cut with "…".
func ellipsize(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	rs := []rune(s)
	return string(rs[:max-1]) + "…"
}

// evidenceLines renders evidence as "key: value" lines with sorted keys.
// Strings are shown bare unless they contain control characters (then
// quoted, so a multi-line transcript stays on one line); everything else
// is compact JSON, which has sorted map keys and is what users will grep
// for in the JSON output anyway. Long values are cut at maxValue runes.
func evidenceLines(ev map[string]any, maxValue int) []string {
	keys := slices.Sorted(maps.Keys(ev))
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, sanitize(k)+": "+ellipsize(compactValue(ev[k]), maxValue))
	}
	return lines
}

func compactValue(v any) string {
	if s, ok := v.(string); ok {
		if sanitize(s) == s && !strings.Contains(s, "\n") {
			return s
		}
		return strconv.Quote(s)
	}
	b, err := marshalCompact(v)
	if err != nil {
		// Not JSON-encodable (NaN, a channel): still show something
		// rather than fail the whole report.
		return sanitize(fmt.Sprintf("%v", v))
	}
	return sanitize(string(b))
}

// marshalCompact is json.Marshal without HTML escaping: "<" and "&" are
// common in mail evidence (addresses, query strings) and should read as such.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// errWriter remembers the first write error so renderers can write freely and
// check once at the end.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, a ...any) {
	fmt.Fprintf(e, format, a...)
}
