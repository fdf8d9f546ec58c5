package report

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSPFTableFitsAndIsSafe(t *testing.T) {
	out := string(render(t, FormatTable, Options{Verbose: true}, spfContoso()))
	assert.NotContains(t, out, "\x1b", "hostile records must not reach the terminal raw")
	assert.Contains(t, out, `x-mark=\x1b[2J\x1b[31mgotcha`)

	zone := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " IN TXT ") {
			// Zone-file lines are pasted whole and so never wrapped.
			zone++
			continue
		}
		assert.LessOrEqual(t, len([]rune(line)), 140, line)
	}
	assert.Equal(t, 2, zone)

	// The SPF block sits between the findings and the remediations.
	i, j, k := strings.Index(out, "│ spf.present"), strings.Index(out, "SPF tree of"), strings.Index(out, "\nRemediation:")
	assert.True(t, i < j && j < k, "findings, then SPF, then remediation")
}

func TestSPFTableColorStaysInCells(t *testing.T) {
	out := string(render(t, FormatTable, Options{Color: true}, spfContoso()))
	assert.Contains(t, out, ansiRed+spfOverLimit+ansiReset)
	assert.Contains(t, out, ansiRed+"at least 12 of 10 DNS lookups"+ansiReset)
	assert.NotContains(t, out, "\x1b[2J", "input escapes are neutralised even with Color")
	for _, line := range strings.Split(out, "\n") {
		// Every colour is reset on the line it starts on, so a border
		// drawn after a line break is never coloured.
		assert.Equal(t, strings.Count(line, "\x1b[")-strings.Count(line, ansiReset), strings.Count(line, ansiReset), line)
	}
}

func TestSPFMarkdownIsSafe(t *testing.T) {
	md := string(render(t, FormatMarkdown, Options{}, spfContoso()))
	assert.NotContains(t, md, "\x1b")
	assert.Contains(t, md, "\n### SPF\n")
	assert.Contains(t, md, "\n```\ncontoso.com. IN TXT \"v=spf1 ")

	// A backtick run in a record cannot close the code block.
	r := spfContoso()
	r.SPF.Flattened.Records[1].Strings = []string{"v=spf1 ```` -all"}
	md = string(render(t, FormatMarkdown, Options{}, r))
	assert.Contains(t, md, "\n`````\n")
}

// The SPF section does not belong to JUnit, which shows findings only.
func TestSPFJUnitUnaffected(t *testing.T) {
	with := spfContoso()
	without := spfContoso()
	without.SPF = nil
	assert.Equal(t, string(render(t, FormatJUnit, Options{}, without)), string(render(t, FormatJUnit, Options{}, with)))
	parseJUnit(t, render(t, FormatJUnit, Options{}, with))
}

func TestSPFWithoutTreeOrFindings(t *testing.T) {
	r := New("bare.example", "health")
	r.SPF = &SPF{Domain: "bare.example", Lookups: 3, LookupLimit: 10, VoidLimit: 2, Complete: true}
	out := string(render(t, FormatTable, Options{}, r))
	assert.Contains(t, out, "No findings.\n\nSPF tree of bare.example: 3 of 10 DNS lookups (worst case), 0 of 2 void lookups\n")
	assert.NotContains(t, out, "TERM")
	md := string(render(t, FormatMarkdown, Options{}, r))
	assert.Contains(t, md, "_No findings._\n\n### SPF\n\n**SPF tree of bare.example: 3 of 10 DNS lookups (worst case), 0 of 2 void lookups**\n")
	assert.NotContains(t, md, "<details>")
}

func TestSPFItems(t *testing.T) {
	terms := []SPFTerm{
		{Text: "exp=explain.%{d}"},
		{Text: "ip4:192.0.2.1"},
		{Text: "a", Cost: 1, Total: 1},
		{Text: "IP6:2001:db8::/32"},
		{Text: "ip4:192.0.2.2"},
		{Text: "-all"},
		{Text: "ip4:192.0.2.3", Note: "never evaluated: after all"},
		{Text: "x-unknown=1"},
	}
	var got []string
	for _, it := range spfItems(terms) {
		if it.term == nil {
			got = append(got, "summary "+it.summary)
		} else {
			got = append(got, it.term.Text)
		}
	}
	// The summary takes the place of the first address term; an address
	// term with a note keeps a row; exp= and unknown modifiers show only
	// in the record text.
	assert.Equal(t, []string{"summary ip4 ×2, ip6 ×1", "a", "-all", "ip4:192.0.2.3"}, got)
	assert.Empty(t, spfItems(nil))
}

func TestTermKind(t *testing.T) {
	for text, want := range map[string]string{
		"-all": "all", "all": "all", "?ALL": "all", "ip4:192.0.2.0/24": "ip4", "~ip6:2001:db8::1": "ip6",
		"redirect=_spf.example": "redirect", "a/24": "a", "mx:mx.example/24//64": "mx", "exp=x": "exp",
		"include:%{d}.example": "include",
	} {
		assert.Equal(t, want, termKind(text), text)
	}
}

func TestZoneLine(t *testing.T) {
	line, comment := zoneLine(SPFPublish{Name: "ex ample.com", Strings: []string{`v=spf1 "q" \b` + "\x1b[2Jé", "-all"}, AnswerOctets: 1})
	assert.Equal(t, `ex\ ample.com. IN TXT "v=spf1 \"q\" \\b\027[2J\195\169" "-all"`, line)
	assert.Equal(t, "; answer 1 octet", comment)

	line, comment = zoneLine(SPFPublish{Name: "contoso.com.", Strings: []string{"v=spf1 -all"}, AnswerOctets: 600})
	assert.Equal(t, `contoso.com. IN TXT "v=spf1 -all"`, line, "a trailing dot is not doubled")
	assert.Equal(t, "; answer 600 octets, over the 512 that RFC 7208 section 3.4 asks for", comment)
}

func TestTreeCell(t *testing.T) {
	// Wrapped to what the longer continuation prefix leaves (22-6), and
	// padded to the height of the row with the prefix alone.
	assert.Equal(t, "├─ abcdefghij\n│     klmnopqrst\n│     ", treeCell("├─ ", "│     ", "abcdefghij klmnopqrst", 22, 3))
	assert.Equal(t, "x", treeCell("", "", "x", 56, 1))
}

func TestSPFSchemaRejects(t *testing.T) {
	sch := compileSchema(t)
	good := render(t, FormatJSON, Options{}, spfContoso())
	require.NoError(t, sch.Validate(decode(t, good)))

	spf := func(d map[string]any) map[string]any { return d["spf"].(map[string]any) }
	rootTerm := func(d map[string]any, i int) map[string]any {
		return spf(d)["tree"].(map[string]any)["terms"].([]any)[i].(map[string]any)
	}
	tests := []struct {
		name   string
		mutate func(map[string]any)
	}{
		{"unknown spf member", func(d map[string]any) { spf(d)["extra"] = 1 }},
		{"missing tree", func(d map[string]any) { delete(spf(d), "tree") }},
		{"null tree", func(d map[string]any) { spf(d)["tree"] = nil }},
		{"lookups as string", func(d map[string]any) { spf(d)["lookups"] = "12" }},
		{"unknown term member", func(d map[string]any) { rootTerm(d, 3)["weight"] = 1 }},
		{"bad void family", func(d map[string]any) { rootTerm(d, 4)["void"] = []any{"ipv5"} }},
		{"index 0", func(d map[string]any) { rootTerm(d, 0)["index"] = 0 }},
		{"unknown member in a nested node", func(d map[string]any) {
			rootTerm(d, 5)["child"].(map[string]any)["ttl"] = 300
		}},
		{"term without cost in a nested node", func(d map[string]any) {
			delete(rootTerm(d, 5)["child"].(map[string]any)["terms"].([]any)[0].(map[string]any), "cost")
		}},
		{"record without strings", func(d map[string]any) {
			spf(d)["flattened"].(map[string]any)["records"].([]any)[0].(map[string]any)["strings"] = []any{}
		}},
		{"unknown flattened member", func(d map[string]any) { spf(d)["flattened"].(map[string]any)["ttl"] = 300 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decode(t, good)
			tt.mutate(d)
			assert.Error(t, sch.Validate(d))
		})
	}
}
