package report

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/tw"
)

// DiffOptions tune RenderDiff.
type DiffOptions struct {
	// Gate decides which changes are regressions (marked, and "worse").
	Gate Gate
	// Color adds ANSI colours to the table format only (see ColorFor).
	Color bool
}

// DiffFormats are the formats RenderDiff writes (no JUnit: a diff is not a
// list of test cases).
func DiffFormats() []Format { return []Format{FormatTable, FormatJSON, FormatMarkdown} }

// RenderDiff writes s in format f: table, json (one indented document,
// "schema": "mfcheck.diff/v1", see docs/diff.schema.json) or markdown. s is
// not modified.
func RenderDiff(w io.Writer, f Format, opt DiffOptions, s *DiffSet) error {
	if s == nil {
		return fmt.Errorf("report: RenderDiff: nil diff")
	}
	g := s.gated(opt.Gate)
	switch f {
	case FormatTable:
		return renderDiffTable(w, opt, g)
	case FormatJSON:
		enc := newJSONEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(g)
	case FormatMarkdown:
		return renderDiffMarkdown(w, g)
	}
	return fmt.Errorf("report: RenderDiff: no %q output for a diff (want table, json or markdown)", f)
}

// changeLabel is what the table and Markdown call a change.
var changeLabel = map[Change]string{
	ChangeNew:          "new",
	ChangeFixed:        "fixed",
	ChangeWorse:        "worse",
	ChangeBetter:       "better",
	ChangeUnverifiable: "now unverifiable",
	ChangeVerifiable:   "verifiable again",
	ChangeSuppressed:   "now suppressed",
	ChangeUnsuppressed: "no longer suppressed",
	ChangeRemoved:      "no longer reported",
	ChangeUnchanged:    "unchanged",
}

// changeStatus colours a change like the status it resembles.
var changeStatus = map[Change]Status{
	ChangeNew: StatusWarn, ChangeWorse: StatusFail, ChangeUnverifiable: StatusError, ChangeUnsuppressed: StatusWarn,
	ChangeFixed: StatusPass, ChangeBetter: StatusPass, ChangeVerifiable: StatusInfo,
}

// listed says whether the table and Markdown show a change on its own line:
// a new passing finding and one no longer reported that passed are only
// counted (a new endpoint brings a dozen passing tls.* findings).
func listed(c FindingChange) bool {
	switch c.Change {
	case ChangeNew:
		return c.After != StatusPass
	case ChangeRemoved:
		return c.Before != StatusPass
	}
	return true
}

func orDash(s Status) string {
	if s == "" {
		return "-"
	}
	return string(s)
}

func statusArrow(c FindingChange) string { return orDash(c.Before) + " → " + orDash(c.After) }

// gateText says what counts, for the header of table and Markdown.
func gateText(s *DiffSet) string {
	t := "worse means: a new finding at or above " + string(s.FailOn) + ", or a status that rose to or above it"
	if s.ErrorsAreWorse {
		return t + ", or a check that could not run (--errors-are-worse)"
	}
	return t + "; checks that could not run are listed but not counted (--errors-are-worse counts them)"
}

func verdictText(s *DiffSet) string {
	if !s.GotWorse {
		return "Nothing got worse at or above " + string(s.FailOn) + "."
	}
	n, doms := 0, 0
	for _, d := range s.Domains {
		if d.GotWorse {
			doms++
			for _, c := range d.Changes {
				if c.Regression {
					n++
				}
			}
		}
	}
	return fmt.Sprintf("Worse at or above %s: %s in %s.", s.FailOn, plural(n, "change", "changes"), plural(doms, "domain", "domains"))
}

// sideText is "readiness, profile mimecast-eu, worst fail".
func sideText(r ReportSide) string {
	var parts []string
	if r.Mode != "" {
		parts = append(parts, r.Mode)
	}
	if r.Profile != "" {
		parts = append(parts, "profile "+r.Profile)
	}
	if r.Simulation {
		parts = append(parts, "simulation")
	}
	return strings.Join(parts, ", ")
}

// countsText is "3 fail, 1 warn, 12 pass, 1 error" (zeros left out).
func countsText(s Summary) string {
	var parts []string
	for _, st := range statuses {
		if n := s.Counts[st]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+string(st))
		}
	}
	if s.Suppressed > 0 {
		parts = append(parts, strconv.Itoa(s.Suppressed)+" suppressed")
	}
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}

// tallyText is "2 worse, 1 new, 3 fixed, 40 unchanged" (zeros left out).
func tallyText(d *ReportDiff) string {
	var parts []string
	for _, c := range changeOrder {
		if n := d.Counts[c]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+changeLabel[c])
		}
	}
	if len(parts) == 0 {
		return "no findings on either side"
	}
	return strings.Join(parts, ", ")
}

// quietText counts what the lists leave out.
func quietText(d *ReportDiff) string {
	newPass, gonePass := 0, 0
	for _, c := range d.Changes {
		switch {
		case c.Change == ChangeNew && c.After == StatusPass:
			newPass++
		case c.Change == ChangeRemoved && c.Before == StatusPass:
			gonePass++
		}
	}
	var parts []string
	if n := d.Counts[ChangeUnchanged]; n > 0 {
		parts = append(parts, plural(n, "finding", "findings")+" unchanged")
	}
	if newPass > 0 {
		parts = append(parts, plural(newPass, "new passing finding", "new passing findings"))
	}
	if gonePass > 0 {
		parts = append(parts, plural(gonePass, "passing finding", "passing findings")+" no longer reported")
	}
	if len(parts) == 0 {
		return ""
	}
	return "Not listed: " + strings.Join(parts, ", ") + " (all in --output json)."
}

func mxLine(m *MXDiff) string {
	return "MX: {" + strings.Join(m.Before, ", ") + "} → {" + strings.Join(m.After, ", ") + "}"
}

func spfLines(s *SPFDiff) []string {
	lines := []string{fmt.Sprintf("SPF: lookups %d → %d (limit %d)", s.Before.Lookups, s.After.Lookups, s.After.LookupLimit)}
	if s.Before.Record != s.After.Record {
		lines = append(lines, "before: "+orNone(s.Before.Record), "after:  "+orNone(s.After.Record))
	}
	if !s.After.Complete {
		lines = append(lines, "(AFTER's tree is incomplete: the count is a lower bound)")
	}
	return lines
}

func orNone(s string) string {
	if s == "" {
		return "(no record)"
	}
	return s
}

func tlsEndpointText(c TLSChange) string {
	e := TLSEndpoint{Host: c.Host, Address: c.Address, Port: c.Port}
	s := e.Endpoint()
	if c.BeforeAddress != "" {
		s += " (was " + c.BeforeAddress + ")"
	}
	return s
}

func tlsVerdictArrow(c TLSChange) string {
	b, a := c.Before, c.After
	if b == "" {
		b = "-"
	}
	if a == "" {
		a = "-"
	}
	s := b + " → " + a
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

func renderDiffTable(w io.Writer, opt DiffOptions, s *DiffSet) error {
	ew := &errWriter{w: w}
	c := opt.Color
	ew.printf("mfcheck diff: %s → %s\n", sanitize(sourceName(s.Before, "BEFORE")), sanitize(sourceName(s.After, "AFTER")))
	ew.printf("%s\n", wrap("("+gateText(s)+")", 100))
	if len(s.Domains) == 0 {
		ew.printf("\nNo domain is in both.\n")
	}
	for _, d := range s.Domains {
		if err := writeDiffDomainTable(ew, c, d); err != nil {
			return err
		}
	}
	writeOneSided(ew, s, func(x string) string { return sanitize(x) })
	verdict := verdictText(s)
	if s.GotWorse {
		verdict = paint(c, ansiBold+ansiRed, verdict)
	}
	ew.printf("\n%s\n", verdict)
	return ew.err
}

func sourceName(d DiffSource, fallback string) string {
	if d.Source != "" {
		return d.Source
	}
	return fallback
}

func writeOneSided(ew *errWriter, s *DiffSet, esc func(string) string) {
	for _, x := range []struct {
		label string
		ds    []DomainSide
	}{{"Only in " + sourceName(s.Before, "BEFORE"), s.OnlyBefore}, {"Only in " + sourceName(s.After, "AFTER"), s.OnlyAfter}} {
		if len(x.ds) == 0 {
			continue
		}
		var names []string
		for _, d := range x.ds {
			names = append(names, esc(d.Domain)+" (worst "+string(d.Summary.Worst)+")")
		}
		ew.printf("\n%s (not compared): %s\n", esc(x.label), strings.Join(names, ", "))
	}
}

const (
	diffMessageWidth = 56
	diffSubjectWidth = 38
)

// wasText names BEFORE's subject of a pair matched across a changed port or
// address, without repeating the host: "(was [192.0.2.1]:40291)".
func wasText(before, after string) string {
	bh, _, ok1 := splitEndpoint(before)
	ah, _, ok2 := splitEndpoint(after)
	if ok1 && ok2 && bh == ah && bh != "" {
		return "(was " + strings.TrimSpace(strings.TrimPrefix(before, bh)) + ")"
	}
	return "(was " + before + ")"
}

// sidesText is "readiness → smoke, profile mimecast-eu", or one side when
// both are the same.
func sidesText(b, a ReportSide) string {
	bt, at := sideText(b), sideText(a)
	if bt == at {
		return bt
	}
	return bt + " → " + at
}

func writeDiffDomainTable(ew *errWriter, c bool, d *ReportDiff) error {
	ew.printf("\n%s: %s\n", paint(c, ansiBold, sanitize(d.Domain)), sanitize(sidesText(d.Before, d.After)))
	ew.printf("worst %s → %s; %s → %s\n", paint(c, statusColor[d.Before.Summary.Worst], string(d.Before.Summary.Worst)),
		paint(c, statusColor[d.After.Summary.Worst], string(d.After.Summary.Worst)), countsText(d.Before.Summary), countsText(d.After.Summary))
	ew.printf("%s\n", tallyText(d))

	var rows []FindingChange
	for _, ch := range d.Changes {
		if listed(ch) {
			rows = append(rows, ch)
		}
	}
	if len(rows) > 0 {
		var buf bytes.Buffer
		t := newTable(&buf, tw.MergeNone, nil)
		t.Header("CHANGE", "CHECK", "SUBJECT", "MESSAGE")
		for _, ch := range rows {
			label := changeLabel[ch.Change]
			if ch.Regression {
				label = "! " + label
			}
			subject := wrap(sanitize(ch.Subject), diffSubjectWidth)
			if ch.BeforeSubject != "" {
				subject += "\n" + wrap(sanitize(wasText(ch.BeforeSubject, ch.Subject)), diffSubjectWidth)
			}
			msg := ch.Message
			if ch.SuppressedAfter != nil {
				msg += " [" + suppressedText(ch.SuppressedAfter) + "]"
			} else if ch.SuppressedBefore != nil {
				msg += " [was " + suppressedText(ch.SuppressedBefore) + "]"
			}
			row := []string{
				paint(c, statusColor[changeStatus[ch.Change]], label) + "\n" + sanitize(statusArrow(ch)),
				sanitize(ch.ID), subject,
				wrap(sanitize(msg), diffMessageWidth),
			}
			if err := t.Append(row); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return fmt.Errorf("report: diff table: %w", err)
		}
		ew.printf("%s", buf.String())
	}
	if d.MX != nil {
		ew.printf("%s\n", sanitize(mxLine(d.MX)))
		for _, m := range d.MX.Added {
			ew.printf("  + %s\n", sanitize(m))
		}
		for _, m := range d.MX.Removed {
			ew.printf("  - %s\n", sanitize(m))
		}
	}
	if d.SPF != nil {
		for i, l := range spfLines(d.SPF) {
			if i > 0 {
				l = "  " + l
			}
			ew.printf("%s\n", sanitize(l))
		}
	}
	if len(d.TLS) > 0 {
		ew.printf("SMTP endpoints whose verdict changed:\n")
		var buf bytes.Buffer
		t := newTable(&buf, tw.MergeNone, nil)
		t.Header("ENDPOINT", "ROLE", "CHANGE", "VERDICT")
		for _, e := range d.TLS {
			row := []string{
				wrap(sanitize(tlsEndpointText(e)), tlsHostWidth), sanitize(e.Role),
				paint(c, statusColor[changeStatus[e.Change]], changeLabel[e.Change]),
				wrap(sanitize(tlsVerdictArrow(e)), 50),
			}
			if err := t.Append(row); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return fmt.Errorf("report: diff tls table: %w", err)
		}
		ew.printf("%s", buf.String())
	}
	if q := quietText(d); q != "" {
		ew.printf("%s\n", q)
	}
	if hasRegression(d) {
		ew.printf("! = counts as worse (exit code 1)\n")
	}
	return ew.err
}

func hasRegression(d *ReportDiff) bool {
	for _, c := range d.Changes {
		if c.Regression {
			return true
		}
	}
	return false
}

func renderDiffMarkdown(w io.Writer, s *DiffSet) error {
	ew := &errWriter{w: w}
	ew.printf("## mfcheck diff: %s → %s\n\n", mdEscape(sourceName(s.Before, "BEFORE"), " "), mdEscape(sourceName(s.After, "AFTER"), " "))
	ew.printf("**%s**\n\n_%s._\n", mdEscape(verdictText(s), " "), mdEscape(gateText(s), " "))
	if len(s.Domains) == 0 {
		ew.printf("\n_No domain is in both._\n")
	}
	cell := func(x string) string { return mdEscape(x, "<br>") }
	for _, d := range s.Domains {
		ew.printf("\n### %s\n\n", mdEscape(d.Domain, " "))
		ew.printf("%s · worst %s → %s\n\n", mdEscape(sidesText(d.Before, d.After), " "),
			badge(d.Before.Summary.Worst), badge(d.After.Summary.Worst))
		ew.printf("%s\n", mdEscape(tallyText(d), " "))
		var rows []FindingChange
		for _, ch := range d.Changes {
			if listed(ch) {
				rows = append(rows, ch)
			}
		}
		if len(rows) > 0 {
			ew.printf("\n| Change | Check | Subject | Status | Message |\n| --- | --- | --- | --- | --- |\n")
			for _, ch := range rows {
				label := changeLabel[ch.Change]
				if ch.Regression {
					label = "**" + label + "** (counts)"
				}
				subject := ch.Subject
				if ch.BeforeSubject != "" {
					subject += "\n" + wasText(ch.BeforeSubject, ch.Subject)
				}
				msg := ch.Message
				if ch.SuppressedAfter != nil {
					msg += " [" + suppressedText(ch.SuppressedAfter) + "]"
				} else if ch.SuppressedBefore != nil {
					msg += " [was " + suppressedText(ch.SuppressedBefore) + "]"
				}
				ew.printf("| %s | %s | %s | %s → %s | %s |\n", label, cellCode(ch.ID), cell(subject),
					mdStatus(ch.Before), mdStatus(ch.After), cell(msg))
			}
		}
		if d.MX != nil {
			ew.printf("\n**MX** {%s} → {%s}", mdEscape(strings.Join(d.MX.Before, ", "), " "), mdEscape(strings.Join(d.MX.After, ", "), " "))
			for _, m := range d.MX.Added {
				ew.printf("<br>added %s", inlineCode(m))
			}
			for _, m := range d.MX.Removed {
				ew.printf("<br>removed %s", inlineCode(m))
			}
			ew.printf("\n")
		}
		if d.SPF != nil {
			ew.printf("\n**SPF** lookups %d → %d (limit %d)", d.SPF.Before.Lookups, d.SPF.After.Lookups, d.SPF.After.LookupLimit)
			if d.SPF.Before.Record != d.SPF.After.Record {
				ew.printf("<br>before: %s<br>after: %s", inlineCode(orNone(d.SPF.Before.Record)), inlineCode(orNone(d.SPF.After.Record)))
			}
			ew.printf("\n")
		}
		if len(d.TLS) > 0 {
			ew.printf("\n| Endpoint | Role | Change | Verdict |\n| --- | --- | --- | --- |\n")
			for _, e := range d.TLS {
				ew.printf("| %s | %s | %s | %s |\n", cell(tlsEndpointText(e)), cell(e.Role), changeLabel[e.Change], cell(tlsVerdictArrow(e)))
			}
		}
		if q := quietText(d); q != "" {
			ew.printf("\n_%s_\n", mdEscape(q, " "))
		}
	}
	writeOneSided(ew, s, func(x string) string { return mdEscape(x, " ") })
	return ew.err
}

func mdStatus(s Status) string {
	if s == "" {
		return "-"
	}
	return badge(s)
}
