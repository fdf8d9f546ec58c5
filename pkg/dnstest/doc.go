// Package dnstest is a small in-process authoritative DNS server for tests
// and for the mfcheck demo.
//
// It loads the same RFC 1035 master files (zone files) that NSD and Knot load
// in the end-to-end tests, and serves them over UDP and TCP on a loopback
// address, so a check can be exercised through the whole network path (real
// sockets, real wire format, truncation and the retry over TCP) without a
// DNS daemon and without the internet.
//
// The answers follow NSD 4 (Debian's build, default options) closely enough
// that a finding computed against this server equals the one computed
// against NSD serving the same files; TestNSDParity checks this whenever
// nsd is installed:
//
//   - authoritative answers with AA; REFUSED, without AA, outside the served
//     zones; with a root zone loaded every other name is NXDOMAIN;
//   - NXDOMAIN versus NODATA, both with the zone SOA in the authority section
//     and a TTL of min(SOA TTL, SOA MINIMUM) (RFC 2308 §2.1, §2.2, §3); an
//     empty non-terminal is NODATA (RFC 8020 §2);
//   - CNAME chains followed through every served zone, with a loop guard
//     (RFC 1034 §4.3.2); the rcode is that of the end of the chain
//     (RFC 6604 §2.1);
//   - referrals at zone cuts, without AA, with glue (RFC 1034 §4.2.1); DS at
//     a cut is answered by the parent (RFC 4035 §3.1.4.1);
//   - wildcards (RFC 4592); ANY gets one RRset (RFC 8482 §4.2);
//   - positive answers carry the apex NS set in the authority section and
//     the addresses of NS, MX and SRV targets of the same zone in the
//     additional section, as NSD does;
//   - EDNS(0) (RFC 6891): an OPT in, an OPT out with size 1232 and DO
//     echoed; BADVERS for versions other than 0;
//   - UDP replies limited to 512 octets without EDNS and to
//     min(max(client size, 512), 1232) with it. Optional data (the
//     authority NS set, the additional section) is left out first, without
//     TC; TC=1 only when the answer itself (or a negative answer's SOA, or
//     a referral's NS set) does not fit (RFC 2181 §9). TCP replies are
//     whole.
//
// On top of that it can inject faults per name and type (delay, drop, an
// arbitrary rcode, forced truncation over UDP), delay every answer, and it
// records every query it receives, so tests can assert what a client asked
// and over which transport.
//
// It is deliberately not a general-purpose server: no zone transfers, no
// DNSSEC signing or NSEC synthesis, no DNAME substitution (a DNAME is served
// as plain data), no $INCLUDE, and it only ever listens on loopback.
//
// Typical use in a test:
//
//	srv := dnstest.MustStart(t, dnstest.MustLoadZoneDir(t, "testdata/zones")...)
//	// point the resolver under test at srv.Addr(), over UDP and TCP
//	srv.SetFault("mx1.example.test", dnstest.Fault{Rcode: dns.RcodeServerFailure})
//	// ... run the check, then assert on srv.Log() or srv.Count(...)
package dnstest
