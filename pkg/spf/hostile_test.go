package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// Hostile and broken record trees, served by dnstest on loopback and read
// through pkg/resolver's client over real UDP and TCP sockets: every case
// must end in findings (status error when it could not be checked), within
// a deadline, without a panic and without flooding the server.

// hostileDeadline bounds each Analyze; a hang past it plus hangGrace is
// reported as a failure rather than blocking the test binary.
const (
	hostileDeadline = 5 * time.Second
	hangGrace       = 2 * time.Second
	// attemptTimeout is the resolver's budget per exchange: a dropped
	// query costs this long.
	attemptTimeout = 300 * time.Millisecond
)

// soaHeader makes the zone text for origin a zone: an SOA and an NS at the
// apex.
func soaHeader(origin string) string {
	return fmt.Sprintf("$ORIGIN %s.\n$TTL 300\n@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n@ IN NS ns\nns IN A 127.0.0.1\n", origin, origin, origin)
}

// netZone parses body as the zone origin (relative names allowed).
func netZone(t testing.TB, origin, body string) *dnstest.Zone {
	t.Helper()
	return dnstest.MustParseZone(t, origin, soaHeader(origin)+body)
}

// netClient is a fresh resolver.Client for srv, nothing cached.
func netClient(t testing.TB, srv *dnstest.Server) *resolver.Client {
	t.Helper()
	c, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, AttemptTimeout: attemptTimeout})
	require.NoError(t, err)
	return c
}

// boundedAnalyze runs Analyze for domain through a fresh client of srv
// under a hostileDeadline context, fails the test if it has not returned
// hangGrace after that, and checks that the findings form a valid report.
func boundedAnalyze(t *testing.T, srv *dnstest.Server, domain string, opt Options) (*Analysis, time.Duration) {
	t.Helper()
	res := netClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), hostileDeadline)
	defer cancel()
	done := make(chan *Analysis, 1)
	start := time.Now()
	go func() { done <- Analyze(ctx, res, domain, opt) }()
	var a *Analysis
	select {
	case a = <-done:
	case <-time.After(hostileDeadline + hangGrace):
		t.Fatalf("Analyze(%s) hangs: still running %v after its %v deadline", domain, hangGrace, hostileDeadline)
	}
	took := time.Since(start)
	require.NotNil(t, a)
	rep := report.New(domain, "health")
	rep.Add(a.Findings...)
	require.NoError(t, rep.Validate())
	for _, f := range a.Findings {
		assert.NotEmpty(t, f.Message, "finding %s has no message", f.ID)
		t.Logf("%-26s %-5s %s", f.ID, f.Status, abbreviate(f.Message, 300))
	}
	return a, took
}

// A 1000-deep include chain: the expansion stops at MaxDepth after one
// question per level, and the count is a lower bound already over the limit.
func TestHostileDeepIncludeChain(t *testing.T) {
	const depth = 1000
	var b strings.Builder
	for i := range depth - 1 {
		fmt.Fprintf(&b, "l%d IN TXT \"v=spf1 include:l%d.chain.test -all\"\n", i, i+1)
	}
	fmt.Fprintf(&b, "l%d IN TXT \"v=spf1 -all\"\n", depth-1)
	srv := dnstest.MustStart(t, netZone(t, "chain.test", b.String()))

	a, took := boundedAnalyze(t, srv, "l0.chain.test", Options{IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
	tree := a.Tree
	maxDepth := ExpandOptions{}.withDefaults().MaxDepth

	f := one(t, a, IDLookupLimit)
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Contains(t, f.Message, fmt.Sprintf("SPF needs at least %d DNS lookups", maxDepth+1))
	assert.GreaterOrEqual(t, tree.Lookups, 11)
	assert.False(t, tree.CountsExact)
	assert.Equal(t, report.StatusPass, one(t, a, IDPresent).Status)

	// The expansion stops at its depth bound.
	require.Len(t, tree.Incomplete, 1)
	assert.Equal(t, fmt.Sprintf("l%d.chain.test: spf: not expanded: deeper than %d levels", maxDepth+1, maxDepth), tree.Incomplete[0])
	n := tree.Root
	for n.Record != nil {
		n = n.Terms[0].Child
	}
	assert.Equal(t, maxDepth+1, n.Depth)
	assert.ErrorIs(t, n.Err, ErrNotExpanded)
	assert.False(t, a.Section.Complete)

	// check_host() stops at the 11th lookup, answered from the expansion.
	ip := one(t, a, IDIPAuthorized)
	assert.Equal(t, report.StatusFail, ip.Status)
	assert.Contains(t, ip.Message, "192.0.2.1 gets permerror from `include:l1.chain.test` of l0.chain.test")
	assert.Contains(t, ip.Message, "this is term 11 to query DNS; the limit is 10")

	// One TXT question per level expanded, far fewer than 1000.
	log := srv.Log()
	assert.Len(t, log, maxDepth+1)
	assert.Equal(t, maxDepth+1, tree.Queries)
	assert.Zero(t, srv.Count(fmt.Sprintf("l%d.chain.test", maxDepth+1), dns.TypeTXT))
	assert.Less(t, took, hostileDeadline, "bounded by its questions, not by the deadline")
}

// An include that comes back through a redirect is a loop (RFC 7208
// §4.6.4), found without asking anything twice.
func TestHostileLoopThroughRedirect(t *testing.T) {
	srv := dnstest.MustStart(t, netZone(t, "test", `
a IN TXT "v=spf1 include:b.test -all"
b IN TXT "v=spf1 redirect=a.test"
`))
	a, _ := boundedAnalyze(t, srv, "a.test", Options{})
	f := one(t, a, IDLoop)
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Contains(t, f.Message, "redirect=a.test leads back to a record being evaluated: a.test -> b.test -> a.test")
	assert.Equal(t, "a.test -> b.test -> a.test", f.Evidence["chain"])
	// Each record asked once: the loop is seen in the tree, not by asking.
	assert.Equal(t, 1, srv.Count("a.test", dns.TypeTXT))
	assert.Equal(t, 1, srv.Count("b.test", dns.TypeTXT))
}

// zoneStrings renders raw bytes as one TXT RR of quoted strings of at most
// 255 octets each, with bytes the zone format cannot carry as \DDD.
func zoneStrings(raw string) string {
	var b strings.Builder
	for len(raw) > 0 {
		n := min(255, len(raw))
		b.WriteString(` "`)
		for i := 0; i < n; i++ {
			c := raw[i]
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20 || c >= 0x7f:
				fmt.Fprintf(&b, `\%03d`, c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
		raw = raw[n:]
	}
	return b.String()
}

// bigRecord is a v=spf1 record of ip4 terms exactly strings*255 octets long.
func bigRecord(strs int) string {
	size := strs * 255
	var b strings.Builder
	b.WriteString("v=spf1")
	for i := 0; ; i++ {
		term := fmt.Sprintf(" ip4:10.%d.%d.%d", i/65536%256, i/256%256, i%256)
		if b.Len()+len(term)+len(" -all") > size {
			break
		}
		b.WriteString(term)
	}
	b.WriteString(" -all")
	b.WriteString(strings.Repeat(" ", size-b.Len())) // trailing spaces are allowed (RFC 7208 §12)
	return b.String()
}

// tcpAfterTruncation checks that name's TXT answer was truncated over UDP
// and fetched again over TCP.
func tcpAfterTruncation(t *testing.T, srv *dnstest.Server, name string) {
	t.Helper()
	var udpTC, tcp bool
	for _, q := range srv.Log() {
		if q.Name != dns.CanonicalName(name) || q.Type != dns.TypeTXT {
			continue
		}
		udpTC = udpTC || q.Proto == "udp" && q.Truncated
		tcp = tcp || q.Proto == "tcp" && q.Answers > 0
	}
	assert.True(t, udpTC, "the UDP answer for %s is truncated", name)
	assert.True(t, tcp, "%s is fetched again over TCP", name)
}

// TXT answers near the 64 KiB a DNS message can carry: truncated over UDP,
// fetched over TCP, parsed, and judged on their size.
func TestHostileHugeTXT(t *testing.T) {
	const strs = 250
	record := bigRecord(strs)
	require.Len(t, record, strs*255)
	garbage := strings.Repeat("garbage ", 250*255/8)
	nonASCII := strings.Repeat("\xc3\xa9\xff\x80", 250*255/4)
	srv := dnstest.MustStart(t, netZone(t, "test",
		"big IN TXT"+zoneStrings(record)+"\n"+
			"junk IN TXT"+zoneStrings(garbage)+"\n"+
			"junk IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"+
			"latin IN TXT"+zoneStrings(nonASCII)+"\n"+
			"latin IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"+
			"binary IN TXT"+zoneStrings("v=spf1 ip4:192.0.2.0/24 "+nonASCII)+"\n"))

	t.Run("64 KiB SPF record", func(t *testing.T) {
		a, _ := boundedAnalyze(t, srv, "big.test", Options{IPs: []netip.Addr{netip.MustParseAddr("10.0.1.7"), netip.MustParseAddr("192.0.2.1")}})
		tcpAfterTruncation(t, srv, "big.test")
		require.NotNil(t, a.Tree.Root.Record, "the record parses")
		assert.Equal(t, record, a.Tree.Root.Text)
		assert.Greater(t, len(a.Tree.Root.Record.Terms), 3000)
		assert.Equal(t, report.StatusPass, one(t, a, IDPresent).Status)
		f := one(t, a, IDSize)
		assert.Equal(t, report.StatusWarn, f.Status)
		assert.Contains(t, f.Message, "over the 512 that fit a DNS message without EDNS")
		assert.Greater(t, a.Tree.Root.AnswerOctets, 64000)
		assert.Len(t, f.Evidence["strings"], strs)
		l := one(t, a, IDLookupLimit)
		assert.Equal(t, report.StatusPass, l.Status)
		assert.Equal(t, "SPF needs 0 of 10 DNS lookups (worst case: a client no term matches)", l.Message)
		ips := findings(a, IDIPAuthorized)
		require.Len(t, ips, 2)
		assert.Equal(t, report.StatusPass, ips[0].Status)
		assert.Equal(t, "10.0.1.7 gets pass from `ip4:10.0.1.7` of big.test", ips[0].Message)
		assert.Equal(t, report.StatusFail, ips[1].Status)
		assert.Contains(t, ips[1].Message, "192.0.2.1 gets fail from `-all` of big.test")
	})
	t.Run("64 KiB of garbage next to the record", func(t *testing.T) {
		a, _ := boundedAnalyze(t, srv, "junk.test", Options{})
		tcpAfterTruncation(t, srv, "junk.test")
		assert.Equal(t, "v=spf1 ip4:192.0.2.0/24 -all", a.Tree.Root.Text)
		p := one(t, a, IDPresent)
		assert.Equal(t, report.StatusPass, p.Status)
		assert.Equal(t, 2, p.Evidence["txt_records"])
		f := one(t, a, IDSize)
		assert.Equal(t, report.StatusWarn, f.Status, "the answer carries the garbage too")
		assert.Empty(t, findings(a, IDSplitRecord), "garbage is not a piece of SPF")
		assert.Equal(t, report.StatusPass, one(t, a, IDLookupLimit).Status)
		assert.Equal(t, report.StatusPass, one(t, a, IDAllPolicy).Status)
	})
	t.Run("64 KiB of non-ASCII next to the record", func(t *testing.T) {
		a, _ := boundedAnalyze(t, srv, "latin.test", Options{})
		tcpAfterTruncation(t, srv, "latin.test")
		assert.Equal(t, "v=spf1 ip4:192.0.2.0/24 -all", a.Tree.Root.Text)
		assert.Equal(t, report.StatusPass, one(t, a, IDPresent).Status)
		assert.Equal(t, report.StatusWarn, one(t, a, IDSize).Status)
		assert.Contains(t, a.Tree.Root.TXT[0][0]+a.Tree.Root.TXT[1][0], "\xc3\xa9\xff\x80", "strings are decoded to their bytes")
		// The size on the wire, not in presentation form (where each
		// \DDD escape is 4 octets): it came in one DNS message.
		assert.Greater(t, a.Tree.Root.AnswerOctets, 64000)
		assert.LessOrEqual(t, a.Tree.Root.AnswerOctets, dns.MaxMsgSize)
	})
	t.Run("64 KiB of non-ASCII in the record", func(t *testing.T) {
		a, _ := boundedAnalyze(t, srv, "binary.test", Options{})
		tcpAfterTruncation(t, srv, "binary.test")
		assert.Nil(t, a.Tree.Root.Record)
		assert.Equal(t, report.StatusPass, one(t, a, IDPresent).Status, "a record is published, if broken")
		f := one(t, a, IDSyntax)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "binary.test: term 2 ")
		assert.Contains(t, f.Message, "non-ASCII byte 0xc3 at offset 24: SPF records are 7-bit ASCII (RFC 7208 §3.1)")
		assert.Less(t, len(f.Message), 1000, "the message quotes the term, not 64 KiB of it")
		assert.Equal(t, 2, f.Evidence["term"])
		assert.Len(t, f.Evidence["text"], len(nonASCII), "the evidence keeps the whole term")
	})
}

// Target names that are not domain names, or too long: a syntax finding
// or an include without SPF naming the term, and no invalid name on the
// wire.
func TestHostileNames(t *testing.T) {
	long := strings.Repeat("x", 64)
	macro := strings.TrimSuffix(strings.Repeat("%{d}.", 50), ".")
	srv := dnstest.MustStart(t, netZone(t, "test", fmt.Sprintf(`
quote   IN TXT "v=spf1 include:ex\"ample.test -all"
dots    IN TXT "v=spf1 a:foo..bar.test -all"
space   IN TXT "v=spf1 include:exa mple -all"
space2  IN TXT "v=spf1 include:spf.exa mple.test -all"
label   IN TXT "v=spf1 a:%[1]s.test -all"
ilabel  IN TXT "v=spf1 include:%[1]s.test -all"
macro   IN TXT "v=spf1 include:%[2]s -all"
hyphen  IN TXT "v=spf1 include:-bad-.test -all"
top     IN TXT "v=spf1 include:foo.-bad- -all"
`, long, macro)))

	tests := []struct {
		domain string
		id     string
		status report.Status
		msg    []string
	}{
		{"quote.test", IDIncludeWithoutSPF, report.StatusFail, []string{"include:ex\"ample.test of quote.test leads to ex\"ample.test", `contains the character '"'`}},
		{"dots.test", IDSyntax, report.StatusWarn, []string{"term 1 `a:foo..bar.test` of dots.test names an invalid domain", "has an empty label", "it never matches"}},
		{"space.test", IDSyntax, report.StatusFail, []string{`space.test: term 1 "include:exa": "exa" is not a valid domain-spec`}},
		{"space2.test", IDSyntax, report.StatusFail, []string{`space2.test: term 2 "mple.test": unknown mechanism "mple.test" (RFC 7208 §5)`}},
		{"label.test", IDSyntax, report.StatusWarn, []string{"term 1 `a:" + long + ".test` of label.test names an invalid domain", "a label of 64 octets; the limit is 63"}},
		{"ilabel.test", IDIncludeWithoutSPF, report.StatusFail, []string{"include:" + long + ".test of ilabel.test leads to", "a label of 64 octets"}},
		{"macro.test", IDIncludeWithoutSPF, report.StatusFail, []string{"include:" + macro + " of macro.test leads to "}},
		{"hyphen.test", IDIncludeWithoutSPF, report.StatusFail, []string{"include:-bad-.test of hyphen.test leads to -bad-.test", "-bad-.test has no TXT records"}},
		{"top.test", IDSyntax, report.StatusFail, []string{`top.test: term 1 "include:foo.-bad-"`, `"-bad-" is not a valid top label`}},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			a, _ := boundedAnalyze(t, srv, tc.domain, Options{})
			f := one(t, a, tc.id)
			assert.Equal(t, tc.status, f.Status)
			for _, m := range tc.msg {
				assert.Contains(t, f.Message, m)
			}
			assert.Equal(t, report.StatusPass, one(t, a, IDPresent).Status)
		})
	}
	t.Run("truncated macro target", func(t *testing.T) {
		srv.ResetLog()
		a, _ := boundedAnalyze(t, srv, "macro.test", Options{})
		target := a.Tree.Root.Terms[0].Target
		assert.LessOrEqual(t, len(target), 253, "RFC 7208 §7.3 truncation")
		assert.True(t, strings.HasSuffix(target, ".macro.test"), target)
		assert.Equal(t, 1, srv.Count(target, dns.TypeTXT), "the truncated name is asked")
	})
	t.Run("invalid names never reach the wire", func(t *testing.T) {
		for _, q := range srv.Log() {
			assert.NotContains(t, q.Name, `"`)
			assert.NotContains(t, q.Name, "..")
			assert.NotContains(t, q.Name, long)
		}
	})
}

// SERVFAIL and dropped queries: what could not be fetched is an error
// status (could not check), never a verdict on the domain.
func TestHostileFailuresMidTree(t *testing.T) {
	start := func(t *testing.T) *dnstest.Server {
		srv := dnstest.MustStart(t, netZone(t, "test", `
c    IN TXT "v=spf1 include:a.test include:b.test ip4:192.0.2.0/24 -all"
big  IN TXT "v=spf1 a a a a a a a a a a include:a.test include:b.test -all"
big  IN A 192.0.2.1
a    IN TXT "v=spf1 ip4:198.51.100.0/24 -all"
b    IN TXT "v=spf1 ip4:203.0.113.0/24 -all"
`))
		srv.SetFault("a.test", dnstest.Fault{Rcode: dns.RcodeServerFailure})
		srv.SetFault("b.test", dnstest.Fault{Drop: true})
		return srv
	}
	t.Run("SERVFAIL and a timeout below the root", func(t *testing.T) {
		srv := start(t)
		a, took := boundedAnalyze(t, srv, "c.test", Options{IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
		assert.Less(t, took, hostileDeadline, "bounded by the attempt timeout, not by the deadline")
		assert.Equal(t, report.StatusPass, one(t, a, IDPresent).Status)
		f := one(t, a, IDLookupLimit)
		assert.Equal(t, report.StatusError, f.Status, "could not count")
		assert.Contains(t, f.Message, "Could not count every DNS lookup (")
		assert.Contains(t, f.Message, "at least 2 of 10")
		s := a.Section
		assert.False(t, s.Complete)
		require.Len(t, s.Incomplete, 2)
		assert.Contains(t, s.Incomplete[0], "a.test: ")
		assert.Contains(t, s.Incomplete[0], "SERVFAIL")
		assert.Contains(t, s.Incomplete[1], "b.test: ")
		assert.Contains(t, s.Incomplete[1], "timeout")
		assert.Contains(t, s.Tree.Terms[0].Child.Error, "lookup failed: ")
		assert.Contains(t, s.Tree.Terms[1].Child.Error, "lookup failed: ")
		ip := one(t, a, IDIPAuthorized)
		assert.Equal(t, report.StatusError, ip.Status)
		assert.Contains(t, ip.Message, "Could not evaluate 192.0.2.1: temperror")
		assert.Equal(t, "temperror", ip.Evidence["result"])
		for _, f := range a.Findings {
			assert.NotEqual(t, report.StatusFail, f.Status, "%s: %s", f.ID, f.Message)
		}
		// check_host() was answered from the expansion: one question each
		// (the dropped one is not retried).
		assert.Equal(t, 1, srv.Count("a.test", dns.TypeTXT))
		assert.Equal(t, 1, srv.Count("b.test", dns.TypeTXT))
	})
	t.Run("the known part is already over the limit", func(t *testing.T) {
		srv := start(t)
		a, _ := boundedAnalyze(t, srv, "big.test", Options{})
		f := one(t, a, IDLookupLimit)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "SPF needs at least 12 DNS lookups")
		assert.Contains(t, f.Message, "receivers return permerror from term 11 `include:a.test` of big.test on")
		assert.False(t, a.Section.Complete)
	})
	t.Run("timeout on the root", func(t *testing.T) {
		srv := start(t)
		srv.SetFault("c.test", dnstest.Fault{Drop: true})
		a, _ := boundedAnalyze(t, srv, "c.test", Options{IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
		p := one(t, a, IDPresent)
		assert.Equal(t, report.StatusError, p.Status)
		assert.Contains(t, p.Message, "Could not look up the SPF record: ")
		for _, f := range a.Findings {
			assert.NotEqual(t, report.StatusFail, f.Status, "%s: %s", f.ID, f.Message)
		}
		assert.Equal(t, report.StatusError, one(t, a, IDIPAuthorized).Status)
		assert.Empty(t, findings(a, IDLookupLimit))
	})
	t.Run("the gateway's live include times out", func(t *testing.T) {
		srv := dnstest.MustStart(t, netZone(t, "test", `
c               IN TXT "v=spf1 ip4:203.0.113.0/24 -all"
_netblocks.gw   IN TXT "v=spf1 ip4:185.58.84.0/22 ~all"
`))
		srv.SetFault("_netblocks.gw.test", dnstest.Fault{Drop: true})
		p := &profile.Profile{ID: "gw-eu", Name: "Gateway EU", Kind: profile.KindGateway,
			SPFIncludes: []string{"_netblocks.gw.test"}, IPRangesLive: []string{"_netblocks.gw.test"},
			IPRanges: prefixes("203.0.113.0/24"), IPRangesSnapshot: "2025-01"}
		a, _ := boundedAnalyze(t, srv, "c.test", Options{Profile: p})
		require.NotNil(t, a.Gateway)
		assert.False(t, a.Gateway.Live)
		assert.Equal(t, prefixes("203.0.113.0/24"), a.Gateway.Ranges)
		r := one(t, a, IDRangesAuthorized)
		assert.Equal(t, report.StatusPass, r.Status)
		assert.Contains(t, r.Message, "stored snapshot (2025-01) of profile gw-eu, because the live lookup failed: _netblocks.gw.test: ")
		assert.Contains(t, r.Message, "(unverified)")
		h := one(t, a, IDHeadroom)
		assert.Equal(t, report.StatusError, h.Status, "the include's cost is unknown")
		assert.Contains(t, h.Message, "the gateway's include could not be evaluated")
		assert.Equal(t, report.StatusFail, one(t, a, IDGatewayInclude).Status, "the record lacks it, whatever its content")
		assert.Equal(t, 1, srv.Count("_netblocks.gw.test", dns.TypeTXT))
	})
}

// A tree that asks for thousands of questions: MaxTermLookups and
// MaxQueries stop it, and the tree says it is incomplete.
func TestHostileQueryBounds(t *testing.T) {
	// The root has 30 a: terms and 30 includes, interleaved; each include
	// has 30 a: terms of its own: 1 + 30*2 + 30*(1 + 30*2) = 1891
	// questions unbounded.
	var b strings.Builder
	var root []string
	for i := range 30 {
		root = append(root, fmt.Sprintf("include:i%d.test a:h%d.test", i, i))
		fmt.Fprintf(&b, "h%d IN A 192.0.2.%d\n", i, i+1)
		var terms []string
		for j := range 30 {
			terms = append(terms, fmt.Sprintf("a:h%d.i%d.test", j, i))
			fmt.Fprintf(&b, "h%d.i%d IN A 198.51.%d.%d\n", j, i, i, j+1)
		}
		fmt.Fprintf(&b, "i%d IN TXT \"v=spf1 %s -all\"\n", i, strings.Join(terms, " "))
	}
	fmt.Fprintf(&b, "c IN TXT \"v=spf1 %s -all\"\n", strings.Join(root, " "))
	srv := dnstest.MustStart(t, netZone(t, "test", b.String()))

	t.Run("defaults", func(t *testing.T) {
		srv.ResetLog()
		a, _ := boundedAnalyze(t, srv, "c.test", Options{})
		opt := ExpandOptions{}.withDefaults()
		tree := a.Tree
		// MaxTermLookups: only the first 30 DNS-querying terms of the root
		// (15 includes, 15 a: terms) are looked up.
		var bound []string
		for _, ti := range tree.Root.Terms {
			if ti.Skip == SkipBound {
				bound = append(bound, ti.Term.Text)
			}
		}
		assert.Len(t, bound, 30)
		assert.Equal(t, 1+15*2+15*(1+30*2), tree.Queries)
		assert.Len(t, srv.Log(), tree.Queries)
		assert.LessOrEqual(t, tree.Queries, opt.MaxQueries)
		f := one(t, a, IDLookupLimit)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "SPF needs at least 510 DNS lookups")
		assert.False(t, a.Section.Complete)
		assert.Contains(t, a.Section.Incomplete, `c.test: term 31 "include:i15.test" not looked up: too many DNS-querying terms in one record`)
	})
	t.Run("MaxQueries", func(t *testing.T) {
		srv.ResetLog()
		const maxQ = 200
		a, _ := boundedAnalyze(t, srv, "c.test", Options{Expand: ExpandOptions{MaxQueries: maxQ}})
		tree := a.Tree
		assert.Equal(t, maxQ, tree.Queries)
		assert.LessOrEqual(t, len(srv.Log()), maxQ)
		refused := 0
		for _, s := range tree.Incomplete {
			if strings.Contains(s, fmt.Sprintf("spf: not expanded: more than %d DNS questions", maxQ)) {
				refused++
			}
		}
		assert.Positive(t, refused, "Incomplete: %q", tree.Incomplete)
		f := one(t, a, IDLookupLimit)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "SPF needs at least ")
		assert.False(t, a.Section.Complete)
		var notExpanded int
		walkNodes(tree.Root, func(n *Node) {
			if errors.Is(n.Err, ErrNotExpanded) {
				notExpanded++
			}
		})
		t.Logf("%d questions, %d records not expanded, %d incomplete entries", tree.Queries, notExpanded, len(tree.Incomplete))
	})
}
