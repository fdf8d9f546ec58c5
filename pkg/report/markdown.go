package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// statusBadge prefixes the status word with an emoji so a pull-request
// comment can be scanned at a glance; the word stays for search and for
// readers whose font lacks the emoji.
var statusBadge = map[Status]string{
	StatusFail:  "❌ fail",
	StatusWarn:  "⚠️ warn",
	StatusInfo:  "ℹ️ info",
	StatusPass:  "✅ pass",
	StatusError: "❓ error",
}

func badge(s Status) string {
	if b, ok := statusBadge[s]; ok {
		return b
	}
	return mdEscape(string(s), " ")
}

// renderMarkdown writes GitHub-flavoured Markdown for a pull-request comment
// or a ticket: a heading per report, the verdict, a findings table, and the
// remediation and evidence of non-pass findings folded into <details> so
// the comment stays short.
func renderMarkdown(w io.Writer, reports []*Report) error {
	ew := &errWriter{w: w}
	for i, r := range reports {
		if i > 0 {
			ew.printf("\n")
		}
		writeMarkdownReport(ew, r)
	}
	return ew.err
}

func writeMarkdownReport(ew *errWriter, r *Report) {
	ew.printf("## mfcheck: %s\n\n", mdEscape(r.Domain, " "))
	if r.Simulation {
		ew.printf("> **%s**\n\n", mdEscape(simulationBanner(r), " "))
	}
	var meta []string
	if r.Mode != "" {
		meta = append(meta, "Mode: "+inlineCode(r.Mode))
	}
	if r.Profile != "" {
		meta = append(meta, "Profile: "+inlineCode(r.Profile))
	}
	if len(meta) > 0 {
		ew.printf("%s\n\n", strings.Join(meta, " · "))
	}
	for _, n := range r.Notes {
		ew.printf("- Note: %s\n", mdEscape(n, " "))
	}
	if len(r.Notes) > 0 {
		ew.printf("\n")
	}
	plain := func(_ Status, s string) string { return s }
	ew.printf("**%s**\n\n", mdEscape(summaryText(r, plain), " "))

	writeMarkdownFindings(ew, r)
	if r.SPF != nil {
		writeMarkdownSPF(ew, r.SPF)
	}
	if len(r.TLS) > 0 {
		writeMarkdownTLS(ew, r.TLS)
	}
	if r.Trace != nil {
		writeMarkdownTrace(ew, r.Trace)
	}
}

// writeMarkdownFindings writes the findings table and, folded, the
// remediation and evidence of the findings that are not pass.
func writeMarkdownFindings(ew *errWriter, r *Report) {
	if len(r.Findings) == 0 {
		ew.printf("_No findings._\n")
		return
	}
	ew.printf("| Status | Check | Subject | Message |\n| --- | --- | --- | --- |\n")
	for _, f := range r.Findings {
		ew.printf("| %s | %s | %s | %s |\n", badge(f.Status), cellCode(f.ID), mdEscape(f.Subject, "<br>"), mdEscape(findingMessage(f), "<br>"))
	}

	var detail []Finding
	for _, f := range r.Findings {
		if f.Status != StatusPass && (f.Remediation != "" || len(f.Evidence) > 0) {
			detail = append(detail, f)
		}
	}
	if len(detail) == 0 {
		return
	}
	noun := "findings"
	if len(detail) == 1 {
		noun = "finding"
	}
	// A blank line after <summary> is required for GitHub to render the
	// Markdown inside the HTML block.
	ew.printf("\n<details>\n<summary>Remediation and evidence (%d %s)</summary>\n\n", len(detail), noun)
	for _, f := range detail {
		ew.printf("#### %s %s", badge(f.Status), inlineCode(f.ID))
		if f.Subject != "" {
			ew.printf(" %s", mdEscape(f.Subject, " "))
		}
		ew.printf("\n\n%s\n\n", mdEscape(f.Message, "<br>\n"))
		if f.Remediation != "" {
			ew.printf("**Remediation:** %s\n\n", mdEscape(f.Remediation, "<br>\n"))
		}
		if len(f.Evidence) > 0 {
			ew.printf("%s\n", fencedJSON(f.Evidence))
		}
	}
	ew.printf("</details>\n")
}

// mdEscape makes untrusted text literal in Markdown: control characters are
// made visible (sanitize), Markdown and HTML punctuation is backslash-escaped
// (CommonMark allows a backslash before any ASCII punctuation), so an SPF
// "~all" cannot turn into strikethrough, a "<host>" cannot vanish as an HTML
// tag and a "|" cannot split a table cell, and a leading list or heading
// marker is neutralised. Line breaks become nl ("<br>" inside table cells,
// where a real newline would end the row).
func mdEscape(s, nl string) string {
	s = sanitize(s)
	var b strings.Builder
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		if i > 0 {
			b.WriteString(nl)
		}
		b.WriteString(escapeLineStart(line))
	}
	return b.String()
}

func escapeLineStart(line string) string {
	var b strings.Builder
	// A line that starts like a block (list item "- ", "+ ", "1. ",
	// heading setext "=") must stay an ordinary paragraph.
	rest := line
	if strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") || strings.HasPrefix(rest, "=") {
		b.WriteByte('\\')
		b.WriteByte(rest[0])
		rest = rest[1:]
	} else if n := leadingDigits(rest); n > 0 && n < len(rest) && (rest[n] == '.' || rest[n] == ')') {
		b.WriteString(rest[:n])
		b.WriteByte('\\')
		b.WriteByte(rest[n])
		rest = rest[n+1:]
	}
	for _, r := range rest {
		if strings.ContainsRune("\\`*_[]<>|~&#", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// cellCode is inlineCode for a table cell: GFM splits cells on "|" even
// inside code spans, and drops the backslash of "\|" there.
func cellCode(s string) string {
	return inlineCode(strings.ReplaceAll(s, "|", `\|`))
}

// inlineCode renders s as a code span, using a backtick run longer than any
// inside s (CommonMark's rule).
func inlineCode(s string) string {
	s = strings.ReplaceAll(sanitize(s), "\n", " ")
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

// fencedJSON renders evidence as an indented ```json block.
func fencedJSON(ev map[string]any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	body := ""
	if err := enc.Encode(ev); err != nil {
		body = sanitize(fmt.Sprintf("%v", ev)) + "\n"
	} else {
		body = buf.String()
	}
	return fenced("json", body)
}

// fenced renders body, which ends in a newline, as a code block whose fence
// is longer than any backtick run in it, so the content cannot close it.
func fenced(lang, body string) string {
	fence := strings.Repeat("`", max(3, longestRun(body, '`')+1))
	return fence + lang + "\n" + body + fence + "\n"
}

func longestRun(s string, c rune) int {
	best, n := 0, 0
	for _, r := range s {
		if r == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}
