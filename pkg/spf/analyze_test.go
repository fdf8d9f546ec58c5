package spf

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/profile"
	"github.com/mfcheck/mfcheck/pkg/report"
)

// termCosts lists "text cost/total" for a node's terms.
func termCosts(n *Node) []string {
	var out []string
	for _, ti := range n.Terms {
		out = append(out, fmt.Sprintf("%s %d/%d", ti.Term.Text, ti.Cost, ti.Total))
	}
	return out
}

// The worst-case count: every include counted each time it is met, a
// redirect next to all and terms after all cost nothing, a redirect written
// first is still counted last.
func TestCountArithmetic(t *testing.T) {
	z := zoneOf(t, map[string][]string{
		"c.test":   {"TXT v=spf1 redirect=r.test a mx include:v.test include:v.test exists:%{i}.x.test ptr a ip4:192.0.2.0/24", "A 192.0.2.1", "MX 10 m.c.test"},
		"m.c.test": {"A 192.0.2.2"},
		"v.test":   {"TXT v=spf1 include:v2.test ~all"},
		"v2.test":  {"TXT v=spf1 ip4:198.51.100.0/24 -all redirect=ignored.test include:never.test"},
		"r.test":   {"TXT v=spf1 a:none.test -all"},
	})
	tree := Expand(context.Background(), z, "c.test", ExpandOptions{})
	assert.Equal(t, []string{
		"redirect=r.test 2/11", // evaluated last: its own lookup and a:none.test
		"a 1/1", "mx 1/2",
		"include:v.test 2/4", "include:v.test 2/6", // counted twice, as evaluation pays twice
		"exists:%{i}.x.test 1/7", "ptr 1/8", "a 1/9", "ip4:192.0.2.0/24 0/9",
	}, termCosts(tree.Root))
	v2 := tree.Root.Terms[3].Child.Terms[0].Child
	assert.Equal(t, []string{"ip4:198.51.100.0/24 0/4", "-all 0/4", "redirect=ignored.test 0/4", "include:never.test 0/4"}, termCosts(v2))
	assert.Equal(t, SkipRedirectWithAll, v2.Terms[2].Skip)
	assert.Equal(t, SkipAfterAll, v2.Terms[3].Skip)
	assert.Equal(t, 11, tree.Lookups)
	assert.True(t, tree.CountsExact)
	assert.Equal(t, 1, tree.Voids4, "a:none.test")
	assert.Equal(t, 3, tree.Voids6, "a:none.test, and c.test has no AAAA for both a terms")
	assert.Len(t, tree.Unknown, 2, "the exists macro and ptr")
	assert.False(t, tree.Root.Terms[0].OverLimit, "the redirect is the 10th lookup")
	assert.True(t, tree.Root.Terms[0].Child.Terms[0].OverLimit, "a:none.test is the 11th")
	// Each name was asked once, although v.test is included twice.
	assert.Equal(t, int64(tree.Queries), z.queries.Load())
}

func gwProfile() *profile.Profile {
	return &profile.Profile{
		ID: "gw-eu", Name: "Gateway EU", Kind: profile.KindGateway,
		SPFIncludes:  []string{"_netblocks.gw.test"},
		IPRangesLive: []string{"_netblocks.gw.test"},
		IPRanges:     prefixes("203.0.113.0/24"),
	}
}

// gwZone is a tenant with Microsoft-like and gateway-like vendors.
func gwZone() map[string][]string {
	return map[string][]string{
		"_netblocks.gw.test":  {"TXT v=spf1 ip4:185.58.84.0/22 include:_netblocks2.gw.test ~all"},
		"_netblocks2.gw.test": {"TXT v=spf1 ip4:91.220.42.0/24 ~all"},
		"spf.cloud.test":      {"TXT v=spf1 ip4:40.92.0.0/15 include:spfd.cloud.test -all"},
		"spfd.cloud.test":     {"TXT v=spf1 ip4:52.100.0.0/14 -all"},
	}
}

func analyze(t *testing.T, data map[string][]string, domain string, opt Options) *Analysis {
	t.Helper()
	a := Analyze(context.Background(), zoneOf(t, data), domain, opt)
	rep := report.New(domain, "health")
	rep.Add(a.Findings...)
	require.NoError(t, rep.Validate())
	return a
}

// findings returns the findings with id, keyed "status subject".
func findings(a *Analysis, id string) []report.Finding {
	var out []report.Finding
	for _, f := range a.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func one(t *testing.T, a *Analysis, id string) report.Finding {
	t.Helper()
	fs := findings(a, id)
	require.Len(t, fs, 1, "findings %s: %+v", id, fs)
	return fs[0]
}

func TestStaticFindings(t *testing.T) {
	tests := []struct {
		name   string
		data   map[string][]string
		id     string
		status report.Status
		msg    string // a part of the message
	}{
		{"present", map[string][]string{"c.test": {"TXT v=spf1 -all"}}, IDPresent, report.StatusPass, "v=spf1 -all"},
		{"absent", map[string][]string{"c.test": {"TXT hello"}}, IDPresent, report.StatusFail, "No SPF record"},
		{"nxdomain", map[string][]string{}, IDPresent, report.StatusFail, "no TXT records"},
		{"timeout", map[string][]string{"c.test": {"TIMEOUT"}}, IDPresent, report.StatusError, "Could not look up"},
		{"multiple", map[string][]string{"c.test": {"TXT v=spf1 -all", "TXT v=spf1 mx -all"}}, IDMultiple, report.StatusFail, "publishes 2 SPF records"},
		{"syntax", map[string][]string{"c.test": {"TXT v=spf1 mx ip4:10.0.0.0/33 -all"}}, IDSyntax, report.StatusFail, `term 2 "ip4:10.0.0.0/33": prefix length 33 is over 32`},
		{"syntax in an include", map[string][]string{"c.test": {"TXT v=spf1 include:v.test -all"}, "v.test": {"TXT v=spf1 ip5:1.2.3.4"}}, IDSyntax, report.StatusFail, "v.test (include:v.test of c.test)"},
		{"invalid name", map[string][]string{"c.test": {"TXT v=spf1 a:foo..bar.test -all"}}, IDSyntax, report.StatusWarn, "never matches"},
		{"loop through redirect", map[string][]string{"c.test": {"TXT v=spf1 include:b.test -all"}, "b.test": {"TXT v=spf1 redirect=c.test"}}, IDLoop, report.StatusFail, "c.test -> b.test -> c.test"},
		{"include without spf", map[string][]string{"c.test": {"TXT v=spf1 include:gone.test -all"}}, IDIncludeWithoutSPF, report.StatusFail, "RFC 7208 §5.2"},
		{"redirect without spf", map[string][]string{"c.test": {"TXT v=spf1 redirect=gone.test"}}, IDIncludeWithoutSPF, report.StatusFail, "RFC 7208 §6.1"},
		{"+all", map[string][]string{"c.test": {"TXT v=spf1 mx +all"}}, IDAllPolicy, report.StatusFail, "every host on the internet"},
		{"?all", map[string][]string{"c.test": {"TXT v=spf1 mx ?all"}}, IDAllPolicy, report.StatusWarn, "?all"},
		{"no all", map[string][]string{"c.test": {"TXT v=spf1 mx"}}, IDAllPolicy, report.StatusWarn, "no all term"},
		{"all via redirect", map[string][]string{"c.test": {"TXT v=spf1 redirect=r.test"}, "r.test": {"TXT v=spf1 -all"}}, IDAllPolicy, report.StatusPass, "r.test ends in -all"},
		{"include of +all", map[string][]string{"c.test": {"TXT v=spf1 include:v.test -all"}, "v.test": {"TXT v=spf1 +all"}}, IDAllPolicy, report.StatusFail, "authorizes every IPv4 address"},
		{"ptr", map[string][]string{"c.test": {"TXT v=spf1 ptr -all"}}, IDPTR, report.StatusWarn, "term 1 `ptr` of c.test"},
		{"p macro", map[string][]string{"c.test": {"TXT v=spf1 exists:%{p}.x.test -all"}}, IDPTR, report.StatusWarn, "%{p}"},
		{"redirect with all", map[string][]string{"c.test": {"TXT v=spf1 -all redirect=r.test"}}, IDRedirectWithAll, report.StatusWarn, "never used"},
		{"mx limit", map[string][]string{"c.test": {"TXT v=spf1 mx -all", "MX 1 a.test", "MX 2 b.test", "MX 3 c.test", "MX 4 d.test", "MX 5 e.test", "MX 6 f.test", "MX 7 g.test", "MX 8 h.test", "MX 9 i.test", "MX 10 j.test", "MX 11 k.test"}}, IDMXLimit, report.StatusFail, "11 MX records"},
		{"void warn", map[string][]string{"c.test": {"TXT v=spf1 a:old.test -all"}}, IDVoidLimit, report.StatusWarn, "1 of 2 allowed void lookups"},
		{"void fail", map[string][]string{"c.test": {"TXT v=spf1 a:o1.test mx:o2.test exists:o3.test -all"}}, IDVoidLimit, report.StatusFail, "3 void lookups"},
		{"lookups pass", map[string][]string{"c.test": {"TXT v=spf1 a mx -all"}}, IDLookupLimit, report.StatusPass, "2 of 10"},
		{"split record", map[string][]string{"c.test": {"TXT v=spf1 include:spf.cloud.test", "TXT ip4:192.0.2.0/24 -all"}, "spf.cloud.test": {"TXT v=spf1 -all"}}, IDSplitRecord, report.StatusWarn, "record of its own"},
		{"size pass", map[string][]string{"c.test": {"TXT v=spf1 -all"}}, IDSize, report.StatusPass, "within 512"},
		{"size warn", map[string][]string{"c.test": {"TXT v=spf1 " + strings.Repeat("ip4:192.0.2.1 ", 40) + "-all"}}, IDSize, report.StatusWarn, "over the 512"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := analyze(t, tc.data, "c.test", Options{})
			fs := findings(a, tc.id)
			require.NotEmpty(t, fs, "no %s finding in %+v", tc.id, a.Findings)
			assert.Equal(t, tc.status, fs[0].Status, fs[0].Message)
			assert.Contains(t, fs[0].Message, tc.msg)
		})
	}
}

// Over the limit: the finding names the first term evaluated over it and
// the addresses the record loses to permerror.
func TestLookupLimitExplainsWhatIsLost(t *testing.T) {
	data := gwZone()
	data["c.test"] = []string{"TXT v=spf1 include:spf.cloud.test " + strings.Repeat("a ", 8) + "include:_netblocks.gw.test -all", "A 192.0.2.1"}
	a := analyze(t, data, "c.test", Options{})
	f := one(t, a, IDLookupLimit)
	assert.Equal(t, report.StatusFail, f.Status)
	assert.Contains(t, f.Message, "SPF needs 12 DNS lookups")
	assert.Contains(t, f.Message, "term 10 `include:_netblocks.gw.test` of c.test")
	assert.Contains(t, f.Message, "91.220.42.0/24, 185.58.84.0/22 that the record means to authorize fail SPF")
	terms := f.Evidence["terms"].([]map[string]any)
	assert.Equal(t, []map[string]any{{"term": "include:spf.cloud.test", "lookups": 2}, {"term": "include:_netblocks.gw.test", "lookups": 2}, {"term": "a", "lookups": 1}}, terms[:3])
}

func TestGatewayQuestions(t *testing.T) {
	t.Run("missing include, room for it", func(t *testing.T) {
		data := gwZone()
		data["c.test"] = []string{"TXT v=spf1 include:spf.cloud.test ip4:192.0.2.10 -all"}
		a := analyze(t, data, "c.test", Options{Profile: gwProfile(), Mode: "readiness"})
		f := one(t, a, IDGatewayInclude)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Equal(t, "Add the gateway's include before the all term: v=spf1 include:spf.cloud.test ip4:192.0.2.10 include:_netblocks.gw.test -all", f.Remediation)
		h := one(t, a, IDHeadroom)
		assert.Equal(t, report.StatusPass, h.Status)
		assert.Equal(t, "The record needs 2 DNS lookups now; adding include:_netblocks.gw.test (2) makes 4 of 10, leaving 6", h.Message)
		r := one(t, a, IDRangesAuthorized)
		assert.Equal(t, report.StatusFail, r.Status)
		assert.Equal(t, []string{"91.220.42.0/24", "185.58.84.0/22"}, r.Evidence["uncovered"])
		assert.Contains(t, r.Message, "live SPF of _netblocks.gw.test")
		require.NotNil(t, a.Gateway)
		assert.True(t, a.Gateway.Live)
		assert.Equal(t, prefixes("91.220.42.0/24", "185.58.84.0/22"), a.Gateway.Ranges)
	})
	t.Run("missing include, no room", func(t *testing.T) {
		data := gwZone()
		data["c.test"] = []string{"TXT v=spf1 include:spf.cloud.test a mx a:x.c.test a:y.c.test a:z.c.test a:w.c.test a:v.c.test -all",
			"A 192.0.2.1", "MX 1 c.test"}
		for _, h := range []string{"x", "y", "z", "w", "v"} {
			data[h+".c.test"] = []string{"A 192.0.2.2"}
		}
		a := analyze(t, data, "c.test", Options{Profile: gwProfile()})
		h := one(t, a, IDHeadroom)
		assert.Equal(t, report.StatusFail, h.Status)
		assert.Contains(t, h.Message, "needs 9 DNS lookups now; adding include:_netblocks.gw.test (2) makes 11, over the limit of 10")
	})
	t.Run("present", func(t *testing.T) {
		data := gwZone()
		data["c.test"] = []string{"TXT v=spf1 include:_spf.c.test -all"}
		data["_spf.c.test"] = []string{"TXT v=spf1 include:_netblocks.gw.test ~all"}
		a := analyze(t, data, "c.test", Options{Profile: gwProfile()})
		f := one(t, a, IDGatewayInclude)
		assert.Equal(t, report.StatusPass, f.Status)
		assert.Contains(t, f.Message, "term 1 `include:_netblocks.gw.test` of _spf.c.test")
		assert.Equal(t, report.StatusPass, one(t, a, IDRangesAuthorized).Status)
		assert.Equal(t, "The record needs 3 of 10 DNS lookups with the gateway include; 7 left for other senders", one(t, a, IDHeadroom).Message)
	})
	t.Run("flattened copy is an equivalent superset", func(t *testing.T) {
		data := gwZone()
		data["c.test"] = []string{"TXT v=spf1 ip4:185.58.84.0/22 ip4:91.220.42.0/24 -all"}
		a := analyze(t, data, "c.test", Options{Profile: gwProfile()})
		f := one(t, a, IDGatewayInclude)
		assert.Equal(t, report.StatusPass, f.Status)
		assert.Contains(t, f.Message, "equivalent for now")
	})
	t.Run("live lookup fails: stored ranges, said so", func(t *testing.T) {
		data := gwZone()
		data["_netblocks.gw.test"] = []string{"TIMEOUT"}
		data["c.test"] = []string{"TXT v=spf1 ip4:203.0.113.0/24 -all"}
		a := analyze(t, data, "c.test", Options{Profile: gwProfile()})
		require.NotNil(t, a.Gateway)
		assert.False(t, a.Gateway.Live)
		assert.True(t, a.Gateway.Unverified)
		r := one(t, a, IDRangesAuthorized)
		assert.Equal(t, report.StatusPass, r.Status)
		assert.Contains(t, r.Message, "stored snapshot")
		assert.Contains(t, r.Message, "(unverified)")
		assert.Equal(t, report.StatusError, one(t, a, IDHeadroom).Status, "the include's cost is unknown")
	})
	t.Run("include after the limit", func(t *testing.T) {
		data := gwZone()
		data["c.test"] = []string{"TXT v=spf1 " + strings.Repeat("a ", 10) + "include:_netblocks.gw.test -all", "A 192.0.2.1"}
		a := analyze(t, data, "c.test", Options{Profile: gwProfile()})
		f := one(t, a, IDGatewayInclude)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "after the 10th DNS lookup")
	})
}

func TestIPAuthorized(t *testing.T) {
	data := gwZone()
	data["c.test"] = []string{"TXT v=spf1 include:spf.cloud.test ip4:192.0.2.10 ~all"}
	z := zoneOf(t, data)
	a := Analyze(context.Background(), z, "c.test", Options{IPs: []netip.Addr{
		netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("52.101.1.1"), netip.MustParseAddr("198.51.100.9"),
	}})
	fs := findings(a, IDIPAuthorized)
	require.Len(t, fs, 3)
	assert.Equal(t, report.StatusPass, fs[0].Status)
	assert.Equal(t, "192.0.2.10 gets pass from `ip4:192.0.2.10` of c.test", fs[0].Message)
	assert.Equal(t, report.StatusPass, fs[1].Status)
	assert.Equal(t, "52.101.1.1 gets pass from `include:spf.cloud.test` of c.test", fs[1].Message)
	assert.Equal(t, report.StatusFail, fs[2].Status)
	assert.Contains(t, fs[2].Message, "gets softfail from `~all` of c.test")
	assert.Contains(t, fs[2].Remediation, "v=spf1 include:spf.cloud.test ip4:192.0.2.10 ip4:198.51.100.9 ~all")
	// check_host() was answered from the expansion: no new questions.
	assert.Equal(t, int64(a.Tree.Queries), z.queries.Load())
}

func TestRangesGivenAndMaybe(t *testing.T) {
	data := map[string][]string{"c.test": {"TXT v=spf1 ip4:192.0.2.0/25 exists:%{i}.ok.test -all"}}
	a := analyze(t, data, "c.test", Options{Ranges: prefixes("192.0.2.0/25")})
	assert.Equal(t, report.StatusPass, one(t, a, IDRangesAuthorized).Status)
	a = analyze(t, data, "c.test", Options{Ranges: prefixes("192.0.2.0/24")})
	f := one(t, a, IDRangesAuthorized)
	assert.Equal(t, report.StatusWarn, f.Status)
	assert.Contains(t, f.Message, "192.0.2.128/25 might get pass")
}

func TestSectionCarriesTheTree(t *testing.T) {
	data := gwZone()
	data["c.test"] = []string{"TXT v=spf1 include:_netblocks.gw.test a:gone.c.test -all"}
	a := analyze(t, data, "c.test", Options{Flatten: true, FlattenLookups: 0})
	s := a.Section
	require.NotNil(t, s.Tree)
	assert.Equal(t, 3, s.Lookups)
	assert.Equal(t, 1, s.VoidLookups)
	assert.Equal(t, "include:_netblocks.gw.test", s.Tree.Terms[0].Text)
	assert.Equal(t, 2, s.Tree.Terms[0].Cost)
	require.NotNil(t, s.Tree.Terms[0].Child)
	assert.Equal(t, "_netblocks2.gw.test", s.Tree.Terms[0].Child.Terms[1].Child.Domain)
	assert.Equal(t, []string{"ipv4", "ipv6"}, s.Tree.Terms[1].Void)
	assert.Equal(t, "no A record; no AAAA record", s.Tree.Terms[1].Note)
	require.NotNil(t, s.Flattened)
	assert.Equal(t, "v=spf1 ip4:91.220.42.0/24 ip4:185.58.84.0/22 -all", strings.Join(s.Flattened.Records[0].Strings, ""))
	assert.Equal(t, 0, s.Flattened.Lookups)
}

// Before a cutover the set to publish gains the gateway's include, which
// stays live and counts against the budget.
func TestFlattenAddsTheMissingGatewayInclude(t *testing.T) {
	data := gwZone()
	data["c.test"] = []string{"TXT v=spf1 include:spf.cloud.test " + strings.Repeat("a ", 8) + "-all", "A 192.0.2.1"}
	a := analyze(t, data, "c.test", Options{Profile: gwProfile(), Flatten: true, FlattenLookups: 10})
	f := a.Flattened
	require.NotNil(t, f)
	assert.Equal(t, []string{"include:_netblocks.gw.test"}, f.Added)
	// The eight a terms are void for IPv6 clients: replaced whatever the
	// budget; the cloud include fits and stays live.
	assert.Equal(t, "v=spf1 include:spf.cloud.test ip4:192.0.2.1 include:_netblocks.gw.test -all", f.Records[0].Text)
	assert.Equal(t, 4, f.Lookups)
	assert.Equal(t, []string{"include:_netblocks.gw.test"}, a.Section.Flattened.Added)

	a = analyze(t, data, "c.test", Options{Profile: gwProfile(), Flatten: true, FlattenLookups: 2})
	assert.Equal(t, "v=spf1 ip4:40.92.0.0/15 ip4:52.100.0.0/14 ip4:192.0.2.1 include:_netblocks.gw.test -all", a.Flattened.Records[0].Text)
	assert.Equal(t, 2, a.Flattened.Lookups, "the gateway's include and its nested include")
}

// The first term over the limit is found in evaluation order: inside an
// include before the terms after it.
func TestFirstOverLimitInEvaluationOrder(t *testing.T) {
	data := map[string][]string{
		"c.test":   {"TXT v=spf1 " + strings.Repeat("a ", 8) + "include:v.test a -all", "A 192.0.2.1"},
		"v.test":   {"TXT v=spf1 a:h.v.test a:h.v.test -all"},
		"h.v.test": {"A 192.0.2.2"},
	}
	a := analyze(t, data, "c.test", Options{})
	f := one(t, a, IDLookupLimit)
	assert.Contains(t, f.Message, "from term 2 `a:h.v.test` of v.test on", f.Message)
}
