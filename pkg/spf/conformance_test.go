package spf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"
)

// The openspf YAML suites (testdata/spf, see PROVENANCE.md there), run
// scenario by scenario against an in-memory resolver with the semantics of
// the suite's own drivers. rfc7208-tests.yml is normative; rfc4408-tests.yml
// and pyspf's test.yml are informative.

// conformanceSuites are the suites run, with the title their tally uses.
var conformanceSuites = []struct{ key, file, title string }{
	{"rfc7208", "rfc7208-tests.yml", "RFC 7208 suite"},
	{"rfc4408", "rfc4408-tests.yml", "RFC 4408 suite"},
	{"pyspf", "pyspf/test.yml", "pyspf suite"},
}

// knownFailures lists the tests we knowingly fail, as "suite/scenario/test"
// => reason. A test that fails and is not listed fails the run, and so does
// a listed test that passes (remove it from the list then).
var knownFailures = map[string]string{
	// pyspf's own tests of its non-RFC modes.
	"pyspf/corner cases/default-modifier": "expects pyspf's lax mode (strict=0) to honour the obsolete " +
		"RFC 4408 draft \"default=\" modifier; RFC 7208 §6 ignores unknown modifiers (neutral)",
	"pyspf/corner cases/default-modifier-harsh": "expects pyspf's \"ambiguous\" result (strict=2), " +
		"which is not an RFC 7208 result",
}

// conformanceTally is printed after the suites ran.
var conformanceTally []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, line := range conformanceTally {
		fmt.Println(line)
	}
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	for _, s := range conformanceSuites {
		t.Run(s.key, func(t *testing.T) {
			scenarios := loadSuite(t, filepath.Join("..", "..", "testdata", "spf", s.file))
			present := map[string]bool{}
			for _, sc := range scenarios {
				for _, tc := range sc.tests {
					present[s.key+"/"+sc.name+"/"+tc.name] = true
				}
			}
			for _, key := range sortedKeys(knownFailures) {
				if strings.HasPrefix(key, s.key+"/") && !present[key] {
					t.Errorf("knownFailures lists %q, which the suite does not have", key)
				}
			}
			passed, total, known := 0, 0, 0
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					for _, tc := range sc.tests {
						key := s.key + "/" + sc.name + "/" + tc.name
						total++
						t.Run(tc.name, func(t *testing.T) {
							ok, report := runSuiteTest(sc.zone, tc)
							reason, listed := knownFailures[key]
							switch {
							case ok && listed:
								passed++
								t.Errorf("%s passes but is listed in knownFailures (%s): remove it from the list", key, reason)
							case ok:
								passed++
							case listed:
								known++
								t.Logf("known failure: %s\n%s", reason, report)
							default:
								t.Errorf("%s\n%s", key, report)
							}
						})
					}
				})
			}
			line := fmt.Sprintf("%s: %d/%d passed", s.title, passed, total)
			if known > 0 {
				line += fmt.Sprintf(" (%d known failures listed in knownFailures)", known)
			}
			t.Log(line)
			conformanceTally = append(conformanceTally, line)
		})
	}
}

type suiteScenario struct {
	name  string
	zone  *memZone
	tests []suiteTest
}

type suiteTest struct {
	name        string
	helo        string
	host        string
	mailfrom    string
	results     []string
	explanation *string
}

// loadSuite reads a multi-document YAML suite. Documents are decoded into
// yaml.Node so that tests keep their file order, and values into generic
// types: zonedata lists hold bare "- TIMEOUT" scalars.
func loadSuite(t *testing.T, path string) []suiteScenario {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open suite: %v", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []suiteScenario
	for i := 1; ; i++ {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		sc := suiteScenario{name: fmt.Sprintf("scenario %d", i)}
		var testsNode, zoneNode *yaml.Node
		for k := 0; k+1 < len(root.Content); k += 2 {
			key, val := root.Content[k].Value, root.Content[k+1]
			switch key {
			case "description":
				sc.name = firstLine(val.Value)
			case "comment":
				if strings.HasPrefix(sc.name, "scenario ") {
					sc.name = firstLine(val.Value)
				}
			case "tests":
				testsNode = val
			case "zonedata":
				zoneNode = val
			}
		}
		if testsNode == nil {
			continue
		}
		var zonedata map[string][]any
		if zoneNode != nil {
			if err := zoneNode.Decode(&zonedata); err != nil {
				t.Fatalf("%s: %s: zonedata: %v", path, sc.name, err)
			}
		}
		sc.zone, err = buildZone(zonedata)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, sc.name, err)
		}
		for k := 0; k+1 < len(testsNode.Content); k += 2 {
			var raw map[string]any
			if err := testsNode.Content[k+1].Decode(&raw); err != nil {
				t.Fatalf("%s: %s: %v", path, testsNode.Content[k].Value, err)
			}
			sc.tests = append(sc.tests, parseSuiteTest(testsNode.Content[k].Value, raw))
		}
		out = append(out, sc)
	}
	return out
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func parseSuiteTest(name string, raw map[string]any) suiteTest {
	tc := suiteTest{name: name}
	tc.helo, _ = raw["helo"].(string)
	tc.host, _ = raw["host"].(string)
	tc.mailfrom, _ = raw["mailfrom"].(string)
	switch r := raw["result"].(type) {
	case string:
		tc.results = []string{r}
	case []any:
		for _, x := range r {
			tc.results = append(tc.results, fmt.Sprint(x))
		}
	}
	if e, ok := raw["explanation"].(string); ok {
		tc.explanation = &e
	}
	return tc
}

// buildZone turns a zonedata map into a memZone with the suite's semantics.
func buildZone(zonedata map[string][]any) (*memZone, error) {
	z := newMemZone()
	for owner, entries := range zonedata {
		z.node(owner) // a listed name exists even with no records
		for _, entry := range entries {
			switch e := entry.(type) {
			case string:
				if e != "TIMEOUT" {
					return nil, fmt.Errorf("%s: unknown marker %q", owner, e)
				}
				z.setTimeout(owner)
			case map[string]any:
				for typ, val := range e {
					if err := addZoneEntry(z, owner, typ, val); err != nil {
						return nil, fmt.Errorf("%s: %s: %w", owner, typ, err)
					}
				}
			default:
				return nil, fmt.Errorf("%s: unexpected entry %#v", owner, entry)
			}
		}
	}
	z.finish()
	return z, nil
}

func addZoneEntry(z *memZone, owner, typ string, val any) error {
	switch typ {
	case "TIMEOUT":
		z.setTimeout(owner)
		return nil
	case "A", "AAAA":
		ip, ok := val.(string)
		if !ok {
			return fmt.Errorf("want an address, got %#v", val)
		}
		var rr dnsRR
		var err error
		if typ == "A" {
			rr, err = rrA(owner, ip)
		} else {
			rr, err = rrAAAA(owner, ip)
		}
		if err != nil {
			return err
		}
		z.add(owner, rr)
	case "MX":
		l, ok := val.([]any)
		if !ok || len(l) != 2 {
			return fmt.Errorf("want [preference, host], got %#v", val)
		}
		pref, _ := l[0].(int)
		host, _ := l[1].(string)
		z.add(owner, rrMX(owner, pref, host))
	case "PTR":
		host, _ := val.(string)
		z.add(owner, rrPTR(owner, host))
	case "CNAME":
		host, _ := val.(string)
		z.addCNAME(owner, host)
	case "TXT", "SPF":
		t := dns.TypeTXT
		if typ == "SPF" {
			t = dns.TypeSPF
		}
		switch v := val.(type) {
		case string:
			if typ == "TXT" && v == "NONE" {
				// Suppresses SPF-as-TXT; never served itself.
				z.node(owner).hasTXT = true
				return nil
			}
			z.add(owner, rrTXT(owner, t, []string{rawBytes(v)}))
		case []any:
			// One record of several strings (joined with no separator).
			strs := make([]string, 0, len(v))
			for _, x := range v {
				strs = append(strs, rawBytes(fmt.Sprint(x)))
			}
			z.add(owner, rrTXT(owner, t, strs))
		case nil:
			z.add(owner, rrTXT(owner, t, []string{""}))
		default:
			return fmt.Errorf("unexpected value %#v", val)
		}
	default:
		return fmt.Errorf("unknown record type")
	}
	return nil
}

type dnsRR = dns.RR

// rawBytes maps a YAML string back to the bytes the suite author meant: YAML
// "\xEF" escapes decode to the code point U+00EF, which stands for the byte
// 0xEF. Strings with code points above U+00FF are left as UTF-8.
func rawBytes(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return s
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// runSuiteTest runs one test and reports whether it passed, with a report
// of what happened for the failure message.
func runSuiteTest(z *memZone, tc suiteTest) (bool, string) {
	ip, err := netip.ParseAddr(tc.host)
	if err != nil {
		return false, fmt.Sprintf("bad host %q: %v", tc.host, err)
	}
	c := &Checker{Resolver: z, DefaultExplanation: "DEFAULT", Trace: true}
	out := c.CheckHost(context.Background(), Query{
		IP:     ip,
		Sender: tc.mailfrom, // empty: CheckHost uses postmaster@helo
		Helo:   tc.helo,
	})
	ok := false
	for _, r := range tc.results {
		if string(out.Result) == r {
			ok = true
		}
	}
	if tc.explanation != nil && out.Explanation != *tc.explanation {
		ok = false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "host=%s mailfrom=%q helo=%q\nwant %v", tc.host, tc.mailfrom, tc.helo, tc.results)
	if tc.explanation != nil {
		fmt.Fprintf(&b, " explanation %q", *tc.explanation)
	}
	fmt.Fprintf(&b, "\ngot  %s explanation %q mechanism %q lookups %d voids %d err %v\n", out.Result, out.Explanation, out.Mechanism, out.Lookups, out.Voids, out.Err)
	for _, s := range out.Trace {
		fmt.Fprintf(&b, "  %s[%s] term %d %q match=%v result=%s %s\n", strings.Repeat("  ", s.Depth), s.Domain, s.Term, s.Text, s.Match, s.Result, s.Detail)
	}
	return ok, b.String()
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
