package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// zoneOf builds a memZone from "TYPE data" lines per owner: "TXT v=spf1 ...",
// "A 192.0.2.1", "AAAA 2001:db8::1", "MX 10 mx.example.com", "PTR name",
// "CNAME target", "TIMEOUT".
func zoneOf(t testing.TB, data map[string][]string) *memZone {
	t.Helper()
	z := newMemZone()
	for owner, lines := range data {
		z.node(owner)
		for _, line := range lines {
			typ, rest, _ := strings.Cut(line, " ")
			switch typ {
			case "TXT":
				z.add(owner, rrTXT(owner, dns.TypeTXT, []string{rest}))
			case "A":
				rr, err := rrA(owner, rest)
				require.NoError(t, err)
				z.add(owner, rr)
			case "AAAA":
				rr, err := rrAAAA(owner, rest)
				require.NoError(t, err)
				z.add(owner, rr)
			case "MX":
				p, host, _ := strings.Cut(rest, " ")
				pref, err := strconv.Atoi(p)
				require.NoError(t, err)
				z.add(owner, rrMX(owner, pref, host))
			case "PTR":
				z.add(owner, rrPTR(owner, rest))
			case "CNAME":
				z.addCNAME(owner, rest)
			case "TIMEOUT":
				z.setTimeout(owner)
			default:
				t.Fatalf("zoneOf: bad line %q", line)
			}
		}
	}
	return z
}

func check(t testing.TB, z Resolver, ip, sender string) Outcome {
	t.Helper()
	c := &Checker{Resolver: z, DefaultExplanation: "DEFAULT", Trace: true}
	return c.CheckHost(context.Background(), Query{IP: netip.MustParseAddr(ip), Sender: sender, Helo: "mail.example.org"})
}

// aTerms returns n "a:hN.example.com" terms and their zone entries.
func aTerms(n int, data map[string][]string) string {
	terms := make([]string, n)
	for i := range terms {
		name := fmt.Sprintf("h%d.example.com", i)
		terms[i] = "a:" + name
		data[name] = []string{"A 198.51.100.1"}
	}
	return strings.Join(terms, " ")
}

func TestLookupLimitCountedDuringEvaluation(t *testing.T) {
	// include-at-limit style: the top record and its include use exactly
	// 10 DNS-querying terms before ip4 matches, so the 11th is never
	// reached; a client that does not match ip4 reaches it: permerror.
	data := map[string][]string{}
	data["inc.example.com"] = []string{"TXT v=spf1 " + aTerms(8, data)}
	data["example.com"] = []string{"TXT v=spf1 a:h0.example.com include:inc.example.com ip4:192.0.2.1 a:h1.example.com -all"}
	z := zoneOf(t, data)

	out := check(t, z, "192.0.2.1", "user@example.com")
	assert.Equal(t, Pass, out.Result, "%v", out.Err)
	assert.Equal(t, "ip4:192.0.2.1", out.Mechanism)
	assert.Equal(t, 3, out.Term)
	assert.Equal(t, 10, out.Lookups)

	out = check(t, z, "192.0.2.2", "user@example.com")
	assert.Equal(t, PermError, out.Result)
	assert.True(t, errors.Is(out.Err, ErrLookupLimit), "%v", out.Err)
	assert.Equal(t, "a:h1.example.com", out.Mechanism)
	assert.Equal(t, 4, out.Term)
	assert.Equal(t, 11, out.Lookups)

	// A raised limit lets it through.
	c := &Checker{Resolver: z, LookupLimit: 11}
	out = c.CheckHost(context.Background(), Query{IP: netip.MustParseAddr("192.0.2.2"), Sender: "user@example.com"})
	assert.Equal(t, Fail, out.Result, "%v", out.Err)
}

func TestLookupLimitEachKindCounts(t *testing.T) {
	for _, term := range []string{"a", "mx", "ptr", "exists:%{d}", "include:inc.example.com"} {
		t.Run(term, func(t *testing.T) {
			data := map[string][]string{
				"inc.example.com":        {"TXT v=spf1 -all"},
				"3.2.0.192.in-addr.arpa": {"PTR nowhere.example.net"},
			}
			// Ten non-matching "a" terms, then the kind under test as the
			// eleventh DNS-querying term.
			data["example.com"] = []string{"TXT v=spf1 " + strings.Repeat("a ", 10) + term + " ip4:192.0.2.3",
				"A 198.51.100.1", "MX 10 example.com"}
			out := check(t, zoneOf(t, data), "192.0.2.3", "a@example.com")
			assert.Equal(t, PermError, out.Result)
			assert.True(t, errors.Is(out.Err, ErrLookupLimit), "%v", out.Err)
			assert.Equal(t, 11, out.Term)
		})
	}
	// redirect counts too.
	data := map[string][]string{"example.com": {"TXT v=spf1 " + aTerms(10, map[string][]string{}) + " redirect=r.example.com"}}
	for i := 0; i < 10; i++ {
		data[fmt.Sprintf("h%d.example.com", i)] = []string{"A 198.51.100.1"}
	}
	data["r.example.com"] = []string{"TXT v=spf1 +all"}
	out := check(t, zoneOf(t, data), "192.0.2.3", "a@example.com")
	assert.Equal(t, PermError, out.Result)
	assert.True(t, errors.Is(out.Err, ErrLookupLimit), "%v", out.Err)
	assert.Equal(t, "redirect=r.example.com", out.Mechanism)
}

func TestVoidLimit(t *testing.T) {
	z := zoneOf(t, map[string][]string{
		"two.example.com":    {"TXT v=spf1 a:nx1.example.com mx:nodata.example.com ?all"},
		"three.example.com":  {"TXT v=spf1 a:nx1.example.com mx:nodata.example.com exists:nx2.example.com ?all"},
		"nodata.example.com": {"A 198.51.100.1"},
	})
	out := check(t, z, "192.0.2.1", "a@two.example.com")
	assert.Equal(t, Neutral, out.Result, "%v", out.Err)
	assert.Equal(t, 2, out.Voids)

	out = check(t, z, "192.0.2.1", "a@three.example.com")
	assert.Equal(t, PermError, out.Result)
	assert.True(t, errors.Is(out.Err, ErrVoidLimit), "%v", out.Err)
	assert.Equal(t, 3, out.Voids)
	assert.Equal(t, "exists:nx2.example.com", out.Mechanism)

	c := &Checker{Resolver: z, VoidLimit: 3}
	out = c.CheckHost(context.Background(), Query{IP: netip.MustParseAddr("192.0.2.1"), Sender: "a@three.example.com"})
	assert.Equal(t, Neutral, out.Result, "%v", out.Err)
}

func TestMXLimit(t *testing.T) {
	data := map[string][]string{"example.com": {"TXT v=spf1 mx -all"}}
	for i := 0; i < 11; i++ {
		data["example.com"] = append(data["example.com"], fmt.Sprintf("MX %d mx%d.example.com", i, i))
		data[fmt.Sprintf("mx%d.example.com", i)] = []string{fmt.Sprintf("A 192.0.2.%d", i+1)}
	}
	out := check(t, zoneOf(t, data), "192.0.2.1", "a@example.com")
	assert.Equal(t, PermError, out.Result)
	assert.True(t, errors.Is(out.Err, ErrMXLimit), "%v", out.Err)

	// Ten are fine, and every host is tried.
	data["example.com"] = data["example.com"][:11]
	out = check(t, zoneOf(t, data), "192.0.2.10", "a@example.com")
	assert.Equal(t, Pass, out.Result, "%v", out.Err)
	assert.Equal(t, 1, out.Lookups)
}

func TestPTRLimitFirstTenNames(t *testing.T) {
	data := map[string][]string{"example.com": {"TXT v=spf1 ptr -all"}}
	var ptrs []string
	for i := 0; i < 11; i++ {
		name := fmt.Sprintf("h%d.example.com", i)
		ptrs = append(ptrs, "PTR "+name)
		data[name] = []string{"A 192.0.2.99"}
	}
	data["99.2.0.192.in-addr.arpa"] = ptrs
	// Only the 11th name validates: it is never looked at.
	data["h0.example.com"] = []string{"A 198.51.100.1"}
	for i := 1; i < 10; i++ {
		data[fmt.Sprintf("h%d.example.com", i)] = []string{"A 198.51.100.1"}
	}
	out := check(t, zoneOf(t, data), "192.0.2.99", "a@example.com")
	assert.Equal(t, Fail, out.Result, "%v", out.Err)

	c := &Checker{Resolver: zoneOf(t, data), PTRLimit: 11}
	out = c.CheckHost(context.Background(), Query{IP: netip.MustParseAddr("192.0.2.99"), Sender: "a@example.com"})
	assert.Equal(t, Pass, out.Result, "%v", out.Err)
}

func TestIncludeAndRedirectSemantics(t *testing.T) {
	z := zoneOf(t, map[string][]string{
		"pass.example.com":      {"TXT v=spf1 +all"},
		"fail.example.com":      {"TXT v=spf1 -all"},
		"neutral.example.com":   {"TXT v=spf1 ?all"},
		"temp.example.com":      {"TIMEOUT"},
		"perm.example.com":      {"TXT v=spf1 ip4:1.2.3.4/33"},
		"none.example.com":      {"TXT not spf"},
		"i-pass.example.com":    {"TXT v=spf1 include:pass.example.com -all"},
		"i-fail.example.com":    {"TXT v=spf1 include:fail.example.com ~all"},
		"i-neutral.example.com": {"TXT v=spf1 include:neutral.example.com -all"},
		"i-temp.example.com":    {"TXT v=spf1 include:temp.example.com +all"},
		"i-perm.example.com":    {"TXT v=spf1 include:perm.example.com +all"},
		"i-none.example.com":    {"TXT v=spf1 include:none.example.com +all"},
		"r-none.example.com":    {"TXT v=spf1 redirect=none.example.com"},
		"r-all.example.com":     {"TXT v=spf1 ?all redirect=pass.example.com"},
		"r-fail.example.com":    {"TXT v=spf1 ip4:192.0.2.200 redirect=fail.example.com exp=exp.example.com"},
		"r-temp.example.com":    {"TXT v=spf1 redirect=temp.example.com"},
	})
	for _, tc := range []struct {
		domain string
		want   Result
		err    error
	}{
		{"i-pass.example.com", Pass, nil},
		{"i-fail.example.com", SoftFail, nil},
		{"i-neutral.example.com", Fail, nil},
		{"i-temp.example.com", TempError, resolver.ErrTimeout},
		{"i-perm.example.com", PermError, ErrSyntax},
		{"i-none.example.com", PermError, ErrIncludeNone},
		{"r-none.example.com", PermError, ErrRedirectNone},
		{"r-all.example.com", Neutral, nil},
		{"r-fail.example.com", Fail, nil},
		{"r-temp.example.com", TempError, ErrDNS},
		{"none.example.com", None, ErrNoRecord},
		{"nx.example.com", None, ErrNoRecord},
	} {
		out := check(t, z, "192.0.2.1", "user@"+tc.domain)
		assert.Equal(t, tc.want, out.Result, "%s: %v", tc.domain, out.Err)
		if tc.err != nil {
			assert.True(t, errors.Is(out.Err, tc.err), "%s: %v", tc.domain, out.Err)
		} else {
			assert.NoError(t, out.Err, tc.domain)
		}
	}
	// After a redirect, the target's record decides, and its exp= (none
	// here) replaces the original's.
	out := check(t, z, "192.0.2.1", "user@r-fail.example.com")
	assert.Equal(t, "fail.example.com", out.Domain)
	assert.Equal(t, "-all", out.Mechanism)
	assert.Equal(t, "DEFAULT", out.Explanation)
	// A syntax error comes out as *SyntaxError, with its position.
	out = check(t, z, "192.0.2.1", "user@i-perm.example.com")
	var se *SyntaxError
	require.True(t, errors.As(out.Err, &se), "%v", out.Err)
	assert.Equal(t, 1, se.Term)
	assert.Equal(t, "include:perm.example.com", out.Mechanism)
}

func TestExplanation(t *testing.T) {
	z := zoneOf(t, map[string][]string{
		"example.com":        {"TXT v=spf1 -all exp=why.%{d}"},
		"why.example.com":    {"TXT %{i} is not one of %{d}'s designated mail servers (%{c}, %{R}, %{t})."},
		"bad.example.com":    {"TXT v=spf1 -all exp=broken.example.com"},
		"broken.example.com": {"TXT The %{x}-files"},
	})
	c := &Checker{Resolver: z, DefaultExplanation: "See https://example.net/why?s=%{S}"}
	q := Query{IP: netip.MustParseAddr("2001:db8::1"), Sender: "u@example.com", ReceivingHost: "mx.example.net",
		Now: func() time.Time { return time.Unix(0, 0) }}
	out := c.CheckHost(context.Background(), q)
	assert.Equal(t, Fail, out.Result)
	assert.Equal(t, "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1 is not one of example.com's designated mail servers (2001:db8::1, mx.example.net, 0).", out.Explanation)

	q.Sender = "u@bad.example.com"
	out = c.CheckHost(context.Background(), q)
	assert.Equal(t, Fail, out.Result)
	assert.Equal(t, "See https://example.net/why?s=u%40bad.example.com", out.Explanation)

	// No explanation unless the result is fail.
	out = check(t, zoneOf(t, map[string][]string{"x.example.com": {"TXT v=spf1 ~all exp=why.example.com"}}), "192.0.2.1", "u@x.example.com")
	assert.Equal(t, SoftFail, out.Result)
	assert.Empty(t, out.Explanation)
}

func TestInitialProcessing(t *testing.T) {
	z := zoneOf(t, map[string][]string{"example.com": {"TXT v=spf1 -all"}, "xn--bcher-kva.example": {"TXT v=spf1 +all"}})
	for _, sender := range []string{"u@[192.0.2.1]", "u@localhost", "u@a..example.com", "u@" + strings.Repeat("a", 64) + ".example.com", "u@192.0.2.1"} {
		out := check(t, z, "192.0.2.1", sender)
		assert.Equal(t, None, out.Result, sender)
		assert.True(t, errors.Is(out.Err, ErrInvalidDomain), "%s: %v", sender, out.Err)
	}
	// Internationalised domains are checked under their A-label.
	out := check(t, z, "192.0.2.1", "u@bücher.example")
	assert.Equal(t, Pass, out.Result, "%v", out.Err)
	// Empty sender: postmaster@HELO.
	c := &Checker{Resolver: z}
	out = c.CheckHost(context.Background(), Query{IP: netip.MustParseAddr("192.0.2.1"), Helo: "example.com"})
	assert.Equal(t, Fail, out.Result)
	// Explicit domain wins over the sender's.
	out = c.CheckHost(context.Background(), Query{IP: netip.MustParseAddr("192.0.2.1"), Sender: "u@other.example", Domain: "xn--bcher-kva.example."})
	assert.Equal(t, Pass, out.Result)
	// A query without an IP cannot be checked.
	out = c.CheckHost(context.Background(), Query{Sender: "u@example.com"})
	assert.Equal(t, TempError, out.Result)
	assert.True(t, errors.Is(out.Err, ErrBadQuery))
}

func TestRecordSelection(t *testing.T) {
	z := zoneOf(t, map[string][]string{
		"multi.example.com": {"TXT v=spf1 -all", "TXT V=SPF1 +all"},
		"other.example.com": {"TXT google-site-verification=abc", "TXT v=spf1 +all", "TXT v=spf10 -all"},
		"cname.example.com": {"CNAME other.example.com"},
		"quote.example.com": {`TXT v=spf1 exists:%{l}.q.example.com -all`},
	})
	z.add("split.example.com", rrTXT("split.example.com", dns.TypeTXT, []string{"v=spf1 ip4:", "192.0.2.1 -all"}))
	out := check(t, z, "192.0.2.1", "u@multi.example.com")
	assert.Equal(t, PermError, out.Result)
	assert.True(t, errors.Is(out.Err, ErrMultipleRecords))
	assert.Equal(t, Pass, check(t, z, "192.0.2.1", "u@other.example.com").Result)
	assert.Equal(t, Pass, check(t, z, "192.0.2.1", "u@cname.example.com").Result)
	assert.Equal(t, Pass, check(t, z, "192.0.2.1", "u@split.example.com").Result)
}

func TestTXTEscapes(t *testing.T) {
	// miekg hands TXT strings over in presentation form.
	assert.Equal(t, "v=spf1 \"a\\b\x96\x00", txtString([]string{`v=spf1 \"a\\b\150\000`}))
	assert.Equal(t, "ab", txtString([]string{"a", "b"}))
	assert.Equal(t, `\999`, txtString([]string{`\\999`}))
	assert.Equal(t, `x\`, txtString([]string{`x\`}))
	// The test resolver hands records over the same way (packed and
	// unpacked by miekg), and they decode back to the raw bytes.
	rr := rrTXT("x.example.", dns.TypeTXT, []string{"a\x96\"b\\"})
	assert.Equal(t, []string{`a\150\"b\\`}, rr.(*dns.TXT).Txt)
	assert.Equal(t, "a\x96\"b\\", txtString(rr.(*dns.TXT).Txt))
}

func TestTempErrorsAndContext(t *testing.T) {
	z := zoneOf(t, map[string][]string{
		"example.com":      {"TXT v=spf1 a:slow.example.com -all"},
		"slow.example.com": {"TIMEOUT"},
		"mx.example.com":   {"TXT v=spf1 mx ip4:192.0.2.1 -all", "MX 10 ok.example.com", "MX 20 slow.example.com"},
		"ok.example.com":   {"A 192.0.2.1"},
	})
	out := check(t, z, "192.0.2.1", "u@example.com")
	assert.Equal(t, TempError, out.Result)
	assert.True(t, errors.Is(out.Err, resolver.ErrTimeout), "%v", out.Err)
	assert.True(t, errors.Is(out.Err, ErrDNS), "%v", out.Err)
	// An error on one MX host does not hide a match on another.
	assert.Equal(t, Pass, check(t, z, "192.0.2.1", "u@mx.example.com").Result)
	out = check(t, z, "192.0.2.2", "u@mx.example.com")
	assert.Equal(t, TempError, out.Result)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &Checker{Resolver: z}
	out = c.CheckHost(ctx, Query{IP: netip.MustParseAddr("192.0.2.1"), Sender: "u@example.com"})
	assert.Equal(t, TempError, out.Result)
	assert.True(t, errors.Is(out.Err, context.Canceled), "%v", out.Err)
}

func TestTrace(t *testing.T) {
	z := zoneOf(t, map[string][]string{
		"example.com":      {"TXT v=spf1 ip4:198.51.100.0/24 include:_spf.example.com -all"},
		"_spf.example.com": {"TXT v=spf1 a:mail.example.com"},
		"mail.example.com": {"A 192.0.2.1"},
	})
	out := check(t, z, "192.0.2.1", "u@example.com")
	require.Equal(t, Pass, out.Result)
	var lines []string
	for _, s := range out.Trace {
		lines = append(lines, fmt.Sprintf("%d %s %d %s %v %s", s.Depth, s.Domain, s.Term, s.Text, s.Match, s.Result))
	}
	assert.Equal(t, []string{
		"0 example.com 0 v=spf1 ip4:198.51.100.0/24 include:_spf.example.com -all false ",
		"0 example.com 1 ip4:198.51.100.0/24 false ",
		"0 example.com 2 include:_spf.example.com true pass",
		"1 _spf.example.com 0 v=spf1 a:mail.example.com false ",
		"1 _spf.example.com 1 a:mail.example.com true pass",
	}, lines)
	assert.Equal(t, 2, out.Lookups)

	c := &Checker{Resolver: z}
	out = c.CheckHost(context.Background(), Query{IP: netip.MustParseAddr("192.0.2.1"), Sender: "u@example.com"})
	assert.Nil(t, out.Trace, "no trace unless asked")
}
