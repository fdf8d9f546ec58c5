package spf

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// suiteStrings returns every TXT/SPF string of the conformance suites'
// zone data (records and explanations), to seed the fuzzers.
func suiteStrings(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, s := range conformanceSuites {
		f, err := os.Open(filepath.Join("..", "..", "testdata", "spf", s.file))
		if err != nil {
			tb.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var doc struct {
				Zonedata map[string][]any `yaml:"zonedata"`
			}
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				tb.Fatal(err)
			}
			for _, entries := range doc.Zonedata {
				for _, e := range entries {
					m, ok := e.(map[string]any)
					if !ok {
						continue
					}
					for typ, v := range m {
						if typ != "TXT" && typ != "SPF" {
							continue
						}
						switch v := v.(type) {
						case string:
							out = append(out, rawBytes(v))
						case []any:
							var b strings.Builder
							for _, x := range v {
								if s, ok := x.(string); ok {
									b.WriteString(rawBytes(s))
								}
							}
							out = append(out, b.String())
						}
					}
				}
			}
		}
		f.Close()
	}
	return out
}

// FuzzParse: no record makes Parse panic, and a record that parses comes
// back with the same terms after Record.String and a second Parse.
func FuzzParse(f *testing.F) {
	for _, s := range suiteStrings(f) {
		f.Add(s)
	}
	for _, s := range []string{
		"v=spf1 a:foo.example.com/24//64 ~mx//0 ?ip4:192.0.2.0/24 ip6:2001:db8::/32 ptr:%{d} exists:%{ir}.%{l1r-}.x.%{d2} include:_spf.example.com -all",
		"v=spf1 redirect=%{d}.d.spf.example.com. exp=%{d}. moo=%{c}%% ",
		"V=SPF1 +A -MX ~PTR ?ALL",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, record string) {
		rec, err := Parse(record)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, not *SyntaxError: %v", err, err)
			}
			if se.Term > 0 && record[se.Offset:se.Offset+len(se.Text)] != se.Text {
				t.Fatalf("offset %d does not locate %q in %q", se.Offset, se.Text, record)
			}
			return
		}
		for _, tm := range rec.Terms {
			if record[tm.Offset:tm.Offset+len(tm.Text)] != tm.Text {
				t.Fatalf("term %d: offset %d does not locate %q", tm.Index, tm.Offset, tm.Text)
			}
		}
		again, err := Parse(rec.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", rec.String(), record, err)
		}
		if len(again.Terms) != len(rec.Terms) {
			t.Fatalf("%q: %d terms, then %d", record, len(rec.Terms), len(again.Terms))
		}
		for i := range rec.Terms {
			a, b := rec.Terms[i], again.Terms[i]
			if a.Index != b.Index || !reflect.DeepEqual(a.Mechanism, b.Mechanism) || !reflect.DeepEqual(a.Modifier, b.Modifier) {
				t.Fatalf("term %d changed: %q became %q", i+1, a.Text, b.Text)
			}
		}
		if (rec.Redirect == nil) != (again.Redirect == nil) || (rec.Exp == nil) != (again.Exp == nil) {
			t.Fatalf("%q: redirect/exp changed", record)
		}
		if again.String() != rec.String() {
			t.Fatalf("canonical form is not stable: %q then %q", rec.String(), again.String())
		}
	})
}

// FuzzMacroExpand: no macro-string makes parsing or expansion panic, and
// the expansion is bounded by the input length times the longest value
// (URL-escaped); expanded domain names are truncated to 253 characters.
func FuzzMacroExpand(f *testing.F) {
	for _, s := range suiteStrings(f) {
		f.Add(s)
	}
	for _, s := range []string{
		"%{ir}.%{v}._spf.%{d2}", "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "%{S}%{L}%{O}%{D}%{I}%{P}%{V}%{H}%{C}%{R}%{T}",
		"%{d128r.-+,/_=}", "%{l99999999999999999999999}", "%%%_%-", "see %{c} at %{t}",
	} {
		f.Add(s)
	}
	envs := []*macroEnv{rfcEnv("192.0.2.3"), rfcEnv("2001:db8::cb01")}
	envs[1].local = "~jack&jill=up-a_b3.c+x/y"
	envs[1].now = func() time.Time { return time.Unix(1<<40, 0) }
	maxValue := 0
	for _, env := range envs {
		for _, l := range []byte("slodiphvcrt") {
			if n := len(env.value(l)); n > maxValue {
				maxValue = n
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ctx := range []macroContext{inDomainSpec, inModifier, inExplanation} {
			ms, err := parseMacroString(s, ctx)
			if err != nil {
				continue
			}
			if ms.String() != s {
				t.Fatalf("raw text changed: %q", ms.String())
			}
			for _, env := range envs {
				out := ms.expand(env)
				if bound := len(s) * 3 * maxValue; len(out) > bound {
					t.Fatalf("%q expanded to %d bytes, over the bound %d", s, len(out), bound)
				}
				if name := truncateDomain(out); len(name) > maxDomainLen && strings.Contains(name, ".") {
					t.Fatalf("truncated name is %d characters", len(name))
				}
			}
		}
	})
}

func TestSuiteStringsSeed(t *testing.T) {
	// The seeds include records that parse and records that do not.
	var ok, bad int
	for _, s := range suiteStrings(t) {
		if !IsSPF(s) {
			continue
		}
		if _, err := Parse(s); err == nil {
			ok++
		} else {
			bad++
		}
	}
	if ok < 100 || bad < 30 {
		t.Fatalf("suite seeds: %d parse, %d do not", ok, bad)
	}
}

// FuzzAnalyze: any pair of records (a domain's and one it may include) is
// analysed without a panic into findings with valid IDs; wherever the
// static coverage promises a result, check_host() gives that result; and a
// flattened set of a fully known record gives every sampled client the
// result the record means to give.
func FuzzAnalyze(f *testing.F) {
	seeds := [][2]string{
		{"v=spf1 include:d1.test mx a:d2.test -all", "v=spf1 ip4:10.0.0.0/25 ~all"},
		{"v=spf1 exists:%{i}.d1.test redirect=d1.test", "v=spf1 -ip4:10.0.0.2 a -all"},
		{"v=spf1 include:d1.test include:d1.test include:d1.test ptr ?all", "v=spf1 include:d0.test"},
		{"v=spf1 a/24 mx//64 ip6:2001:db8::/64 -all", "v=spf1 redirect=d2.test"},
		{"v=spf1 " + strings.Repeat("a:d1.test ", 12) + "-all", "garbage"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	ips := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.200"),
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8:1::1")}
	f.Fuzz(func(t *testing.T, root, inc string) {
		if len(root) > 2048 || len(inc) > 2048 {
			return
		}
		data := map[string][]string{
			"d0.test": {"TXT " + root, "A 10.0.0.1", "MX 10 d1.test"},
			"d1.test": {"TXT " + inc, "A 10.0.0.2", "AAAA 2001:db8::2"},
			"d2.test": {"TXT v=spf1 ip4:10.0.0.128/25 -all", "A 10.0.0.200"},
		}
		z := zoneOf(t, data)
		ctx := context.Background()
		p := &profile.Profile{ID: "gw", Name: "GW", SPFIncludes: []string{"d2.test"}, IPRangesLive: []string{"d2.test"}}
		a := Analyze(ctx, z, "d0.test", Options{Profile: p, IPs: ips[:2], Flatten: true, FlattenLookups: 0})
		rep := report.New("d0.test", "health")
		rep.Add(a.Findings...)
		if err := rep.Validate(); err != nil {
			t.Fatal(err)
		}
		c := &Checker{Resolver: z}
		for _, ip := range ips {
			out := c.CheckHost(ctx, Query{IP: ip, Sender: "x@d0.test", Helo: "h.test"})
			if r := staticResult(a.Coverage, ip); r != "" && r != out.Result {
				t.Fatalf("%s: coverage promises %s, check_host gives %s (%v)\nroot %q\ninc %q", ip, r, out.Result, out.Err, root, inc)
			}
		}
		// The set Analyze flattened gains the gateway's include when the
		// record lacks it; equivalence is about the record alone.
		want := a.Tree.Coverage(noLimits)
		flat, err := a.Tree.Flatten(FlattenOptions{MaxLookups: 0})
		if err != nil || !exactlyKnown(want) {
			return
		}
		fz := zoneOf(t, publishFlattened(data, "d0.test", flat))
		fc := &Checker{Resolver: fz}
		for _, ip := range ips {
			out := fc.CheckHost(ctx, Query{IP: ip, Sender: "x@d0.test", Helo: "h.test"})
			if r := staticResult(want, ip); r != out.Result {
				t.Fatalf("%s: the record means %s, the flattened set gives %s (%v)\nroot %q\ninc %q\nflat %q", ip, r, out.Result, out.Err, root, inc, flat.Records[0].Text)
			}
		}
	})
}
