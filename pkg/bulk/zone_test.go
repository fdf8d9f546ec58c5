package bulk_test

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/check"
	"github.com/mfcheck/mfcheck/pkg/dnstest"
	"github.com/mfcheck/mfcheck/pkg/mx"
	"github.com/mfcheck/mfcheck/pkg/resolver"
)

// The generated world: d000000.bulk.test ... each with MX 10 mx1.bulk.test,
// MX 20 mx2.bulk.test (shared), an SPF record including the shared
// _spf.gateway.bulk.test (two ip4 terms and one include of its own), and a
// DMARC record. One zone, bulk.test, whose one name server is the test
// server itself (ns.bulk.test, 127.0.0.1 at --ns-port).
const (
	bulkOrigin = "bulk.test."
	gatewaySPF = "_spf.gateway.bulk.test."
	gateway2   = "_spf2.gateway.bulk.test."
)

func domainName(i int) string { return fmt.Sprintf("d%06d.bulk.test", i) }

// bulkZone builds the zone in memory, records as structs: parsing the text
// of 100,000 domains would cost more than checking them.
func bulkZone(n int) *dnstest.Zone {
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	txt := func(name, s string) dns.RR { return &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: []string{s}} }
	a := func(name, ip string) dns.RR { return &dns.A{Hdr: hdr(name, dns.TypeA), A: net.ParseIP(ip).To4()} }
	rrs := make([]dns.RR, 0, 8+4*n)
	rrs = append(rrs,
		&dns.SOA{Hdr: hdr(bulkOrigin, dns.TypeSOA), Ns: "ns.bulk.test.", Mbox: "hostmaster.bulk.test.",
			Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60},
		&dns.NS{Hdr: hdr(bulkOrigin, dns.TypeNS), Ns: "ns.bulk.test."},
		a("ns.bulk.test.", "127.0.0.1"),
		a("mx1.bulk.test.", "127.0.0.11"),
		a("mx2.bulk.test.", "127.0.0.12"),
		txt(gatewaySPF, "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 include:"+gateway2+" ~all"),
		txt(gateway2, "v=spf1 ip4:203.0.113.0/24 ~all"),
	)
	for i := range n {
		d := domainName(i) + "."
		rrs = append(rrs,
			&dns.MX{Hdr: hdr(d, dns.TypeMX), Preference: 10, Mx: "mx1.bulk.test."},
			&dns.MX{Hdr: hdr(d, dns.TypeMX), Preference: 20, Mx: "mx2.bulk.test."},
			txt(d, "v=spf1 include:"+gatewaySPF+" -all"),
			txt("_dmarc."+d, "v=DMARC1; p=reject; rua=mailto:dmarc@"+domainName(i)),
		)
	}
	return &dnstest.Zone{Origin: bulkOrigin, Records: rrs}
}

// world is a running server for n generated domains and the matching
// resolver and check configuration.
type world struct {
	srv    *dnstest.Server
	addr   string
	nsPort int
}

func startWorld(tb testing.TB, n int) *world {
	tb.Helper()
	srv := dnstest.MustStart(tb, bulkZone(n))
	_, port, err := net.SplitHostPort(srv.Addr())
	require.NoError(tb, err)
	p, err := strconv.Atoi(port)
	require.NoError(tb, err)
	return &world{srv: srv, addr: srv.Addr(), nsPort: p}
}

func (w *world) client(tb testing.TB, cfg resolver.Config) *resolver.Client {
	tb.Helper()
	cfg.Servers = []string{w.addr}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = time.Second
	}
	// What the CLI sets: a burst of thousands of UDP queries loses some,
	// even on loopback, and one lost packet must not become every later
	// domain's error.
	cfg.Attempts, cfg.ForgetFailures = 3, true
	c, err := resolver.New(cfg)
	require.NoError(tb, err)
	return c
}

// config is the DNS-only check of a bulk run (no SMTP).
func (w *world) config(domain string) check.Config {
	return check.Config{
		Domain: domain, Mode: mx.ModeHealth, NSPort: w.nsPort, Version: "test",
		Areas: []string{check.AreaMX, check.AreaSPF, check.AreaPolicy},
		SMTP:  check.SMTPConfig{Skip: true},
	}
}
