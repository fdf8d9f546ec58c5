package dnstest

import (
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnswers(t *testing.T) {
	srv := startTestdata(t)
	soa := "example.test. SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300"
	otherSOA := "other.test. SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 60"
	// Positive answers carry the apex NS set and its addresses, as NSD does
	// (A records first, then AAAA).
	apexNS := []string{"example.test. NS ns1.example.test.", "example.test. NS ns2.example.test."}
	glue := []string{"ns1.example.test. A 127.0.1.1", "ns2.example.test. A 127.0.1.2", "ns1.example.test. AAAA ::1"}
	otherNS := []string{"other.test. NS ns1.example.test."}
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string
		ns     []string
		extra  []string
	}{
		{name: "apex SOA", qname: "example.test.", qtype: dns.TypeSOA, aa: true, answer: []string{soa}, ns: apexNS, extra: glue},
		{name: "A", qname: "www.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.example.test. A 127.0.1.10"}, ns: apexNS, extra: glue},
		{name: "case of the question kept", qname: "WWW.Example.TEST.", qtype: dns.TypeA, aa: true,
			answer: []string{"WWW.Example.TEST. A 127.0.1.10"}, ns: apexNS, extra: glue},
		{name: "ANY returns one RRset (RFC 8482)", qname: "www.example.test.", qtype: dns.TypeANY, aa: true,
			answer: []string{"www.example.test. A 127.0.1.10"}},
		{name: "ANY does not follow a CNAME", qname: "alias.example.test.", qtype: dns.TypeANY, aa: true,
			answer: []string{"alias.example.test. CNAME www.example.test."}},
		{name: "NODATA carries the SOA", qname: "www.example.test.", qtype: dns.TypeTXT, aa: true, ns: []string{soa}},
		{name: "NXDOMAIN carries the SOA", qname: "nope.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, ns: []string{soa}},
		{name: "below an existing name is NXDOMAIN", qname: "x.www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, ns: []string{soa}},
		{name: "empty non-terminal is NODATA", qname: "ent.example.test.", qtype: dns.TypeA, aa: true, ns: []string{soa}},
		{name: "TXT", qname: "_dmarc.example.test.", qtype: dns.TypeTXT, aa: true,
			answer: []string{`_dmarc.example.test. TXT "v=DMARC1; p=reject"`}, ns: apexNS, extra: glue},
		{name: "apex NS with glue", qname: "example.test.", qtype: dns.TypeNS, aa: true,
			answer: []string{"example.test. NS ns1.example.test.", "example.test. NS ns2.example.test."},
			extra:  []string{"ns1.example.test. A 127.0.1.1", "ns2.example.test. A 127.0.1.2", "ns1.example.test. AAAA ::1"}},
		{name: "MX with in-zone addresses only", qname: "example.test.", qtype: dns.TypeMX, aa: true,
			answer: []string{"example.test. MX 10 mail.example.test.", "example.test. MX 20 mail2.other.test."},
			ns:     apexNS, extra: append([]string{"mail.example.test. A 127.0.1.25"}, glue...)},
		{name: "CNAME in zone", qname: "alias.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"alias.example.test. CNAME www.example.test.", "www.example.test. A 127.0.1.10"}, ns: apexNS, extra: glue},
		{name: "CNAME chain", qname: "alias2.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"alias2.example.test. CNAME alias.example.test.", "alias.example.test. CNAME www.example.test.", "www.example.test. A 127.0.1.10"}, ns: apexNS, extra: glue},
		{name: "CNAME asked for", qname: "alias.example.test.", qtype: dns.TypeCNAME, aa: true,
			answer: []string{"alias.example.test. CNAME www.example.test."}, ns: apexNS, extra: glue},
		{name: "CNAME then NODATA", qname: "alias.example.test.", qtype: dns.TypeMX, aa: true,
			answer: []string{"alias.example.test. CNAME www.example.test."}, ns: []string{soa}},
		{name: "CNAME across zones", qname: "cross.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"cross.example.test. CNAME www.other.test.", "www.other.test. A 127.0.1.30"}, ns: otherNS},
		{name: "CNAME across zones, back", qname: "back.other.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"back.other.test. CNAME www.example.test.", "www.example.test. A 127.0.1.10"}, ns: apexNS, extra: glue},
		{name: "CNAME to a missing name in another zone", qname: "crossnx.example.test.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true,
			answer: []string{"crossnx.example.test. CNAME missing.other.test."}, ns: []string{otherSOA}},
		{name: "dangling CNAME", qname: "dangle.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			answer: []string{"dangle.example.test. CNAME missing.example.test."}, ns: []string{soa}},
		{name: "CNAME out of our zones", qname: "outside.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"outside.example.test. CNAME www.elsewhere.invalid."}},
		{name: "CNAME loop", qname: "loop1.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"loop1.example.test. CNAME loop2.example.test.", "loop2.example.test. CNAME loop1.example.test."}},
		{name: "referral", qname: "www.sub.example.test.", qtype: dns.TypeA,
			ns:    []string{"sub.example.test. NS ns.sub.example.test.", "sub.example.test. NS ns.other.test."},
			extra: []string{"ns.sub.example.test. A 127.0.1.53"}},
		{name: "referral for NS at the cut", qname: "sub.example.test.", qtype: dns.TypeNS,
			ns:    []string{"sub.example.test. NS ns.sub.example.test.", "sub.example.test. NS ns.other.test."},
			extra: []string{"ns.sub.example.test. A 127.0.1.53"}},
		{name: "referral for glue", qname: "ns.sub.example.test.", qtype: dns.TypeA,
			ns:    []string{"sub.example.test. NS ns.sub.example.test.", "sub.example.test. NS ns.other.test."},
			extra: []string{"ns.sub.example.test. A 127.0.1.53"}},
		{name: "DS at the cut is the parent's", qname: "sub.example.test.", qtype: dns.TypeDS, aa: true,
			answer: []string{"sub.example.test. DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"}},
		{name: "wildcard", qname: "foo.wild.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"foo.wild.example.test. A 127.0.1.20"}, ns: apexNS, extra: glue},
		{name: "wildcard, deeper", qname: "a.b.wild.example.test.", qtype: dns.TypeTXT, aa: true,
			answer: []string{`a.b.wild.example.test. TXT "wildcard"`}, ns: apexNS, extra: glue},
		{name: "wildcard NODATA", qname: "foo.wild.example.test.", qtype: dns.TypeMX, aa: true, ns: []string{soa}},
		{name: "existing name beats wildcard", qname: "exact.wild.example.test.", qtype: dns.TypeTXT, aa: true, ns: []string{soa}},
		{name: "wildcard parent is an empty non-terminal", qname: "wild.example.test.", qtype: dns.TypeA, aa: true, ns: []string{soa}},
		{name: "outside our zones is REFUSED", qname: "www.example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "parent of a zone is REFUSED", qname: "test.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := query(tc.qname, tc.qtype, 0, false)
			q.RecursionDesired = true
			r := exchange(t, srv, "udp", q)
			assert.Equal(t, dns.RcodeToString[tc.rcode], dns.RcodeToString[r.Rcode], "rcode")
			assert.Equal(t, tc.aa, r.Authoritative, "AA")
			assert.True(t, r.RecursionDesired, "RD copied")
			assert.False(t, r.RecursionAvailable, "RA")
			assert.Equal(t, q.Id, r.Id)
			assert.Equal(t, q.Question, r.Question)
			assert.Equal(t, orEmpty(tc.answer), shorts(r.Answer), "answer")
			assert.Equal(t, orEmpty(tc.ns), shorts(r.Ns), "authority")
			assert.Equal(t, orEmpty(tc.extra), shorts(r.Extra), "additional")
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestNegativeTTL checks the SOA TTL of negative answers (RFC 2308 §3):
// the zone says TTL 3600 and MINIMUM 300, so 300.
func TestNegativeTTL(t *testing.T) {
	srv := startTestdata(t)
	for _, name := range []string{"nope.example.test.", "www.example.test."} {
		r := exchange(t, srv, "udp", query(name, dns.TypeTXT, 0, false))
		require.Len(t, r.Ns, 1)
		assert.Equal(t, uint32(300), r.Ns[0].Header().Ttl, name)
	}
}

func TestRootZone(t *testing.T) {
	root, err := LoadZoneFile("testdata/root/root.zone", "")
	require.NoError(t, err)
	require.Equal(t, ".", root.Origin)
	srv := startTestdata(t, root)

	r := exchange(t, srv, "udp", query("www.elsewhere.invalid.", dns.TypeA, 0, false))
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
	assert.True(t, r.Authoritative)
	assert.Equal(t, []string{". SOA a.root.test. hostmaster.root.test. 1 1800 900 604800 86400"}, shorts(r.Ns))

	// More specific zones still win.
	r = exchange(t, srv, "udp", query("www.example.test.", dns.TypeA, 0, false))
	assert.Equal(t, []string{"www.example.test. A 127.0.1.10"}, shorts(r.Answer))

	// A chain that left our zones now ends in the root zone: NXDOMAIN.
	r = exchange(t, srv, "udp", query("outside.example.test.", dns.TypeA, 0, false))
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
	assert.Equal(t, []string{"outside.example.test. CNAME www.elsewhere.invalid."}, shorts(r.Answer))

	// test. is now an empty non-terminal of the root zone.
	r = exchange(t, srv, "udp", query("test.", dns.TypeA, 0, false))
	assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	assert.Empty(t, r.Answer)
}

// TestDSFromParent serves a parent and its child: the child answers for
// its apex, except DS, which the parent answers (RFC 4035 §3.1.4.1).
func TestDSFromParent(t *testing.T) {
	child, err := LoadZoneFile("testdata/child/sub.example.test.zone", "")
	require.NoError(t, err)
	srv := startTestdata(t, child)
	r := exchange(t, srv, "udp", query("www.sub.example.test.", dns.TypeA, 0, false))
	assert.True(t, r.Authoritative)
	assert.Equal(t, []string{"www.sub.example.test. A 127.0.1.54"}, shorts(r.Answer))

	r = exchange(t, srv, "udp", query("sub.example.test.", dns.TypeDS, 0, false))
	assert.True(t, r.Authoritative)
	require.Len(t, r.Answer, 1)
	assert.Equal(t, dns.TypeDS, r.Answer[0].Header().Rrtype)

	r = exchange(t, srv, "udp", query("sub.example.test.", dns.TypeNS, 0, false))
	assert.True(t, r.Authoritative)
	assert.Equal(t, []string{"sub.example.test. NS ns.sub.example.test."}, shorts(r.Answer))
}

func TestEDNS(t *testing.T) {
	srv := startTestdata(t)
	tests := []struct {
		name    string
		edns    uint16
		do      bool
		wantOPT bool
	}{
		{name: "no EDNS, no OPT", edns: 0},
		{name: "EDNS", edns: 4096, wantOPT: true},
		{name: "EDNS with DO echoed", edns: 1232, do: true, wantOPT: true},
	}
	for _, tc := range tests {
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				r := exchange(t, srv, proto, query("www.example.test.", dns.TypeA, tc.edns, tc.do))
				opt := r.IsEdns0()
				if !tc.wantOPT {
					assert.Nil(t, opt)
					return
				}
				require.NotNil(t, opt)
				assert.Equal(t, uint16(ednsSize), opt.UDPSize())
				assert.Equal(t, tc.do, opt.Do())
				assert.Equal(t, uint8(0), opt.Version())
			})
		}
	}

	t.Run("unknown version is BADVERS", func(t *testing.T) {
		q := query("www.example.test.", dns.TypeA, 1232, false)
		q.IsEdns0().SetVersion(1)
		r := exchange(t, srv, "udp", q)
		assert.Equal(t, dns.RcodeBadVers, r.Rcode)
		assert.Empty(t, r.Answer)
	})
}

func TestTruncation(t *testing.T) {
	srv := startTestdata(t)
	tests := []struct {
		name      string
		qname     string
		proto     string
		edns      uint16
		truncated bool
	}{
		// 660 octets of TXT: too big for 512, fits EDNS.
		{name: "medium over UDP without EDNS", qname: "medium.example.test.", proto: "udp", truncated: true},
		{name: "medium over UDP, small EDNS buffer counts as 512", qname: "medium.example.test.", proto: "udp", edns: 300, truncated: true},
		{name: "medium over UDP with EDNS", qname: "medium.example.test.", proto: "udp", edns: 1232},
		// 1500 octets: too big for 1232, even when the client offers more.
		{name: "big over UDP with EDNS 4096", qname: "big.example.test.", proto: "udp", edns: 4096, truncated: true},
		{name: "big over TCP", qname: "big.example.test.", proto: "tcp"},
		{name: "big over TCP with EDNS", qname: "big.example.test.", proto: "tcp", edns: 1232},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, srv, tc.proto, query(tc.qname, dns.TypeTXT, tc.edns, false))
			assert.Equal(t, dns.RcodeSuccess, r.Rcode)
			assert.Equal(t, tc.truncated, r.Truncated, "TC")
			if tc.truncated {
				assert.Empty(t, r.Answer)
				return
			}
			require.Len(t, r.Answer, 1)
			assert.Greater(t, len(strings.Join(r.Answer[0].(*dns.TXT).Txt, "")), 512)
		})
	}

	t.Run("optional sections are dropped before truncating", func(t *testing.T) {
		r := exchange(t, srv, "udp", query("fit1.example.test.", dns.TypeTXT, 0, false))
		assert.False(t, r.Truncated)
		assert.Len(t, r.Answer, 1)
		assert.Len(t, r.Ns, 2, "the authority NS set still fits")
		assert.Equal(t, []string{"ns1.example.test. A 127.0.1.1"}, shorts(r.Extra), "and one address")

		r = exchange(t, srv, "udp", query("fit2.example.test.", dns.TypeTXT, 0, false))
		assert.False(t, r.Truncated)
		assert.Len(t, r.Answer, 1)
		assert.Empty(t, r.Ns)
		assert.Empty(t, r.Extra)

		r = exchange(t, srv, "tcp", query("fit2.example.test.", dns.TypeTXT, 0, false))
		assert.Len(t, r.Ns, 2, "TCP has room for everything")
		assert.Len(t, r.Extra, 3)
	})

	t.Run("retry over TCP gets the whole record", func(t *testing.T) {
		srv.ResetLog()
		r := exchange(t, srv, "udp", query("big.example.test.", dns.TypeTXT, 1232, false))
		require.True(t, r.Truncated)
		r = exchange(t, srv, "tcp", query("big.example.test.", dns.TypeTXT, 1232, false))
		require.Len(t, r.Answer, 1)
		txt := r.Answer[0].(*dns.TXT).Txt
		assert.Len(t, txt, 6)
		assert.Equal(t, strings.Repeat("f", 250), txt[5])
		assert.Equal(t, 2, srv.Count("big.example.test", dns.TypeTXT), "one UDP then one TCP query")
	})
}

func TestFaults(t *testing.T) {
	const name = "www.example.test."
	tests := []struct {
		name      string
		fault     Fault
		qtype     uint16
		proto     string
		rcode     int
		truncated bool
		answers   int
		timeout   bool
		minDelay  time.Duration
	}{
		{name: "delay", fault: Fault{Delay: 150 * time.Millisecond}, qtype: dns.TypeA, proto: "udp", answers: 1, minDelay: 150 * time.Millisecond},
		{name: "delay over TCP", fault: Fault{Delay: 150 * time.Millisecond}, qtype: dns.TypeA, proto: "tcp", answers: 1, minDelay: 150 * time.Millisecond},
		{name: "drop", fault: Fault{Drop: true}, qtype: dns.TypeA, proto: "udp", timeout: true},
		{name: "drop over TCP", fault: Fault{Drop: true}, qtype: dns.TypeA, proto: "tcp", timeout: true},
		{name: "SERVFAIL", fault: Fault{Rcode: dns.RcodeServerFailure}, qtype: dns.TypeA, proto: "udp", rcode: dns.RcodeServerFailure},
		{name: "REFUSED", fault: Fault{Rcode: dns.RcodeRefused}, qtype: dns.TypeA, proto: "tcp", rcode: dns.RcodeRefused},
		{name: "truncate over UDP", fault: Fault{Truncate: true}, qtype: dns.TypeA, proto: "udp", truncated: true},
		{name: "truncate is ignored over TCP", fault: Fault{Truncate: true}, qtype: dns.TypeA, proto: "tcp", answers: 1},
		{name: "types filter: matching type", fault: Fault{Rcode: dns.RcodeServerFailure, Types: []uint16{dns.TypeAAAA}}, qtype: dns.TypeAAAA, proto: "udp", rcode: dns.RcodeServerFailure},
		{name: "types filter: other type unaffected", fault: Fault{Rcode: dns.RcodeServerFailure, Types: []uint16{dns.TypeAAAA}}, qtype: dns.TypeA, proto: "udp", answers: 1},
	}
	srv := startTestdata(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.ClearFaults()
			srv.ResetLog()
			srv.SetFault("WWW.example.test", tc.fault) // any case, no trailing dot
			c := &dns.Client{Net: tc.proto, Timeout: 2 * time.Second}
			if tc.timeout {
				c.Timeout = 300 * time.Millisecond
			}
			start := time.Now()
			r, _, err := c.Exchange(query(name, tc.qtype, 0, false), srv.Addr())
			elapsed := time.Since(start)
			if tc.timeout {
				var nerr net.Error
				require.Error(t, err)
				assert.True(t, errors.As(err, &nerr) && nerr.Timeout(), "want a timeout, got %v", err)
				log := srv.Log()
				require.Len(t, log, 1)
				assert.True(t, log[0].Dropped)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeToString[tc.rcode], dns.RcodeToString[r.Rcode])
			assert.Equal(t, tc.truncated, r.Truncated)
			assert.Len(t, r.Answer, tc.answers)
			if tc.rcode != dns.RcodeSuccess || tc.truncated {
				assert.Empty(t, r.Ns)
				assert.Empty(t, r.Extra)
			}
			assert.GreaterOrEqual(t, elapsed, tc.minDelay)
			assert.Less(t, elapsed, tc.minDelay+time.Second, "delay measured loosely")
		})
	}

	t.Run("a fault per type", func(t *testing.T) {
		srv.ClearFaults()
		srv.SetFault(name, Fault{Rcode: dns.RcodeRefused})
		srv.SetFault(name, Fault{Rcode: dns.RcodeServerFailure, Types: []uint16{dns.TypeAAAA}})
		r := exchange(t, srv, "udp", query(name, dns.TypeAAAA, 0, false))
		assert.Equal(t, dns.RcodeServerFailure, r.Rcode, "the specific fault wins")
		r = exchange(t, srv, "udp", query(name, dns.TypeA, 0, false))
		assert.Equal(t, dns.RcodeRefused, r.Rcode, "the catch-all fault applies")
		srv.SetFault(name, Fault{Rcode: dns.RcodeNotImplemented}) // replaces the catch-all
		r = exchange(t, srv, "udp", query(name, dns.TypeA, 0, false))
		assert.Equal(t, dns.RcodeNotImplemented, r.Rcode)
		srv.ClearFault(name)
		r = exchange(t, srv, "udp", query(name, dns.TypeA, 0, false))
		assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	})

	t.Run("truncate makes the client retry over TCP", func(t *testing.T) {
		srv.ClearFaults()
		srv.ResetLog()
		srv.SetFault(name, Fault{Truncate: true})
		r := exchange(t, srv, "udp", query(name, dns.TypeA, 1232, false))
		require.True(t, r.Truncated)
		r = exchange(t, srv, "tcp", query(name, dns.TypeA, 1232, false))
		assert.False(t, r.Truncated)
		assert.Equal(t, []string{"www.example.test. A 127.0.1.10"}, shorts(r.Answer))
		log := srv.Log()
		require.Len(t, log, 2)
		assert.Equal(t, []string{"udp", "tcp"}, []string{log[0].Proto, log[1].Proto})
		assert.True(t, log[0].Truncated)
		assert.False(t, log[1].Truncated)
	})

	t.Run("a delay does not hold up other queries", func(t *testing.T) {
		srv.ClearFaults()
		srv.SetFault("slow.example.test", Fault{Delay: 800 * time.Millisecond})
		var wg sync.WaitGroup
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
			_, _, err := c.Exchange(query("slow.example.test.", dns.TypeA, 0, false), srv.Addr())
			assert.NoError(t, err)
		})
		time.Sleep(50 * time.Millisecond) // let the slow query arrive first
		for _, proto := range []string{"udp", "tcp"} {
			start := time.Now()
			exchange(t, srv, proto, query(name, dns.TypeA, 0, false))
			assert.Less(t, time.Since(start), 500*time.Millisecond, proto)
		}
		wg.Wait()
	})

	t.Run("SetDelay applies to every query", func(t *testing.T) {
		srv.ClearFaults()
		srv.SetDelay(100 * time.Millisecond)
		defer srv.SetDelay(0)
		start := time.Now()
		exchange(t, srv, "udp", query("nope.example.test.", dns.TypeA, 0, false))
		exchange(t, srv, "udp", query("www.example.org.", dns.TypeA, 0, false))
		assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	})
}

func TestQueryLog(t *testing.T) {
	srv := startTestdata(t)
	before := time.Now()

	q := query("WWW.example.TEST.", dns.TypeA, 0, false)
	q.RecursionDesired = true
	exchange(t, srv, "udp", q)
	q = query("nope.example.test.", dns.TypeMX, 1232, true)
	q.RecursionDesired = false
	exchange(t, srv, "tcp", q)
	exchange(t, srv, "udp", query("www.example.test.", dns.TypeA, 1232, false))

	log := srv.Log()
	require.Len(t, log, 3)
	for _, e := range log {
		assert.False(t, e.At.Before(before))
	}
	assert.Equal(t, Query{Name: "www.example.test.", Type: dns.TypeA, Proto: "udp", RD: true, Answers: 1}, stripAt(log[0]))
	assert.Equal(t, Query{Name: "nope.example.test.", Type: dns.TypeMX, Proto: "tcp", DO: true, EDNS: true, Rcode: dns.RcodeNameError}, stripAt(log[1]))
	assert.Equal(t, Query{Name: "www.example.test.", Type: dns.TypeA, Proto: "udp", RD: true, EDNS: true, Answers: 1}, stripAt(log[2]))
	assert.True(t, !log[1].At.Before(log[0].At) && !log[2].At.Before(log[1].At), "arrival order")

	assert.Equal(t, 2, srv.Count("www.example.test.", dns.TypeA))
	assert.Equal(t, 2, srv.Count("WWW.EXAMPLE.TEST", dns.TypeA), "case and trailing dot do not matter")
	assert.Equal(t, 0, srv.Count("www.example.test.", dns.TypeAAAA))
	assert.Equal(t, 1, srv.Count("nope.example.test", dns.TypeMX))

	log[0].Name = "changed"
	assert.Equal(t, "www.example.test.", srv.Log()[0].Name, "Log returns a copy")

	srv.ResetLog()
	assert.Empty(t, srv.Log())
	assert.Zero(t, srv.Count("www.example.test.", dns.TypeA))
}

func stripAt(q Query) Query {
	q.At = time.Time{}
	return q
}

func TestMalformedQueries(t *testing.T) {
	srv := startTestdata(t)
	tests := []struct {
		name     string
		build    func() *dns.Msg
		rcode    int
		tcpRcode int // when it differs over TCP
	}{
		{name: "UPDATE is not implemented", rcode: dns.RcodeNotImplemented, build: func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0, false)
			m.Opcode = dns.OpcodeUpdate
			return m
		}},
		{name: "NOTIFY is refused", rcode: dns.RcodeRefused, build: func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0, false)
			m.Opcode = dns.OpcodeNotify
			return m
		}},
		{name: "two questions", rcode: dns.RcodeFormatError, build: func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0, false)
			m.Question = append(m.Question, dns.Question{Name: "www.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
			return m
		}},
		{name: "no question", rcode: dns.RcodeFormatError, build: func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 0, false)
			m.Question = nil
			return m
		}},
		{name: "two OPT records", rcode: dns.RcodeFormatError, build: func() *dns.Msg {
			m := query("example.test.", dns.TypeSOA, 1232, false)
			m.Extra = append(m.Extra, dns.Copy(m.Extra[0]))
			return m
		}},
		{name: "CHAOS class", rcode: dns.RcodeRefused, build: func() *dns.Msg {
			m := query("version.bind.", dns.TypeTXT, 0, false)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}},
		{name: "AXFR", rcode: dns.RcodeNotImplemented, tcpRcode: dns.RcodeRefused, build: func() *dns.Msg {
			return query("example.test.", dns.TypeAXFR, 0, false)
		}},
	}
	for _, tc := range tests {
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				m := tc.build()
				r := exchange(t, srv, proto, m)
				want := tc.rcode
				if proto == "tcp" && tc.tcpRcode != 0 {
					want = tc.tcpRcode
				}
				assert.Equal(t, dns.RcodeToString[want], dns.RcodeToString[r.Rcode])
				assert.Equal(t, m.Id, r.Id)
				assert.Empty(t, r.Answer)
			})
		}
	}

	t.Run("garbage bytes get no answer and do not kill the server", func(t *testing.T) {
		conn, err := net.Dial("udp", srv.Addr())
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff})
		require.NoError(t, err)
		r := exchange(t, srv, "udp", query("www.example.test.", dns.TypeA, 0, false))
		assert.Len(t, r.Answer, 1)
	})
}

func TestConcurrentQueries(t *testing.T) {
	srv := startTestdata(t)
	names := []string{"www.example.test.", "alias2.example.test.", "nope.example.test.", "foo.wild.example.test.",
		"www.sub.example.test.", "cross.example.test.", "big.example.test.", "www.example.org."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			proto := []string{"udp", "tcp"}[g%2]
			c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
			for i := range 25 {
				name := names[(g+i)%len(names)]
				r, _, err := c.Exchange(query(name, types[i%len(types)], uint16(1232*(i%2)), false), srv.Addr())
				if assert.NoError(t, err) {
					assert.Equal(t, name, r.Question[0].Name)
				}
			}
		})
	}
	// Reconfigure while queries fly: faults, log, zones.
	wg.Go(func() {
		for i := range 50 {
			srv.SetFault("www.example.test", Fault{Delay: time.Millisecond, Types: []uint16{dns.TypeMX}})
			_ = srv.Log()
			_ = srv.Count("www.example.test", dns.TypeA)
			srv.ClearFaults()
			if i == 25 {
				assert.NoError(t, srv.AddZone(MustParseZone(t, "late.test.", "@ 60 SOA ns hm 1 2 3 4 5\n")))
			}
		}
	})
	wg.Wait()
	assert.Equal(t, 16*25, len(srv.Log()))
	r := exchange(t, srv, "udp", query("late.test.", dns.TypeSOA, 0, false))
	assert.Len(t, r.Answer, 1)
}

func TestServerLifecycle(t *testing.T) {
	zones := MustLoadZoneDir(t, "testdata")

	t.Run("explicit address, both transports on one port", func(t *testing.T) {
		srv, err := NewServer(zones...)
		require.NoError(t, err)
		err = srv.Start("127.0.2.7:0")
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Skip("127.0.2.7 is not configured here (only 127.0.0.1 is on macOS)")
		}
		require.NoError(t, err)
		defer srv.Close()
		host, _, err := net.SplitHostPort(srv.Addr())
		require.NoError(t, err)
		assert.Equal(t, "127.0.2.7", host)
		for _, proto := range []string{"udp", "tcp"} {
			r := exchange(t, srv, proto, query("www.example.test.", dns.TypeA, 0, false))
			assert.Len(t, r.Answer, 1, proto)
		}

		// The exact address is now taken.
		other, err := NewServer(zones...)
		require.NoError(t, err)
		assert.Error(t, other.Start(srv.Addr()))
		assert.NoError(t, other.Close())
	})

	t.Run("Close is idempotent and stops serving", func(t *testing.T) {
		srv, err := NewServer(zones...)
		require.NoError(t, err)
		require.NoError(t, srv.Start("127.0.0.1:0"))
		assert.Error(t, srv.Start("127.0.0.1:0"), "already started")
		addr := srv.Addr()
		assert.NoError(t, srv.Close())
		assert.NoError(t, srv.Close())
		assert.Error(t, srv.Start("127.0.0.1:0"), "closed")
		c := &dns.Client{Net: "tcp", Timeout: 300 * time.Millisecond}
		_, _, err = c.Exchange(query("www.example.test.", dns.TypeA, 0, false), addr)
		assert.Error(t, err)
	})

	t.Run("Close abandons delayed answers", func(t *testing.T) {
		srv, err := NewServer(zones...)
		require.NoError(t, err)
		require.NoError(t, srv.Start("127.0.0.1:0"))
		srv.SetDelay(time.Minute)
		go func() {
			c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			_, _, _ = c.Exchange(query("www.example.test.", dns.TypeA, 0, false), srv.Addr())
		}()
		require.Eventually(t, func() bool { return len(srv.Log()) == 1 }, 2*time.Second, 10*time.Millisecond)
		start := time.Now()
		assert.NoError(t, srv.Close())
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.True(t, srv.Log()[0].Dropped)
	})

	t.Run("only loopback", func(t *testing.T) {
		srv, err := NewServer(zones...)
		require.NoError(t, err)
		for _, addr := range []string{"192.0.2.1:53", "0.0.0.0:0", ":0", "example.test:53", "127.0.0.1"} {
			assert.Error(t, srv.Start(addr), addr)
		}
	})

	t.Run("duplicate zones", func(t *testing.T) {
		_, err := NewServer(zones[0], zones[0])
		assert.ErrorContains(t, err, "already served")
	})

	t.Run("zone without SOA", func(t *testing.T) {
		_, err := NewServer(&Zone{Origin: "x.test.", Records: []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.test.", Rrtype: dns.TypeA, Class: dns.ClassINET}}}})
		assert.ErrorIs(t, err, ErrNoSOA)
	})
}

// fakeTB records what MustStart does with it.
type fakeTB struct {
	fatal    string
	cleanups []func()
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = format }
func (f *fakeTB) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }

func TestMustStart(t *testing.T) {
	tb := &fakeTB{}
	srv := MustStart(tb, MustLoadZoneDir(t, "testdata")...)
	require.NotNil(t, srv)
	assert.Empty(t, tb.fatal)
	require.Len(t, tb.cleanups, 1)
	r := exchange(t, srv, "udp", query("www.example.test.", dns.TypeA, 0, false))
	assert.Len(t, r.Answer, 1)
	tb.cleanups[0]()
	assert.Error(t, srv.Start("127.0.0.1:0"), "closed by the cleanup")

	tb = &fakeTB{}
	zones := MustLoadZoneDir(t, "testdata")
	assert.Nil(t, MustStart(tb, zones[0], zones[0]))
	assert.NotEmpty(t, tb.fatal)
}
