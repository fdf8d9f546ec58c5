package spf

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

// staticResult is the result Coverage promises for ip, or "" when it
// promises none (the address is in Maybe).
func staticResult(c *Coverage, ip netip.Addr) Result {
	ip = ip.Unmap()
	for r, set := range c.Results {
		if set.Contains(ip) {
			return r
		}
	}
	return ""
}

// assertAgrees checks every address of ips: where the coverage promises a
// result, check_host() gives exactly that; where it puts the address in
// neither Pass nor Maybe, check_host() does not give pass. It returns how
// many addresses had a promised result, so callers can tell the test had
// teeth.
func assertAgrees(t *testing.T, z Resolver, domain, sender string, lim Limits, ips []netip.Addr, label string) int {
	t.Helper()
	ctx := context.Background()
	tree := Expand(ctx, z, domain, ExpandOptions{Limits: lim})
	cov := tree.Coverage(lim)
	c := &Checker{Resolver: z, LookupLimit: lim.Lookups, VoidLimit: lim.Voids, MXLimit: lim.MX, Trace: true}
	decided := 0
	for _, ip := range ips {
		out := c.CheckHost(ctx, Query{IP: ip, Sender: sender, Domain: domain, Helo: "helo.example"})
		got := staticResult(cov, ip)
		if got != "" {
			decided++
			if !assert.Equal(t, out.Result, got, "%s: %s: coverage promises %s, check_host gives %s (%v)", label, ip, got, out.Result, out.Err) {
				for _, s := range out.Trace {
					t.Logf("  %s[%s] term %d %q match=%v result=%s %s", strings.Repeat("  ", s.Depth), s.Domain, s.Term, s.Text, s.Match, s.Result, s.Detail)
				}
			}
		}
		if out.Result == Pass {
			assert.True(t, cov.Pass.Contains(ip.Unmap()) || cov.Maybe.Contains(ip.Unmap()), "%s: %s passes check_host but is in neither Pass nor Maybe", label, ip)
		}
	}
	return decided
}

// The RFC 7208, RFC 4408 and pyspf suites, every test: the static
// evaluation of the whole address space gives each test's client the result
// check_host() gives it, wherever it claims to know.
func TestCoverageAgreesWithCheckHostOnSuites(t *testing.T) {
	total, decided := 0, 0
	for _, s := range conformanceSuites {
		for _, sc := range loadSuite(t, filepath.Join("..", "..", "testdata", "spf", s.file)) {
			for _, tc := range sc.tests {
				ip, err := netip.ParseAddr(tc.host)
				require.NoError(t, err)
				sender := tc.mailfrom
				if sender == "" {
					sender = "postmaster@" + tc.helo
				}
				domain := sender[strings.LastIndexByte(sender, '@')+1:]
				total++
				// The suites' zones use mixed-case names, helo-dependent
				// macros and timeouts: all must be handled.
				decided += assertAgrees(t, sc.zone, domain, sender, Limits{}, []netip.Addr{ip}, s.key+"/"+sc.name+"/"+tc.name)
			}
		}
	}
	t.Logf("static coverage decided %d of %d suite clients; the rest depend on macros or ptr", decided, total)
	assert.Greater(t, decided, total*3/4, "the static evaluation should decide most suite tests")
}

// randomZone builds a small random world of records that include each
// other, with addresses in 10.0.0.0/24 and 2001:db8::/120 so that ranges
// overlap, some names void, some timing out.
func randomZone(r *rand.Rand) (map[string][]string, []string) {
	names := []string{"d0.test", "d1.test", "d2.test", "d3.test", "d4.test", "d5.test"}
	quals := []string{"", "+", "-", "~", "?"}
	ip4 := func() string {
		bits := 24 + r.IntN(9)
		return fmt.Sprintf("ip4:10.0.0.%d/%d", r.IntN(256), bits)
	}
	data := map[string][]string{}
	for _, n := range names {
		switch r.IntN(10) {
		case 0:
			continue // NXDOMAIN
		case 1:
			data[n] = []string{"TXT not spf"}
			continue
		case 2:
			data[n] = []string{"TIMEOUT"}
			continue
		}
		var terms []string
		for k := r.IntN(6); k >= 0; k-- {
			q := quals[r.IntN(len(quals))]
			target := names[r.IntN(len(names))]
			switch r.IntN(9) {
			case 0, 1:
				terms = append(terms, q+ip4())
			case 2:
				terms = append(terms, q+fmt.Sprintf("ip6:2001:db8::%x/%d", r.IntN(256), 120+r.IntN(9)))
			case 3:
				terms = append(terms, q+"a:"+target+fmt.Sprintf("/%d", 24+r.IntN(9)))
			case 4:
				terms = append(terms, q+"mx:"+target)
			case 5, 6:
				terms = append(terms, q+"include:"+target)
			case 7:
				terms = append(terms, q+"exists:"+target)
			case 8:
				terms = append(terms, q+"exists:%{i}."+target) // unknown
			}
		}
		switch r.IntN(4) {
		case 0:
			terms = append(terms, quals[r.IntN(len(quals))]+"all")
		case 1:
			terms = append(terms, "redirect="+names[r.IntN(len(names))])
		}
		recs := []string{"TXT v=spf1 " + strings.Join(terms, " ")}
		for k := r.IntN(3); k > 0; k-- {
			recs = append(recs, fmt.Sprintf("A 10.0.0.%d", r.IntN(256)))
		}
		if r.IntN(3) == 0 {
			recs = append(recs, fmt.Sprintf("AAAA 2001:db8::%x", r.IntN(256)))
		}
		if r.IntN(2) == 0 {
			recs = append(recs, "MX 10 "+names[r.IntN(len(names))])
		}
		data[n] = recs
	}
	return data, names
}

// sampleIPs is every address the random worlds can distinguish and a few
// they cannot.
func sampleIPs() []netip.Addr {
	var out []netip.Addr
	for i := 0; i < 256; i++ {
		out = append(out, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	for i := 0; i < 256; i += 7 {
		out = append(out, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i)))
	}
	return append(out, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("::ffff:10.0.0.1"))
}

// Random include trees under the RFC limits and under tight ones (so the
// lookup and void limits are hit often): for every sampled address, the
// static result equals check_host()'s.
func TestCoverageAgreesWithCheckHostRandom(t *testing.T) {
	ips := sampleIPs()
	decided, total := 0, 0
	for seed := uint64(0); seed < 400; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		data, _ := randomZone(r)
		z := zoneOf(t, data)
		for _, lim := range []Limits{{}, {Lookups: 3, Voids: 1, MX: 2}} {
			label := fmt.Sprintf("seed %d limits %+v\n%s", seed, lim, dumpZone(data))
			decided += assertAgrees(t, z, "d0.test", "user@d0.test", lim, ips, label)
			total += len(ips)
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("decided %d of %d (seed, address) pairs statically", decided, total)
	assert.Greater(t, decided, total/2)
}

func dumpZone(data map[string][]string) string {
	var b strings.Builder
	for _, n := range []string{"d0.test", "d1.test", "d2.test", "d3.test", "d4.test", "d5.test"} {
		fmt.Fprintf(&b, "  %s: %q\n", n, data[n])
	}
	return b.String()
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Hand-made cases with the exact sets expected.
func TestCoverageSets(t *testing.T) {
	tests := []struct {
		name  string
		data  map[string][]string
		pass  []string
		maybe []string
	}{{
		name: "order decides: an earlier fail wins",
		data: map[string][]string{"c.test": {"TXT v=spf1 -ip4:192.0.2.128/25 ip4:192.0.2.0/24 -all"}},
		pass: []string{"192.0.2.0/25"},
	}, {
		name: "include matches only on the target's pass",
		data: map[string][]string{
			"c.test":   {"TXT v=spf1 include:gw.test ip4:198.51.100.0/24 -all"},
			"gw.test":  {"TXT v=spf1 -ip4:198.51.100.7 ip4:203.0.113.0/24 ~all"},
			"unused.x": {"A 192.0.2.1"},
		},
		// 198.51.100.7 fails inside the include, which then does not
		// match; the parent's ip4 authorizes it.
		pass: []string{"198.51.100.0/24", "203.0.113.0/24"},
	}, {
		name: "a and mx with prefix lengths, both families",
		data: map[string][]string{
			"c.test":      {"TXT v=spf1 a/30 mx//64 -all", "A 192.0.2.9", "MX 10 mail.c.test"},
			"mail.c.test": {"A 198.51.100.1", "AAAA 2001:db8::1"},
		},
		pass: []string{"192.0.2.8/30", "198.51.100.1/32"},
	}, {
		name: "a macro term before a range leaves the range certain when its qualifier is pass",
		data: map[string][]string{"c.test": {"TXT v=spf1 exists:%{i}.allow.test ip4:192.0.2.0/24 -all"}},
		pass: []string{"192.0.2.0/24"},
		maybe: []string{"0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/23", "192.0.3.0/24", "192.0.4.0/22", "192.0.8.0/21",
			"192.0.16.0/20", "192.0.32.0/19", "192.0.64.0/18", "192.0.128.0/17", "192.1.0.0/16", "192.2.0.0/15",
			"192.4.0.0/14", "192.8.0.0/13", "192.16.0.0/12", "192.32.0.0/11", "192.64.0.0/10", "192.128.0.0/9",
			"193.0.0.0/8", "194.0.0.0/7", "196.0.0.0/6", "200.0.0.0/5", "208.0.0.0/4", "224.0.0.0/3"},
	}, {
		name:  "a fail macro term makes later passes uncertain",
		data:  map[string][]string{"c.test": {"TXT v=spf1 -exists:%{i}.block.test ip4:192.0.2.0/24 -all"}},
		maybe: []string{"192.0.2.0/24"},
	}, {
		name: "the 11th lookup loses what comes after it",
		data: map[string][]string{
			"c.test":  {"TXT v=spf1 " + strings.Repeat("a:none.test ", 0) + strings.TrimSpace(strings.Repeat("include:e.test ", 10)) + " include:gw.test -all"},
			"e.test":  {"TXT v=spf1 -all"},
			"gw.test": {"TXT v=spf1 ip4:192.0.2.0/24 -all"},
		},
	}, {
		name: "redirect is used only when nothing matched",
		data: map[string][]string{
			"c.test": {"TXT v=spf1 -ip4:192.0.2.1 redirect=r.test"},
			"r.test": {"TXT v=spf1 ip4:192.0.2.0/30 -all"},
		},
		pass: []string{"192.0.2.0/32", "192.0.2.2/31"},
	}, {
		name: "a literal exists matches every client",
		data: map[string][]string{"c.test": {"TXT v=spf1 exists:yes.test -all"}, "yes.test": {"A 127.0.0.2"}},
		pass: []string{"0.0.0.0/0"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := zoneOf(t, tc.data)
			cov := Expand(context.Background(), z, "c.test", ExpandOptions{}).Coverage(Limits{})
			// The cases spell out IPv4; IPv6 follows the same code.
			assert.Equal(t, tc.pass, v4Strings(cov.Pass), "pass")
			assert.Equal(t, tc.maybe, v4Strings(cov.Maybe), "maybe")
		})
	}
}

// v4Strings lists the IPv4 prefixes of s (nil when there are none).
func v4Strings(s *netipx.IPSet) []string {
	var out []string
	for _, p := range s.Prefixes() {
		if p.Addr().Is4() {
			out = append(out, p.String())
		}
	}
	return out
}

func TestAuthorizedRanges(t *testing.T) {
	z := zoneOf(t, map[string][]string{
		"c.test": {"TXT v=spf1 ip4:185.58.85.0/24 exists:%{i}.x.test -all"},
	})
	cov := Expand(context.Background(), z, "c.test", ExpandOptions{}).Coverage(Limits{})
	uncovered, maybe := cov.Authorized(prefixes("185.58.84.0/22", "::ffff:185.58.85.7/128"))
	assert.Equal(t, prefixes("185.58.84.0/24", "185.58.86.0/23"), uncovered)
	assert.Equal(t, prefixes("185.58.84.0/24", "185.58.86.0/23"), maybe, "the exists macro might authorize them")
}
