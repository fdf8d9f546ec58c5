package report

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden from the current output")

func TestMain(m *testing.M) {
	// tablewriter measures East Asian "ambiguous" characters (box drawing,
	// "…") by the locale it detects at init. Pin narrow widths so the
	// goldens do not depend on the LANG of whoever runs the tests.
	twwidth.SetEastAsian(false)
	os.Exit(m.Run())
}

func render(t *testing.T, f Format, opt Options, reports ...*Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Render(&buf, f, opt, reports...))
	return buf.Bytes()
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./pkg/report/ -update")
	assert.Equal(t, string(want), string(got), "output differs from %s; if the change is intended, run go test ./pkg/report/ -update and review the diff", path)
}

func TestGolden(t *testing.T) {
	tests := []struct {
		file    string
		format  Format
		opt     Options
		reports func() []*Report
	}{
		{"table.txt", FormatTable, Options{}, func() []*Report { return []*Report{contoso()} }},
		{"table_color_trace.txt", FormatTable, Options{Color: true, Trace: true}, func() []*Report { return []*Report{contoso()} }},
		{"table_multi_verbose_trace.txt", FormatTable, Options{Verbose: true, Trace: true}, func() []*Report { return []*Report{lab(), contoso()} }},
		{"table_simulation_color.txt", FormatTable, Options{Color: true}, func() []*Report { return []*Report{lab()} }},
		{"report.json", FormatJSON, Options{}, func() []*Report { return []*Report{contoso()} }},
		{"reports.jsonl", FormatJSON, Options{}, func() []*Report { return []*Report{contoso(), lab()} }},
		{"junit.xml", FormatJUnit, Options{}, func() []*Report { return []*Report{contoso(), lab()} }},
		{"junit_failon_warn.xml", FormatJUnit, Options{FailOn: StatusWarn}, func() []*Report { return []*Report{contoso()} }},
		{"report.md", FormatMarkdown, Options{}, func() []*Report { return []*Report{contoso(), lab()} }},
		{"table_spf.txt", FormatTable, Options{}, func() []*Report { return []*Report{spfContoso()} }},
		{"table_spf_color.txt", FormatTable, Options{Color: true}, func() []*Report { return []*Report{spfContoso()} }},
		{"report_spf.json", FormatJSON, Options{}, func() []*Report { return []*Report{spfContoso()} }},
		{"report_spf.md", FormatMarkdown, Options{}, func() []*Report { return []*Report{spfContoso()} }},
		{"table_tls.txt", FormatTable, Options{}, func() []*Report { return []*Report{tlsContoso()} }},
		{"report_tls.json", FormatJSON, Options{}, func() []*Report { return []*Report{tlsContoso()} }},
		{"report_tls.md", FormatMarkdown, Options{}, func() []*Report { return []*Report{tlsContoso()} }},
		{"table_trace.txt", FormatTable, Options{}, func() []*Report { return []*Report{traceContoso()} }},
		{"report_trace.json", FormatJSON, Options{}, func() []*Report { return []*Report{traceContoso()} }},
		{"report_trace.md", FormatMarkdown, Options{}, func() []*Report { return []*Report{traceContoso()} }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			golden(t, tt.file, render(t, tt.format, tt.opt, tt.reports()...))
		})
	}
}

func TestTableColorOnlyWhenAsked(t *testing.T) {
	r := contoso()
	r.Add(Finding{ID: "send.outbound", Status: StatusFail, Subject: "x", Message: "banner was \x1b[2J\x1b[31mred", Evidence: map[string]any{"banner": "\x1b]0;title\x07"}})

	plain := string(render(t, FormatTable, Options{Trace: true, Verbose: true}, r))
	assert.NotContains(t, plain, "\x1b", "no escape byte at all without Color, not even from hostile input")
	assert.Contains(t, plain, `banner was \x1b[2J\x1b[31mred`)
	assert.Contains(t, plain, "1 error (could not check)")

	colored := string(render(t, FormatTable, Options{Color: true}, r))
	assert.Contains(t, colored, ansiRed+"FAIL"+ansiReset)
	assert.Contains(t, colored, ansiMagenta+"ERROR"+ansiReset)
	assert.NotContains(t, colored, "\x1b[2J", "input escapes are neutralised even with Color")

	md := string(render(t, FormatMarkdown, Options{}, r))
	assert.NotContains(t, md, "\x1b")
}

func TestTableNoFindings(t *testing.T) {
	r := New("empty.example", "health")
	r.StartedAt = fixedStart
	out := string(render(t, FormatTable, Options{Trace: true}, r))
	assert.Contains(t, out, "No findings.")
	assert.Contains(t, out, "no findings — done in 0 ms")
	assert.Contains(t, out, "DNS query log: no queries recorded.")
}

func TestTableWrapsLongMessages(t *testing.T) {
	r := New("d.example", "m")
	r.Add(Finding{ID: "spf.record", Status: StatusWarn, Subject: "d.example", Message: strings.Repeat("word ", 60) + strings.Repeat("y", 150)})
	out := string(render(t, FormatTable, Options{}, r))
	for _, line := range strings.Split(out, "\n") {
		// 4 columns: status, id, subject and a message of at most 70
		// runes plus borders and padding stay well under 140.
		assert.LessOrEqual(t, len([]rune(line)), 140, line)
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  string
	}{
		{"", 10, ""},
		{"short", 10, "short"},
		{"one two three", 7, "one two\nthree"},
		{"abcdefghij", 4, "abcd\nefgh\nij"},
		{"keep\nbreaks  and   spaces", 20, "keep\nbreaks and spaces"},
		{"héllo wörld", 5, "héllo\nwörld"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, wrap(tt.in, tt.width), "%q", tt.in)
	}
}

func TestEvidenceLines(t *testing.T) {
	got := evidenceLines(map[string]any{
		"b":   []string{"x", "y"},
		"a":   "plain <text> & more",
		"c":   map[string]any{"z": 1, "y": map[string]any{"k": true}},
		"ml":  "line1\nline2",
		"nil": nil,
		"big": strings.Repeat("z", 50),
	}, 20)
	assert.Equal(t, []string{
		"a: plain <text> & more",
		`b: ["x","y"]`,
		"big: zzzzzzzzzzzzzzzzzzz…",
		`c: {"y":{"k":true},"z"…`,
		`ml: "line1\nline2"`,
		"nil: null",
	}, got)
}

func TestMarkdownEscape(t *testing.T) {
	assert.Equal(t, `a \| b<br>c \<d\> \~all \*x\* \_y\_ \[l\](u) \&amp; \#1`, mdEscape("a | b\nc <d> ~all *x* _y_ [l](u) &amp; #1", "<br>"))
	assert.Equal(t, `\- item`, mdEscape("- item", " "))
	assert.Equal(t, `12\. x`, mdEscape("12. x", " "))
	assert.Equal(t, "`mx.a`", inlineCode("mx.a"))
	assert.Equal(t, "``a`b``", inlineCode("a`b"))
	assert.Equal(t, "`` `x` ``", inlineCode("`x`"))
	assert.Equal(t, "```json\n{\n  \"k\": \"``\"\n}\n```\n", fencedJSON(map[string]any{"k": "``"}))
	assert.Equal(t, "````json\n{\n  \"k\": \"```\"\n}\n````\n", fencedJSON(map[string]any{"k": "```"}))

	// Every table row of the golden report has exactly five pipes that
	// are not escaped: the message's pipes and newlines must not split it.
	md := string(render(t, FormatMarkdown, Options{}, contoso()))
	rows := 0
	sc := bufio.NewScanner(strings.NewReader(md))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		rows++
		assert.Equal(t, 5, strings.Count(line, "|")-strings.Count(line, `\|`), line)
	}
	assert.Equal(t, 2+len(contoso().Findings), rows)
}

// junitDoc mirrors the JUnit XML independently of the writer's types, so the
// test checks the document and not our own struct tags.
type junitDoc struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Time     string `xml:"time,attr"`
		Cases    []struct {
			Classname string `xml:"classname,attr"`
			Name      string `xml:"name,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
			} `xml:"error"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
		SystemOut string `xml:"system-out"`
	} `xml:"testsuite"`
}

func parseJUnit(t *testing.T, b []byte) junitDoc {
	t.Helper()
	var doc junitDoc
	require.NoError(t, xml.Unmarshal(b, &doc))
	return doc
}

func TestJUnitParsesBack(t *testing.T) {
	c, l := contoso(), lab()
	doc := parseJUnit(t, render(t, FormatJUnit, Options{}, c, l))

	require.Len(t, doc.Suites, 2)
	assert.Equal(t, len(c.Findings)+len(l.Findings), doc.Tests)
	assert.Equal(t, 3, doc.Failures)
	assert.Equal(t, 2, doc.Errors)

	s := doc.Suites[0]
	assert.Equal(t, "contoso.com", s.Name)
	assert.Equal(t, "0.043", s.Time)
	assert.Equal(t, len(c.Findings), s.Tests)
	require.Len(t, s.Cases, s.Tests)
	failures, errors := 0, 0
	for _, tc := range s.Cases {
		assert.True(t, strings.HasPrefix(tc.Classname, "mfcheck."), tc.Classname)
		if tc.Failure != nil {
			failures++
			assert.Equal(t, "fail", tc.Failure.Type)
		}
		if tc.Error != nil {
			errors++
			assert.Equal(t, "error", tc.Error.Type)
		}
	}
	assert.Equal(t, 3, s.Failures)
	assert.Equal(t, failures, s.Failures)
	assert.Equal(t, 1, s.Errors)
	assert.Equal(t, errors, s.Errors)
	assert.Equal(t, 0, s.Skipped)

	// The hostile message survives the XML round trip unchanged.
	var send *string
	for i, tc := range s.Cases {
		if tc.Name == "send.inbound probe@contoso.com" {
			require.NotNil(t, tc.Failure)
			assert.Equal(t, "mfcheck.send", tc.Classname)
			send = &s.Cases[i].Failure.Message
		}
	}
	require.NotNil(t, send)
	assert.Equal(t, "Test message rejected: 550 5.7.1 <probe@contoso.com> | \"relay\" denied & logged\nsecond line: see <https://status.example/?a=1&b=2> ~all", *send)

	assert.Contains(t, doc.Suites[1].SystemOut, "SIMULATION")
	assert.Contains(t, s.Cases[0].Failure.Body, "\nRemediation: Publish MX 10", "body keeps its line breaks")

	// Text XML cannot carry, and a CDATA terminator, still give a
	// well-formed document.
	h := New("h.example", "m")
	h.Add(Finding{ID: "send.inbound", Status: StatusFail, Message: "a]]>b\x00c\x1b\uFFFE", Remediation: "]]>", Evidence: map[string]any{"x": "]]>\x07"}},
		Finding{ID: "send.outbound", Status: StatusPass, Message: "ok]]>\x01"})
	hd := parseJUnit(t, render(t, FormatJUnit, Options{}, h))
	require.Len(t, hd.Suites, 1)
	require.Len(t, hd.Suites[0].Cases, 2)
	assert.Contains(t, hd.Suites[0].Cases[0].Failure.Body, `a]]>b\x00c\x1b`)
	assert.Contains(t, hd.Suites[0].Cases[1].SystemOut, `ok]]>\x01`)

	// With --fail-on warn the two warnings become failures too; info and
	// pass still pass, and errors stay errors.
	doc = parseJUnit(t, render(t, FormatJUnit, Options{FailOn: StatusWarn}, c))
	assert.Equal(t, 5, doc.Failures)
	assert.Equal(t, 1, doc.Errors)
}

func TestJSONShape(t *testing.T) {
	one := render(t, FormatJSON, Options{}, contoso())
	assert.True(t, bytes.HasPrefix(one, []byte("{\n  \"schema\": ")), "indented with two spaces")
	assert.True(t, bytes.HasSuffix(one, []byte("}\n")))
	assert.Equal(t, 1, bytes.Count(one, []byte("\n}\n")))

	lines := render(t, FormatJSON, Options{}, contoso(), lab())
	assert.Len(t, strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n"), 2, "JSON Lines: one compact document per line")

	var stream bytes.Buffer
	require.NoError(t, WriteJSONLine(&stream, contoso()))
	require.NoError(t, WriteJSONLine(&stream, lab()))
	assert.Equal(t, string(lines), stream.String(), "streaming writes the same lines as Render")
}

// schemaURL is the schema's $id; registering the file under it means the
// compiler never tries to fetch anything.
const schemaURL = "https://mfcheck.dev/schema/report/v1.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "report.schema.json"))
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat() // date-time is checked, not just annotated
	require.NoError(t, c.AddResource(schemaURL, doc))
	sch, err := c.Compile(schemaURL)
	require.NoError(t, err)
	return sch
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return v.(map[string]any)
}

func TestJSONMatchesSchema(t *testing.T) {
	sch := compileSchema(t)

	empty := New("empty.example", "health")
	minimal := &Report{Domain: "bare.example"} // no New: zero values still encode valid
	minimal.Schema = Schema
	docs := [][]byte{
		render(t, FormatJSON, Options{}, contoso()),
		render(t, FormatJSON, Options{}, lab()),
		render(t, FormatJSON, Options{}, empty),
		render(t, FormatJSON, Options{}, minimal),
		render(t, FormatJSON, Options{}, spfContoso()),
		render(t, FormatJSON, Options{}, tlsContoso()),
		render(t, FormatJSON, Options{}, traceContoso()),
	}
	for _, line := range strings.Split(strings.TrimSpace(string(render(t, FormatJSON, Options{}, contoso(), lab()))), "\n") {
		docs = append(docs, []byte(line))
	}
	for i, b := range docs {
		assert.NoError(t, sch.Validate(decode(t, b)), "document %d", i)
	}
}

func TestSchemaRejectsBadReports(t *testing.T) {
	sch := compileSchema(t)
	good := render(t, FormatJSON, Options{}, contoso())
	require.NoError(t, sch.Validate(decode(t, good)))

	finding0 := func(d map[string]any) map[string]any { return d["findings"].([]any)[0].(map[string]any) }
	tests := []struct {
		name   string
		mutate func(map[string]any)
	}{
		{"bad status", func(d map[string]any) { finding0(d)["status"] = "critical" }},
		{"status as number", func(d map[string]any) { finding0(d)["status"] = 3 }},
		{"undotted id", func(d map[string]any) { finding0(d)["id"] = "mxpresent" }},
		{"upper-case id", func(d map[string]any) { finding0(d)["id"] = "MX.present" }},
		{"missing message", func(d map[string]any) { delete(finding0(d), "message") }},
		{"evidence not an object", func(d map[string]any) { finding0(d)["evidence"] = "text" }},
		{"unknown finding member", func(d map[string]any) { finding0(d)["severity"] = "high" }},
		{"missing summary", func(d map[string]any) { delete(d, "summary") }},
		{"worst is error", func(d map[string]any) { d["summary"].(map[string]any)["worst"] = "error" }},
		{"counts without error", func(d map[string]any) {
			delete(d["summary"].(map[string]any)["counts"].(map[string]any), "error")
		}},
		{"wrong schema", func(d map[string]any) { d["schema"] = "mfcheck.report/v2" }},
		{"bad started_at", func(d map[string]any) { d["started_at"] = "yesterday" }},
		{"negative duration", func(d map[string]any) { d["duration_ms"] = -1 }},
		{"unknown top-level member", func(d map[string]any) { d["extra"] = true }},
		{"dns query without rcode", func(d map[string]any) {
			delete(d["dns"].(map[string]any)["log"].([]any)[0].(map[string]any), "rcode")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decode(t, good)
			tt.mutate(d)
			assert.Error(t, sch.Validate(d))
		})
	}
}
