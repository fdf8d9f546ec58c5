package report

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Widths of the table format. The message column is wrapped by us, not by
// tablewriter, so the output is the same on every terminal and in goldens;
// 70 runes keeps a four-column row within about 140 columns.
const (
	messageWidth  = 70
	subjectWidth  = 40
	evidenceWidth = 120
)

func renderTable(w io.Writer, opt Options, reports []*Report) error {
	ew := &errWriter{w: w}
	for i, r := range reports {
		if i > 0 {
			ew.printf("\n")
		}
		if err := writeTableReport(ew, opt, r); err != nil {
			return err
		}
	}
	return ew.err
}

func writeTableReport(ew *errWriter, opt Options, r *Report) error {
	c := opt.Color
	statusWord := func(st Status, s string) string { return paint(c, statusColor[st], s) }

	head := "mfcheck: " + paint(c, ansiBold, sanitize(r.Domain))
	var meta []string
	if r.Mode != "" {
		meta = append(meta, "mode "+sanitize(r.Mode))
	}
	if r.Profile != "" {
		meta = append(meta, "profile "+sanitize(r.Profile))
	}
	if len(meta) > 0 {
		head += " (" + strings.Join(meta, ", ") + ")"
	}
	ew.printf("%s\n", head)
	if r.Simulation {
		ew.printf("%s\n", paint(c, ansiBold+ansiMagenta, simulationBanner(r)))
	}
	for _, n := range r.Notes {
		ew.printf("Note: %s\n", sanitize(n))
	}
	ew.printf("\n")

	if len(r.Findings) == 0 {
		ew.printf("No findings.\n")
	} else if err := findingsTable(ew, c, r.Findings); err != nil {
		return err
	}
	if r.SPF != nil {
		if err := spfTable(ew, c, r.SPF); err != nil {
			return err
		}
	}
	if len(r.TLS) > 0 {
		if err := tlsTable(ew, c, r.TLS); err != nil {
			return err
		}
	}
	if r.Trace != nil {
		if err := receivedTable(ew, r.Trace); err != nil {
			return err
		}
	}

	var rem []Finding
	for _, f := range r.Findings {
		if f.Status != StatusPass && f.Remediation != "" {
			rem = append(rem, f)
		}
	}
	if len(rem) > 0 {
		ew.printf("\nRemediation:\n")
		for _, f := range rem {
			// Not wrapped: remediations carry records and settings to be
			// copied whole; continuation lines are only indented.
			text := strings.ReplaceAll(sanitize(f.Remediation), "\n", "\n    ")
			ew.printf("  - %s %s: %s\n", statusWord(f.Status, strings.ToUpper(string(f.Status))), sanitize(findingLabel(f)), text)
		}
	}

	var ev []Finding
	for _, f := range r.Findings {
		if showEvidence(f, opt.Verbose) {
			ev = append(ev, f)
		}
	}
	if len(ev) > 0 {
		ew.printf("\nEvidence:\n")
		for _, f := range ev {
			ew.printf("  %s %s\n", statusWord(f.Status, strings.ToUpper(string(f.Status))), sanitize(findingLabel(f)))
			for _, l := range evidenceLines(f.Evidence, evidenceWidth) {
				ew.printf("      %s\n", l)
			}
		}
	}

	ew.printf("\n%s\n", summaryText(r, statusWord))

	if opt.Trace {
		ew.printf("\n")
		if err := traceTable(ew, r.DNS); err != nil {
			return err
		}
	}
	return ew.err
}

// simulationBanner is printed wherever a report from the demo lab could be
// mistaken for a real check: table, markdown and JUnit.
func simulationBanner(r *Report) string {
	return "SIMULATION: " + sanitize(r.Domain) + " is served by the mfcheck demo lab on loopback, not a real domain; these results say nothing about real mail flow."
}

// newTable returns a tablewriter (v1 API) with the layout shared by both
// tables: light box drawing, left-aligned headers taken as given (no
// auto-title-casing), and no automatic wrapping since cells are pre-wrapped.
// Rendering goes to a buffer so a tablewriter error cannot leave half a
// table on w.
func newTable(w io.Writer, merge int, align []tw.Align) *tablewriter.Table {
	cfg := tablewriter.NewConfigBuilder().
		WithHeaderAutoFormat(tw.Off).
		WithHeaderAlignment(tw.AlignLeft).
		WithRowAutoWrap(tw.WrapNone).
		Row().Merging().WithMode(merge).Build().Build().
		Row().Alignment().WithGlobal(tw.AlignLeft).WithPerColumn(align).Build().
		Build()
	return tablewriter.NewTable(w, tablewriter.WithConfig(cfg))
}

// findingsTable renders STATUS | CHECK | SUBJECT | MESSAGE. When there is
// more than one area, each area starts with a full-width row naming it: the
// row repeats the name in all four cells and horizontal merging joins them.
// Finding rows never have two equal non-empty neighbouring cells in practice
// (a status word, a dotted ID, a subject, a sentence), so merging does not
// touch them.
func findingsTable(w io.Writer, c bool, fs []Finding) error {
	var buf bytes.Buffer
	t := newTable(&buf, tw.MergeHorizontal, nil)
	t.Header("STATUS", "CHECK", "SUBJECT", "MESSAGE")

	areas := 0
	for i, f := range fs {
		if i == 0 || fs[i-1].Area() != f.Area() {
			areas++
		}
	}
	for i, f := range fs {
		if areas > 1 && (i == 0 || fs[i-1].Area() != f.Area()) {
			a := paint(c, ansiBold, sanitize(f.Area()))
			if err := t.Append([]string{a, a, a, a}); err != nil {
				return err
			}
		}
		row := []string{
			paint(c, statusColor[f.Status], strings.ToUpper(sanitize(string(f.Status)))),
			sanitize(f.ID),
			wrap(sanitize(f.Subject), subjectWidth),
			wrap(sanitize(findingMessage(f)), messageWidth),
		}
		if err := t.Append(row); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("report: table: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// traceTable renders the DNS query log for --trace.
func traceTable(w io.Writer, d *DNSStats) error {
	if d == nil || len(d.Log) == 0 {
		_, err := io.WriteString(w, "DNS query log: no queries recorded.\n")
		return err
	}
	fmt.Fprintf(w, "DNS query log: %s, %d distinct, %s\n", plural(d.Queries, "query", "queries"), d.Distinct, plural(d.Errors, "error", "errors"))

	var buf bytes.Buffer
	right := []tw.Align{tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignLeft}
	t := newTable(&buf, tw.MergeNone, right)
	t.Header("NAME", "TYPE", "SERVER", "PROTO", "RCODE", "RTT MS", "ANSWERS", "ERROR")
	for _, q := range d.Log {
		row := []string{
			sanitize(q.Name), sanitize(q.Type), sanitize(q.Server), sanitize(q.Proto), sanitize(q.Rcode),
			strconv.FormatFloat(q.RTTMS, 'f', 1, 64), strconv.Itoa(q.Answers),
			wrap(sanitize(q.Error), 50),
		}
		if err := t.Append(row); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("report: trace table: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
