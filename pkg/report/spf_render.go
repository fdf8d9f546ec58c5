package report

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Rendering of the SPF section (spf.go) for the table and Markdown formats.
// JSON needs nothing here (struct tags) and JUnit shows findings only.

// Widths of the SPF table: a TERM column of 56 runes (tree prefix included,
// enough for include:spfb.protection.outlook.com three includes down) and
// a DETAIL column of 60 keep TERM | COST | TOTAL | DETAIL within 140
// columns. spfLineWidth bounds the free-text lines around the table.
const (
	spfTermWidth   = 56
	spfDetailWidth = 60
	spfLineWidth   = 130
)

// Phrases shared by the table and Markdown renderers.
const (
	spfOverLimit  = "over the limit: permerror here"
	spfIncomplete = "Incomplete, so the counts are lower bounds:"
	spfUnknown    = "Depends on the client or sender, so not evaluated in advance:"
)

// spfLegend explains the two numbers; cost and total are the column names
// of the table and the words of the Markdown list.
func spfLegend(cost, total string) string {
	return cost + ": the lookups a term adds, everything below it included. " + total + ": the running count when no term matches (the worst case)."
}

// spfHeadline is the sentence that leads the section, e.g. "SPF tree of
// contoso.com: 12 of 10 DNS lookups (worst case), 1 of 2 void lookups".
// When the tree is incomplete the counts are said to be "at least", next to
// the numbers, so nobody reads a lower bound as the answer. over decorates a
// count that exceeds its limit.
func spfHeadline(s *SPF, over func(string) string) string {
	atLeast := ""
	if !s.Complete {
		atLeast = "at least "
	}
	count := func(n, limit int, what string) string {
		t := fmt.Sprintf("%s%d of %d %s", atLeast, n, limit, what)
		if n > limit {
			return over(t)
		}
		return t
	}
	return fmt.Sprintf("SPF tree of %s: %s (worst case), %s", sanitize(s.Domain),
		count(s.Lookups, s.LookupLimit, "DNS lookups"), count(s.VoidLookups, s.VoidLimit, "void lookups"))
}

// spfItem is one line below a node: a term worth a row of its own, or the
// summary of the node's other ip4/ip6 terms (term nil).
type spfItem struct {
	term    *SPFTerm
	summary string
}

// spfItems picks the terms a reader needs to follow the arithmetic: those
// that cost lookups or lead to a record, the all and redirect that end the
// record, and those with something to say (a note, a void lookup, the
// limit). The ip4/ip6 terms left over are summed up in one row at the place
// of the first, so a vendor record with fifty ranges takes one row; the
// node's record text still shows every term. Other cost-free terms (exp=,
// unknown modifiers) are left to the record text as well.
func spfItems(terms []SPFTerm) []spfItem {
	var items []spfItem
	at := -1 // index in items of the summary row, once there is one
	counts := map[string]int{}
	for i := range terms {
		t := &terms[i]
		kind := termKind(t.Text)
		switch {
		case t.Cost > 0 || t.Child != nil || kind == "all" || kind == "redirect" ||
			t.Note != "" || len(t.Void) > 0 || t.OverLimit:
			items = append(items, spfItem{term: t})
		case kind == "ip4" || kind == "ip6":
			if at < 0 {
				at = len(items)
				items = append(items, spfItem{})
			}
			counts[kind]++
		}
	}
	if at >= 0 {
		var parts []string
		for _, k := range []string{"ip4", "ip6"} {
			if counts[k] > 0 {
				parts = append(parts, k+" ×"+strconv.Itoa(counts[k]))
			}
		}
		items[at].summary = strings.Join(parts, ", ")
	}
	return items
}

// termKind is the lower-case mechanism or modifier name of an SPF term:
// "all" for "-all", "ip4" for "ip4:192.0.2.0/24", "redirect" for
// "redirect=example.com", "a" for "a/24".
func termKind(text string) string {
	s := strings.TrimLeft(text, "+-~?")
	if i := strings.IndexAny(s, ":/="); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(s)
}

// voidText says which clients see the term's lookup as void.
func voidText(families []string) string {
	if len(families) == 0 {
		return ""
	}
	return "void for " + sanitize(strings.Join(families, " and ")) + " clients"
}

// treeCell puts text after a tree prefix, first on its first line and rest
// on the others, wrapped so that every line fits width, and padded to at
// least height lines: the tree's vertical lines then run on past a wrapped
// term and past a record that takes several lines in DETAIL.
func treeCell(first, rest, text string, width, height int) string {
	lines := strings.Split(wrap(sanitize(text), max(width-len([]rune(rest)), 16)), "\n")
	for len(lines) < height {
		lines = append(lines, "")
	}
	for i := range lines {
		if i == 0 {
			lines[i] = first + lines[i]
		} else {
			lines[i] = rest + lines[i]
		}
	}
	return strings.Join(lines, "\n")
}

// paintLines paints every line of s on its own, so a colour never spans the
// line breaks where tablewriter draws the borders.
func paintLines(on bool, sgr, s string) string {
	if !on {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = paint(on, sgr, l)
	}
	return strings.Join(lines, "\n")
}

// hanging wraps text to width and indents its continuation lines by indent.
func hanging(text, indent string, width int) string {
	return strings.ReplaceAll(wrap(sanitize(text), width), "\n", "\n"+indent)
}

// spfTableRows collects the rows of the SPF tree table.
type spfTableRows struct {
	color bool
	limit int
	rows  [][]string
}

// node adds the row of n, its TERM cell starting with first and continued
// with rest, then one row per item one level below, each include or
// redirect followed by the record it leads to.
func (b *spfTableRows) node(n *SPFNode, first, rest string) {
	items := spfItems(n.Terms)
	bar := "   "
	if len(items) > 0 {
		bar = "│  "
	}
	var detail []string
	if n.Record != "" {
		detail = append(detail, wrap(sanitize(n.Record), spfDetailWidth))
	}
	if n.Error != "" {
		detail = append(detail, paintLines(b.color, ansiBold, wrap("error: "+sanitize(n.Error), spfDetailWidth)))
	}
	b.add(first, rest+bar, n.Domain, "", "", strings.Join(detail, "\n"))

	for i, it := range items {
		branch, next := "├─ ", "│  "
		if i == len(items)-1 {
			branch, next = "└─ ", "   "
		}
		if it.term == nil {
			// No TOTAL: the summed-up terms may be spread through the
			// record, and they add nothing to the count anyway.
			b.add(rest+branch, rest+next+"   ", it.summary, "0", "", "")
			continue
		}
		t := it.term
		childBar := "   "
		if t.Child != nil {
			childBar = "│  "
		}
		total := strconv.Itoa(t.Total)
		if t.Total > b.limit {
			total = paint(b.color, ansiRed, total)
		}
		b.add(rest+branch, rest+next+childBar, t.Text, strconv.Itoa(t.Cost), total, b.termDetail(t))
		if t.Child != nil {
			b.node(t.Child, rest+next+"└─ ", rest+next+"   ")
		}
	}
}

// add appends a row whose TERM cell is text in the tree (see treeCell).
func (b *spfTableRows) add(first, rest, text, cost, total, detail string) {
	height := strings.Count(detail, "\n") + 1
	b.rows = append(b.rows, []string{treeCell(first, rest, text, spfTermWidth, height), cost, total, detail})
}

// termDetail is the DETAIL cell of a term: the limit marker, the void
// families and the note, each on lines of its own so each can have its
// colour.
func (b *spfTableRows) termDetail(t *SPFTerm) string {
	var lines []string
	if t.OverLimit {
		lines = append(lines, paint(b.color, ansiRed, spfOverLimit))
	}
	if v := voidText(t.Void); v != "" {
		lines = append(lines, paintLines(b.color, ansiYellow, wrap(v, spfDetailWidth)))
	}
	if t.Note != "" {
		lines = append(lines, wrap(sanitize(t.Note), spfDetailWidth))
	}
	return strings.Join(lines, "\n")
}

// spfTable writes the SPF block of the table format: the headline, what
// is incomplete or unknown, the tree as TERM | COST | TOTAL | DETAIL, and
// the flattened records.
func spfTable(ew *errWriter, c bool, s *SPF) error {
	ew.printf("\n%s\n", spfHeadline(s, func(t string) string { return paint(c, ansiRed, t) }))
	spfTextList(ew, spfIncomplete, s.Incomplete)
	spfTextList(ew, spfUnknown, s.Unknown)

	if s.Tree != nil {
		b := &spfTableRows{color: c, limit: s.LookupLimit}
		b.node(s.Tree, "", "")

		var buf bytes.Buffer
		t := newTable(&buf, tw.MergeNone, []tw.Align{tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignLeft})
		// The tree prefixes start with spaces below a last branch; the
		// default trimming would shift those lines left.
		t.Configure(func(cfg *tablewriter.Config) { cfg.Behavior.TrimSpace = tw.Off })
		t.Header("TERM", "COST", "TOTAL", "DETAIL")
		for _, row := range b.rows {
			if err := t.Append(row); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return fmt.Errorf("report: SPF table: %w", err)
		}
		ew.Write(buf.Bytes()) // a failure is kept in ew.err
		ew.printf("%s\n", hanging(spfLegend("COST", "TOTAL"), "", spfLineWidth))
	}

	if f := s.Flattened; f != nil {
		ew.printf("\nFlattened SPF (%s, at most %d):\n", plural(f.Lookups, "lookup", "lookups"), f.MaxLookups)
		for _, p := range f.Records {
			// Neither wrapped nor indented: each line is pasted into a
			// zone file as it is, and there a leading space would mean
			// "same owner as the record before".
			line, comment := zoneLine(p)
			if p.AnswerOctets > maxAnswerOctets {
				comment = paint(c, ansiYellow, comment)
			}
			ew.printf("%s %s\n", line, comment)
		}
		spfTermList(ew, "Kept live", f.Kept)
		spfTermList(ew, "Replaced", f.Replaced)
		spfTermList(ew, "Added", f.Added)
		for _, w := range f.Warnings {
			ew.printf("%s\n", hanging("Warning: "+w, "  ", spfLineWidth))
		}
	}
	return ew.err
}

// spfTextList writes a label and one "  - item" line per item.
func spfTextList(ew *errWriter, label string, items []string) {
	if len(items) == 0 {
		return
	}
	ew.printf("%s\n", label)
	for _, it := range items {
		ew.printf("  - %s\n", hanging(it, "    ", spfLineWidth))
	}
}

// spfTermList writes "Label: term, term" wrapped, for Kept and Replaced.
func spfTermList(ew *errWriter, label string, terms []string) {
	if len(terms) > 0 {
		ew.printf("%s\n", hanging(label+": "+strings.Join(terms, ", "), "  ", spfLineWidth))
	}
}

// maxAnswerOctets is the answer size RFC 7208 §3.4 asks a TXT RRset to stay
// within, so it fits a UDP answer without EDNS.
const maxAnswerOctets = 512

// zoneLine renders a record to publish as a zone-file line, e.g.
// `contoso.com. IN TXT "v=spf1 ip4:192.0.2.0/24 " "-all"`, and its answer
// size as a zone-file comment, so the whole printed line can be pasted.
func zoneLine(p SPFPublish) (line, comment string) {
	name := zoneEscape(p.Name, ` ;()"\`)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	var b strings.Builder
	b.WriteString(name + " IN TXT")
	for _, s := range p.Strings {
		b.WriteString(` "` + zoneEscape(s, `"\`) + `"`)
	}
	comment = "; answer " + plural(p.AnswerOctets, "octet", "octets")
	if p.AnswerOctets > maxAnswerOctets {
		// ASCII only: the comment is pasted into zone files too.
		comment += fmt.Sprintf(", over the %d that RFC 7208 section 3.4 asks for", maxAnswerOctets)
	}
	return b.String(), comment
}

// zoneEscape writes s as zone-file text (RFC 1035 §5.1): the bytes in
// special get a backslash, and every byte outside printable ASCII is
// written \DDD. That is exact for a zone file and, being pure printable
// ASCII, also what sanitize would make safe for a terminal.
func zoneEscape(s, special string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\%03d`, c)
		case strings.IndexByte(special, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// writeMarkdownSPF writes the "### SPF" part: the headline, the tree as a
// nested list folded into <details> (it is evidence, and long for vendor
// records), and the flattened records in a code block ready to paste.
func writeMarkdownSPF(ew *errWriter, s *SPF) {
	ew.printf("\n### SPF\n\n**%s**\n", mdEscape(spfHeadline(s, func(t string) string { return t }), " "))
	mdList := func(label string, items []string) {
		if len(items) == 0 {
			return
		}
		ew.printf("\n%s\n\n", mdEscape(label, " "))
		for _, it := range items {
			ew.printf("- %s\n", mdEscape(it, " "))
		}
	}
	mdList(spfIncomplete, s.Incomplete)
	mdList(spfUnknown, s.Unknown)

	if s.Tree != nil {
		ew.printf("\n<details>\n<summary>Lookup tree</summary>\n\n")
		markdownSPFNode(ew, s.Tree, "")
		ew.printf("\n%s\n\n</details>\n", mdEscape(spfLegend("Cost", "Total"), " "))
	}

	if f := s.Flattened; f != nil {
		var body strings.Builder
		for _, p := range f.Records {
			line, comment := zoneLine(p)
			body.WriteString(line + " " + comment + "\n")
		}
		ew.printf("\n**Flattened SPF** (%s, at most %d):\n\n%s", plural(f.Lookups, "lookup", "lookups"), f.MaxLookups, fenced("", body.String()))
		codes := func(terms []string) string {
			cs := make([]string, len(terms))
			for i, t := range terms {
				cs[i] = inlineCode(t)
			}
			return strings.Join(cs, ", ")
		}
		if len(f.Kept) > 0 || len(f.Replaced) > 0 || len(f.Added) > 0 || len(f.Warnings) > 0 {
			ew.printf("\n")
		}
		for _, l := range []struct {
			label string
			terms []string
		}{{"Kept live", f.Kept}, {"Replaced", f.Replaced}, {"Added", f.Added}} {
			if len(l.terms) > 0 {
				ew.printf("- %s: %s\n", l.label, codes(l.terms))
			}
		}
		for _, w := range f.Warnings {
			ew.printf("- ⚠️ Warning: %s\n", mdEscape(w, " "))
		}
	}
}

// markdownSPFNode writes a node as a list item and its items as a list
// nested below it; indent is the node's own indentation.
func markdownSPFNode(ew *errWriter, n *SPFNode, indent string) {
	ew.printf("%s- **%s**", indent, mdEscape(n.Domain, " "))
	if n.Record != "" {
		ew.printf(": %s", inlineCode(n.Record))
	}
	if n.Error != "" {
		ew.printf(" — error: %s", mdEscape(n.Error, " "))
	}
	ew.printf("\n")
	sub := indent + "  "
	for _, it := range spfItems(n.Terms) {
		if it.term == nil {
			ew.printf("%s- %s — cost 0\n", sub, it.summary)
			continue
		}
		t := it.term
		ew.printf("%s- %s — cost %d, total %d", sub, inlineCode(t.Text), t.Cost, t.Total)
		if t.OverLimit {
			ew.printf(" — **%s**", spfOverLimit)
		}
		if v := voidText(t.Void); v != "" {
			ew.printf(" — %s", mdEscape(v, " "))
		}
		if t.Note != "" {
			ew.printf(" — %s", mdEscape(t.Note, " "))
		}
		ew.printf("\n")
		if t.Child != nil {
			markdownSPFNode(ew, t.Child, sub+"  ")
		}
	}
}
