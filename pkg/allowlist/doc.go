// Package allowlist answers one question of a gateway cutover: are all of the
// gateway's sending ranges in the Exchange Online connection-filter IP Allow
// List (or in a plain allow list file)? It reports the answer as the finding
// allowlist.gateway-ranges.
//
// # Input
//
// Parse and ParseFile read an allow list in any of the forms an administrator
// has at hand, mixed in one file:
//
//   - one IPv4/IPv6 address, CIDR or range per line, with # comments and blank
//     lines (a plain allow list, or the output of
//     Get-HostedConnectionFilterPolicy | Select-Object -ExpandProperty IPAllowList);
//   - several entries on a line, separated by commas or spaces, optionally
//     quoted ("192.0.2.1","192.0.2.2", as in a PowerShell command);
//   - Format-List output (IPAllowList : {192.0.2.0/24, 198.51.100.1}), with
//     the continuation lines PowerShell writes when it wraps a long value;
//     only the IPAllowList property is read: IPBlockList, DistinguishedName
//     and every other property are skipped, so a blocked address is never
//     taken for an allowed one;
//   - Select-Object IPAllowList table output ({...} under an IPAllowList header);
//   - IP ranges 192.0.2.1-192.0.2.20, which Exchange Online accepts; a range
//     becomes its minimal CIDR cover.
//
// Files written by Windows PowerShell are UTF-16 with a byte-order mark; they
// are decoded, as are UTF-8 files with or without one.
//
// PowerShell shortens long collections to $FormatEnumerationLimit items (4 by
// default) and marks the cut with "..." (Windows PowerShell) or "…"
// (PowerShell 7). Such a list is refused with ErrTruncated: comparing a
// shortened list would report ranges as missing that are in fact allowed.
//
// An address written with host bits under its prefix (192.0.2.1/24) is
// accepted and stands for its network (192.0.2.0/24): Microsoft's own example
// of a CIDR entry is 192.168.0.1/25, and Exchange Online stores the text as it
// was given, so the entry's Text keeps what was written and its Prefixes hold
// the masked network.
//
// # Exchange Online rules
//
// From Microsoft's "Configure connection filtering" page
// (learn.microsoft.com/defender-office-365/connection-filter-policies-configure,
// [MS-CF] in the project's GATEWAYS.md research notes):
//
//   - an entry is a single IP address, an IP address range, or a CIDR IP;
//   - a CIDR IP must have a network mask from /24 to /32 ("Valid subnet mask
//     values are /24 through /32");
//   - the IP Allow List holds at most 1273 entries.
//
// IPv6 is treated as not accepted: the page documents IPv4 forms only, and
// Microsoft's cmdlet reference for inbound connectors ([MS-INCONN]) says
// IPv4 only, /24 to /32 (GATEWAYS.md §0, item 2). The page sets no limit on the
// size of a range, so ranges are assumed acceptable whatever their size; that
// is an assumption, not a documented rule.
//
// Gateway vendors publish wider ranges (Mimecast ZA 41.74.192.0/22,
// Barracuda 209.222.80.0/21, Hornetsecurity 94.100.128.0/20). They cannot be
// pasted as they are, so SplitForExchange splits every IPv4 prefix wider than
// /24 into its /24s, keeps /24../32 prefixes, and returns IPv6 apart. The
// comparison itself is done on address sets (go4.org/netipx), never on
// strings, so 185.58.84.0/23 is covered by 185.58.84.0/24 plus 185.58.85.0/24.
//
// Microsoft recommends Enhanced Filtering for Connectors on a partner inbound
// connector over the IP Allow List for a gateway in front of Exchange Online
// ([MS-3P], [MS-EF]); the finding's remediation says so.
package allowlist
