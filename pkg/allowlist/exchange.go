package allowlist

import (
	"fmt"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// Exchange Online's limits on the connection-filter IP Allow List, from
// Microsoft's "Configure connection filtering" page [MS-CF]: CIDR entries
// with a mask from /24 to /32, at most 1273 entries.
const (
	// MaxExchangeEntries is the most entries the IP Allow List holds; an
	// entry is an address, a range or a CIDR.
	MaxExchangeEntries = 1273
	// ExchangeWidestIPv4 is the shortest IPv4 mask Exchange Online accepts
	// in a CIDR entry: /24 ("Valid subnet mask values are /24 through /32").
	ExchangeWidestIPv4 = 24
)

// Rejection is a list entry Exchange Online would not accept.
type Rejection struct {
	Line   int    `json:"line"`
	Entry  string `json:"entry"`
	Reason string `json:"reason"`
	// Replace holds the /24s to enter instead of an IPv4 CIDR wider than
	// /24. It is empty for IPv6 (nothing replaces it in the IP Allow List)
	// and for a CIDR that would need more than MaxExchangeEntries /24s
	// (a /13 or wider), which no replacement can fit.
	Replace []netip.Prefix `json:"replace,omitempty"`
}

// ExchangeReview is what Exchange Online would make of a list.
type ExchangeReview struct {
	// Rejected are the entries Exchange Online would not accept, in list order.
	Rejected []Rejection
	// Entries is the number of entries in the list.
	Entries int
	// ExchangeEntries is the number of entries once every rejected IPv4
	// CIDR is replaced by its /24s and every IPv6 entry is dropped: what the
	// IP Allow List would have to hold.
	ExchangeEntries int
	// OverLimit is true when ExchangeEntries exceeds MaxExchangeEntries.
	OverLimit bool
}

// Reasons of a Rejection.
const (
	ReasonTooWide = "an IPv4 CIDR wider than /24 (Exchange Online takes /24 to /32)"
	ReasonIPv6    = "IPv6 (the Exchange Online IP Allow List takes IPv4 only)"
)

// ReviewForExchange says which entries of l Exchange Online would not accept
// and whether the list fits its 1273 entries.
//
// Ranges are accepted whatever their size: [MS-CF] lists "IP range" as a
// valid entry and puts the /24../32 rule on CIDR entries only. This is an
// assumption (the page gives no limit for ranges, and none was tested).
func ReviewForExchange(l *List) ExchangeReview {
	var r ExchangeReview
	if l == nil {
		return r
	}
	r.Entries = len(l.Entries)
	for _, e := range l.Entries {
		if len(e.Prefixes) == 0 {
			continue
		}
		if e.Prefixes[0].Addr().BitLen() != 32 {
			r.Rejected = append(r.Rejected, Rejection{Line: e.Line, Entry: e.Text, Reason: ReasonIPv6})
			continue
		}
		if e.IsRange() || e.Prefixes[0].Bits() >= ExchangeWidestIPv4 {
			r.ExchangeEntries++
			continue
		}
		rej := Rejection{Line: e.Line, Entry: e.Text, Reason: ReasonTooWide}
		n := CountForExchange(e.Prefixes)
		if n <= MaxExchangeEntries {
			rej.Replace, _ = SplitForExchange(e.Prefixes)
		}
		r.ExchangeEntries += n
		r.Rejected = append(r.Rejected, rej)
	}
	r.OverLimit = r.ExchangeEntries > MaxExchangeEntries
	return r
}

// SplitForExchange turns prefixes into entries Exchange Online accepts:
// IPv4 prefixes wider than /24 become their /24s, /24../32 prefixes are
// kept, and IPv6 prefixes come back apart in v6, since the IP Allow List
// cannot take them. Overlapping and adjacent prefixes are merged first, so
// the result is the fewest entries that cover the same addresses under the
// /24 rule, sorted by address. Invalid prefixes are skipped; host bits are
// masked.
//
// The output grows with the width of the input: a /16 gives 256 entries, a
// /8 65,536. Use CountForExchange first on input that is not trusted.
func SplitForExchange(prefixes []netip.Prefix) (v4 []netip.Prefix, v6 []netip.Prefix) {
	for _, p := range mergedPrefixes(prefixes) {
		switch {
		case p.Addr().BitLen() != 32:
			v6 = append(v6, p)
		case p.Bits() >= ExchangeWidestIPv4:
			v4 = append(v4, p)
		default:
			// A prefix narrower than /24 lies inside one /24, so
			// splitting only the wide ones keeps the result minimal.
			base := p.Addr().As4()
			start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8
			for i := uint32(0); i < 1<<(ExchangeWidestIPv4-p.Bits()); i++ {
				a := start + i<<8
				v4 = append(v4, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), 0}), ExchangeWidestIPv4))
			}
		}
	}
	return v4, v6
}

// CountForExchange is len(v4) of SplitForExchange(prefixes), computed
// without building the list.
func CountForExchange(prefixes []netip.Prefix) int {
	n := 0
	for _, p := range mergedPrefixes(prefixes) {
		switch {
		case p.Addr().BitLen() != 32:
		case p.Bits() >= ExchangeWidestIPv4:
			n++
		default:
			n += 1 << (ExchangeWidestIPv4 - p.Bits())
		}
	}
	return n
}

// ExchangeAddCommand is the Exchange Online PowerShell command that adds
// prefixes to the default connection filter policy's IP Allow List without
// touching its other entries (the @{Add=...} form of [MS-CF]). It returns ""
// for no prefixes. The prefixes are written as given: pass the v4 result of
// SplitForExchange.
func ExchangeAddCommand(prefixes []netip.Prefix) string {
	if len(prefixes) == 0 {
		return ""
	}
	quoted := make([]string, len(prefixes))
	for i, p := range prefixes {
		quoted[i] = `"` + p.String() + `"`
	}
	return fmt.Sprintf("Set-HostedConnectionFilterPolicy -Identity Default -IPAllowList @{Add=%s}", strings.Join(quoted, ","))
}

// mergedPrefixes is the minimal, sorted CIDR cover of prefixes (IPv4 first).
func mergedPrefixes(prefixes []netip.Prefix) []netip.Prefix {
	return buildSet(prefixes).Prefixes()
}

// buildSet makes the set of addresses the prefixes cover. Invalid prefixes
// add nothing (the builder records them as errors, which are not needed:
// callers validate where it matters).
func buildSet(prefixes []netip.Prefix) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		if p.IsValid() {
			b.AddPrefix(p)
		}
	}
	s, _ := b.IPSet()
	return s
}
