package allowlist

import (
	"fmt"
	"net/netip"
	"strings"

	"go4.org/netipx"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// IDGatewayRanges is the finding Check returns; docs/checks.md describes it.
const IDGatewayRanges = "allowlist.gateway-ranges"

// Gateway is the gateway's sending ranges and where they came from.
type Gateway struct {
	Name       string         // "Mimecast (Europe excluding Germany, "UK" grid)"
	Ranges     []netip.Prefix // current ranges
	Source     string         // "live SPF of eu._netblocks.mimecast.com" or "stored snapshot ~2025 (fallback: ...)"
	Unverified bool           // the ranges come from an unverified/stale source: say so in the message
}

// shownMissing is how many missing ranges the message names; the evidence
// has all of them.
const shownMissing = 5

// recommendation is Microsoft's advice for a gateway in front of Exchange
// Online ([MS-3P], [MS-EF] in GATEWAYS.md): skip listing on the gateway's
// connector rather than allow-listing shared gateway addresses.
const recommendation = "Microsoft recommends Enhanced Filtering for Connectors on the gateway's partner inbound connector " +
	"(Set-InboundConnector -EFSkipLastIP $true) over the IP Allow List."

// Check compares list with the gateway's sending ranges and returns the
// finding allowlist.gateway-ranges, whose subject is the list's Source:
//
//   - pass: every gateway address is covered;
//   - fail: some IPv4 gateway addresses are not; the remediation is the
//     command that adds them, split into entries Exchange Online accepts;
//   - warn: every IPv4 address is covered, but Exchange Online would reject
//     some list entries (wider than /24, IPv6, more than 1273 entries), or
//     only IPv6 gateway ranges are missing, which the IP Allow List cannot
//     hold at all (a failure nobody could fix there);
//   - error: the gateway's ranges are unknown or invalid, or there is no list.
//
// Coverage is computed on address sets, so any mix of addresses, ranges and
// CIDRs in the list that covers a gateway range counts.
func Check(list *List, gw Gateway) report.Finding {
	f := report.Finding{ID: IDGatewayRanges, Subject: "allow list"}
	if list != nil && list.Source != "" {
		f.Subject = list.Source
	}
	name := gw.Name
	if name == "" {
		name = "the gateway"
	}
	ev := map[string]any{"gateway": gw.Name, "source": gw.Source}
	if gw.Unverified {
		ev["unverified"] = true
	}
	f.Evidence = ev

	if list == nil {
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("No allow list was given, so it could not be compared with the sending ranges of %s", name)
		return f
	}
	ev["entries"] = len(list.Entries)
	if len(gw.Ranges) == 0 {
		why := gw.Source
		if why == "" {
			why = "no source gave them"
		}
		f.Status = report.StatusError
		f.Message = fmt.Sprintf("The sending ranges of %s are unknown (%s), so the allow list could not be checked", name, why)
		return f
	}
	for i, p := range gw.Ranges {
		if !p.IsValid() {
			f.Status = report.StatusError
			f.Message = fmt.Sprintf("Gateway range %d of %s (%s) is not a valid prefix, so the allow list could not be checked", i+1, name, gw.Source)
			return f
		}
	}

	gwSet := buildSet(gw.Ranges)
	gwRanges := gwSet.Prefixes()
	ev["gateway_ranges"] = prefixStrings(gwRanges)

	var b netipx.IPSetBuilder
	b.AddSet(gwSet)
	b.RemoveSet(buildSet(list.Prefixes()))
	missingSet, _ := b.IPSet()
	missing4, missing6 := SplitByFamily(missingSet.Prefixes())
	review := ReviewForExchange(list)
	if len(review.Rejected) > 0 {
		ev["rejected"] = review.Rejected
	}

	source := ""
	if gw.Source != "" {
		source = "; ranges from " + gw.Source
	}
	if gw.Unverified {
		source += " (an unverified or stale source: confirm them with the vendor)"
	}
	entries := plural(len(list.Entries), "entry", "entries")
	ranges := plural(len(gwRanges), "sending range", "sending ranges")

	switch {
	case len(missing4) > 0:
		return missingFinding(f, ev, missing4, missing6, gwRanges, review, name, entries, source, gw.Unverified)
	case len(missing6) > 0 || len(review.Rejected) > 0 || review.OverLimit:
		return rulesFinding(f, ev, missing6, review, name, entries, ranges, source)
	}
	f.Status = report.StatusPass
	f.Message = fmt.Sprintf("The allow list (%s) covers all %s of %s%s", entries, ranges, name, source)
	return f
}

func missingFinding(f report.Finding, ev map[string]any, missing4, missing6, gwRanges []netip.Prefix, review ExchangeReview,
	name, entries, source string, unverified bool) report.Finding {
	f.Status = report.StatusFail
	gw4, _ := SplitByFamily(gwRanges)
	missing := append(append([]netip.Prefix{}, missing4...), missing6...)
	ev["missing"] = prefixStrings(missing)
	ev["ipv6_not_allowed"] = prefixStrings(missing6)
	need := CountForExchange(missing4)
	ev["missing_exchange_count"] = need

	msg := fmt.Sprintf("The allow list (%s) does not cover %d of the %d IPv4 addresses %s sends from: missing %s",
		entries, addressCount(missing4), addressCount(gw4), name, firstFew(missing))
	if len(missing6) > 0 {
		msg += fmt.Sprintf(", of which %s IPv6, which the Exchange Online IP Allow List cannot hold",
			plural(len(missing6), "range is", "ranges are"))
	}
	f.Message = msg + source

	var rem []string
	switch total := review.ExchangeEntries + need; {
	case need > MaxExchangeEntries:
		rem = append(rem, fmt.Sprintf("The missing ranges would take %d /24 entries, more than the %d the Exchange Online IP Allow List holds: "+
			"allow the gateway with a partner inbound connector instead.", need, MaxExchangeEntries))
	default:
		split, _ := SplitForExchange(missing4)
		ev["missing_exchange"] = prefixStrings(split)
		rem = append(rem, ExchangeAddCommand(split))
		if total > MaxExchangeEntries {
			rem = append(rem, fmt.Sprintf("This takes the list to %d entries, over the limit of %d: remove entries that are no longer needed first.",
				total, MaxExchangeEntries))
		}
	}
	if unverified {
		rem = append(rem, "Confirm the ranges with the vendor's current list before adding them.")
	}
	if len(missing6) > 0 {
		rem = append(rem, fmt.Sprintf("The IPv6 ranges (%s) cannot be added: the IP Allow List takes IPv4 only.", firstFew(missing6)))
	}
	rem = append(rem, recommendation)
	f.Remediation = strings.Join(rem, " ")
	return f
}

func rulesFinding(f report.Finding, ev map[string]any, missing6 []netip.Prefix, review ExchangeReview,
	name, entries, ranges, source string) report.Finding {
	f.Status = report.StatusWarn
	ev["entries_for_exchange"] = review.ExchangeEntries
	var problems, rem []string
	if len(missing6) > 0 {
		ev["missing"] = prefixStrings(missing6)
		ev["ipv6_not_allowed"] = prefixStrings(missing6)
		problems = append(problems, fmt.Sprintf("%s %s not covered, and the Exchange Online IP Allow List cannot hold IPv6: %s",
			plural(len(missing6), "IPv6 range", "IPv6 ranges"), isAre(len(missing6)), firstFew(missing6)))
	}
	if len(review.Rejected) > 0 {
		shown := make([]string, 0, shownMissing)
		for i, r := range review.Rejected {
			if i == shownMissing {
				shown = append(shown, fmt.Sprintf("and %d more", len(review.Rejected)-shownMissing))
				break
			}
			why := "IPv6"
			if r.Reason == ReasonTooWide {
				why = "wider than /24"
			}
			shown = append(shown, fmt.Sprintf("%s (line %d, %s)", r.Entry, r.Line, why))
		}
		problems = append(problems, fmt.Sprintf("Exchange Online would not accept %d of its %s: %s",
			len(review.Rejected), entries, strings.Join(shown, ", ")))

		var split []netip.Prefix
		var replace, drop []string
		for _, r := range review.Rejected {
			switch {
			case r.Reason == ReasonIPv6:
				drop = append(drop, r.Entry)
			case len(r.Replace) > 0:
				split = append(split, r.Replace...)
				replace = append(replace, fmt.Sprintf("%s with %s", r.Entry, strings.Join(prefixStrings(r.Replace), ", ")))
			default:
				replace = append(replace, fmt.Sprintf("%s (more than %d /24s: use a partner inbound connector for it)", r.Entry, MaxExchangeEntries))
			}
		}
		split, _ = SplitForExchange(split)
		if len(split) > 0 {
			ev["split"] = prefixStrings(split)
		}
		if len(replace) > 0 {
			rem = append(rem, "Replace "+strings.Join(replace, "; ")+".")
		}
		if len(drop) > 0 {
			rem = append(rem, "Drop "+strings.Join(drop, ", ")+": the IP Allow List takes IPv4 only.")
		}
		if cmd := ExchangeAddCommand(split); cmd != "" {
			rem = append(rem, "In Exchange Online: "+cmd)
		}
	}
	if review.OverLimit {
		ev["max_entries"] = MaxExchangeEntries
		problems = append(problems, fmt.Sprintf("it needs %d entries in Exchange Online, over the limit of %d", review.ExchangeEntries, MaxExchangeEntries))
		rem = append(rem, fmt.Sprintf("Bring the list under %d entries (merge neighbouring addresses into ranges, remove stale ones).", MaxExchangeEntries+1))
	}
	rem = append(rem, recommendation)

	lead := fmt.Sprintf("The allow list (%s) covers all %s of %s, but ", entries, ranges, name)
	if len(missing6) > 0 {
		lead = fmt.Sprintf("The allow list (%s) covers every IPv4 sending range of %s, but ", entries, name)
	}
	f.Message = lead + strings.Join(problems, "; ") + source
	f.Remediation = strings.Join(rem, " ")
	return f
}

// SplitByFamily returns the IPv4 and the IPv6 prefixes of ps, each in input order.
func SplitByFamily(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range ps {
		if p.Addr().BitLen() == 32 {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// addressCount is the number of addresses in IPv4 prefixes (at most 2^32).
func addressCount(ps []netip.Prefix) uint64 {
	var n uint64
	for _, p := range ps {
		if p.Addr().BitLen() == 32 {
			n += 1 << (32 - p.Bits())
		}
	}
	return n
}

func firstFew(ps []netip.Prefix) string {
	s := prefixStrings(ps)
	if len(s) > shownMissing {
		return strings.Join(s[:shownMissing], ", ") + fmt.Sprintf(" and %d more", len(s)-shownMissing)
	}
	return strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
