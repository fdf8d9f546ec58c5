package resolver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnswerAddrs(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		require.NoError(t, err)
		return r
	}
	a := &Answer{Records: []dns.RR{
		rr("mx.example. 300 IN A 192.0.2.1"),
		rr("mx.example. 300 IN AAAA 2001:db8::1"),
		rr("mx.example. 300 IN AAAA ::ffff:192.0.2.9"), // stays IPv6: it came as AAAA
		rr("mx.example. 300 IN TXT \"not an address\""),
	}}
	assert.Equal(t, []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:192.0.2.9"),
	}, a.Addrs())
	ip, ok := RRAddr(a.Records[0])
	assert.True(t, ok)
	assert.True(t, ip.Is4(), "an A record gives a 4-byte address, not an IPv4-mapped one")
	_, ok = RRAddr(a.Records[3])
	assert.False(t, ok)
	assert.Nil(t, (*Answer)(nil).Addrs())
}
