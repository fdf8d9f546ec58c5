// Package dnstest is a small in-process authoritative DNS server for tests
// and for the mfcheck demo.
//
// It loads the same RFC 1035 master files (zone files) that NSD and Knot load
// in the end-to-end tests, and serves them over UDP and TCP on a loopback
// address, so a check can be exercised through the whole network path (real
// sockets, real wire format, truncation and the retry over TCP) without a
// DNS daemon and without the internet. The answers follow what NSD does for
// the same files closely enough that a finding computed against this server
// equals the one computed against NSD:
//
//   - authoritative answers with AA, REFUSED outside the served zones;
//   - NXDOMAIN versus NODATA, both with the zone SOA in the authority section
//     (RFC 2308 §2.1, §2.2) and an empty non-terminal being NODATA
//     (RFC 8020 §2);
//   - CNAME chains followed through every served zone (RFC 1034 §4.3.2,
//     RFC 6604 for the final rcode);
//   - referrals at zone cuts (RFC 1034 §4.2.1), wildcards (RFC 4592);
//   - EDNS(0) (RFC 6891) and truncation of UDP answers that do not fit.
//
// On top of that it can inject faults per name and type (delay, drop,
// an arbitrary rcode, forced truncation over UDP) and it records every query
// it receives, so tests can assert what a client asked and over which
// transport.
//
// It is deliberately not a general-purpose server: no zone transfers, no
// DNSSEC signing or NSEC synthesis, no DNAME substitution (a DNAME is served
// as plain data), no $INCLUDE, and it only ever listens on loopback.
//
// Typical use in a test:
//
//	zones, err := dnstest.LoadZoneDir("testdata/zones")
//	require.NoError(t, err)
//	srv := dnstest.MustStart(t, zones...)
//	// point the resolver under test at srv.Addr()
package dnstest
