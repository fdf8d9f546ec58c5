// Package spf implements the Sender Policy Framework, RFC 7208: parsing SPF
// records, evaluating check_host() for one client, and analysing a domain's
// whole record tree without a client, for what a gateway cutover needs.
//
// Evaluation:
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
//     tests of the openspf RFC 7208 suite (see conformance_test.go), with
//     an optional per-term trace.
//
// Static analysis (tree.go, count.go, coverage.go, flatten.go):
//   - Expand fetches the record tree: the domain's record, every include and
//     redirect target, and what a, mx and exists name. Every lookup starts as
//     soon as the record naming it arrives, so the wall time is the depth of
//     the tree in round trips; each (name, type) is asked once. Bounds on
//     depth, records, questions and terms per record keep hostile trees (a
//     1000-deep chain, a 64 KiB record of a: terms) cheap; what a bound cut
//     off is reported as incomplete, never as a misconfiguration.
//   - The worst-case count walks the tree in evaluation order: the cost of
//     every term with its subtree, the running total, the first term over
//     the limit, void lookups per client family. Every include is counted
//     each time it is met; terms after all and a redirect next to all cost
//     nothing.
//   - Tree.Coverage evaluates check_host() for the whole address space at
//     once, over sets of addresses with the same lookup and void counts, so
//     it says exactly which addresses get pass, fail, softfail, neutral or
//     permerror; terms that depend on the client or the sender (macros,
//     ptr) make the addresses they could decide "maybe", never "pass". Tests
//     check it against CheckHost on every conformance-suite test and on
//     random trees.
//   - Tree.Flatten replaces lookup terms by the addresses they authorize
//     until a lookup budget is met, in strings of at most 255 octets and
//     chained records where one answer would exceed 512 octets.
//
// Analyze runs all of it for a domain and returns findings (the spf.* IDs
// of docs/checks.md), the gateway's current sending ranges for the
// allow-list check, and the tree for the report.
//
// Not implemented: the deprecated SPF RR type 99 (§3.1 removed it; only TXT
// is queried), the RFC 4408 draft "default=" modifier, and Received-SPF /
// Authentication-Results headers.
//
// DNS goes through the small Resolver interface, which pkg/resolver's client
// satisfies; the package never touches the network itself.
package spf
