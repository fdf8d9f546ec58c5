package allowlist_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/allowlist"
)

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		require.NoError(t, err, s)
		out = append(out, p)
	}
	return out
}

func strs(ps []netip.Prefix) []string {
	if ps == nil {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func TestSplitForExchange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []string
		v4, v6 []string
	}{
		{"Mimecast ZA /22 becomes four /24s", []string{"41.74.192.0/22"},
			[]string{"41.74.192.0/24", "41.74.193.0/24", "41.74.194.0/24", "41.74.195.0/24"}, nil},
		{"Mimecast AS aggregate /22", []string{"185.58.84.0/22"},
			[]string{"185.58.84.0/24", "185.58.85.0/24", "185.58.86.0/24", "185.58.87.0/24"}, nil},
		{"a /32 is kept", []string{"185.58.84.93/32"}, []string{"185.58.84.93/32"}, nil},
		{"/24 to /32 are kept", []string{"207.211.30.64/26", "170.10.132.56/29", "216.145.221.0/24"},
			[]string{"170.10.132.56/29", "207.211.30.64/26", "216.145.221.0/24"}, nil},
		{"IPv6 comes back apart", []string{"2a01:111:f400::/48", "185.58.85.0/24", "2001:db8::/32"},
			[]string{"185.58.85.0/24"}, []string{"2001:db8::/32", "2a01:111:f400::/48"}},
		{"sorted and merged", []string{"185.58.86.0/24", "185.58.84.0/23", "185.58.85.0/24", "185.58.84.10/32"},
			[]string{"185.58.84.0/24", "185.58.85.0/24", "185.58.86.0/24"}, nil},
		{"two halves merge into one /24", []string{"193.7.206.128/25", "193.7.206.0/25"}, []string{"193.7.206.0/24"}, nil},
		{"host bits are masked", []string{"41.74.193.7/23"}, []string{"41.74.192.0/24", "41.74.193.0/24"}, nil},
		{"Barracuda /21", []string{"209.222.80.0/21"}, []string{"209.222.80.0/24", "209.222.81.0/24", "209.222.82.0/24",
			"209.222.83.0/24", "209.222.84.0/24", "209.222.85.0/24", "209.222.86.0/24", "209.222.87.0/24"}, nil},
		{"nothing", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v4, v6 := allowlist.SplitForExchange(prefixes(t, tc.in...))
			assert.Equal(t, tc.v4, strs(v4))
			assert.Equal(t, tc.v6, strs(v6))
			assert.Equal(t, len(v4), allowlist.CountForExchange(prefixes(t, tc.in...)))
		})
	}
}

func TestSplitForExchangeSkipsInvalid(t *testing.T) {
	v4, v6 := allowlist.SplitForExchange([]netip.Prefix{{}, netip.MustParsePrefix("192.0.2.0/24")})
	assert.Equal(t, []string{"192.0.2.0/24"}, strs(v4))
	assert.Empty(t, v6)
}

func TestSplitForExchangeWholeSpace(t *testing.T) {
	v4, _ := allowlist.SplitForExchange(prefixes(t, "10.0.0.0/8"))
	require.Len(t, v4, 65536)
	assert.Equal(t, "10.0.0.0/24", v4[0].String())
	assert.Equal(t, "10.255.255.0/24", v4[len(v4)-1].String())
	assert.Equal(t, 1<<24, allowlist.CountForExchange(prefixes(t, "0.0.0.0/0")), "counted without building 16M prefixes")
}

func listOf(t testing.TB, text string) *allowlist.List {
	t.Helper()
	l, err := allowlist.Parse(strings.NewReader(text), "allow.txt")
	require.NoError(t, err)
	return l
}

func TestReviewForExchange(t *testing.T) {
	l := listOf(t, "185.58.84.0/22\n2001:db8::/32\n192.0.2.1-192.0.2.200\n192.0.2.0/24\n198.51.100.7\n10.0.0.0/8\n2001:db8::1-2001:db8::9\n")
	r := allowlist.ReviewForExchange(l)
	assert.Equal(t, 7, r.Entries)
	// 4 /24s for the /22, the range, the /24, the address, 65,536 /24s
	// for the /8; the IPv6 entries are dropped.
	assert.Equal(t, 4+1+1+1+65536, r.ExchangeEntries)
	assert.True(t, r.OverLimit)
	require.Len(t, r.Rejected, 4)
	assert.Equal(t, allowlist.Rejection{Line: 1, Entry: "185.58.84.0/22", Reason: allowlist.ReasonTooWide,
		Replace: prefixes(t, "185.58.84.0/24", "185.58.85.0/24", "185.58.86.0/24", "185.58.87.0/24")}, r.Rejected[0])
	assert.Equal(t, allowlist.Rejection{Line: 2, Entry: "2001:db8::/32", Reason: allowlist.ReasonIPv6}, r.Rejected[1])
	assert.Equal(t, allowlist.Rejection{Line: 6, Entry: "10.0.0.0/8", Reason: allowlist.ReasonTooWide}, r.Rejected[2],
		"a /8 needs more /24s than the list can hold: no replacement")
	assert.Equal(t, allowlist.Rejection{Line: 7, Entry: "2001:db8::1-2001:db8::9", Reason: allowlist.ReasonIPv6}, r.Rejected[3])
}

func TestReviewForExchangeAccepts(t *testing.T) {
	r := allowlist.ReviewForExchange(listOf(t, "192.0.2.0/24\n192.0.2.1/32\n198.51.100.0/25\n203.0.113.0-203.0.120.255\n"))
	assert.Empty(t, r.Rejected, "/24../32 CIDRs and IPv4 ranges of any size are accepted")
	assert.Equal(t, 4, r.ExchangeEntries)
	assert.False(t, r.OverLimit)
	assert.Equal(t, allowlist.ExchangeReview{}, allowlist.ReviewForExchange(nil))
}

// addresses returns n distinct /32 entries, one a line.
func addresses(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "10.%d.%d.1\n", i/256, i%256)
	}
	return b.String()
}

func TestReviewForExchangeLimit(t *testing.T) {
	at := allowlist.ReviewForExchange(listOf(t, addresses(allowlist.MaxExchangeEntries)))
	assert.False(t, at.OverLimit)
	assert.Equal(t, 1273, at.ExchangeEntries)
	over := allowlist.ReviewForExchange(listOf(t, addresses(allowlist.MaxExchangeEntries+1)))
	assert.True(t, over.OverLimit)
	assert.Empty(t, over.Rejected)
}

func TestExchangeAddCommand(t *testing.T) {
	assert.Equal(t, `Set-HostedConnectionFilterPolicy -Identity Default -IPAllowList @{Add="185.58.84.0/24","185.58.85.0/24"}`,
		allowlist.ExchangeAddCommand(prefixes(t, "185.58.84.0/24", "185.58.85.0/24")))
	assert.Empty(t, allowlist.ExchangeAddCommand(nil))
}
