// Package spf implements the Sender Policy Framework, RFC 7208: parsing SPF
// records and evaluating check_host() for an IP address, a sender and a
// domain.
//
// Implemented:
//   - Parse: the full §12 ABNF (every mechanism, qualifier, redirect=, exp=,
//     unknown modifiers, macro-strings of §7.1, dual-cidr-length), keeping
//     the index and byte offset of every term so that a *SyntaxError reads
//     `term 4 "ip4:10.0.0.0/33": prefix length 33 is over 32`.
//   - Checker.CheckHost: check_host() of §4 with record selection (§4.5),
//     initial domain checks (§4.3), every mechanism (§5), redirect and exp
//     (§6), macro expansion including %{p}, upper-case URL escaping and
//     the 253-character truncation (§7), and the processing limits of
//     §4.6.4 (10 DNS-querying terms, 2 void lookups, 10 MX names, the first
//     10 PTR names), counted as evaluation proceeds. It passes all 203
//     tests of the openspf RFC 7208 suite (see conformance_test.go).
//   - An optional per-term trace (Checker.Trace) for diagnostics.
//
// Not implemented here (yet): the static analysis of a record tree (worst
// case lookup counts, coverage of IP ranges, flattening), the deprecated
// SPF RR type 99 (§3.1 removed it; only TXT is queried), the RFC 4408
// "default=" modifier and Received-SPF / Authentication-Results headers.
//
// DNS goes through the small Resolver interface, which pkg/resolver's client
// satisfies; the package never touches the network itself.
package spf
