package spf

import (
	"context"
	"net/netip"
	"testing"
)

// benchZone is a realistic tenant: its own ranges, an MX, and the includes
// of a cloud mailbox provider, a gateway and a newsletter service, nested
// two deep: 6 DNS-querying terms in all.
func benchZone(tb testing.TB) *memZone {
	return zoneOf(tb, map[string][]string{
		"contoso.example": {
			"TXT v=spf1 mx ip4:198.51.100.0/26 include:spf.protection.mail.example include:_netblocks.gateway.example include:servers.news.example -all",
			"TXT google-site-verification=0123456789abcdef",
			"MX 10 contoso-example.mail.protection.mail.example",
		},
		"contoso-example.mail.protection.mail.example": {"A 203.0.113.10", "A 203.0.113.11"},
		"spf.protection.mail.example": {
			"TXT v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/14 ip4:104.47.0.0/17 ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 include:spfd.protection.mail.example -all",
		},
		"spfd.protection.mail.example": {"TXT v=spf1 ip4:51.4.72.0/24 ip4:51.5.72.0/24 ip4:51.5.80.0/27 ip4:20.47.149.138/32 -all"},
		"_netblocks.gateway.example": {
			"TXT v=spf1 ip4:185.58.84.0/22 ip4:195.130.217.0/24 ip4:91.220.42.0/24 ip4:146.101.78.0/24 ip4:207.82.80.0/24 include:_netblocks2.gateway.example ~all",
		},
		"_netblocks2.gateway.example": {"TXT v=spf1 ip4:103.13.69.0/24 ip4:170.10.128.0/24 ip4:170.10.129.0/24 ip4:170.10.132.56/29 ~all"},
		"servers.news.example":        {"TXT v=spf1 ip4:205.201.128.0/20 ip4:198.2.128.0/18 ip4:148.105.8.0/21 -all"},
	})
}

// BenchmarkCheckHostCached measures check_host() on in-memory DNS data for
// a client matched by the last include, so the whole tree is walked.
func BenchmarkCheckHostCached(b *testing.B) {
	c := &Checker{Resolver: benchZone(b)}
	q := Query{IP: netip.MustParseAddr("148.105.8.20"), Sender: "bounce@contoso.example", Helo: "mta.news.example"}
	ctx := context.Background()
	if out := c.CheckHost(ctx, q); out.Result != Pass || out.Lookups != 6 {
		b.Fatalf("got %s after %d lookups (%v)", out.Result, out.Lookups, out.Err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.CheckHost(ctx, q)
	}
}
